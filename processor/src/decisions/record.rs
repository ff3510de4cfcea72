//! One decision record, as the API and the CLI show it (JSON field names are the contract).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scaler::decision::Step;
use crate::scaler::{Decision, ScaleError, ScaleOutcome, Target};

/// What came of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The count was raised.
    Increased,
    /// The count was lowered.
    Decreased,
    /// Nothing to change.
    Unchanged,
    /// A change was wanted and a rule held it (see `rules`).
    Held,
    /// A change was decided and not written: dry run.
    DryRun,
    /// The scaler failed (see `error`).
    Error,
    /// HA: this replica is a follower; the decision was computed, nothing was read from or
    /// written to the Kubernetes API (`current` is the count it last saw, else the one it
    /// wants).
    Standby,
}

impl Outcome {
    /// Every outcome, in the order metrics list them.
    pub const ALL: [Outcome; 7] = [
        Outcome::Increased,
        Outcome::Decreased,
        Outcome::Unchanged,
        Outcome::Held,
        Outcome::DryRun,
        Outcome::Error,
        Outcome::Standby,
    ];

    /// The name records, logs and metrics use.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Increased => "increased",
            Outcome::Decreased => "decreased",
            Outcome::Unchanged => "unchanged",
            Outcome::Held => "held",
            Outcome::DryRun => "dry-run",
            Outcome::Error => "error",
            Outcome::Standby => "standby",
        }
    }

    /// Whether the record describes a change (made, or decided in dry run): never coalesced.
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Outcome::Increased | Outcome::Decreased | Outcome::DryRun
        )
    }

    /// The outcome of a scaler's answer.
    pub fn of(outcome: &ScaleOutcome) -> Outcome {
        match outcome.decision {
            Decision::Increased | Decision::Decreased if outcome.dry_run => Outcome::DryRun,
            Decision::Increased => Outcome::Increased,
            Decision::Decreased => Outcome::Decreased,
            Decision::Unchanged => Outcome::Unchanged,
            Decision::CooldownDrop | Decision::Held | Decision::Stale => Outcome::Held,
            Decision::Standby => Outcome::Standby,
        }
    }
}

/// The workload a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordTarget {
    /// The `[[kubernetes]]` id (`.cluster()`), empty for the default one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Empty: the processor's own namespace.
    pub namespace: String,
    /// The resource, plural as in API paths (`deployments`, ...).
    pub kind: String,
    pub name: String,
}

/// `namespace/kind/name` (`<own>` for the processor's own namespace), after `cluster:` when
/// the target is not in the default cluster.
impl std::fmt::Display for RecordTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.cluster.is_empty() {
            write!(f, "{}:", self.cluster)?;
        }
        let namespace = if self.namespace.is_empty() {
            "<own>"
        } else {
            &self.namespace
        };
        write!(f, "{namespace}/{}/{}", self.kind, self.name)
    }
}

impl From<&Target> for RecordTarget {
    fn from(target: &Target) -> Self {
        RecordTarget {
            cluster: target.cluster.clone(),
            namespace: target.namespace.clone(),
            kind: target.kind.resource().to_owned(),
            name: target.name.clone(),
        }
    }
}

/// A series that contributed to a summed total, and when it last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contributor {
    /// `measurement,tag=value,...`
    pub series: String,
    /// RFC 3339, the series' newest point time.
    pub last: String,
}

/// What the node evaluated.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inputs {
    /// The point's fields.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// RFC 3339, the point's time.
    pub time: String,
    /// Processor clock minus the point's time when the decision was made, seconds.
    pub age_seconds: f64,
    /// For a summed total: how many series made it (0 otherwise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub series_count: usize,
    /// For a summed total: its series with their last times, newest first (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Contributor>,
    /// Series that stopped reporting shortly before this point: a total that fell because
    /// of them is a lost pod's silence, not less load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired: Vec<Contributor>,
}

/// One evaluation of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 with nanoseconds, processor clock: when the decision was made.
    pub time: String,
    /// The same, ns since the epoch (for sorting and the CLI's ages).
    pub time_ns: i64,
    /// The task's id.
    pub task: String,
    /// The k8sAutoscale node's name (`k8s_autoscale6`).
    pub node: String,
    pub target: RecordTarget,
    pub inputs: Inputs,
    /// Replicas read from the API (the simulated target in dry run and replay); `None` when
    /// the scaler failed before reading them.
    pub current: Option<i64>,
    /// The `.replicas()` result; `None` for a fallback, a stale point or an error.
    pub raw: Option<f64>,
    /// The count after every rule (equal to `current` unless changed).
    pub desired: Option<i64>,
    /// Each rule that changed or held the count, in order.
    pub rules: Vec<Step>,
    pub outcome: Outcome,
    /// Seconds from the newest contributing sample to the API call.
    pub delay_seconds: Option<f64>,
    /// The scaler's error, for `outcome: error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many equal records (same outcome, counts and rules) this one stands for: records
    /// that changed nothing are coalesced into the newest.
    #[serde(default = "one")]
    pub repeated: u64,
}

fn one() -> u64 {
    1
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Record {
    /// Fills the scaler's part of a record from its answer.
    pub fn decided(&mut self, outcome: &ScaleOutcome) {
        self.current = Some(outcome.old);
        self.raw = outcome.raw;
        self.desired = Some(outcome.new);
        self.rules = outcome.steps.clone();
        self.outcome = Outcome::of(outcome);
    }

    /// Fills the scaler's part of a record from its error.
    pub fn failed(&mut self, error: &ScaleError) {
        self.outcome = Outcome::Error;
        self.error = Some(error.to_string());
        if let ScaleError::Conflict {
            current, wanted, ..
        } = *error
        {
            // Another autoscaler scales the target: the change is held, not failed.
            self.outcome = Outcome::Held;
            self.current = Some(current);
            self.desired = Some(current);
            self.rules.push(Step {
                rule: crate::scaler::decision::Rule::Conflict,
                before: wanted,
                after: current,
            });
        }
    }

    /// A decrease (made or decided in dry run) while series of the total had just stopped
    /// reporting (`inputs.expired`): the total may have fallen because pods went silent.
    pub fn is_decrease_after_silence(&self) -> bool {
        self.outcome.is_change()
            && !self.inputs.expired.is_empty()
            && matches!((self.current, self.desired), (Some(c), Some(d)) if d < c)
    }

    /// Whether `other` says the same as this record (it may be coalesced into it).
    pub fn same_as(&self, other: &Record) -> bool {
        !self.outcome.is_change()
            && self.outcome == other.outcome
            && self.current == other.current
            && self.desired == other.desired
            && self.rules == other.rules
            && self.error == other.error
            && self.task == other.task
            && self.node == other.node
    }
}

#[cfg(test)]
impl Record {
    /// A record for tests: task `t`, node `k8s_autoscale2`, `deployments/name` in the
    /// processor's own namespace, `current` → `desired` (raw = desired), no rules, no delay.
    pub(crate) fn fixture(
        name: &str,
        time_ns: i64,
        outcome: Outcome,
        current: i64,
        desired: i64,
    ) -> Record {
        Record {
            time: String::new(),
            time_ns,
            task: "t".into(),
            node: "k8s_autoscale2".into(),
            target: RecordTarget {
                cluster: String::new(),
                namespace: String::new(),
                kind: "deployments".into(),
                name: name.into(),
            },
            inputs: Inputs::default(),
            current: Some(current),
            raw: Some(desired as f64),
            desired: Some(desired),
            rules: Vec::new(),
            outcome,
            delay_seconds: None,
            error: None,
            repeated: 1,
        }
    }
}
