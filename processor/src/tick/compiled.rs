//! A compiled task: its [`Pipeline`] of [`Node`]s (creation order, `stream0` first), the
//! `dbrp` statements of its script, and the queries the rest of the processor asks of it.

use crate::routing::Key;

use super::Location;
use super::nodes::{NodeKind, NodeSpec};
use super::value::Value;

/// A `dbrp "db"."rp"` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dbrp {
    pub database: String,
    pub retention_policy: String,
}

/// One node of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Index in creation order; `nodes[id]` in [`Pipeline::nodes`].
    pub id: usize,
    /// Kapacitor's name: kind prefix + id (`stream0`, `from1`, `k8s_autoscale6`).
    pub name: String,
    pub spec: NodeSpec,
    /// The node feeding this one (`None` only for `stream0`).
    pub parent: Option<usize>,
    /// Nodes fed by this one, in creation order.
    pub children: Vec<usize>,
    /// Where the node is created in the script (`stream0`: where `stream` first appears).
    pub location: Location,
}

impl Node {
    pub fn kind(&self) -> NodeKind {
        self.spec.kind()
    }
}

/// A validated pipeline: nodes in creation order (parents before children), node 0 is `stream`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// `dbrp` statements of the script (the task's dbrps may also come from the define call).
    pub dbrps: Vec<Dbrp>,
    pub nodes: Vec<Node>,
    /// Value `var`s after overrides, in declaration order (node variables are not listed).
    pub vars: Vec<(String, Value)>,
}

impl Pipeline {
    pub fn node(&self, id: usize) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The node called `name` (`derivative2`).
    pub fn node_named(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The (db, rp, measurement) keys the task reads, for `dbrps` (the task's, from the define
    /// call and the script's `dbrp` statements): every dbrp crossed with every `from()` node's
    /// measurement (`None`: all measurements), skipping pairs a `from().database()` or
    /// `.retentionPolicy()` filter excludes, deduplicated in order.
    pub fn subscription_keys(&self, dbrps: &[Dbrp]) -> Vec<Key> {
        let mut keys: Vec<Key> = Vec::new();
        for dbrp in dbrps {
            for node in &self.nodes {
                let NodeSpec::From(from) = &node.spec else {
                    continue;
                };
                let db_ok = from.database.as_ref().is_none_or(|d| *d == dbrp.database);
                let rp_ok = from
                    .retention_policy
                    .as_ref()
                    .is_none_or(|r| *r == dbrp.retention_policy);
                let key = Key {
                    db: dbrp.database.clone(),
                    rp: dbrp.retention_policy.clone(),
                    measurement: from.measurement.clone(),
                };
                if db_ok && rp_ok && !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// Every (parent, child) edge, parents in creation order.
    pub fn edges(&self) -> impl Iterator<Item = (&Node, &Node)> {
        self.nodes.iter().flat_map(move |parent| {
            parent
                .children
                .iter()
                .filter_map(move |c| self.nodes.get(*c).map(|child| (parent, child)))
        })
    }
}
