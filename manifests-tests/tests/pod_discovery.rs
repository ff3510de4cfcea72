//! `overlays/pod-discovery`: the DaemonSet's agent config loads in our agent in node scope with
//! the `deployment` workload tag; the app pods lose their sidecar and are annotated with their
//! metrics port; and the agent's ClusterRole grants exactly what the agent's discovery calls:
//! its real watcher runs against the API stand-in as the agent's ServiceAccount, authorized by
//! the rendered ClusterRole's rules, finds the node's app pods with their Deployment, nothing is
//! refused, and the (group, resource, verb) set used equals the ClusterRole's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use agent::config::{Config as AgentConfig, PodScrapeScope, WorkloadKind};
use agent::discovery::TargetSet;
use agent::discovery::targets::PodTarget;
use k8s_standin::{Config, PodSeed, Rule, Server};
use manifests_tests::render::{self, strings};
use manifests_tests::{manifests_dir, tools};
use serde_json::{Value, json};

const TOKEN: &str = "agent-service-account-token";

fn granted(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut granted = BTreeSet::new();
    for rule in role
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for group in strings(rule, "apiGroups") {
            for resource in strings(rule, "resources") {
                for verb in strings(rule, "verbs") {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    granted
}

#[tokio::test]
async fn the_daemonset_agent_discovers_the_nodes_app_pods_with_exactly_its_cluster_role() {
    let Some(kubectl) = tools::kubectl() else {
        return;
    };
    let rendered = render::kustomize(&kubectl, &manifests_dir().join("overlays/pod-discovery"))
        .expect("renders");

    // The app: no sidecar, annotated with its metrics port.
    let app = rendered.get("Deployment", "app").expect("Deployment app");
    let template = app.pointer("/spec/template").expect("template");
    let init = template
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    assert_eq!(init, 0, "the app pods have no agent sidecar");
    let metrics_port = template
        .pointer("/spec/containers/0/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some("metrics"))
        .and_then(|p| p.get("containerPort"))
        .and_then(Value::as_u64)
        .expect("the app's metrics port");
    let annotation = |key: &str| {
        template
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    assert_eq!(annotation("prometheus.io/scrape").as_deref(), Some("true"));
    assert_eq!(
        annotation("prometheus.io/port"),
        Some(metrics_port.to_string())
    );

    // The agent: a DaemonSet in node scope, its node from the downward API.
    let daemonset = rendered.get("DaemonSet", "agent").expect("DaemonSet agent");
    let namespace = daemonset
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .expect("namespace")
        .to_owned();
    let account = daemonset
        .pointer("/spec/template/spec/serviceAccountName")
        .and_then(Value::as_str)
        .expect("serviceAccountName");
    let env: Vec<Value> = daemonset
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let field_of = |name: &str| {
        env.iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|v| v.pointer("/valueFrom/fieldRef/fieldPath"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    assert_eq!(field_of("NODE_NAME").as_deref(), Some("spec.nodeName"));
    assert_eq!(field_of("NODE_IP").as_deref(), Some("status.hostIP"));
    let map = rendered
        .get("ConfigMap", "agent-config")
        .expect("agent-config");
    let text = map
        .pointer("/data/telegraf.conf")
        .and_then(Value::as_str)
        .expect("telegraf.conf");
    let config = AgentConfig::parse(text, |var| match var {
        "NODE_NAME" => Some("node-1".to_owned()),
        "NODE_IP" => Some("10.0.0.1".to_owned()),
        other => Some(format!("value-of-{other}")),
    })
    .expect("the overlay's agent config loads");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let settings = config.inputs[0]
        .pod_discovery
        .clone()
        .expect("discovery on");
    assert_eq!(settings.scope, PodScrapeScope::Node);
    assert_eq!(settings.node_name.as_deref(), Some("node-1"));
    assert_eq!(
        settings
            .workload_tags
            .get(&WorkloadKind::Deployment)
            .map(String::as_str),
        Some("deployment"),
        "the task groups by `deployment`"
    );

    // The stand-in as the cluster: the app's ReplicaSet and pods on two nodes.
    let user = format!("system:serviceaccount:{namespace}:{account}");
    let server = Server::start(Config::default().with_token(TOKEN, &user))
        .await
        .expect("stand-in starts");
    server
        .create(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "app-5d9", "namespace": namespace,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "app", "uid": "d", "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}},
                "template": {"metadata": {"labels": {"app": "app"}},
                    "spec": {"containers": [{"name": "app", "image": "app"}]}}},
        }))
        .expect("replicaset");
    for (name, node, host_ip) in [
        ("app-a", "node-1", "10.0.0.1"),
        ("app-b", "node-2", "10.0.0.2"),
    ] {
        let mut pod = PodSeed::new(&namespace, name)
            .node(node)
            .owned_by("ReplicaSet", "app-5d9", "r")
            .running("10.1.0.1", true);
        pod = pod
            .annotation("prometheus.io/scrape", "true")
            .annotation("prometheus.io/port", &metrics_port.to_string());
        let mut object = pod.to_object();
        object["status"]["hostIP"] = json!(host_ip);
        server.create(object).expect("pod");
    }
    let role = rendered
        .get("ClusterRole", "agent-pod-discovery")
        .expect("ClusterRole agent-pod-discovery");
    server.set_rules(Some(
        Rule::from_role(role, &[user.as_str()]).expect("the stand-in reads the ClusterRole"),
    ));

    let mut client_config = kube::Config::new(server.url().parse().expect("url"));
    client_config.auth_info.token = Some(TOKEN.to_owned().into());
    let client = kube::Client::try_from(client_config).expect("client");
    let set: Arc<TargetSet<PodTarget>> = Arc::new(TargetSet::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent::discovery::watch::run(
        "prometheus[0]".to_owned(),
        settings,
        client,
        Arc::clone(&set),
        |t: &PodTarget| Ok(t.clone()),
        stopped,
    ));
    let mut found = Vec::new();
    for _ in 0..400 {
        found = set.snapshot();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let _ = task.await;
    assert_eq!(found.len(), 1, "only the node's pod: {found:?}");
    assert_eq!(
        found[0].url,
        format!("http://10.1.0.1:{metrics_port}/metrics")
    );
    assert!(
        found[0]
            .tags
            .contains(&("deployment".to_owned(), "app".to_owned())),
        "{:?}",
        found[0].tags
    );
    let refused: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.status == 401 || r.status == 403)
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    assert_eq!(
        server.permissions_used(),
        granted(role),
        "the ClusterRole grants exactly what the agent calls"
    );
    server.shutdown().await;
}
