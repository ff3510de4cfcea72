//! Fidelity with the real Rust client the processor uses: `kube` 5.0 with `k8s-openapi` types,
//! over plain http to loopback, with kube's own retry turned off as the processor runs it.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_standin::{Config, Fault, Handle, Rule, Server, WorkloadKind};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Discovery};
use serde_json::json;

async fn start(config: Config) -> Handle {
    Server::start(config)
        .await
        .unwrap_or_else(|e| panic!("stand-in did not start: {e}"))
}

fn client_config(server: &Handle) -> kube::Config {
    let url = server
        .url()
        .parse()
        .unwrap_or_else(|e| panic!("bad url: {e}"));
    let mut config = kube::Config::new(url);
    config.default_retry = false;
    config.read_timeout = Some(Duration::from_secs(10));
    config
}

fn client(server: &Handle) -> Client {
    client_from(client_config(server))
}

/// A merge patch of Deployment app's `/scale` to `replicas`.
async fn scale_app(deployments: &Api<Deployment>, replicas: i32) -> kube::Result<Scale> {
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    deployments
        .patch_scale("app", &PatchParams::default(), &patch)
        .await
}

fn client_from(config: kube::Config) -> Client {
    Client::try_from(config).unwrap_or_else(|e| panic!("client: {e}"))
}

/// kube's config from the stand-in's kubeconfig with `token`.
async fn config_from_kubeconfig(server: &Handle, token: &str) -> kube::Config {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig(Some(token)))
        .unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("config: {e}"))
}

/// A failure below the API (connection, TLS, timeout), not an API error.
fn assert_transport_error<T: std::fmt::Debug>(result: &kube::Result<T>, what: &str) {
    assert!(
        matches!(result, Err(e) if !matches!(e, kube::Error::Api(_))),
        "expected {what}, got {result:?}"
    );
}

/// The Status of an API error, or a panic naming what came instead.
fn api_status<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn ok<T>(result: kube::Result<T>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[tokio::test]
async fn get_patch_and_replace_scale_with_optimistic_concurrency() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");

    let first = ok(deployments.get_scale("app").await, "get_scale");
    assert_eq!(first.spec.as_ref().and_then(|s| s.replicas), Some(1));
    assert_eq!(
        first.status.as_ref().and_then(|s| s.selector.clone()),
        Some("app=app".to_string())
    );

    let patched = ok(scale_app(&deployments, 3).await, "patch_scale");
    assert_eq!(patched.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));

    // Replacing with the resourceVersion read before the patch is a 409 Conflict.
    let mut stale: Scale = first.clone();
    stale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(5) });
    let status = api_status(
        deployments
            .replace_scale("app", &PostParams::default(), &stale)
            .await,
    );
    assert!(status.is_conflict(), "{status:?}");
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on deployments.apps \"app\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        status.details.as_ref().map(|d| d.kind.as_str()),
        Some("deployments")
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));

    // With the current resourceVersion the replace succeeds.
    let mut fresh = ok(deployments.get_scale("app").await, "get_scale");
    fresh.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(5) });
    let replaced = ok(
        deployments
            .replace_scale("app", &PostParams::default(), &fresh)
            .await,
        "replace_scale",
    );
    assert_eq!(replaced.spec.and_then(|s| s.replicas), Some(5));
    let deployment = ok(deployments.get("app").await, "get");
    assert_eq!(deployment.metadata.generation, Some(3));
    assert_eq!(deployment.status.and_then(|s| s.ready_replicas), Some(5));

    let log: Vec<(String, String, String, String, String)> = server
        .requests()
        .into_iter()
        .map(|r| {
            (
                r.info.verb.clone(),
                r.info.api_group.clone(),
                r.rbac_resource(),
                r.info.namespace.clone(),
                r.info.name.clone(),
            )
        })
        .collect();
    let call = |verb: &str| {
        (
            verb.to_string(),
            "apps".to_string(),
            "deployments/scale".to_string(),
            "default".to_string(),
            "app".to_string(),
        )
    };
    assert_eq!(log.first(), Some(&call("get")));
    assert_eq!(log.get(1), Some(&call("patch")));
    assert_eq!(log.get(2), Some(&call("update")));
    server.shutdown().await;
}

#[tokio::test]
async fn patch_scale_accepts_strategic_and_apply_patches() {
    let server =
        start(Config::default().with_workload(WorkloadKind::StatefulSet, "db", "pg", 1)).await;
    let sets: Api<StatefulSet> = Api::namespaced(client(&server), "db");
    ok(
        sets.patch_scale(
            "pg",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 2}})),
        )
        .await,
        "strategic",
    );
    assert_eq!(
        server
            .workload(WorkloadKind::StatefulSet, "db", "pg")
            .map(|w| w.replicas),
        Some(2)
    );
    let apply = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "pg", "namespace": "db"}, "spec": {"replicas": 4}});
    ok(
        sets.patch_scale(
            "pg",
            &PatchParams::apply("standin-test"),
            &Patch::Apply(apply.clone()),
        )
        .await,
        "apply",
    );
    assert_eq!(
        server
            .workload(WorkloadKind::StatefulSet, "db", "pg")
            .map(|w| w.replicas),
        Some(4)
    );
    let types: Vec<String> = server
        .requests()
        .into_iter()
        .map(|r| r.content_type)
        .collect();
    assert_eq!(
        types,
        [
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml"
        ]
    );
    // Dry run answers the new scale and changes nothing.
    let dry = ok(
        sets.patch_scale(
            "pg",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await,
        "dry run",
    );
    assert_eq!(dry.spec.and_then(|s| s.replicas), Some(9));
    assert_eq!(
        server
            .workload(WorkloadKind::StatefulSet, "db", "pg")
            .map(|w| w.replicas),
        Some(4)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_missing_workload_is_not_found() {
    let server = start(Config::default()).await;
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    let status = api_status(deployments.get_scale("ghost").await);
    assert!(status.is_not_found(), "{status:?}");
    assert_eq!(status.message, "deployments.apps \"ghost\" not found");
    server.shutdown().await;
}

#[tokio::test]
async fn bearer_tokens_authenticate_through_a_generated_kubeconfig() {
    let server = start(
        Config::default()
            .with_deployment("default", "app", 1)
            .with_token("t0k3n", "system:serviceaccount:default:processor"),
    )
    .await;
    let config = config_from_kubeconfig(&server, "t0k3n").await;
    let authed = client_from(config);
    let deployments: Api<Deployment> = Api::default_namespaced(authed);
    ok(
        deployments.get_scale("app").await,
        "authenticated get_scale",
    );
    let user = server.requests().last().map(|r| r.user.clone());
    assert_eq!(
        user.as_deref(),
        Some("system:serviceaccount:default:processor")
    );

    let anonymous: Api<Deployment> = Api::namespaced(client(&server), "default");
    let status = api_status(anonymous.get_scale("app").await);
    assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
    server.shutdown().await;
}

#[tokio::test]
async fn kube_verifies_the_generated_ca_and_sends_its_token_over_tls() {
    let mut config = Config::default()
        .with_deployment("default", "app", 1)
        .with_token("t0k3n", "system:serviceaccount:default:processor");
    config.tls = true;
    let server = start(config).await;
    let mut config = config_from_kubeconfig(&server, "t0k3n").await;
    config.default_retry = false;
    let client = client_from(config);
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let scaled = ok(scale_app(&deployments, 2).await, "patch_scale over https");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(2));
    let user = server.requests().last().map(|r| r.user.clone());
    assert_eq!(
        user.as_deref(),
        Some("system:serviceaccount:default:processor")
    );

    // A client that does not trust the generated CA cannot connect.
    let mut untrusting = kube::Config::new(server.url().parse().unwrap_or_else(|e| panic!("{e}")));
    untrusting.default_retry = false;
    let untrusting: Api<Deployment> = Api::namespaced(client_from(untrusting), "default");
    let result = untrusting.get_scale("app").await;
    assert_transport_error(&result, "a tls error");
    server.shutdown().await;
}

#[tokio::test]
async fn rules_forbid_what_the_role_does_not_grant() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    server.set_rules(Some(vec![Rule::allow(
        &["get"],
        "apps",
        &["deployments/scale"],
    )]));
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    ok(deployments.get_scale("app").await, "get_scale is allowed");
    let status = api_status(scale_app(&deployments, 2).await);
    assert!(status.is_forbidden(), "{status:?}");
    assert_eq!(
        status.message,
        "deployments.apps \"app\" is forbidden: User \"admin\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"default\""
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
    server.shutdown().await;
}

#[tokio::test]
async fn injected_faults_reach_the_client_as_api_errors_then_clear() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    server.inject(Fault::status(503).verb("patch").subresource("scale"));
    server.inject(Fault::status(500).verb("patch").subresource("scale"));
    server.inject(Fault::status(409).verb("patch").subresource("scale"));
    for (code, reason) in [
        (503, "ServiceUnavailable"),
        (500, "InternalError"),
        (409, "Conflict"),
    ] {
        let status = api_status(scale_app(&deployments, 2).await);
        assert_eq!((status.code, status.reason.as_str()), (code, reason));
    }
    assert_eq!(server.deployment_replicas("default", "app"), Some(1));
    ok(scale_app(&deployments, 2).await, "after the faults");
    assert_eq!(server.deployment_replicas("default", "app"), Some(2));
    assert_eq!(server.pending_faults(), 0);
    let injected = server
        .requests()
        .iter()
        .filter(|r| r.fault_injected)
        .count();
    assert_eq!(injected, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_fault_after_applying_answers_500_yet_the_scale_was_written() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    let mut changes = server.subscribe();

    server.inject(
        Fault::status(500)
            .after_applying()
            .verb("patch")
            .subresource("scale"),
    );
    let status = api_status(scale_app(&deployments, 3).await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (500, "InternalError")
    );
    assert_eq!(server.deployment_replicas("default", "app"), Some(3));
    let change = changes
        .try_recv()
        .unwrap_or_else(|e| panic!("no change sent: {e}"));
    assert_eq!((change.previous, change.replicas), (Some(1), 3));

    // PUT too, with the delay after the write.
    let mut scale = ok(deployments.get_scale("app").await, "get_scale");
    scale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(5) });
    server.inject(
        Fault::status(500)
            .after_applying()
            .after(Duration::from_millis(50))
            .verb("update")
            .subresource("scale"),
    );
    let status = api_status(
        deployments
            .replace_scale("app", &PostParams::default(), &scale)
            .await,
    );
    assert_eq!(status.code, 500);
    assert_eq!(server.deployment_replicas("default", "app"), Some(5));

    let answered: Vec<(String, u16, bool)> = server
        .requests()
        .iter()
        .filter(|r| r.info.subresource == "scale" && r.info.verb != "get")
        .map(|r| (r.info.verb.clone(), r.status, r.fault_injected))
        .collect();
    assert_eq!(
        answered,
        [("patch".into(), 500, true), ("update".into(), 500, true)]
    );
    assert_eq!(server.pending_faults(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_delayed_answer_trips_the_client_read_timeout() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    server.inject(Fault::delay(Duration::from_millis(300)).subresource("scale"));
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    let started = Instant::now();
    ok(deployments.get_scale("app").await, "delayed get_scale");
    assert!(started.elapsed() >= Duration::from_millis(300));

    server.inject(Fault::delay(Duration::from_secs(5)).subresource("scale"));
    let mut impatient = client_config(&server);
    impatient.read_timeout = Some(Duration::from_millis(100));
    let impatient: Api<Deployment> = Api::namespaced(client_from(impatient), "default");
    let result = impatient.get_scale("app").await;
    assert_transport_error(&result, "a transport timeout");
    server.shutdown().await;
}

#[tokio::test]
async fn leases_are_created_read_and_updated_with_conflicts() {
    let server = start(Config::default()).await;
    let leases: Api<Lease> = Api::namespaced(client(&server), "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "processor-leader"},
        "spec": {"holderIdentity": "processor-0", "leaseDurationSeconds": 15}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let created = ok(
        leases.create(&PostParams::default(), &lease).await,
        "create lease",
    );
    assert!(created.metadata.uid.is_some());
    let mut taken = ok(leases.get("processor-leader").await, "get lease");
    if let Some(spec) = taken.spec.as_mut() {
        spec.holder_identity = Some("processor-1".into());
    }
    ok(
        leases
            .replace("processor-leader", &PostParams::default(), &taken)
            .await,
        "replace",
    );
    let status = api_status(
        leases
            .replace("processor-leader", &PostParams::default(), &taken)
            .await,
    );
    assert!(status.is_conflict(), "{status:?}");
    let status = api_status(leases.create(&PostParams::default(), &lease).await);
    assert!(status.is_already_exists(), "{status:?}");
    let now = ok(leases.get("processor-leader").await, "get");
    assert_eq!(
        now.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("processor-1")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn lease_micro_times_round_trip_and_a_named_watch_sees_each_change() {
    use futures::StreamExt;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use kube::api::{WatchEvent, WatchParams};
    let server = start(Config::default()).await;
    let leases: Api<Lease> = Api::namespaced(client(&server), "default");
    let at: k8s_openapi::jiff::Timestamp = "2026-12-05T19:30:01.123456Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "processor"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 3, "leaseTransitions": 2}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    if let Some(spec) = lease.spec.as_mut() {
        spec.acquire_time = Some(MicroTime(at));
        spec.renew_time = Some(MicroTime(at));
    }
    let params = WatchParams::default().fields("metadata.name=processor");
    let stream = ok(leases.watch(&params, "0").await, "watch");
    let mut stream = std::pin::pin!(stream);
    ok(
        leases.create(&PostParams::default(), &lease).await,
        "create",
    );
    let other: Lease = serde_json::from_value(json!({"metadata": {"name": "other"}}))
        .unwrap_or_else(|e| panic!("{e}"));
    ok(
        leases.create(&PostParams::default(), &other).await,
        "create other",
    );
    let read = ok(leases.get("processor").await, "get");
    let spec = read.spec.clone().unwrap_or_default();
    assert_eq!(
        spec.acquire_time.map(|t| t.0),
        Some(at),
        "microseconds kept"
    );
    assert_eq!(spec.renew_time.map(|t| t.0), Some(at));
    assert_eq!(spec.lease_transitions, Some(2));
    let mut released = read;
    if let Some(spec) = released.spec.as_mut() {
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
    }
    ok(
        leases
            .replace("processor", &PostParams::default(), &released)
            .await,
        "release",
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no watch event; saw {seen:?}"));
        match event {
            Some(Ok(WatchEvent::Added(l) | WatchEvent::Modified(l))) => seen.push((
                l.metadata.name.unwrap_or_default(),
                l.spec.and_then(|s| s.holder_identity),
            )),
            Some(Ok(_)) => {}
            other => panic!("watch ended: {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("processor".to_owned(), Some("a".to_owned())),
            ("processor".to_owned(), None)
        ],
        "only the named lease, each change"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn events_are_posted_in_both_groups_and_listed() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    let client = client(&server);
    let core: Api<Event> = Api::namespaced(client.clone(), "default");
    let event: Event = serde_json::from_value(json!({
        "metadata": {"generateName": "app."},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app", "namespace": "default"},
        "reason": "SuccessfulRescale", "message": "New size: 3; reason: rps above target",
        "type": "Normal", "source": {"component": "processor"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let created = ok(
        core.create(&PostParams::default(), &event).await,
        "create core event",
    );
    assert!(
        created
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("app."))
    );
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "default");
    let event_v1: EventV1 = serde_json::from_value(json!({
        "metadata": {"name": "app.rescale"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "processor",
        "reportingInstance": "processor-0", "action": "Scale", "reason": "FailedRescale",
        "regarding": {"kind": "Deployment", "name": "app", "namespace": "default"}, "type": "Warning"
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    ok(
        v1.create(&PostParams::default(), &event_v1).await,
        "create events.k8s.io event",
    );
    let listed = ok(core.list(&ListParams::default()).await, "list events");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed
            .items
            .first()
            .and_then(|e| e.reason.clone())
            .as_deref(),
        Some("SuccessfulRescale")
    );
    let reasons: Vec<String> = server
        .events()
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect();
    assert_eq!(reasons, ["SuccessfulRescale", "FailedRescale"]);
    server.shutdown().await;
}

#[tokio::test]
async fn hpas_are_created_listed_per_namespace_and_deleted_as_typed_objects() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    let client = client(&server);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "keda-hpa-app"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
            "maxReplicas": 5}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let created = ok(hpas.create(&PostParams::default(), &hpa).await, "create");
    assert_eq!(created.spec.min_replicas, Some(1), "defaulted");
    let elsewhere: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "prod");
    let mut other = hpa.clone();
    other.metadata.name = Some("web".into());
    ok(
        elsewhere.create(&PostParams::default(), &other).await,
        "create in prod",
    );
    let listed = ok(hpas.list(&ListParams::default()).await, "list");
    assert_eq!(listed.items.len(), 1, "one namespace only");
    assert!(
        listed
            .metadata
            .resource_version
            .as_deref()
            .is_some_and(|rv| rv.parse::<u64>().is_ok()),
        "{:?}",
        listed.metadata
    );
    let target = listed
        .items
        .first()
        .map(|h| &h.spec.scale_target_ref)
        .map(|r| (r.kind.clone(), r.name.clone()));
    assert_eq!(target, Some(("Deployment".into(), "app".into())));
    ok(
        hpas.delete("keda-hpa-app", &Default::default()).await,
        "delete",
    );
    assert!(
        ok(hpas.list(&ListParams::default()).await, "list")
            .items
            .is_empty()
    );
    let mut invalid = hpa.clone();
    invalid.spec.max_replicas = 0;
    let status = api_status(hpas.create(&PostParams::default(), &invalid).await);
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.maxReplicas"),
        "{}",
        status.message
    );
    server.shutdown().await;
}

#[tokio::test]
async fn discovery_version_and_lists_work_for_the_client() {
    let server = start(
        Config::default()
            .with_deployment("default", "app", 1)
            .with_deployment("prod", "web", 2),
    )
    .await;
    let client = client(&server);
    let version = ok(client.apiserver_version().await, "version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );
    let discovery = ok(Discovery::new(client.clone()).run().await, "discovery");
    let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
    let (resource, caps) = discovery
        .resolve_gvk(&gvk)
        .unwrap_or_else(|| panic!("apps/v1 Deployment not discovered"));
    assert_eq!(resource.plural, "deployments");
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "deployments/scale" || r.plural == "scale"),
        "{:?}",
        caps.subresources
    );
    let aggregated = ok(
        Discovery::new(client.clone()).run_aggregated().await,
        "aggregated discovery",
    );
    let (lease, _) = aggregated
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "coordination.k8s.io",
            "v1",
            "Lease",
        ))
        .unwrap_or_else(|| panic!("Lease not in aggregated discovery"));
    assert_eq!(lease.plural, "leases");
    let all: Api<Deployment> = Api::all(client.clone());
    let listed = ok(all.list(&ListParams::default()).await, "list all");
    assert_eq!(listed.items.len(), 2);
    let web = ok(
        all.list(&ListParams::default().labels("app=web")).await,
        "by label",
    );
    assert_eq!(
        web.items
            .first()
            .and_then(|d| d.metadata.namespace.clone())
            .as_deref(),
        Some("prod")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_lab_sees_replica_changes_and_reports_status_in_manual_mode() {
    let mut config = Config::default().with_deployment("default", "app", 1);
    config.status_mode = k8s_standin::StatusMode::Manual;
    let server = start(config).await;
    let mut changes = server.subscribe();
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    ok(scale_app(&deployments, 4).await, "scale up");
    let change = changes.recv().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (change.name.as_str(), change.previous, change.replicas),
        ("app", Some(1), 4)
    );
    // The "kubelet" has not started the pods yet: status still says 1.
    let scale = ok(deployments.get_scale("app").await, "get_scale");
    assert_eq!(scale.status.map(|s| s.replicas), Some(1));
    ok_api(server.set_status(WorkloadKind::Deployment, "default", "app", 4, 3));
    let d = ok(deployments.get("app").await, "get");
    let status = d.status.unwrap_or_default();
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.observed_generation
        ),
        (Some(4), Some(3), Some(2))
    );
    // An external change (another controller, `kubectl scale`) is a change too.
    ok_api(server.set_replicas(WorkloadKind::Deployment, "default", "app", 2));
    let change = changes.recv().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((change.previous, change.replicas), (Some(4), 2));
    server.shutdown().await;
}

fn ok_api(result: Result<(), k8s_standin::ApiError>) {
    result.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn kube_watches_start_resume_end_with_deletes_and_expire() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{DeleteParams, WatchEvent, WatchParams};

    let mut config = Config::default().with_deployment("default", "app", 1);
    config.watch_history = 16;
    let server = start(config).await;
    let api: Api<Deployment> = Api::namespaced(client(&server), "default");
    let replicas = |d: &Deployment| d.spec.replicas;
    let rv_of = |d: &Deployment| d.metadata.resource_version.clone().unwrap_or_default();
    let params = WatchParams::default().timeout(10);

    let mut stream = ok(api.watch(&params, "0").await, "watch").boxed();
    let first = ok(stream.try_next().await, "first event");
    assert!(
        matches!(&first, Some(WatchEvent::Added(d)) if replicas(d) == Some(1)),
        "{first:?}"
    );
    ok_api(server.set_replicas(WorkloadKind::Deployment, "default", "app", 2));
    let second = ok(stream.try_next().await, "second event");
    let Some(WatchEvent::Modified(d)) = second else {
        panic!("expected Modified, got {second:?}")
    };
    assert_eq!(replicas(&d), Some(2));
    let resume_from = rv_of(&d);
    drop(stream);

    // Changes made while no one watches are replayed to a watch resuming from a resourceVersion.
    ok_api(server.set_replicas(WorkloadKind::Deployment, "default", "app", 3));
    ok(api.delete("app", &DeleteParams::default()).await, "delete");
    let mut resumed = ok(api.watch(&params, &resume_from).await, "resume").boxed();
    let modified = ok(resumed.try_next().await, "replayed change");
    assert!(
        matches!(&modified, Some(WatchEvent::Modified(d)) if replicas(d) == Some(3)),
        "{modified:?}"
    );
    let deleted = ok(resumed.try_next().await, "replayed delete");
    assert!(
        matches!(&deleted, Some(WatchEvent::Deleted(d)) if d.metadata.name.as_deref() == Some("app")),
        "{deleted:?}"
    );
    drop(resumed);

    // Once the history has moved past a resourceVersion, resuming from it is 410 Expired.
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "churn"}, "spec": {}}))
        .unwrap_or_else(|e| panic!("{e}"));
    let leases: Api<Lease> = Api::namespaced(client(&server), "default");
    let mut current = ok(
        leases.create(&PostParams::default(), &lease).await,
        "create lease",
    );
    for i in 0..16 {
        if let Some(spec) = current.spec.as_mut() {
            spec.lease_transitions = Some(i);
        }
        current = ok(
            leases
                .replace("churn", &PostParams::default(), &current)
                .await,
            "replace",
        );
    }
    let mut expired = ok(api.watch(&params, &resume_from).await, "stale watch").boxed();
    let error = ok(expired.try_next().await, "expired event");
    assert!(
        matches!(&error, Some(WatchEvent::Error(status)) if status.code == 410 && status.reason == "Expired"),
        "{error:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn tokens_added_at_run_time_turn_authentication_on_and_the_log_can_be_cleared() {
    let server = start(Config::default().with_deployment("default", "app", 1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    ok(deployments.get_scale("app").await, "open server");
    assert_eq!(server.requests().len(), 1);
    server.clear_requests();
    assert!(server.requests().is_empty());

    server.add_token("late", "bob");
    let status = api_status(deployments.get_scale("app").await);
    assert_eq!(status.code, 401);
    let mut config = client_config(&server);
    config.auth_info.token = Some("late".to_string().into());
    let bob: Api<Deployment> = Api::namespaced(client_from(config), "default");
    ok(bob.get_scale("app").await, "with the added token");
    let users: Vec<(String, u16)> = server
        .requests()
        .into_iter()
        .map(|r| (r.user, r.status))
        .collect();
    assert_eq!(users, [(String::new(), 401), ("bob".to_string(), 200)]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_request_log_keeps_the_most_recent_requests_up_to_its_limit() {
    let mut config = Config::default().with_deployment("default", "app", 1);
    config.request_log_limit = 3;
    let server = start(config).await;
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    for _ in 0..5 {
        ok(deployments.get_scale("app").await, "get_scale");
    }
    let seqs: Vec<u64> = server.requests().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [3, 4, 5]);
    server.shutdown().await;
}
