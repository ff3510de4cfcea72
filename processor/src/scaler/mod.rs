//! Scaling: what a `k8sAutoscale` node asks for, and who carries it out.
//!
//! The node evaluates its `replicas` lambda on each point and hands a [`ScaleIntent`] to a
//! [`Scaler`]. The scaler owns everything that needs the outside world or the processor's clock:
//! it reads the target's current scale, applies the policy (min/max clamp, no-op when unchanged,
//! cooldowns measured on the processor's clock, no scaling from stale points), changes the scale
//! through the Kubernetes API (or only records it in dry run) and answers with a
//! [`ScaleOutcome`], from which the node emits its `old`/`new` point and counts its stats.
//!
//! The trait keeps the pipeline free of IO: tests drive nodes with a scaler of their own.

pub mod cluster;
pub mod conflict;
pub mod decision;
pub mod dry_run;
pub mod kubernetes;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The kind of workload a node scales (Kapacitor's `kind` property, plural as in the API path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Deployments,
    StatefulSets,
    ReplicaSets,
    ReplicationControllers,
}

impl Kind {
    /// The resource name in API paths (`deployments`, ...).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Deployments => "deployments",
            Kind::StatefulSets => "statefulsets",
            Kind::ReplicaSets => "replicasets",
            Kind::ReplicationControllers => "replicationcontrollers",
        }
    }

    /// Reads a `kind` as TICKscript writes it: `deployments`, `statefulsets`, `replicasets`,
    /// `replicationcontrollers`, singular forms accepted.
    pub fn from_name(name: &str) -> Option<Kind> {
        match name.to_ascii_lowercase().trim_end_matches('s') {
            "deployment" => Some(Kind::Deployments),
            "statefulset" => Some(Kind::StatefulSets),
            "replicaset" => Some(Kind::ReplicaSets),
            "replicationcontroller" => Some(Kind::ReplicationControllers),
            _ => None,
        }
    }
}

/// What is scaled. State (cooldowns, last known scale) is kept per target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// The `[[kubernetes]]` section's `id` (the node's `cluster` property); empty = the default.
    pub cluster: String,
    /// Empty means the processor's own namespace (not `default`, as Kapacitor did).
    pub namespace: String,
    pub kind: Kind,
    pub name: String,
}

/// The node's policy for one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Never fewer replicas (at least 1).
    pub min: i64,
    /// Never more replicas; 0 means no maximum.
    pub max: i64,
    /// After a change, no increase for this long (processor clock).
    pub increase_cooldown: Duration,
    /// After a change, no decrease for this long (processor clock).
    pub decrease_cooldown: Duration,
    /// Decide and report, never change the target (`.dryRun()` or the config's `dry-run`).
    pub dry_run: bool,
}

/// A `replicas` lambda that reads the target's current replicas (`.currentField()`), to be
/// evaluated by the scaler once it has read them: evaluation error as text.
pub type FromCurrent = Arc<dyn Fn(i64) -> Result<i64, String> + Send + Sync>;

/// The replicas a `k8sAutoscale` node asks for, before clamping.
#[derive(Clone)]
pub enum Desired {
    /// The `replicas` lambda's result.
    Fixed(i64),
    /// The lambda needs the current replicas (`.currentField()`), which Kapacitor reads from
    /// the API before evaluating it: the scaler resolves it after reading the scale.
    FromCurrent(FromCurrent),
}

impl Desired {
    /// The wanted replicas given the target's `current` ones.
    pub fn resolve(&self, current: i64) -> Result<i64, ScaleError> {
        match self {
            Desired::Fixed(n) => Ok(*n),
            Desired::FromCurrent(lambda) => lambda(current).map_err(ScaleError::Replicas),
        }
    }
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Desired::Fixed(n) => write!(f, "Fixed({n})"),
            Desired::FromCurrent(_) => f.write_str("FromCurrent(..)"),
        }
    }
}

impl PartialEq for Desired {
    fn eq(&self, other: &Desired) -> bool {
        match (self, other) {
            (Desired::Fixed(a), Desired::Fixed(b)) => a == b,
            (Desired::FromCurrent(a), Desired::FromCurrent(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// One request from a `k8sAutoscale` node.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleIntent {
    pub target: Target,
    /// The `replicas` lambda's result, or the lambda itself when it reads the current count.
    pub desired: Desired,
    pub policy: Policy,
    /// The time of the point that produced it, ns since the epoch (stale points never scale).
    pub point_time_ns: i64,
    /// Which task and node asked (for logs and Kubernetes Events).
    pub task: String,
    pub node: String,
}

/// What the scaler decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The scale was raised from `old` to `new`.
    Increased,
    /// The scale was lowered from `old` to `new`.
    Decreased,
    /// The target already had the wanted count (after clamping).
    Unchanged,
    /// A change was wanted but a cooldown forbids it for now.
    CooldownDrop,
    /// The point was older than `max-point-age`: nothing was decided.
    Stale,
}

/// The answer to a [`ScaleIntent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleOutcome {
    pub decision: Decision,
    /// The target's replicas before (as just read from the API).
    pub old: i64,
    /// The replicas after (equal to `old` unless increased or decreased).
    pub new: i64,
    /// True when nothing was written because of dry run.
    pub dry_run: bool,
}

/// Why a scale request failed; the node counts it in `errors`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    #[error("no kubernetes cluster {0:?} is configured")]
    UnknownCluster(String),
    #[error("{target} not found")]
    NotFound { target: String },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("kubernetes API error: {0}")]
    Api(String),
    #[error("the scaler is shutting down")]
    ShuttingDown,
    #[error("replicas lambda with the current replicas: {0}")]
    Replicas(String),
    /// A HorizontalPodAutoscaler also scales the target: nothing was written ([`conflict`]).
    #[error("{target} is also scaled by HorizontalPodAutoscaler {hpa}; not scaling it")]
    Conflict { target: String, hpa: String },
}

/// A boxed future, so [`Scaler`] stays object-safe.
pub type ScaleFuture = Pin<Box<dyn Future<Output = Result<ScaleOutcome, ScaleError>> + Send>>;

/// Carries out scale intents. Implementations serialise requests per target (at most one API
/// call in flight for a target) and may take a while (retries with backoff): the caller awaits
/// without blocking other tasks.
pub trait Scaler: Send + Sync {
    fn scale(&self, intent: ScaleIntent) -> ScaleFuture;

    /// Whether `.cluster(id)` names a cluster this scaler can reach (the empty id is the
    /// default). Enabling a task whose cluster resolves to nothing fails with this.
    fn has_cluster(&self, _id: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_as_tickscript_writes_them() {
        assert_eq!(Kind::from_name("deployments"), Some(Kind::Deployments));
        assert_eq!(Kind::from_name("Deployment"), Some(Kind::Deployments));
        assert_eq!(
            Kind::from_name("replicationcontroller"),
            Some(Kind::ReplicationControllers)
        );
        assert_eq!(Kind::from_name("statefulsets"), Some(Kind::StatefulSets));
        assert_eq!(Kind::from_name("daemonsets"), None);
        assert_eq!(Kind::ReplicaSets.resource(), "replicasets");
    }
}
