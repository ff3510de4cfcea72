//! Watch: the store's change history (what etcd's revision history gives the API server) and
//! the filtering of watch events for one request (`?watch=true`, `resourceVersion`,
//! `labelSelector`, `fieldSelector=metadata.name=`). Pure; the server streams the result.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, Selector};

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
