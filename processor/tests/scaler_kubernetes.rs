//! The Kubernetes scaler against the API stand-in, through the real `kube` client: the
//! `/scale` calls, external changes, retries that never double-step, refusals, dry run, stale
//! points and Events.

use std::collections::HashMap;
use std::time::Duration;

use k8s_standin::{Config, Fault, Handle, Server, WorkloadKind};
use processor::scaler::cluster::{self, Kubernetes};
use processor::scaler::kubernetes::KubernetesScaler;
use processor::scaler::{Decision, Desired, Kind, ScaleError, ScaleIntent, ScaleOutcome, Scaler};

async fn standin() -> Handle {
    Server::start(
        Config::default()
            .with_deployment("default", "app", 1)
            .with_deployment("shop", "web", 2),
    )
    .await
    .expect("stand-in starts")
}

async fn scaler_for(server: &Handle, dry_run: bool) -> KubernetesScaler {
    let settings = Kubernetes {
        enabled: true,
        api_servers: vec![server.url()],
        dry_run,
        ..Kubernetes::default()
    };
    let client = cluster::connect(&settings).await.expect("client");
    KubernetesScaler::with_clusters(
        HashMap::from([(String::new(), client)]),
        processor::clock::system(),
    )
}

fn intent(namespace: &str, name: &str, desired: i64) -> ScaleIntent {
    workspace_bins::scaling::intent(namespace, Kind::Deployments, name, desired)
}

async fn scale(scaler: &KubernetesScaler, intent: ScaleIntent) -> Result<ScaleOutcome, ScaleError> {
    scaler.scale(intent).await
}

fn writes(server: &Handle) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| {
            r.info.subresource == "scale" && matches!(r.info.verb.as_str(), "update" | "patch")
        })
        .count()
}

#[tokio::test]
async fn a_current_field_lambda_sees_the_replicas_read_from_the_api() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    scale(&scaler, intent("default", "app", 3)).await.unwrap();
    // Someone else scales to 4; a lambda of the current count (current + 2) must start from 4,
    // not from the 3 this scaler last set, nor from 0.
    server
        .set_replicas(WorkloadKind::Deployment, "default", "app", 4)
        .unwrap();
    let mut plus_two = intent("default", "app", 0);
    plus_two.desired =
        Desired::FromCurrent(std::sync::Arc::new(|current| Ok((current + 2) as f64)));
    let outcome = scale(&scaler, plus_two).await.unwrap();
    assert_eq!((outcome.old, outcome.new), (4, 6));
    assert_eq!(server.deployment_replicas("default", "app"), Some(6));
    let mut failing = intent("default", "app", 0);
    failing.desired = Desired::FromCurrent(std::sync::Arc::new(|_| Err("boom".to_owned())));
    let error = scale(&scaler, failing).await.unwrap_err();
    assert!(error.to_string().contains("boom"), "{error}");
    assert_eq!(server.deployment_replicas("default", "app"), Some(6));
}

#[tokio::test]
async fn scales_up_and_down_through_the_apps_v1_scale_subresource() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    let up = scale(&scaler, intent("default", "app", 3)).await.unwrap();
    assert_eq!(
        (up.decision, up.old, up.new, up.dry_run, up.raw),
        (Decision::Increased, 1, 3, false, Some(3.0))
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
    let down = scale(&scaler, intent("default", "app", 2)).await.unwrap();
    assert_eq!(
        (down.decision, down.old, down.new),
        (Decision::Decreased, 3, 2)
    );
    let same = scale(&scaler, intent("default", "app", 2)).await.unwrap();
    assert_eq!(same.decision, Decision::Unchanged);
    let paths: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.info.subresource == "scale")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths[..2],
        [
            "GET /apis/apps/v1/namespaces/default/deployments/app/scale",
            "PUT /apis/apps/v1/namespaces/default/deployments/app/scale",
        ]
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.user_agent.starts_with("autoscaler-processor/")),
        "requests identify the processor"
    );
    let reasons: Vec<String> = server
        .events()
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasons, ["SuccessfulRescale", "SuccessfulRescale"]);
    let messages: Vec<String> = server
        .events()
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("New size: 3; reason: task autoscale node k8s_autoscale6")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn an_empty_namespace_is_the_clusters_own_and_the_max_clamps() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    let outcome = scale(&scaler, intent("", "app", 40)).await.unwrap();
    assert_eq!((outcome.old, outcome.new), (1, 10), "clamped to max 10");
    assert_eq!(server.deployment_replicas("default", "app"), Some(10));
}

/// `kubectl scale` as an operator runs it (the real /usr/bin/kubectl when installed; otherwise
/// the same change made through the stand-in's handle, said on stderr).
async fn external_scale(server: &Handle, replicas: i64) {
    const KUBECTL: &str = "/usr/bin/kubectl";
    if !std::path::Path::new(KUBECTL).exists() {
        if std::env::var("REQUIRE_KUBECTL").is_ok_and(|v| v == "1") {
            panic!("{KUBECTL} is not installed; REQUIRE_KUBECTL=1 makes this a failure");
        }
        eprintln!("SKIPPED kubectl: scaling through the stand-in's handle instead");
        server
            .set_replicas(WorkloadKind::Deployment, "default", "app", replicas)
            .unwrap();
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(KUBECTL)
        .arg(format!("--server={}", server.url()))
        .arg(format!(
            "--cache-dir={}",
            home.path().join("cache").display()
        ))
        .args([
            "scale",
            "deployment/app",
            &format!("--replicas={replicas}"),
            "-n",
            "default",
        ])
        .env("HOME", home.path())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl scale: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn an_external_kubectl_scale_is_read_before_the_next_decision() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    scale(&scaler, intent("default", "app", 3)).await.unwrap();
    external_scale(&server, 6).await;
    assert_eq!(server.deployment_replicas("default", "app"), Some(6));
    let outcome = scale(&scaler, intent("default", "app", 4)).await.unwrap();
    assert_eq!(
        (outcome.decision, outcome.old, outcome.new),
        (Decision::Decreased, 6, 4),
        "the decision starts from what the cluster has, not what we set last"
    );
}

#[tokio::test]
async fn cooldowns_hold_on_the_processor_clock() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    let mut first = intent("default", "app", 3);
    first.policy.increase_cooldown = Duration::from_secs(600);
    scale(&scaler, first.clone()).await.unwrap();
    let mut again = first.clone();
    again.desired = Desired::Raw(5.0);
    // A point stamped far in the future cannot bypass the cooldown (Kapacitor compared point
    // times): the processor's clock decides.
    again.point_time_ns = processor::clock::wall_ns() + 3_600_000_000_000;
    let dropped = scale(&scaler, again).await.unwrap();
    assert_eq!((dropped.decision, dropped.new), (Decision::CooldownDrop, 3));
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_and_conflicts_never_double_step() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    server.inject(
        Fault::status(500)
            .times(2)
            .verb("update")
            .subresource("scale"),
    );
    let outcome = scale(&scaler, intent("default", "app", 4)).await.unwrap();
    assert_eq!((outcome.decision, outcome.new), (Decision::Increased, 4));
    assert_eq!(server.deployment_replicas("default", "app"), Some(4));

    // Someone else scales between our read and our write, three times: each 409 makes us read
    // and decide again, and the result is the absolute count asked for, not one step per try.
    server.inject(
        Fault::status(409)
            .times(3)
            .verb("update")
            .subresource("scale"),
    );
    let outcome = scale(&scaler, intent("default", "app", 6)).await.unwrap();
    assert_eq!((outcome.old, outcome.new), (4, 6));
    assert_eq!(server.deployment_replicas("default", "app"), Some(6));

    // A slow answer is waited for.
    server.inject(
        Fault::delay(Duration::from_millis(800))
            .verb("get")
            .subresource("scale"),
    );
    let outcome = scale(&scaler, intent("default", "app", 5)).await.unwrap();
    assert_eq!(outcome.new, 5);
}

#[tokio::test]
async fn a_retry_after_header_on_a_503_is_honoured_before_the_next_attempt() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    // The API server asks for 2 s with a header only (its body says nothing of it); the
    // backoff alone would retry after 100 to 200 ms.
    server.inject(
        Fault::status(503)
            .retry_after(2)
            .verb("get")
            .subresource("scale"),
    );
    let started = std::time::Instant::now();
    let outcome = scale(&scaler, intent("default", "app", 3)).await.unwrap();
    let took = started.elapsed();
    assert_eq!((outcome.decision, outcome.new), (Decision::Increased, 3));
    assert!(took >= Duration::from_secs(2), "retried after {took:?}");
    let reads = server
        .requests()
        .iter()
        .filter(|r| r.info.subresource == "scale" && r.info.verb == "get")
        .count();
    assert_eq!(reads, 2, "one refused read, one after the pause");

    // A 429 carries the pause in its Status too (`details.retryAfterSeconds`, 1 s).
    server.inject(Fault::status(429).verb("update").subresource("scale"));
    let started = std::time::Instant::now();
    let outcome = scale(&scaler, intent("default", "app", 4)).await.unwrap();
    assert_eq!(outcome.new, 4);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_write_applied_then_answered_500_is_our_own_success_and_starts_its_cooldown() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    // A proxy times out after the API server applied the PUT.
    server.inject(
        Fault::status(500)
            .after_applying()
            .verb("update")
            .subresource("scale"),
    );
    let mut up = intent("default", "app", 3);
    up.policy.increase_cooldown = Duration::from_secs(60);
    let outcome = scale(&scaler, up.clone()).await.unwrap();
    assert_eq!(
        (outcome.decision, outcome.old, outcome.new),
        (Decision::Increased, 1, 3)
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
    assert_eq!(writes(&server), 1, "the applied write is not sent again");
    let events = server.events();
    assert!(
        events.iter().any(|e| e["reason"] == "SuccessfulRescale"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("New size: 3"))),
        "{events:?}"
    );
    // Its cooldown started: the next increase waits.
    let mut again = up;
    again.desired = Desired::Raw(4.0);
    let held = scale(&scaler, again).await.unwrap();
    assert_eq!((held.decision, held.new), (Decision::CooldownDrop, 3));
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
}

#[tokio::test]
async fn persistent_failures_give_up_and_leave_the_target_alone() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    server.inject(Fault::status(503).always().subresource("scale"));
    let error = scale(&scaler, intent("default", "app", 4))
        .await
        .unwrap_err();
    assert!(matches!(error, ScaleError::Api(_)), "{error}");
    let attempts = server
        .requests()
        .iter()
        .filter(|r| r.info.subresource == "scale")
        .count();
    assert_eq!(attempts, 4, "bounded attempts");
    server.clear_faults();
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
    let failed: Vec<_> = server
        .events()
        .into_iter()
        .filter(|e| e["reason"] == "FailedRescale")
        .collect();
    assert_eq!(failed.len(), 1);
    let message = failed[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("giving up after 4 attempts: "),
        "no decision was made (every read failed): {message}"
    );
}

#[tokio::test]
async fn after_an_intent_gives_up_the_next_one_waits_before_calling_the_api_again() {
    use processor::scaler::kubernetes::{FIRST_PAUSE_AFTER_GIVING_UP, pause_after};
    assert_eq!(pause_after(0), Duration::ZERO);
    assert_eq!(pause_after(1), FIRST_PAUSE_AFTER_GIVING_UP);
    assert_eq!(pause_after(2), FIRST_PAUSE_AFTER_GIVING_UP * 2);
    assert_eq!(
        pause_after(40),
        processor::scaler::kubernetes::MAX_PAUSE_AFTER_GIVING_UP
    );
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    server.inject(Fault::status(503).always().subresource("scale"));
    assert!(scale(&scaler, intent("default", "app", 4)).await.is_err());
    server.clear_faults();
    let calls = server.requests().len();
    let started = std::time::Instant::now();
    let outcome = scale(&scaler, intent("default", "app", 4)).await.unwrap();
    assert_eq!(outcome.new, 4);
    assert!(
        started.elapsed() >= FIRST_PAUSE_AFTER_GIVING_UP,
        "the next intent waited: {:?}",
        started.elapsed()
    );
    assert!(server.requests().len() > calls);
}

fn failed_rescale_messages(server: &Handle) -> Vec<String> {
    server
        .events()
        .iter()
        .filter(|e| e["reason"] == "FailedRescale")
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_failed_rescale_event_carries_the_decision_and_its_rules_as_hpas_do() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    server.inject(Fault::status(403).verb("update").subresource("scale"));
    scale(&scaler, intent("default", "app", 40))
        .await
        .unwrap_err();
    let messages = failed_rescale_messages(&server);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with(
            "New size: 10; reason: task autoscale node k8s_autoscale6 asked for 40 replicas, current 1, new 10; rules: max 40→10; error: "
        ),
        "{messages:?}"
    );
    // Writes that keep failing: the Event after the last attempt names the decision too.
    server.inject(
        Fault::status(503)
            .always()
            .verb("update")
            .subresource("scale"),
    );
    scale(&scaler, intent("default", "app", 3))
        .await
        .unwrap_err();
    let messages = failed_rescale_messages(&server);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with("New size: 3; reason: task autoscale node k8s_autoscale6 asked for 3 replicas, current 1, new 3; rules: none; error: giving up after 4 attempts: ")),
        "{messages:?}"
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
}

#[tokio::test]
async fn forbidden_and_missing_targets_fail_at_once() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    server.inject(Fault::status(403).verb("update").subresource("scale"));
    let error = scale(&scaler, intent("default", "app", 4))
        .await
        .unwrap_err();
    assert!(matches!(error, ScaleError::Forbidden(_)), "{error}");
    assert_eq!(writes(&server), 1, "a 403 is not retried");
    let error = scale(&scaler, intent("default", "nope", 4))
        .await
        .unwrap_err();
    assert!(matches!(error, ScaleError::NotFound { .. }), "{error}");
    let mut elsewhere = intent("default", "app", 4);
    elsewhere.target.cluster = "other".to_owned();
    assert_eq!(
        scale(&scaler, elsewhere).await.unwrap_err(),
        ScaleError::UnknownCluster("other".to_owned())
    );
}

#[tokio::test]
async fn dry_run_decides_and_never_writes() {
    let server = standin().await;
    let scaler = scaler_for(&server, true).await;
    let outcome = scale(&scaler, intent("shop", "web", 5)).await.unwrap();
    assert_eq!(
        (outcome.decision, outcome.old, outcome.new, outcome.dry_run),
        (Decision::Increased, 2, 5, true)
    );
    assert_eq!(server.deployment_replicas("shop", "web"), Some(2));
    assert_eq!(writes(&server), 0);
}

#[tokio::test]
async fn stale_points_make_no_api_call() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    let mut old = intent("default", "app", 5);
    old.point_time_ns = processor::clock::wall_ns() - 120_000_000_000;
    let outcome = scale(&scaler, old).await.unwrap();
    assert_eq!(outcome.decision, Decision::Stale);
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.info.subresource != "scale")
    );
}

#[tokio::test]
async fn nothing_is_scaled_while_shutting_down() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    scaler.shut_down();
    assert_eq!(
        scale(&scaler, intent("default", "app", 5))
            .await
            .unwrap_err(),
        ScaleError::ShuttingDown
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
}

#[tokio::test]
async fn enabling_a_task_whose_cluster_resolves_to_nothing_fails_naming_it() {
    let server = standin().await;
    let scaler = scaler_for(&server, false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = processor::config::Config::parse(&format!(
        "data_dir = {:?}\n[http]\nbind-address = \"127.0.0.1:0\"\n",
        dir.path().display().to_string()
    ))
    .unwrap()
    .config;
    let options = processor::Options {
        scaler: Some(std::sync::Arc::new(scaler)),
        metrics: false,
        ..processor::Options::default()
    };
    let processor = processor::Processor::bind(config, options).await.unwrap();
    let addr = processor.local_addr().unwrap();
    tokio::spawn(processor.serve(std::future::pending()));
    let script = include_str!("fixtures/tick/autoscale.tick").replace(
        ".kind('deployments')",
        ".kind('deployments')\n        .cluster('elsewhere')",
    );
    let task = serde_json::json!({
        "id": "autoscale",
        "type": "stream",
        "dbrps": [{"db": "autoscale", "rp": "autogen"}],
        "script": script,
        "status": "enabled",
    });
    let (status, body) = tokio::task::spawn_blocking(move || {
        workspace_bins::peers::http(addr, "POST", "/kapacitor/v1/tasks", &task.to_string())
    })
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("k8s_autoscale6") && body.contains("elsewhere"),
        "{body}"
    );
}
