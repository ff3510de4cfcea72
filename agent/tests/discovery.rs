//! Pod discovery against the Kubernetes API stand-in, through the real kube client and watcher:
//! the scrape set follows pods appearing, getting an IP, turning Ready, changing IP and being
//! deleted; a watch dropped mid-stream; 410 Gone on resume; node scope; the workload tag with
//! one ReplicaSet GET; and bad input (an annotation that makes no URL, a selector the API server
//! refuses) warned about by name while the other pods are still scraped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::config::{Config, PodDiscovery};
use agent::discovery::TargetSet;
use agent::discovery::targets::PodTarget;
use agent::discovery::watch;
use k8s_standin::{Config as StandinConfig, Fault, Handle, PodSeed, Server};
use serde_json::json;

async fn standin() -> Handle {
    Server::start(StandinConfig::default())
        .await
        .unwrap_or_else(|e| panic!("stand-in: {e}"))
}

fn settings(keys: &str) -> PodDiscovery {
    let text = format!(
        "[[inputs.prometheus]]\nmonitor_kubernetes_pods = true\n{keys}\n[[outputs.file]]\n"
    );
    let config = Config::parse(&text, |_| None).unwrap_or_else(|e| panic!("{e}"));
    config.inputs[0]
        .pod_discovery
        .clone()
        .expect("discovery on")
}

fn client(server: &Handle) -> kube::Client {
    let url = server.url().parse().unwrap_or_else(|e| panic!("url: {e}"));
    kube::Client::try_from(kube::Config::new(url)).unwrap_or_else(|e| panic!("client: {e}"))
}

/// A running watcher and the set it keeps.
struct Discovery {
    set: Arc<TargetSet<PodTarget>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn discover(server: &Handle, keys: &str) -> Discovery {
    let set = Arc::new(TargetSet::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(watch::run(
        "prometheus[0]".to_owned(),
        settings(keys),
        client(server),
        Arc::clone(&set),
        |t: &PodTarget| Ok(t.clone()),
        stopped,
    ));
    Discovery { set, stop, task }
}

impl Discovery {
    /// Waits (up to 20 s) until the set holds exactly `pods` with these URLs.
    async fn expect(&self, pods: &[(&str, &str)]) {
        let want: BTreeMap<String, String> = pods
            .iter()
            .map(|(p, u)| (p.to_string(), u.to_string()))
            .collect();
        let mut have = BTreeMap::new();
        for _ in 0..400 {
            have = self.urls();
            if have == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("scrape set {have:?}, expected {want:?}");
    }

    fn urls(&self) -> BTreeMap<String, String> {
        self.set
            .pods()
            .into_iter()
            .zip(self.set.snapshot())
            .map(|(pod, t)| (pod, t.url.clone()))
            .collect()
    }

    fn tags(&self, pod: &str) -> BTreeMap<String, String> {
        let index = self.set.pods().iter().position(|p| p == pod);
        let target = index.map(|i| self.set.snapshot()[i].clone());
        target
            .map(|t| t.tags.iter().cloned().collect())
            .unwrap_or_default()
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn scraped(name: &str, port: u16) -> PodSeed {
    PodSeed::new("default", name)
        .annotation("prometheus.io/scrape", "true")
        .annotation("prometheus.io/port", &port.to_string())
}

fn apply(server: &Handle, pod: &PodSeed) {
    server
        .apply_pod(pod)
        .unwrap_or_else(|e| panic!("apply {}: {e}", pod.name));
}

/// What `tracing` writes on this thread while the guard lives.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut logs) = self.0.lock() {
                logs.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&logs);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || Captured(Arc::clone(&sink)))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

fn text(logs: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&logs.lock().map(|l| l.clone()).unwrap_or_default()).into_owned()
}

#[tokio::test]
async fn the_scrape_set_follows_pods_getting_an_ip_turning_ready_changing_ip_and_being_deleted() {
    let server = standin().await;
    apply(&server, &scraped("a", 8000).running("10.0.0.1", true));
    apply(&server, &scraped("b", 8001));
    apply(
        &server,
        &PodSeed::new("default", "unannotated").running("10.0.0.9", true),
    );
    let d = discover(&server, "");
    d.expect(&[("default/a", "http://10.0.0.1:8000/metrics")])
        .await;

    apply(&server, &scraped("b", 8001).running("10.0.0.2", false));
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.expect(&[("default/a", "http://10.0.0.1:8000/metrics")])
        .await;
    apply(&server, &scraped("b", 8001).running("10.0.0.2", true));
    d.expect(&[
        ("default/a", "http://10.0.0.1:8000/metrics"),
        ("default/b", "http://10.0.0.2:8001/metrics"),
    ])
    .await;

    apply(&server, &scraped("a", 8000).running("10.0.0.3", true));
    d.expect(&[
        ("default/a", "http://10.0.0.3:8000/metrics"),
        ("default/b", "http://10.0.0.2:8001/metrics"),
    ])
    .await;
    apply(&server, &scraped("b", 8001).running("10.0.0.2", false));
    d.expect(&[("default/a", "http://10.0.0.3:8000/metrics")])
        .await;
    server
        .delete_pod("default", "a")
        .unwrap_or_else(|e| panic!("{e}"));
    d.expect(&[]).await;
    d.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_watch_dropped_mid_stream_resumes_and_a_410_on_resume_relists() {
    let server = standin().await;
    apply(&server, &scraped("a", 8000).running("10.0.0.1", true));
    let d = discover(&server, "");
    d.expect(&[("default/a", "http://10.0.0.1:8000/metrics")])
        .await;

    server.drop_watches();
    apply(&server, &scraped("b", 8001).running("10.0.0.2", true));
    d.expect(&[
        ("default/a", "http://10.0.0.1:8000/metrics"),
        ("default/b", "http://10.0.0.2:8001/metrics"),
    ])
    .await;

    // Broken again, and while it cannot be re-established, a pod is deleted, another created,
    // and the history compacted: the resume gets 410 Gone, the relist must drop `a`.
    server.inject(Fault::status(503).always().verb("watch"));
    server.drop_watches();
    server
        .delete_pod("default", "a")
        .unwrap_or_else(|e| panic!("{e}"));
    apply(&server, &scraped("c", 8002).running("10.0.0.3", true));
    server.compact_history();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.clear_faults();
    d.expect(&[
        ("default/b", "http://10.0.0.2:8001/metrics"),
        ("default/c", "http://10.0.0.3:8002/metrics"),
    ])
    .await;
    assert!(
        server
            .requests()
            .iter()
            .filter(|r| r.info.resource == "pods" && r.info.verb == "list")
            .count()
            >= 2,
        "the 410 made the watcher list again"
    );
    d.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn node_scope_scrapes_only_the_nodes_pods_and_asks_the_api_server_for_them() {
    let server = standin().await;
    apply(&server, &scraped("here", 8000).running("10.0.0.1", true));
    apply(
        &server,
        &scraped("there", 8001)
            .node("node-2")
            .running("10.0.0.2", true),
    );
    let d = discover(
        &server,
        "pod_scrape_scope = \"node\"\nnode_name = \"node-1\"",
    );
    d.expect(&[("default/here", "http://10.0.0.1:8000/metrics")])
        .await;
    apply(
        &server,
        &scraped("later", 8002)
            .node("node-2")
            .running("10.0.0.3", true),
    );
    apply(
        &server,
        &scraped("also-here", 8003).running("10.0.0.4", true),
    );
    d.expect(&[
        ("default/also-here", "http://10.0.0.4:8003/metrics"),
        ("default/here", "http://10.0.0.1:8000/metrics"),
    ])
    .await;
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.info.resource == "pods")
            .all(|r| r.query.contains("fieldSelector=spec.nodeName%3Dnode-1")),
        "every pod request is limited to the node"
    );
    d.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_deployment_tag_comes_from_the_replicaset_with_one_get_per_replicaset() {
    let server = standin().await;
    server
        .create(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "app-5d9", "namespace": "default",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "app",
                    "uid": "d1", "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}},
                "template": {"metadata": {"labels": {"app": "app"}},
                    "spec": {"containers": [{"name": "app", "image": "app"}]}}},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
    for (i, name) in ["app-5d9-x", "app-5d9-y"].into_iter().enumerate() {
        let port = 8000 + i as u16;
        apply(
            &server,
            &scraped(name, port)
                .label("app", "app")
                .owned_by("ReplicaSet", "app-5d9", "r1")
                .running("10.0.0.1", true),
        );
    }
    apply(
        &server,
        &scraped("db-0", 9000)
            .owned_by("StatefulSet", "db", "s1")
            .running("10.0.0.2", true),
    );
    let d = discover(
        &server,
        "pod_workload_tags = { deployment = \"deployment\", statefulset = \"statefulset\" }",
    );
    d.expect(&[
        ("default/app-5d9-x", "http://10.0.0.1:8000/metrics"),
        ("default/app-5d9-y", "http://10.0.0.1:8001/metrics"),
        ("default/db-0", "http://10.0.0.2:9000/metrics"),
    ])
    .await;
    let tags = d.tags("default/app-5d9-x");
    assert_eq!(tags.get("deployment").map(String::as_str), Some("app"));
    assert_eq!(tags.get("pod_name").map(String::as_str), Some("app-5d9-x"));
    assert_eq!(tags.get("namespace").map(String::as_str), Some("default"));
    assert_eq!(tags.get("app").map(String::as_str), Some("app"));
    assert_eq!(
        d.tags("default/db-0")
            .get("statefulset")
            .map(String::as_str),
        Some("db")
    );
    // More pod events of the same ReplicaSet: still the one GET.
    apply(
        &server,
        &scraped("app-5d9-x", 8000)
            .label("app", "app")
            .owned_by("ReplicaSet", "app-5d9", "r1")
            .running("10.0.0.5", true),
    );
    d.expect(&[
        ("default/app-5d9-x", "http://10.0.0.5:8000/metrics"),
        ("default/app-5d9-y", "http://10.0.0.1:8001/metrics"),
        ("default/db-0", "http://10.0.0.2:9000/metrics"),
    ])
    .await;
    let gets = server
        .requests()
        .iter()
        .filter(|r| r.info.resource == "replicasets")
        .map(|r| r.info.verb.clone())
        .collect::<Vec<_>>();
    assert_eq!(gets, ["get"]);
    d.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_annotations_are_warned_about_by_pod_and_the_other_pods_are_still_scraped() {
    let (logs, _guard) = capture_logs();
    let server = standin().await;
    apply(&server, &scraped("good", 8000).running("10.0.0.1", true));
    apply(
        &server,
        &PodSeed::new("default", "bad-port")
            .annotation("prometheus.io/scrape", "true")
            .annotation("prometheus.io/port", "metrics")
            .running("10.0.0.2", true),
    );
    apply(
        &server,
        &scraped("bad-scheme", 8000)
            .annotation("prometheus.io/scheme", "ftp")
            .running("10.0.0.3", true),
    );
    apply(&server, &scraped("no-ip", 8000));
    let d = discover(&server, "");
    d.expect(&[("default/good", "http://10.0.0.1:8000/metrics")])
        .await;
    let logs = text(&logs);
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("pod default/bad-port") && l.contains("prometheus.io/port")),
        "{logs}"
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("pod default/bad-scheme") && l.contains("prometheus.io/scheme")),
        "{logs}"
    );
    assert!(
        !warnings.iter().any(|l| l.contains("no-ip")),
        "a pod without an IP waits quietly: {logs}"
    );
    d.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_selector_the_api_server_refuses_is_warned_about_naming_the_key() {
    let (logs, _guard) = capture_logs();
    let server = standin().await;
    apply(&server, &scraped("a", 8000).running("10.0.0.1", true));
    let d = discover(
        &server,
        "kubernetes_field_selector = \"spec.nodeNam=node-1\"",
    );
    let mut seen = String::new();
    for _ in 0..200 {
        seen = text(&logs);
        if seen.contains("refused the pod selector") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warning = seen
        .lines()
        .find(|l| l.contains("refused the pod selector"))
        .unwrap_or_else(|| panic!("no warning: {seen}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("kubernetes_field_selector=spec.nodeNam=node-1"),
        "{warning}"
    );
    assert!(
        warning.contains("field label not supported: spec.nodeNam"),
        "{warning}"
    );
    assert!(d.set.pods().is_empty());
    d.stop().await;
    server.shutdown().await;
}
