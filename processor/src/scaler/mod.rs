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

pub mod behavior;
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
    /// The HPA-style extensions (tolerance, stabilization, rate policies, burst); the default
    /// changes nothing.
    pub behavior: behavior::Behavior,
}

/// A `replicas` lambda that reads the target's current replicas (`.currentField()`), to be
/// evaluated by the scaler once it has read them: evaluation error as text.
pub type FromCurrent = Arc<dyn Fn(i64) -> Result<f64, String> + Send + Sync>;

/// The replicas a `k8sAutoscale` node asks for, before the rules.
#[derive(Clone)]
pub enum Desired {
    /// The `replicas` lambda's result (an int lambda's as a float), checked with
    /// [`decision::check_raw`].
    Raw(f64),
    /// The lambda needs the current replicas (`.currentField()`), which Kapacitor reads from
    /// the API before evaluating it: the scaler resolves it after reading the scale.
    FromCurrent(FromCurrent),
    /// Every series feeding the target has been silent for the fallback budget: set this
    /// count, or hold the current one (`None`), and say so ([`decision::fallback`]).
    Fallback(Option<i64>),
}

impl Desired {
    /// The raw count given the target's `current` replicas; `None` for a fallback.
    pub fn resolve(&self, current: i64) -> Result<Option<f64>, ScaleError> {
        match self {
            Desired::Raw(raw) => Ok(Some(*raw)),
            Desired::FromCurrent(lambda) => lambda(current)
                .and_then(decision::check_raw)
                .map(Some)
                .map_err(ScaleError::Replicas),
            Desired::Fallback(_) => Ok(None),
        }
    }

    /// Decides for a target at `current` replicas ([`decision::decide`] or, for a fallback,
    /// [`decision::fallback`]); also answers the raw count the decision started from.
    pub fn decide(
        &self,
        current: i64,
        policy: &Policy,
        history: &decision::History,
        now: i64,
    ) -> Result<(Option<f64>, decision::Verdict), ScaleError> {
        Ok(match (self, self.resolve(current)?) {
            (Desired::Fallback(replicas), _) => {
                (None, decision::fallback(current, *replicas, policy))
            }
            (_, Some(raw)) => (
                Some(raw),
                decision::decide(current, raw, policy, history, now),
            ),
            (_, None) => (None, decision::fallback(current, None, policy)),
        })
    }
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Desired::Raw(n) => write!(f, "Raw({n})"),
            Desired::FromCurrent(_) => f.write_str("FromCurrent(..)"),
            Desired::Fallback(n) => write!(f, "Fallback({n:?})"),
        }
    }
}

impl PartialEq for Desired {
    fn eq(&self, other: &Desired) -> bool {
        match (self, other) {
            (Desired::Raw(a), Desired::Raw(b)) => a == b,
            (Desired::FromCurrent(a), Desired::FromCurrent(b)) => Arc::ptr_eq(a, b),
            (Desired::Fallback(a), Desired::Fallback(b)) => a == b,
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
    /// Series of the total that stopped reporting shortly before the point
    /// (`measurement,tag=value`): a decrease names them in its log line and Event.
    pub gone: Vec<String>,
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
    /// A change was wanted but another rule held the count (tolerance, stabilization, a rate
    /// policy, a burst, a fallback that holds, another autoscaler on the target).
    Held,
    /// The point was older than `max-point-age`: nothing was decided.
    Stale,
    /// HA: this replica is not the leader (or stopped leading before its write). The decision
    /// was computed (and kept in the history) and nothing was read from or written to the
    /// Kubernetes API.
    Standby,
}

/// The answer to a [`ScaleIntent`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleOutcome {
    pub decision: Decision,
    /// The target's replicas before (as just read from the API).
    pub old: i64,
    /// The replicas after (equal to `old` unless increased or decreased).
    pub new: i64,
    /// True when nothing was written because of dry run.
    pub dry_run: bool,
    /// The `.replicas()` result the decision started from (`None`: a fallback or a stale
    /// point).
    pub raw: Option<f64>,
    /// Each rule that changed or held the count, in order.
    pub steps: Vec<decision::Step>,
    /// When the decision was made, processor clock (ns): after the API read, before the write.
    pub decided_at: i64,
}

impl ScaleOutcome {
    /// An outcome without a raw count or rules (tests, stale points).
    pub fn plain(decision: Decision, old: i64, new: i64, dry_run: bool) -> ScaleOutcome {
        ScaleOutcome {
            decision,
            old,
            new,
            dry_run,
            raw: None,
            steps: Vec::new(),
            decided_at: 0,
        }
    }
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
    #[error("replicas lambda: {0}")]
    Replicas(String),
    /// A HorizontalPodAutoscaler also scales the target: nothing was written ([`conflict`]).
    #[error("{target} is also scaled by HorizontalPodAutoscaler {hpa}; not scaling it")]
    Conflict {
        target: String,
        hpa: String,
        /// The replicas read from the API.
        current: i64,
        /// The count the decision would have set.
        wanted: i64,
    },
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
