//! Pods with the real `kube` client, as the agent's discovery uses them: list and watch with a
//! field selector, BOOKMARK events, 410 Expired on a resume from a compacted resourceVersion, a
//! dropped watch, and the API server's refusal of an unsupported field label.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_standin::{Config, Fault, Handle, PodSeed, Server};
use kube::Client;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

async fn start(config: Config) -> Handle {
    Server::start(config)
        .await
        .unwrap_or_else(|e| panic!("stand-in did not start: {e}"))
}

fn client(server: &Handle) -> Client {
    let url = server.url().parse().unwrap_or_else(|e| panic!("url: {e}"));
    let mut config = kube::Config::new(url);
    config.default_retry = false;
    Client::try_from(config).unwrap_or_else(|e| panic!("client: {e}"))
}

fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

#[tokio::test]
async fn pods_list_by_node_and_carry_ip_ready_and_owner() {
    let server = start(Config::default()).await;
    ok(
        server.apply_pod(
            &PodSeed::new("default", "a")
                .running("10.1.0.1", true)
                .owned_by("ReplicaSet", "app-1", "u"),
        ),
        "a",
    );
    ok(
        server.apply_pod(&PodSeed::new("default", "b").node("node-2")),
        "b",
    );
    let pods: Api<Pod> = Api::all(client(&server));
    let on_node_1 = ok(
        pods.list(&ListParams::default().fields("spec.nodeName=node-1"))
            .await,
        "list",
    );
    assert_eq!(on_node_1.items.len(), 1);
    let a = &on_node_1.items[0];
    assert_eq!(name(a), "a");
    let status = a.status.clone().unwrap_or_default();
    assert_eq!(status.pod_ip.as_deref(), Some("10.1.0.1"));
    assert!(
        status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    let owner = &a.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ReplicaSet", "app-1")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_unsupported_pod_field_label_is_a_bad_request_naming_it() {
    let server = start(Config::default()).await;
    let pods: Api<Pod> = Api::all(client(&server));
    let error = pods
        .list(&ListParams::default().fields("spec.nodeNam=x"))
        .await
        .expect_err("the API server refuses unknown pod field labels");
    let kube::Error::Api(status) = error else {
        panic!("expected an API error, got {error:?}")
    };
    assert_eq!(status.code, 400);
    assert_eq!(status.message, "field label not supported: spec.nodeNam");
    server.shutdown().await;
}

#[tokio::test]
async fn a_pod_watch_sees_changes_bookmarks_and_ends_when_dropped() {
    let server = start(Config {
        watch_bookmark_ms: 100,
        ..Config::default()
    })
    .await;
    ok(server.apply_pod(&PodSeed::new("default", "a")), "a");
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    let params = WatchParams::default().timeout(30);
    let mut stream = ok(pods.watch(&params, "0").await, "watch").boxed();
    let added = ok(stream.try_next().await, "added");
    assert!(
        matches!(&added, Some(WatchEvent::Added(p)) if name(p) == "a"),
        "{added:?}"
    );

    ok(
        server.apply_pod(&PodSeed::new("default", "a").running("10.0.0.9", true)),
        "ready",
    );
    let mut saw_ip = false;
    let mut bookmark_rv = None;
    while !saw_ip || bookmark_rv.is_none() {
        match ok(stream.try_next().await, "event") {
            Some(WatchEvent::Modified(p)) => {
                saw_ip |= p.status.and_then(|s| s.pod_ip).as_deref() == Some("10.0.0.9");
            }
            Some(WatchEvent::Bookmark(b)) if saw_ip => {
                bookmark_rv = Some(b.metadata.resource_version);
            }
            Some(WatchEvent::Bookmark(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let list = ok(pods.list(&ListParams::default()).await, "list");
    assert_eq!(
        bookmark_rv, list.metadata.resource_version,
        "a bookmark carries the resourceVersion the stream reached"
    );

    server.drop_watches();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.try_next().await {
                Ok(Some(WatchEvent::Bookmark(_))) => continue,
                other => return other.map(|e| e.is_none()),
            }
        }
    })
    .await;
    assert!(matches!(end, Ok(Ok(true))), "the stream ends: {end:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_pod_watch_resumed_after_compaction_gets_410_expired() {
    let server = start(Config::default()).await;
    ok(server.apply_pod(&PodSeed::new("default", "a")), "a");
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    let list = ok(pods.list(&ListParams::default()).await, "list");
    let rv = list.metadata.resource_version.unwrap_or_default();
    ok(server.apply_pod(&PodSeed::new("default", "b")), "b");
    server.compact_history();
    let mut stream = ok(pods.watch(&WatchParams::default(), &rv).await, "watch").boxed();
    let event = ok(stream.try_next().await, "event");
    let Some(WatchEvent::Error(status)) = event else {
        panic!("expected an ERROR event, got {event:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_kube_runtime_watcher_relists_after_410_and_follows_deletes() {
    use kube::runtime::watcher::{self, Event};

    let server = start(Config::default()).await;
    ok(server.apply_pod(&PodSeed::new("default", "a")), "a");
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    let mut events = watcher::watcher(pods, watcher::Config::default()).boxed();
    let mut initial = Vec::new();
    loop {
        match ok(events.try_next().await, "initial") {
            Some(Event::InitApply(p)) => initial.push(name(&p).to_string()),
            Some(Event::InitDone) => break,
            Some(_) => {}
            None => panic!("the watcher ended"),
        }
    }
    assert_eq!(initial, ["a"]);

    // The watch breaks and cannot be re-established for a while; meanwhile a pod is created
    // and the history the watcher would resume from is compacted: it must list again.
    server.inject(Fault::status(503).always().verb("watch"));
    server.drop_watches();
    ok(server.apply_pod(&PodSeed::new("default", "b")), "b");
    server.compact_history();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.clear_faults();
    let mut relisted = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                Some(Ok(Event::InitApply(p))) => relisted.push(name(&p).to_string()),
                Some(Ok(Event::InitDone)) => return true,
                Some(Ok(Event::Apply(p))) if name(&p) == "b" => return false,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await;
    assert_eq!(done, Ok(true), "relisted: {relisted:?}");
    relisted.sort();
    assert_eq!(relisted, ["a", "b"]);

    ok(server.delete_pod("default", "a"), "delete");
    let deleted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(Event::Delete(p))) = events.next().await {
                return name(&p).to_string();
            }
        }
    })
    .await;
    assert_eq!(deleted.as_deref(), Ok("a"));
    server.shutdown().await;
}
