//! A scaler that talks to no API: it remembers a replica count per target (starting at the
//! policy's `min`, or a given count), decides with the same rules as the Kubernetes scaler
//! ([`super::decision`]) on the clock it is given, applies each change to its simulated
//! target, and records every decision. For `.dryRun()` nodes when no real scaler is
//! configured, for `processor replay`, and for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::decision::History;
use super::{Decision, ScaleError, ScaleFuture, ScaleIntent, ScaleOutcome, Scaler, Target};
use crate::clock::Clock;

/// One target: the count it would have, and its decision history.
#[derive(Debug, Clone)]
struct State {
    replicas: i64,
    history: History,
}

/// See the module docs.
pub struct DryRunScaler {
    clock: Clock,
    /// The count a target starts at; `None`: the policy's `min`.
    initial: Option<i64>,
    /// Whether outcomes say `dry_run` (a `.dryRun()` node) or are a simulation's changes.
    dry_run: bool,
    state: Mutex<HashMap<Target, State>>,
    decisions: Mutex<Vec<(ScaleIntent, ScaleOutcome)>>,
}

impl DryRunScaler {
    /// For `.dryRun()` nodes: every outcome says `dry_run`.
    pub fn new(clock: Clock) -> DryRunScaler {
        DryRunScaler {
            dry_run: true,
            ..DryRunScaler::starting_at(clock, None)
        }
    }

    /// A simulation (`processor replay --replicas N`, tests): every target starts at
    /// `replicas` (`None`: its policy's `min`) and each change is applied to it, reported as
    /// an increase or a decrease, not as a dry run.
    pub fn starting_at(clock: Clock, replicas: Option<i64>) -> DryRunScaler {
        DryRunScaler {
            clock,
            initial: replicas,
            dry_run: false,
            state: Mutex::new(HashMap::new()),
            decisions: Mutex::new(Vec::new()),
        }
    }

    /// Every decision so far, in order.
    pub fn decisions(&self) -> Vec<(ScaleIntent, ScaleOutcome)> {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Decides one intent now (synchronously), with the Kubernetes scaler's rules.
    pub fn decide(&self, intent: &ScaleIntent) -> Result<ScaleOutcome, ScaleError> {
        let now = (self.clock)();
        let mut states = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = states.entry(intent.target.clone()).or_insert(State {
            replicas: self.initial.unwrap_or(intent.policy.min).max(0),
            history: History::default(),
        });
        let old = state.replicas;
        let (raw, verdict) = intent
            .desired
            .decide(old, &intent.policy, &state.history, now)?;
        state.history.decided(&verdict, now);
        if matches!(verdict.decision, Decision::Increased | Decision::Decreased) {
            state.history.applied(&verdict, old, now);
            state.replicas = verdict.new;
        }
        let outcome = ScaleOutcome {
            decision: verdict.decision,
            old,
            new: state.replicas,
            dry_run: self.dry_run,
            raw,
            steps: verdict.steps,
            decided_at: now,
        };
        drop(states);
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((intent.clone(), outcome.clone()));
        Ok(outcome)
    }
}

impl Scaler for DryRunScaler {
    fn scale(&self, intent: ScaleIntent) -> ScaleFuture {
        let outcome = self.decide(&intent);
        Box::pin(async move { outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::{Desired, Kind, Policy};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::Duration;

    fn intent(desired: i64) -> ScaleIntent {
        ScaleIntent {
            target: Target {
                cluster: String::new(),
                namespace: String::new(),
                kind: Kind::Deployments,
                name: "app".into(),
            },
            desired: Desired::Raw(desired as f64),
            policy: Policy {
                min: 1,
                max: 10,
                increase_cooldown: Duration::from_secs(60),
                decrease_cooldown: Duration::from_secs(120),
                dry_run: true,
                behavior: Default::default(),
            },
            point_time_ns: 0,
            task: "t".into(),
            node: "k8s_autoscale6".into(),
            gone: Vec::new(),
        }
    }

    #[test]
    fn clamps_then_honours_each_cooldown_on_the_clock() {
        let now = Arc::new(AtomicI64::new(0));
        let clock_now = Arc::clone(&now);
        let scaler = DryRunScaler::new(Arc::new(move || clock_now.load(Ordering::SeqCst)));
        let first = scaler.decide(&intent(50)).unwrap();
        assert_eq!(
            (first.decision, first.old, first.new),
            (Decision::Increased, 1, 10)
        );
        now.store(30_000_000_000, Ordering::SeqCst);
        assert_eq!(
            scaler.decide(&intent(2)).unwrap().decision,
            Decision::Decreased
        );
        assert_eq!(
            scaler.decide(&intent(5)).unwrap().decision,
            Decision::CooldownDrop
        );
        now.store(61_000_000_000, Ordering::SeqCst);
        assert_eq!(
            scaler.decide(&intent(5)).unwrap().decision,
            Decision::Increased
        );
        assert_eq!(
            scaler.decide(&intent(5)).unwrap().decision,
            Decision::Unchanged
        );
        assert_eq!(scaler.decisions().len(), 5);
    }

    #[test]
    fn a_current_field_lambda_starts_from_the_dry_run_count() {
        let scaler = DryRunScaler::new(Arc::new(|| 0));
        scaler.decide(&intent(4)).unwrap();
        let mut minus_one = intent(0);
        minus_one.desired = Desired::FromCurrent(Arc::new(|current| Ok((current - 1) as f64)));
        let outcome = scaler.decide(&minus_one).unwrap();
        assert_eq!((outcome.old, outcome.new), (4, 3));
    }
}
