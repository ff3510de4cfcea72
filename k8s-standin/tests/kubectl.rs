//! Fidelity with the real kubectl (`/usr/bin/kubectl`): every test drives the stand-in with the
//! commands an operator or the tests of other crates run, and checks both kubectl's view and the
//! stand-in's request log. Prints SKIPPED when kubectl is not installed (set REQUIRE_KUBECTL=1 to
//! fail instead).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_standin::{Config, Fault, Handle, Rule, Server, WorkloadKind};
use serde_json::Value;
use tempfile::TempDir;

const KUBECTL: &str = "/usr/bin/kubectl";

fn kubectl_available(test: &str) -> bool {
    if Path::new(KUBECTL).exists() {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_KUBECTL").as_deref() != Ok("1"),
        "{KUBECTL} is required (REQUIRE_KUBECTL=1)"
    );
    eprintln!("SKIPPED {test}: {KUBECTL} not installed");
    false
}

/// kubectl with its own HOME and discovery cache, talking to one server.
struct Kubectl {
    home: TempDir,
    args: Vec<String>,
}

impl Kubectl {
    fn new(server: &Handle, token: Option<&str>) -> Kubectl {
        let mut args = vec![format!("--server={}", server.url())];
        if let Some(t) = token {
            args.push(format!("--token={t}"));
        }
        Kubectl::with_args(args)
    }

    fn with_kubeconfig(path: &Path) -> Kubectl {
        Kubectl::with_args(vec![format!("--kubeconfig={}", path.display())])
    }

    /// `args` before every command, plus a discovery cache in a fresh HOME.
    fn with_args(mut args: Vec<String>) -> Kubectl {
        let home = TempDir::new().unwrap_or_else(|e| panic!("temp dir: {e}"));
        args.push(format!(
            "--cache-dir={}",
            home.path().join("cache").display()
        ));
        Kubectl { home, args }
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(KUBECTL)
            .args(&self.args)
            .args(args)
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("no-kubeconfig"))
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"))
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Asserts that `text` (kubectl's output) contains `part`, printing it when not.
#[track_caller]
fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} not in:\n{text}");
}

async fn start(config: Config) -> Handle {
    Server::start(config)
        .await
        .unwrap_or_else(|e| panic!("stand-in did not start: {e}"))
}

fn app_server() -> Config {
    Config::default().with_deployment("default", "app", 1)
}

/// (method, rbac resource) of the resource requests, in order.
fn calls(server: &Handle) -> Vec<(String, String, u16)> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.info.is_resource_request)
        .map(|r| (r.method.clone(), r.rbac_resource(), r.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_deploy_prints_the_server_side_table() {
    if !kubectl_available("kubectl_get_deploy_prints_the_server_side_table") {
        return;
    }
    let server = start(app_server().with_deployment("prod", "web", 3)).await;
    let k = Kubectl::new(&server, None);
    let out = k.ok(&["get", "deploy"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines
        .first()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let row: Vec<&str> = lines
        .get(1)
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(row.get(..4), Some(&["app", "1/1", "1", "1"][..]));
    let all = k.ok(&["get", "deployments.apps", "--all-namespaces"]).await;
    assert_contains(&all, "prod");
    assert_contains(&all, "web");
    assert_contains(&all, "3/3");
    let sts = k.ok(&["get", "sts"]).await;
    assert!(sts.is_empty(), "{sts}");
    // kubectl 1.30+ discovers through aggregated discovery v2: /api and /apis once, never the
    // per-group documents (this kubectl's dispatcher also reads /version first).
    let discovery: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| !r.info.is_resource_request && r.path != "/version")
        .map(|r| r.path)
        .collect();
    assert_eq!(discovery, ["/api", "/apis"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_deploy_json_shows_a_realistic_object() {
    if !kubectl_available("kubectl_get_deploy_json_shows_a_realistic_object") {
        return;
    }
    let server = start(app_server()).await;
    let k = Kubectl::new(&server, None);
    let out = k.ok(&["get", "deploy", "app", "-o", "json"]).await;
    let obj: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(obj["apiVersion"], "apps/v1");
    assert_eq!(obj["kind"], "Deployment");
    assert_eq!(obj["metadata"]["generation"], 1);
    assert_eq!(obj["metadata"]["uid"].as_str().map(str::len), Some(36));
    assert!(obj["metadata"]["resourceVersion"].is_string());
    assert!(obj["metadata"]["creationTimestamp"].is_string());
    assert_eq!(obj["spec"]["replicas"], 1);
    assert_eq!(obj["spec"]["selector"]["matchLabels"]["app"], "app");
    assert_eq!(obj["status"]["readyReplicas"], 1);
    let missing = k.fails(&["get", "deploy", "nope"]).await;
    assert_contains(
        &missing,
        "Error from server (NotFound): deployments.apps \"nope\" not found",
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_patches_the_scale_subresource() {
    if !kubectl_available("kubectl_scale_patches_the_scale_subresource") {
        return;
    }
    let server = start(app_server()).await;
    let mut changes = server.subscribe();
    let k = Kubectl::new(&server, None);
    let before = server.workload(WorkloadKind::Deployment, "default", "app");
    let out = k.ok(&["scale", "deploy/app", "--replicas=3"]).await;
    assert_eq!(out.trim(), "deployment.apps/app scaled");
    let after = server.workload(WorkloadKind::Deployment, "default", "app");
    assert_eq!(
        after.as_ref().map(|w| (w.replicas, w.generation)),
        Some((3, 2))
    );
    assert_ne!(
        after.map(|w| w.resource_version),
        before.map(|w| w.resource_version)
    );
    let change = changes
        .try_recv()
        .unwrap_or_else(|e| panic!("no change event: {e}"));
    assert_eq!((change.previous, change.replicas), (Some(1), 3));
    let scale_patch = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap_or_else(|| panic!("no PATCH in {:?}", calls(&server)));
    assert_eq!(scale_patch.rbac_resource(), "deployments/scale");
    assert_eq!(scale_patch.content_type, "application/merge-patch+json");
    assert_eq!(scale_patch.info.api_group, "apps");
    assert_eq!(scale_patch.info.namespace, "default");
    assert_eq!(scale_patch.info.name, "app");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_with_a_wrong_current_replicas_fails_and_writes_nothing() {
    if !kubectl_available("kubectl_scale_with_a_wrong_current_replicas_fails_and_writes_nothing") {
        return;
    }
    let server = start(app_server()).await;
    let k = Kubectl::new(&server, None);
    let err = k
        .fails(&[
            "scale",
            "deploy/app",
            "--replicas=5",
            "--current-replicas=2",
        ])
        .await;
    assert_contains(&err, "Expected replicas to be 2, was 1");
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
    assert!(
        !calls(&server)
            .iter()
            .any(|(m, _, _)| m == "PUT" || m == "PATCH"),
        "{:?}",
        calls(&server)
    );
    // With the right precondition kubectl reads the scale and PUTs it with its resourceVersion.
    k.ok(&[
        "scale",
        "deploy/app",
        "--replicas=5",
        "--current-replicas=1",
    ])
    .await;
    assert_eq!(server.deployment_replicas("default", "app"), Some(5));
    let put = server.requests().into_iter().find(|r| r.method == "PUT");
    assert_eq!(
        put.map(|r| r.rbac_resource()),
        Some("deployments/scale".to_string())
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_retries_a_conflict_like_against_a_real_cluster() {
    if !kubectl_available("kubectl_scale_retries_a_conflict_like_against_a_real_cluster") {
        return;
    }
    let server = start(app_server()).await;
    server.inject(Fault::status(409).verb("patch").subresource("scale"));
    let k = Kubectl::new(&server, None);
    k.ok(&["scale", "deploy/app", "--replicas=2"]).await;
    assert_eq!(server.deployment_replicas("default", "app"), Some(2));
    let patches: Vec<u16> = calls(&server)
        .into_iter()
        .filter(|(m, _, _)| m == "PATCH")
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(patches, [409, 200]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_raw_scale_returns_an_autoscaling_v1_scale() {
    if !kubectl_available("kubectl_get_raw_scale_returns_an_autoscaling_v1_scale") {
        return;
    }
    let server = start(app_server()).await;
    let k = Kubectl::new(&server, None);
    let out = k
        .ok(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/app/scale",
        ])
        .await;
    let scale: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["metadata"]["name"], "app");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=app");
    let version = k.ok(&["version", "-o", "json"]).await;
    let version: Value =
        serde_json::from_str(&version).unwrap_or_else(|e| panic!("{e}: {version}"));
    assert_eq!(version["serverVersion"]["minor"], "32");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_of_the_scale_subresource_in_each_format() {
    if !kubectl_available("kubectl_patch_of_the_scale_subresource_in_each_format") {
        return;
    }
    let server = start(app_server()).await;
    let k = Kubectl::new(&server, None);
    let out = k
        .ok(&[
            "patch",
            "deploy",
            "app",
            "--subresource=scale",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":2}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "scale.autoscaling/app patched");
    assert_eq!(server.deployment_replicas("default", "app"), Some(2));
    k.ok(&[
        "patch",
        "deploy",
        "app",
        "--subresource=scale",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ])
    .await;
    assert_eq!(server.deployment_replicas("default", "app"), Some(4));
    k.ok(&[
        "patch",
        "deploy",
        "app",
        "--subresource=scale",
        "-p",
        r#"{"spec":{"replicas":6}}"#,
    ])
    .await;
    assert_eq!(server.deployment_replicas("default", "app"), Some(6));
    let types: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.content_type)
        .collect();
    assert_eq!(
        types,
        [
            "application/merge-patch+json",
            "application/json-patch+json",
            "application/strategic-merge-patch+json"
        ]
    );
    let invalid = k
        .fails(&[
            "patch",
            "deploy",
            "app",
            "--subresource=scale",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":-1}}"#,
        ])
        .await;
    assert_contains(
        &invalid,
        "The Scale \"app\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    );
    server.shutdown().await;
}

// kubectl (client-go's clientcmd) sends bearer tokens only over TLS (kubernetes/kubectl#744), so
// against the plain-http stand-in it is always anonymous: a server that requires a token answers
// it 401. Tokens are checked over https in `kubectl_over_tls_authenticates_bearer_tokens`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_without_a_token_is_unauthorized() {
    if !kubectl_available("kubectl_without_a_token_is_unauthorized") {
        return;
    }
    let server = start(app_server().with_token("s3cret", "alice")).await;
    let anonymous = Kubectl::new(&server, None);
    let err = anonymous.fails(&["get", "deploy"]).await;
    assert_contains(
        &err,
        "error: You must be logged in to the server (the server has asked for the client to provide credentials)",
    );
    let raw = anonymous
        .fails(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/app/scale",
        ])
        .await;
    assert_contains(&raw, "Unauthorized");
    assert!(server.requests().iter().all(|r| r.status == 401));
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_over_tls_authenticates_bearer_tokens() {
    if !kubectl_available("kubectl_over_tls_authenticates_bearer_tokens") {
        return;
    }
    let mut config = app_server().with_token("s3cret", "system:serviceaccount:default:processor");
    config.tls = true;
    let server = start(config).await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let dir = TempDir::new().unwrap_or_else(|e| panic!("{e}"));
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path
    };
    let good = Kubectl::with_kubeconfig(&write("good", server.kubeconfig(Some("s3cret"))));
    assert!(good.ok(&["get", "deploy", "app"]).await.contains("1/1"));
    good.ok(&["scale", "deploy/app", "--replicas=2"]).await;
    assert_eq!(server.deployment_replicas("default", "app"), Some(2));
    let users: BTreeSet<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.info.is_resource_request)
        .map(|r| r.user)
        .collect();
    assert_eq!(
        users,
        BTreeSet::from(["system:serviceaccount:default:processor".to_string()])
    );
    let wrong = Kubectl::with_kubeconfig(&write("wrong", server.kubeconfig(Some("guess"))));
    let err = wrong.fails(&["get", "deploy"]).await;
    assert_contains(&err, "You must be logged in to the server");
    // Without the generated CA kubectl refuses the server, as with a real cluster's own CA.
    let untrusting = Kubectl::new(&server, Some("s3cret"));
    let err = untrusting.fails(&["get", "deploy"]).await;
    assert_contains(&err, "certificate signed by unknown authority");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_is_forbidden_what_no_rule_allows() {
    if !kubectl_available("kubectl_is_forbidden_what_no_rule_allows") {
        return;
    }
    let server = start(app_server()).await;
    server.set_rules(Some(vec![Rule::allow(
        &["get", "list"],
        "apps",
        &["deployments", "deployments/scale"],
    )]));
    let k = Kubectl::new(&server, None);
    assert!(k.ok(&["get", "deploy", "app"]).await.contains("app"));
    let err = k.fails(&["scale", "deploy/app", "--replicas=3"]).await;
    assert_contains(
        &err,
        r#"Error from server (Forbidden): deployments.apps "app" is forbidden: User "admin" cannot patch resource "deployments/scale" in API group "apps" in the namespace "default""#,
    );
    let err = k.fails(&["get", "leases", "-A"]).await;
    assert_contains(
        &err,
        r#"leases.coordination.k8s.io is forbidden: User "admin" cannot list resource "leases" in API group "coordination.k8s.io" at the cluster scope"#,
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
    let used = server.permissions_used();
    assert!(
        used.contains(&("apps".into(), "deployments".into(), "get".into())),
        "{used:?}"
    );
    assert!(!used.iter().any(|(_, _, verb)| verb == "patch"), "{used:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_injected_server_errors() {
    if !kubectl_available("kubectl_shows_injected_server_errors") {
        return;
    }
    let server = start(app_server()).await;
    let k = Kubectl::new(&server, None);
    // Warm the discovery cache so the fault hits the object request.
    k.ok(&["get", "deploy"]).await;
    server.inject(Fault::status(500).verb("get").resource("deployments"));
    let err = k.fails(&["get", "deploy", "app"]).await;
    assert_contains(&err, "Error from server (InternalError)");
    server.inject(
        Fault::status(503)
            .verb("get")
            .resource("deployments")
            .always(),
    );
    let err = k.fails(&["get", "deploy", "app"]).await;
    assert_contains(&err, "Error from server (ServiceUnavailable)");
    server.clear_faults();
    assert!(k.ok(&["get", "deploy", "app"]).await.contains("app"));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.fault_injected && r.status == 503)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_and_create_set_up_state() {
    if !kubectl_available("kubectl_apply_and_create_set_up_state") {
        return;
    }
    let server = start(Config::default()).await;
    let k = Kubectl::new(&server, None);
    let manifest = k.home.path().join("web.yaml");
    let yaml = |replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n"
        )
    };
    std::fs::write(&manifest, yaml(2)).unwrap_or_else(|e| panic!("{e}"));
    let path = manifest.display().to_string();
    // kubectl reads /openapi/v3, sees server-side field validation and sends fieldValidation.
    let out = k.ok(&["apply", "-f", &path]).await;
    assert_eq!(out.trim(), "deployment.apps/web created");
    std::fs::write(&manifest, yaml(4)).unwrap_or_else(|e| panic!("{e}"));
    let out = k.ok(&["apply", "-f", &path]).await;
    assert_eq!(out.trim(), "deployment.apps/web configured");
    let view = server.workload(WorkloadKind::Deployment, "default", "web");
    assert_eq!(view.map(|w| (w.replicas, w.generation)), Some((4, 2)));
    let strategic = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .map(|r| r.content_type);
    assert_eq!(
        strategic.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    let query = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .map(|r| r.query);
    assert!(
        query
            .as_deref()
            .is_some_and(|q| q.contains("fieldValidation=Strict")),
        "{query:?}"
    );
    std::fs::write(&manifest, yaml(5)).unwrap_or_else(|e| panic!("{e}"));
    let out = k.ok(&["apply", "--server-side", "-f", &path]).await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    assert_eq!(server.deployment_replicas("default", "web"), Some(5));
    let last_patch = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .map(|r| r.content_type);
    assert_eq!(last_patch.as_deref(), Some("application/apply-patch+yaml"));
    let err = k.fails(&["create", "-f", &path]).await;
    assert_contains(&err, "deployments.apps \"web\" already exists");
    // Typed generators send protobuf, which the stand-in refuses with a 415 naming JSON.
    let err = k
        .fails(&["create", "deployment", "nginx", "--image=nginx"])
        .await;
    assert_contains(&err, "accepted media types include: application/json");
    let out = k.ok(&["delete", "deploy", "web"]).await;
    assert_eq!(out.trim(), "deployment.apps \"web\" deleted");
    assert!(k.ok(&["get", "deploy"]).await.is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_a_kubeconfig_kubectl_can_use() {
    if !kubectl_available("the_binary_writes_a_kubeconfig_kubectl_can_use") {
        return;
    }
    let dir = TempDir::new().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig: PathBuf = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_k8s-standin"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--deployment",
            "default/app=2",
            "--statefulset",
            "db=1",
        ])
        .args([
            "--replicaset",
            "rs1=1",
            "--replicationcontroller",
            "default/rc1=1",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start k8s-standin: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = lines
        .next_line()
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("k8s-standin printed no URL"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let k = Kubectl::with_kubeconfig(&kubeconfig);
    let out = k.ok(&["get", "deploy,sts"]).await;
    assert_contains(&out, "deployment.apps/app");
    assert_contains(&out, "2/2");
    assert_contains(&out, "statefulset.apps/db");
    k.ok(&["scale", "sts/db", "--replicas=3"]).await;
    let out = k
        .ok(&["get", "sts", "db", "-o", "jsonpath={.spec.replicas}"])
        .await;
    assert_eq!(out, "3");
    k.ok(&["scale", "rs/rs1", "rc/rc1", "--replicas=4"]).await;
    let out = k
        .ok(&[
            "get",
            "rs,rc",
            "-o",
            "jsonpath={range .items[*]}{.kind}={.spec.replicas} {end}",
        ])
        .await;
    assert_eq!(out.trim(), "ReplicaSet=4 ReplicationController=4");
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_each_change() {
    if !kubectl_available("kubectl_get_watch_prints_each_change") {
        return;
    }
    let server = start(app_server()).await;
    let k = Kubectl::new(&server, None);
    let mut child = tokio::process::Command::new(KUBECTL)
        .args(&k.args)
        .args(["get", "deploy", "--watch"])
        .env("HOME", k.home.path())
        .env("KUBECONFIG", k.home.path().join("no-kubeconfig"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut next_row = async || -> Vec<String> {
        // A hang guard, not a timing assertion: kubectl prints each row as the event arrives.
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .ok()
            .and_then(|l| l.ok().flatten())
            .unwrap_or_else(|| panic!("kubectl get --watch printed nothing"));
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(next_row().await.first().map(String::as_str), Some("NAME"));
    assert_eq!(
        next_row().await.get(..2),
        Some(&["app".to_string(), "1/1".to_string()][..])
    );
    // kubectl watches from its list's resourceVersion, so this change reaches it even if it
    // lands before the watch request: the stand-in replays it from its history.
    server
        .set_replicas(WorkloadKind::Deployment, "default", "app", 3)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        next_row().await.get(..2),
        Some(&["app".to_string(), "3/3".to_string()][..])
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_from_a_resource_version_and_ends_at_its_timeout() {
    if !kubectl_available("a_watch_resumes_from_a_resource_version_and_ends_at_its_timeout") {
        return;
    }
    let server = start(app_server().with_deployment("default", "web", 1)).await;
    let k = Kubectl::new(&server, None);
    let before = server
        .workload(WorkloadKind::Deployment, "default", "app")
        .map(|w| w.resource_version)
        .unwrap_or_default();
    k.ok(&["scale", "deploy/app", "--replicas=2"]).await;
    k.ok(&["scale", "deploy/web", "--replicas=2"]).await;
    k.ok(&["scale", "deploy/app", "--replicas=4"]).await;
    let path = format!(
        "/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion={before}&fieldSelector=metadata.name%3Dapp&timeoutSeconds=1"
    );
    let out = k.ok(&["get", "--raw", &path]).await;
    let events: Vec<(String, i64)> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .map(|e| {
            let kind = e["type"].as_str().unwrap_or("").to_string();
            (kind, e["object"]["spec"]["replicas"].as_i64().unwrap_or(-1))
        })
        .collect();
    assert_eq!(
        events,
        [("MODIFIED".to_string(), 2), ("MODIFIED".to_string(), 4)]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_and_get_events_show_events_on_the_target() {
    if !kubectl_available("kubectl_describe_and_get_events_show_events_on_the_target") {
        return;
    }
    let server = start(app_server()).await;
    let deployment = server
        .object(&k8s_standin::resources::DEPLOYMENTS, "default", "app")
        .unwrap_or_else(|| panic!("no deployment"));
    let event = serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "app.rescale1", "namespace": "default"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app",
            "namespace": "default", "uid": deployment["metadata"]["uid"]},
        "reason": "SuccessfulRescale", "message": "New size: 3; reason: rps above target",
        "type": "Normal", "source": {"component": "processor"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"
    });
    server.create(event).unwrap_or_else(|e| panic!("{e}"));
    let k = Kubectl::new(&server, None);
    let described = k.ok(&["describe", "deploy", "app"]).await;
    assert_contains(&described, "SuccessfulRescale");
    assert_contains(&described, "New size: 3");
    let events = k
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=app,type=Normal",
        ])
        .await;
    assert_contains(&events, "deployment/app");
    let none = k
        .ok(&["get", "events", "--field-selector", "type=Warning"])
        .await;
    assert!(!none.contains("SuccessfulRescale"), "{none}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_and_delete_an_hpa() {
    if !kubectl_available("kubectl_apply_get_and_delete_an_hpa") {
        return;
    }
    let server = start(app_server()).await;
    let k = Kubectl::new(&server, None);
    let manifest = k.home.path().join("hpa.yaml");
    let yaml = |max: u32| {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: keda-hpa-app\n  namespace: default\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: app\n  minReplicas: 1\n  maxReplicas: {max}\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 70\n"
        )
    };
    std::fs::write(&manifest, yaml(5)).unwrap_or_else(|e| panic!("{e}"));
    let path = manifest.display().to_string();
    let out = k.ok(&["apply", "-f", &path]).await;
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling/keda-hpa-app created"
    );
    std::fs::write(&manifest, yaml(8)).unwrap_or_else(|e| panic!("{e}"));
    let out = k.ok(&["apply", "-f", &path]).await;
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling/keda-hpa-app configured"
    );
    let stored = server
        .object(
            &k8s_standin::resources::HORIZONTALPODAUTOSCALERS,
            "default",
            "keda-hpa-app",
        )
        .unwrap_or_else(|| panic!("no hpa stored"));
    assert_eq!(stored["spec"]["maxReplicas"], 8);
    assert_eq!(stored["spec"]["scaleTargetRef"]["name"], "app");
    assert!(
        stored["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_some(),
        "{stored}"
    );

    let out = k.ok(&["get", "hpa"]).await;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(Vec::as_slice),
        Some(
            &[
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE"
            ][..]
        ),
        "{out}"
    );
    assert_eq!(
        rows.get(1).and_then(|r| r.get(..7)),
        Some(
            &[
                "keda-hpa-app",
                "Deployment/app",
                "cpu:",
                "<unknown>/70%",
                "1",
                "8",
                "0"
            ][..]
        ),
        "{out}"
    );
    let raw = k
        .ok(&[
            "get",
            "--raw",
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
        ])
        .await;
    let list: Value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
    assert_eq!(list["kind"], "HorizontalPodAutoscalerList");
    assert!(list["metadata"]["resourceVersion"].is_string(), "{list}");
    assert_eq!(list["items"][0]["metadata"]["name"], "keda-hpa-app");
    let json = k.ok(&["get", "hpa", "keda-hpa-app", "-o", "json"]).await;
    let obj: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(obj["apiVersion"], "autoscaling/v2");
    assert_eq!(obj["status"]["desiredReplicas"], 0);

    let out = k.ok(&["delete", "hpa", "keda-hpa-app"]).await;
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling \"keda-hpa-app\" deleted"
    );
    assert!(k.ok(&["get", "hpa"]).await.is_empty());
    let methods: Vec<String> = calls(&server)
        .into_iter()
        .filter(|(_, resource, _)| resource.starts_with("horizontalpodautoscalers"))
        .map(|(method, _, status)| format!("{method} {status}"))
        .collect();
    assert!(methods.contains(&"POST 201".to_string()), "{methods:?}");
    assert!(methods.contains(&"PATCH 200".to_string()), "{methods:?}");
    assert!(methods.contains(&"DELETE 200".to_string()), "{methods:?}");
    server.shutdown().await;
}
