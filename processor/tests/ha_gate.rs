//! The role gate in-process, through the real `kube` client and the stand-in: a follower's
//! scaler decides without a single API call (`standby`) and keeps its recommendations, the
//! same scaler writes once its elector leads, and a stopped leader releases the Lease.

use std::collections::HashMap;
use std::time::Duration;

use k8s_standin::{Config, Handle, Server};
use processor::ha::election::Settings;
use processor::ha::lease::Elector;
use processor::scaler::cluster::{self, Kubernetes};
use processor::scaler::kubernetes::KubernetesScaler;
use processor::scaler::{Decision, Kind, Scaler};
use serde_json::json;

fn settings(identity: &str) -> Settings {
    Settings {
        identity: identity.to_owned(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
    }
}

async fn client(server: &Handle) -> cluster::ClusterClient {
    let settings = Kubernetes {
        enabled: true,
        api_servers: vec![server.url()],
        ..Kubernetes::default()
    };
    cluster::connect(&settings).await.expect("client")
}

fn scale_calls(server: &Handle) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.info.subresource == "scale" || r.info.resource == "events")
        .count()
}

#[tokio::test]
async fn a_follower_decides_without_any_api_call_and_writes_once_it_leads() {
    let server = Server::start(Config::default().with_deployment("default", "app", 1))
        .await
        .expect("stand-in");
    // Another replica holds the Lease and keeps renewing it.
    let other = Elector::start(
        client(&server).await.client,
        "default",
        "processor",
        settings("other"),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(other.gate().status().role, processor::ha::Role::Leader);

    let cluster = client(&server).await;
    let elector = Elector::start(
        cluster.client.clone(),
        "default",
        "processor",
        settings("me"),
    );
    let scaler = KubernetesScaler::with_clusters(
        HashMap::from([(String::new(), cluster)]),
        processor::clock::system(),
    );
    scaler.set_gate(elector.gate());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let intent = workspace_bins::scaling::intent("default", Kind::Deployments, "app", 4);
    let outcome = scaler.scale(intent.clone()).await.expect("a decision");
    assert_eq!(outcome.decision, Decision::Standby, "{outcome:?}");
    assert_eq!(outcome.new, 4, "decided all the same: {outcome:?}");
    assert_eq!(scale_calls(&server), 0, "no /scale call, no Event");
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));

    // The leader stops and releases: this replica takes over and the same scaler writes.
    other.stop().await;
    let lease = server
        .object(&k8s_standin::resources::LEASES, "default", "processor")
        .unwrap_or_default();
    assert_eq!(lease["spec"]["leaseDurationSeconds"], json!(1), "{lease}");
    assert!(
        lease["spec"]["holderIdentity"].is_null() || lease["spec"]["holderIdentity"] == "",
        "released: {lease}"
    );
    let mut led = false;
    for _ in 0..50 {
        if elector.gate().may_write() {
            led = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(led, "took over at once after the release");
    let outcome = scaler.scale(intent).await.expect("a decision");
    assert_eq!(outcome.decision, Decision::Increased, "{outcome:?}");
    assert_eq!(server.deployment_replicas("default", "app"), Some(4));

    // Stopping closes the gate before anything else: no write afterwards.
    let gate = elector.gate();
    elector.stop().await;
    assert!(!gate.may_write());
    let before = scale_calls(&server);
    let intent = workspace_bins::scaling::intent("default", Kind::Deployments, "app", 6);
    let outcome = scaler.scale(intent).await.expect("a decision");
    assert_eq!(outcome.decision, Decision::Standby);
    assert_eq!(scale_calls(&server), before);
    server.shutdown().await;
}
