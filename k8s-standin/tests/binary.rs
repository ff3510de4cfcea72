//! The `k8s-standin` binary: configuration errors exit 64 with a message naming the problem;
//! the example configuration starts a server that answers with its seeded objects.

use std::process::Stdio;

use tokio::io::AsyncBufReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_k8s-standin");

#[test]
fn a_malformed_workload_flag_exits_64_naming_it() {
    let out = std::process::Command::new(BIN)
        .args(["--deployment", "default/app"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid workload \"default/app\": missing =replicas"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_config_key_exits_64() {
    let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("bad.json");
    std::fs::write(&path, r#"{"listn": "127.0.0.1:0"}"#).unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `listn`"), "{stderr}");
}

#[tokio::test]
async fn the_example_config_serves_its_objects_to_its_token() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/standin.json");
    let mut child = tokio::process::Command::new(BIN)
        .args(["--config", example])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let url = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no url printed"));
    let mut config = kube::Config::new(url.parse().unwrap_or_else(|e| panic!("{e}: {url}")));
    config.default_retry = false;
    config.auth_info.token = Some("processor-token".to_string().into());
    let client = kube::Client::try_from(config).unwrap_or_else(|e| panic!("{e}"));
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), "default");
    // The example's rules grant no access to leases: the seeded lease exists but is forbidden.
    match leases.get("processor-leader").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client, "default");
    // The example's first fault fails the first scale patch with 503, then it goes through.
    let patch = kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 2}}));
    let params = kube::api::PatchParams::default();
    match deployments.patch_scale("app", &params, &patch).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 503),
        other => panic!("expected 503, got {other:?}"),
    }
    let scaled = deployments
        .patch_scale("app", &params, &patch)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(2));
    let _ = child.start_kill();
    let _ = child.wait().await;
}
