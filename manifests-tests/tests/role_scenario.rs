//! The processor's Role grants exactly what its scaler calls: a short scaling scenario (up,
//! down, unchanged, for each kind the Role names) runs through the processor's real Kubernetes
//! scaler against the API stand-in, which authenticates the processor as its ServiceAccount and
//! authorizes every request with the rendered Role's rules, as RBAC would (the scaler's check
//! for a HorizontalPodAutoscaler on each target included). Nothing is refused, and the recorded
//! (group, resource/subresource, verb) set equals the Role's. The scaler runs behind the
//! Lease election, as the replicas run it (read, create, watch, renew, release the Lease).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_standin::{Config, Rule, Server, WorkloadKind};
use manifests_tests::render::{self, strings};
use manifests_tests::{manifests_dir, tools};
use processor::ha::lease::{self, Elector};
use processor::scaler::cluster::{self, Kubernetes};
use processor::scaler::kubernetes::KubernetesScaler;
use processor::scaler::{Decision, Kind, ScaleIntent, Scaler};
use serde_json::Value;

const TOKEN: &str = "processor-service-account-token";

/// An intent as the tutorial's k8sAutoscale node makes it: no namespace (= the processor's own).
fn intent(kind: Kind, name: &str, desired: i64) -> ScaleIntent {
    workspace_bins::scaling::intent("", kind, name, desired)
}

/// The Role's grants as (group, resource, verb).
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
async fn the_role_equals_the_requests_of_a_scaling_scenario_and_none_is_refused() {
    let Some(kubectl) = tools::kubectl() else {
        return;
    };
    let rendered =
        render::kustomize(&kubectl, &manifests_dir().join("overlays/dev")).expect("renders");
    let role = rendered.get("Role", "processor").expect("Role processor");
    let namespace = role
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .expect("the overlay's namespace")
        .to_owned();
    let account = rendered
        .get("StatefulSet", "processor")
        .and_then(|d| d.pointer("/spec/template/spec/serviceAccountName"))
        .and_then(Value::as_str)
        .expect("serviceAccountName");
    let user = format!("system:serviceaccount:{namespace}:{account}");

    let workloads = [
        (WorkloadKind::Deployment, Kind::Deployments, "app"),
        (WorkloadKind::StatefulSet, Kind::StatefulSets, "db"),
        (WorkloadKind::ReplicaSet, Kind::ReplicaSets, "workers"),
    ];
    let mut config = Config::default().with_token(TOKEN, &user);
    for (kind, _, name) in workloads {
        config = config.with_workload(kind, &namespace, name, 1);
    }
    let server = Server::start(config).await.expect("stand-in starts");
    let rules = Rule::from_role(role, &[user.as_str()]).expect("the stand-in reads the Role");
    server.set_rules(Some(rules));

    // The processor's client as in the cluster: its ServiceAccount's token, its own namespace.
    let settings = Kubernetes {
        enabled: true,
        api_servers: vec![server.url()],
        token: TOKEN.to_owned(),
        namespace: namespace.clone(),
        ..Kubernetes::default()
    };
    let client = cluster::connect(&settings).await.expect("client");
    let lease_client = client.client.clone();
    let scaler = Arc::new(KubernetesScaler::with_clusters(
        HashMap::from([(String::new(), client)]),
        processor::clock::system(),
    ));
    // The election as each replica runs it, on the Role's one Lease; the scaler writes only
    // while it leads.
    let ha = processor::config::Ha {
        enabled: true,
        identity: "processor-0".to_owned(),
        lease_duration: std::time::Duration::from_secs(3),
        renew_deadline: std::time::Duration::from_secs(2),
        retry_period: std::time::Duration::from_millis(500),
        ..processor::config::Ha::default()
    };
    let elector = Elector::start(
        lease_client,
        &namespace,
        &ha.lease_name,
        lease::settings(&ha),
    );
    let gate = elector.gate();
    scaler.set_gate(gate.clone());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gate.may_write() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica leads within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (_, kind, name) in workloads {
        let steps = [
            (3, Decision::Increased),
            (2, Decision::Decreased),
            (2, Decision::Unchanged),
        ];
        for (desired, expected) in steps {
            let outcome = scaler
                .scale(intent(kind, name, desired))
                .await
                .unwrap_or_else(|error| panic!("{kind:?} {name} to {desired}: {error}"));
            assert_eq!(outcome.decision, expected, "{kind:?} {name} to {desired}");
        }
    }
    assert_eq!(server.deployment_replicas(&namespace, "app"), Some(2));

    let refused: Vec<String> = server
        .requests()
        .iter()
        .filter(|request| request.status == 401 || request.status == 403)
        .map(|request| format!("{} {} -> {}", request.method, request.path, request.status))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    // A graceful stop releases the Lease (one more update).
    elector.stop().await;
    let used = server.permissions_used();
    let granted = granted(role);
    assert_eq!(
        used,
        granted,
        "the Role must grant exactly what the processor calls \
         (used but not granted: {:?}; granted but not used: {:?})",
        used.difference(&granted).collect::<Vec<_>>(),
        granted.difference(&used).collect::<Vec<_>>()
    );
    server.shutdown().await;
}
