//! Watch: the store's change history (what etcd's revision history gives the API server) and
//! the filtering of watch events for one request (`?watch=true`, `resourceVersion`,
//! `labelSelector`, `fieldSelector=metadata.name=`), both pure; and `start`, the stream
//! built on them: the initial or resumed events, then live ones, as JSON lines.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::resources::{self, ResourceDef};
use crate::routes::Call;
use crate::selector::{FieldSelector, Selector};
use crate::server::{Body, Shared, now_secs};
use crate::status::{ApiError, Result as ApiResult};
use crate::table::{self, IncludeObject};

/// How many past events the store keeps by default for watches that resume from a
/// resourceVersion.
pub const HISTORY: usize = 4096;

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted (the object is its last state).
    Deleted,
    /// Progress only: the resourceVersion the stream has reached (never stored).
    Bookmark,
}

/// One change of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// The revision the change produced.
    pub revision: u64,
    /// What happened.
    pub kind: EventType,
    /// API group of the object.
    pub group: &'static str,
    /// Plural resource.
    pub plural: &'static str,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The object after the change (with kind and apiVersion).
    pub object: Value,
}

impl WatchEvent {
    /// The JSON line a watch stream carries.
    pub fn to_line(&self) -> Vec<u8> {
        line(self.kind, &self.object)
    }
}

/// A watch stream line for `object`.
pub fn line(kind: EventType, object: &Value) -> Vec<u8> {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The ERROR line ending a watch whose resourceVersion is older than the history kept.
pub fn expired_line(requested: u64, oldest: u64) -> Vec<u8> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {requested} ({oldest})"),
        "reason": "Expired", "code": 410,
    });
    let mut bytes =
        serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A BOOKMARK line: only the kind and the resourceVersion the stream has reached, as the API
/// server sends them to watches with `allowWatchBookmarks=true`.
pub fn bookmark_line(def: &ResourceDef, revision: u64) -> Vec<u8> {
    line(
        EventType::Bookmark,
        &json!({"kind": def.kind, "apiVersion": def.group_version(),
            "metadata": {"resourceVersion": revision.to_string()}}),
    )
}

/// The bounded change history.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    events: VecDeque<Arc<WatchEvent>>,
    /// The revision before the oldest kept event (a watch from an older one has expired).
    floor: u64,
}

/// A watch from a resourceVersion older than the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The oldest resourceVersion a watch may still start from.
    pub oldest: u64,
}

impl Default for History {
    fn default() -> Self {
        History::with_capacity(HISTORY)
    }
}

impl History {
    /// A history keeping the last `capacity` events (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        History {
            capacity: capacity.max(1),
            events: VecDeque::new(),
            floor: 0,
        }
    }

    /// Records an event, forgetting the oldest beyond the capacity.
    pub fn push(&mut self, event: Arc<WatchEvent>) {
        if self.events.len() >= self.capacity
            && let Some(old) = self.events.pop_front()
        {
            self.floor = old.revision;
        }
        self.events.push_back(event);
    }

    /// Forgets every kept event, as etcd's compaction does: a watch resuming from any
    /// resourceVersion before `revision` gets 410 Expired.
    pub fn compact(&mut self, revision: u64) {
        self.events.clear();
        self.floor = self.floor.max(revision);
    }

    /// The events after `revision`, oldest first.
    pub fn since(&self, revision: u64) -> Result<Vec<Arc<WatchEvent>>, Expired> {
        if revision < self.floor {
            return Err(Expired { oldest: self.floor });
        }
        Ok(self
            .events
            .iter()
            .filter(|e| e.revision > revision)
            .cloned()
            .collect())
    }
}

/// Which events one watch request wants.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    /// API group.
    pub group: &'static str,
    /// Plural resource.
    pub plural: &'static str,
    /// Namespace, empty for all.
    pub namespace: String,
    /// `fieldSelector=metadata.name=…` or the name in the path.
    pub name: Option<String>,
    /// `labelSelector`.
    pub labels: Selector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl WatchFilter {
    /// A filter for `def` in `namespace` (empty: all).
    pub fn new(
        def: &ResourceDef,
        namespace: &str,
        name: Option<String>,
        labels: Selector,
        fields: FieldSelector,
    ) -> Self {
        WatchFilter {
            group: def.group,
            plural: def.plural,
            namespace: namespace.to_string(),
            name,
            labels,
            fields,
        }
    }

    /// Whether the event belongs to this watch.
    pub fn matches(&self, event: &WatchEvent) -> bool {
        event.group == self.group
            && event.plural == self.plural
            && (self.namespace.is_empty() || event.namespace == self.namespace)
            && self.name.as_deref().is_none_or(|n| n == event.name)
            && self
                .labels
                .matches(event.object.pointer("/metadata/labels"))
            && self.fields.matches(&event.object)
    }
}

/// A watch stream's body: the lines a watch task sends, until it drops its sender.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|line| line.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

/// The longest a watch stays open (the API server picks 30 to 60 minutes).
const MAX_WATCH: Duration = Duration::from_secs(1800);

/// Starts a watch stream: the initial or resumed events, then live ones, as JSON lines.
pub(crate) fn start(shared: &Arc<Shared>, call: &Call) -> ApiResult<Response<Body>> {
    let info = &call.info;
    let def = resources::find(&info.api_group, &info.api_version, &info.resource)
        .ok_or(ApiError::NoRoute)?;
    if !info.subresource.is_empty() {
        return Err(ApiError::NoRoute);
    }
    let (labels, fields) = call.selectors()?;
    let name = if info.name.is_empty() {
        fields.name().map(str::to_string)
    } else {
        Some(info.name.clone())
    };
    let timeout = call
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(MAX_WATCH)
        .min(MAX_WATCH);
    let rv = call.param("resourceVersion").unwrap_or("");
    let start_rv: Option<u64> = match rv {
        "" | "0" => None,
        text => Some(
            text.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {text:?}")))?,
        ),
    };
    let send_initial = call.param("sendInitialEvents") == Some("true");
    let bookmarks = call.param("allowWatchBookmarks") == Some("true");
    let bookmark_every = shared.bookmark_every;
    let mut dropped = shared.drop_watches.subscribe();
    let table = call
        .accept
        .contains("as=Table")
        .then(|| IncludeObject::from_query(call.param("includeObject")));
    let filter = WatchFilter::new(def, &info.namespace, name, labels, fields);
    let render = move |object: &Value| -> Value {
        match table {
            Some(include) => table::render_one(def, object, include, now_secs()),
            None => object.clone(),
        }
    };

    let mut initial: Vec<Vec<u8>> = Vec::new();
    let mut expired = false;
    let (live, from_rv) = {
        let state = shared.lock();
        let live = shared.events.subscribe();
        let current = state.store.revision();
        match start_rv {
            None => {
                for obj in state.store.matching(
                    def,
                    &filter.namespace,
                    &filter.labels,
                    &filter.fields,
                    filter.name.as_deref(),
                ) {
                    initial.push(line(EventType::Added, &render(&obj)));
                }
            }
            Some(from) => match state.store.history_since(from) {
                Ok(events) => {
                    for event in events.iter().filter(|e| filter.matches(e)) {
                        initial.push(line(event.kind, &render(&event.object)));
                    }
                }
                Err(e) => {
                    initial.push(expired_line(from, e.oldest));
                    expired = true;
                }
            },
        }
        if send_initial && !expired {
            let bookmark = serde_json::json!({
                "type": "BOOKMARK",
                "object": {"kind": def.kind, "apiVersion": def.group_version(),
                    "metadata": {"resourceVersion": current.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}
            });
            let mut line = serde_json::to_vec(&bookmark).unwrap_or_default();
            line.push(b'\n');
            initial.push(line);
        }
        (live, current)
    };

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let mut stopping = shared.stopping.clone();
    tokio::spawn(async move {
        let mut live = live;
        for line in initial {
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
        if expired {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark =
            tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
        // The newest revision this stream has seen, matching or not: what a bookmark carries.
        let mut seen = from_rv;
        loop {
            tokio::select! {
                _ = bookmark.tick(), if bookmarks => {
                    if tx.send(Bytes::from(bookmark_line(def, seen))).await.is_err() {
                        return;
                    }
                }
                received = live.recv() => match received {
                    Ok(event) if event.revision > from_rv && filter.matches(&event) => {
                        seen = seen.max(event.revision);
                        let line = line(event.kind, &render(&event.object));
                        if tx.send(Bytes::from(line)).await.is_err() {
                            return;
                        }
                    }
                    Ok(event) => seen = seen.max(event.revision),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too slow a reader: end with 410 Expired so the client relists.
                        let _ = tx.send(Bytes::from(expired_line(from_rv, from_rv))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = &mut deadline => return,
                _ = stopping.changed() => return,
                _ = dropped.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let mut resp = Response::new(ChannelBody { rx }.boxed());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, LEASES};

    fn event(revision: u64, plural: &'static str, name: &str) -> Arc<WatchEvent> {
        Arc::new(WatchEvent {
            revision,
            kind: EventType::Modified,
            group: if plural == "deployments" {
                "apps"
            } else {
                "coordination.k8s.io"
            },
            plural,
            namespace: "default".into(),
            name: name.into(),
            object: json!({"metadata": {"name": name, "labels": {"app": name}}}),
        })
    }

    #[test]
    fn history_returns_events_after_a_revision_and_expires_old_ones() {
        let mut h = History::default();
        for rv in 1..=(HISTORY as u64 + 10) {
            h.push(event(rv, "deployments", "app"));
        }
        assert_eq!(h.since(5), Err(Expired { oldest: 10 }));
        let recent = h.since(HISTORY as u64 + 8).unwrap_or_default();
        assert_eq!(
            recent.iter().map(|e| e.revision).collect::<Vec<_>>(),
            [HISTORY as u64 + 9, HISTORY as u64 + 10]
        );
    }

    #[test]
    fn filters_match_resource_namespace_name_and_labels() {
        let f = WatchFilter::new(
            &DEPLOYMENTS,
            "default",
            None,
            Selector::parse("app=app").unwrap_or_default(),
            FieldSelector::default(),
        );
        assert!(f.matches(&event(1, "deployments", "app")));
        assert!(!f.matches(&event(1, "deployments", "web")));
        assert!(!f.matches(&event(1, "leases", "app")));
        let named = WatchFilter::new(
            &LEASES,
            "",
            Some("x".into()),
            Selector::default(),
            FieldSelector::default(),
        );
        assert!(named.matches(&event(1, "leases", "x")));
        assert!(!named.matches(&event(1, "leases", "y")));
    }

    #[test]
    fn lines_are_newline_terminated_watch_events() {
        let text = String::from_utf8(line(EventType::Added, &json!({"a": 1}))).unwrap_or_default();
        assert_eq!(text, "{\"object\":{\"a\":1},\"type\":\"ADDED\"}\n");
        let expired = String::from_utf8(expired_line(3, 9)).unwrap_or_default();
        assert!(
            expired.contains("\"reason\":\"Expired\"")
                && expired.contains("too old resource version: 3 (9)")
        );
    }
}
