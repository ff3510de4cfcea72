//! Refusing to fight (issue #16): the Kubernetes scaler against the API stand-in, with
//! HorizontalPodAutoscalers created as a user creates them (`kubectl apply -f`; without kubectl
//! installed, through the `kube` client instead, said on stderr, unless REQUIRE_KUBECTL=1). An
//! HPA on the target means no write and a `FailedRescale` Event naming it; the check is made
//! before the first write and then at most once a minute on the processor clock, and a check
//! that fails never stops scaling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_standin::{Config, Fault, Handle, RequestRecord, Server};
use kube::api::{Api, DeleteParams, PostParams};
use processor::scaler::cluster::{self, Kubernetes};
use processor::scaler::kubernetes::KubernetesScaler;
use processor::scaler::{Decision, Kind, ScaleError, ScaleIntent, ScaleOutcome, Scaler};

const KUBECTL: &str = "/usr/bin/kubectl";
const SECOND: i64 = 1_000_000_000;

/// Deployments `default/app` (1 replica) and `default/web` (2), and `shop/app` (1).
async fn standin() -> Handle {
    Server::start(
        Config::default()
            .with_deployment("default", "app", 1)
            .with_deployment("default", "web", 2)
            .with_deployment("shop", "app", 1),
    )
    .await
    .expect("stand-in starts")
}

/// The processor clock, moved by hand (ns since the epoch).
#[derive(Clone)]
struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    fn new() -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(processor::clock::wall_ns())))
    }

    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self, ns: i64) {
        self.0.store(ns, Ordering::SeqCst);
    }

    fn advance(&self, ns: i64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }

    fn clock(&self) -> processor::clock::Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || now.load(Ordering::SeqCst))
    }
}

async fn scaler_for(server: &Handle, dry_run: bool, clock: &ManualClock) -> KubernetesScaler {
    let settings = Kubernetes {
        enabled: true,
        api_servers: vec![server.url()],
        dry_run,
        ..Kubernetes::default()
    };
    let client = cluster::connect(&settings).await.expect("client");
    KubernetesScaler::with_clusters(HashMap::from([(String::new(), client)]), clock.clock())
}

/// An intent for Deployment `namespace/name`, from a point stamped at the clock's now.
async fn scale(
    scaler: &KubernetesScaler,
    clock: &ManualClock,
    namespace: &str,
    name: &str,
    desired: i64,
) -> Result<ScaleOutcome, ScaleError> {
    let mut intent: ScaleIntent =
        workspace_bins::scaling::intent(namespace, Kind::Deployments, name, desired);
    intent.point_time_ns = clock.now();
    scaler.scale(intent).await
}

/// An HPA (as KEDA makes them) in `namespace` on `kind` `target`.
fn hpa_yaml(namespace: &str, name: &str, kind: &str, target: &str) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: {kind}\n    name: {target}\n  minReplicas: 1\n  maxReplicas: 10\n  metrics:\n  - type: External\n    external:\n      metric:\n        name: s0-rabbitmq-queue\n      target:\n        type: AverageValue\n        averageValue: \"20\"\n"
    )
}

/// Whether the real kubectl is there; without it, the kube client stands in (said on stderr),
/// unless REQUIRE_KUBECTL=1 makes that a failure.
fn kubectl_installed() -> bool {
    if std::path::Path::new(KUBECTL).exists() {
        return true;
    }
    if std::env::var("REQUIRE_KUBECTL").is_ok_and(|v| v == "1") {
        panic!("{KUBECTL} is not installed; REQUIRE_KUBECTL=1 makes this a failure");
    }
    eprintln!("SKIPPED kubectl: HPAs go through the kube client instead");
    false
}

async fn kubectl(server: &Handle, args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(KUBECTL)
        .arg(format!("--server={}", server.url()))
        .arg(format!(
            "--cache-dir={}",
            home.path().join("cache").display()
        ))
        .args(args)
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("no-kubeconfig"))
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn hpa_api(server: &Handle, namespace: &str) -> Api<HorizontalPodAutoscaler> {
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_retry = false;
    Api::namespaced(kube::Client::try_from(config).unwrap(), namespace)
}

/// `kubectl apply -f` of an HPA manifest, as a user adds one.
async fn apply_hpa(server: &Handle, namespace: &str, name: &str, kind: &str, target: &str) {
    let yaml = hpa_yaml(namespace, name, kind, target);
    if kubectl_installed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hpa.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = kubectl(server, &["apply", "-f", &path.display().to_string()]).await;
        assert_eq!(
            out.trim(),
            format!("horizontalpodautoscaler.autoscaling/{name} created")
        );
        return;
    }
    let object: HorizontalPodAutoscaler =
        serde_json::from_value(hpa_json(namespace, name, kind, target)).unwrap();
    hpa_api(server, namespace)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

/// The manifest of [`hpa_yaml`] without its metrics, as JSON (for the kube client when kubectl
/// is missing).
fn hpa_json(namespace: &str, name: &str, kind: &str, target: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
            "minReplicas": 1, "maxReplicas": 10}
    })
}

/// `kubectl delete hpa`, as a user removes one.
async fn delete_hpa(server: &Handle, namespace: &str, name: &str) {
    if kubectl_installed() {
        let out = kubectl(server, &["delete", "hpa", name, "-n", namespace]).await;
        assert_eq!(
            out.trim(),
            format!("horizontalpodautoscaler.autoscaling \"{name}\" deleted")
        );
        return;
    }
    hpa_api(server, namespace)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

/// Requests from the processor (kubectl's own are not counted).
fn processor_requests(server: &Handle) -> Vec<RequestRecord> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.user_agent.starts_with("autoscaler-processor/"))
        .collect()
}

/// The processor's writes of a `/scale`.
fn scale_writes(server: &Handle) -> usize {
    processor_requests(server)
        .iter()
        .filter(|r| {
            r.info.subresource == "scale" && matches!(r.info.verb.as_str(), "update" | "patch")
        })
        .count()
}

/// The processor's lists of HPAs in `namespace`.
fn hpa_lists(server: &Handle, namespace: &str) -> usize {
    processor_requests(server)
        .iter()
        .filter(|r| {
            r.info.verb == "list"
                && r.info.api_group == "autoscaling"
                && r.info.resource == "horizontalpodautoscalers"
                && r.info.namespace == namespace
        })
        .count()
}

/// The `FailedRescale` Events' messages.
fn failed_rescales(server: &Handle) -> Vec<String> {
    server
        .events()
        .iter()
        .filter(|e| e["reason"] == "FailedRescale")
        .map(|e| {
            assert_eq!(e["type"], "Warning", "{e}");
            format!(
                "{}/{}: {}",
                e["involvedObject"]["kind"].as_str().unwrap_or(""),
                e["involvedObject"]["name"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

const REFUSED_APP: &str = "Deployment/app: not scaling: HorizontalPodAutoscaler \
    default/keda-hpa-app also targets deployments/app; remove it or this task";

#[tokio::test]
async fn an_hpa_on_the_same_target_means_no_write_and_an_event() {
    let server = standin().await;
    let clock = ManualClock::new();
    let scaler = scaler_for(&server, false, &clock).await;
    apply_hpa(&server, "default", "keda-hpa-app", "Deployment", "app").await;

    let error = scale(&scaler, &clock, "default", "app", 3)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ScaleError::Conflict {
            target: "default/deployments/app".to_owned(),
            hpa: "default/keda-hpa-app".to_owned(),
            current: 1,
            wanted: 3,
        }
    );
    assert_eq!(
        error.to_string(),
        "default/deployments/app is also scaled by HorizontalPodAutoscaler \
         default/keda-hpa-app; not scaling it"
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
    assert_eq!(scale_writes(&server), 0, "nothing written");
    assert_eq!(failed_rescales(&server), [REFUSED_APP]);
    let event = server
        .events()
        .into_iter()
        .find(|e| e["reason"] == "FailedRescale")
        .unwrap();
    let deployment = server
        .object(&k8s_standin::resources::DEPLOYMENTS, "default", "app")
        .unwrap();
    assert_eq!(
        event["involvedObject"]["uid"], deployment["metadata"]["uid"],
        "kubectl describe lists it"
    );
    assert_eq!(hpa_lists(&server, "default"), 1);
}

#[tokio::test]
async fn hpas_on_other_targets_do_not_block() {
    let server = standin().await;
    let clock = ManualClock::new();
    let scaler = scaler_for(&server, false, &clock).await;
    // Another Deployment of the namespace, a StatefulSet of the same name, and the same
    // Deployment name in another namespace.
    apply_hpa(&server, "default", "keda-hpa-web", "Deployment", "web").await;
    apply_hpa(&server, "default", "db", "StatefulSet", "app").await;
    apply_hpa(&server, "shop", "keda-hpa-app", "Deployment", "app").await;

    let outcome = scale(&scaler, &clock, "default", "app", 3).await.unwrap();
    assert_eq!(
        (outcome.decision, outcome.old, outcome.new),
        (Decision::Increased, 1, 3)
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
    assert_eq!(failed_rescales(&server), Vec::<String>::new());

    // The HPAs block their own targets.
    let web = scale(&scaler, &clock, "default", "web", 5)
        .await
        .unwrap_err();
    assert!(matches!(web, ScaleError::Conflict { ref hpa, .. } if hpa == "default/keda-hpa-web"));
    let shop = scale(&scaler, &clock, "shop", "app", 5).await.unwrap_err();
    assert!(matches!(shop, ScaleError::Conflict { ref hpa, .. } if hpa == "shop/keda-hpa-app"));
    assert_eq!(server.deployment_replicas("default", "web"), Some(2));
    assert_eq!(server.deployment_replicas("shop", "app"), Some(1));
}

#[tokio::test]
async fn a_deleted_hpa_frees_the_target_only_at_the_next_check() {
    let server = standin().await;
    let clock = ManualClock::new();
    let scaler = scaler_for(&server, false, &clock).await;
    apply_hpa(&server, "default", "keda-hpa-app", "Deployment", "app").await;
    let refused = scale(&scaler, &clock, "default", "app", 3).await;
    assert!(
        matches!(refused, Err(ScaleError::Conflict { .. })),
        "{refused:?}"
    );

    delete_hpa(&server, "default", "keda-hpa-app").await;
    // Within the minute the last check's answer holds: still refused, no new list, and no
    // second Event (one per check that finds it).
    clock.advance(59 * SECOND);
    let held = scale(&scaler, &clock, "default", "app", 3).await;
    assert!(matches!(held, Err(ScaleError::Conflict { .. })), "{held:?}");
    assert_eq!(hpa_lists(&server, "default"), 1);
    assert_eq!(failed_rescales(&server).len(), 1);
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));

    // A minute after the check, the next one finds no HPA and the write goes ahead.
    clock.advance(SECOND);
    let outcome = scale(&scaler, &clock, "default", "app", 3).await.unwrap();
    assert_eq!((outcome.decision, outcome.new), (Decision::Increased, 3));
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
    assert_eq!(hpa_lists(&server, "default"), 2);
    assert_eq!(scale_writes(&server), 1);
}

#[tokio::test]
async fn an_hpa_is_listed_before_the_first_write_then_at_most_once_a_minute_per_target() {
    let server = standin().await;
    let clock = ManualClock::new();
    let scaler = scaler_for(&server, false, &clock).await;
    // Nothing to write (app has 1 already): no check.
    let same = scale(&scaler, &clock, "default", "app", 1).await.unwrap();
    assert_eq!(same.decision, Decision::Unchanged);
    assert_eq!(hpa_lists(&server, "default"), 0);

    let start = clock.now();
    for (at, desired) in [(0, 2), (10, 3), (30, 4), (59, 5)] {
        clock.set(start + at * SECOND);
        let outcome = scale(&scaler, &clock, "default", "app", desired)
            .await
            .unwrap();
        assert_eq!(outcome.new, desired, "at {at}s");
    }
    assert_eq!(
        hpa_lists(&server, "default"),
        1,
        "one list in the first minute"
    );
    assert_eq!(scale_writes(&server), 4);

    // An HPA added now is not seen until the minute is up: the write goes ahead.
    apply_hpa(&server, "default", "keda-hpa-app", "Deployment", "app").await;
    let before_the_minute = scale(&scaler, &clock, "default", "app", 6).await.unwrap();
    assert_eq!(before_the_minute.new, 6);
    clock.advance(SECOND);
    let refused = scale(&scaler, &clock, "default", "app", 7).await;
    assert!(
        matches!(refused, Err(ScaleError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(hpa_lists(&server, "default"), 2);
    assert_eq!(server.deployment_replicas("default", "app"), Some(6));

    // Each target has its own check.
    let web = scale(&scaler, &clock, "default", "web", 4).await.unwrap();
    assert_eq!(web.new, 4);
    assert_eq!(hpa_lists(&server, "default"), 3);
}

/// A `tracing` subscriber for this thread that keeps what is logged.
fn capture_logs() -> (tracing::subscriber::DefaultGuard, Arc<Mutex<Vec<u8>>>) {
    #[derive(Clone)]
    struct Writer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Writer(Arc::clone(&buffer));
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), buffer)
}

#[tokio::test]
async fn a_check_that_fails_warns_naming_the_permission_and_scaling_goes_on() {
    let (_guard, logs) = capture_logs();
    let server = standin().await;
    let clock = ManualClock::new();
    let scaler = scaler_for(&server, false, &clock).await;
    // The Role lacks `list` on horizontalpodautoscalers.
    server.inject(
        Fault::status(403)
            .always()
            .verb("list")
            .resource("horizontalpodautoscalers"),
    );
    apply_hpa(&server, "default", "keda-hpa-app", "Deployment", "app").await;
    let outcome = scale(&scaler, &clock, "default", "app", 3).await.unwrap();
    assert_eq!((outcome.decision, outcome.new), (Decision::Increased, 3));
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
    let refused: Vec<u16> = processor_requests(&server)
        .iter()
        .filter(|r| r.info.resource == "horizontalpodautoscalers")
        .map(|r| r.status)
        .collect();
    assert_eq!(refused, [403]);
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logged.contains("WARN")
            && logged
                .contains("needs `list` on `horizontalpodautoscalers` in apiGroup `autoscaling`")
            && logged.contains("scaling without the check"),
        "{logged}"
    );

    // Not retried before the minute is up.
    clock.advance(30 * SECOND);
    scale(&scaler, &clock, "default", "app", 4).await.unwrap();
    assert_eq!(hpa_lists(&server, "default"), 1);

    // A server error is no refusal either.
    server.clear_faults();
    server.inject(
        Fault::status(500)
            .verb("list")
            .resource("horizontalpodautoscalers"),
    );
    clock.advance(30 * SECOND);
    let outcome = scale(&scaler, &clock, "default", "app", 5).await.unwrap();
    assert_eq!(outcome.new, 5);
    assert_eq!(hpa_lists(&server, "default"), 2);

    // The next check that succeeds finds the HPA.
    clock.advance(60 * SECOND);
    let refused = scale(&scaler, &clock, "default", "app", 6).await;
    assert!(
        matches!(refused, Err(ScaleError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(5));
    assert_eq!(hpa_lists(&server, "default"), 3);
}

#[tokio::test]
async fn dry_run_checks_and_reports_the_conflict_and_posts_nothing() {
    let server = standin().await;
    let clock = ManualClock::new();
    let scaler = scaler_for(&server, true, &clock).await;
    apply_hpa(&server, "default", "keda-hpa-app", "Deployment", "app").await;
    let error = scale(&scaler, &clock, "default", "app", 3)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ScaleError::Conflict { ref hpa, .. } if hpa == "default/keda-hpa-app"),
        "{error}"
    );
    assert_eq!(server.events(), Vec::<serde_json::Value>::new());
    assert_eq!(scale_writes(&server), 0);
    // Without the HPA, dry run reports what it would do.
    let outcome = scale(&scaler, &clock, "shop", "app", 3).await.unwrap();
    assert_eq!(
        (outcome.decision, outcome.dry_run),
        (Decision::Increased, true)
    );
}
