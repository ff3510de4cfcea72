//! A scaler that talks to no API: it remembers a replica count per target (starting at the
//! policy's `min`), applies the min/max clamp and the cooldowns on an injected clock, and
//! records every decision. For `.dryRun()` nodes when no real scaler is configured, and for
//! tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Decision, ScaleError, ScaleFuture, ScaleIntent, ScaleOutcome, Scaler, Target};

/// The processor clock, ns since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Debug, Clone, Copy)]
struct State {
    replicas: i64,
    last_increase: Option<i64>,
    last_decrease: Option<i64>,
}

/// See the module docs.
pub struct DryRunScaler {
    clock: Clock,
    state: Mutex<HashMap<Target, State>>,
    decisions: Mutex<Vec<(ScaleIntent, ScaleOutcome)>>,
}

impl DryRunScaler {
    pub fn new(clock: Clock) -> DryRunScaler {
        DryRunScaler {
            clock,
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

    /// Decides one intent now (synchronously).
    pub fn decide(&self, intent: &ScaleIntent) -> Result<ScaleOutcome, ScaleError> {
        let now = (self.clock)();
        let policy = &intent.policy;
        let mut states = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = states.entry(intent.target.clone()).or_insert(State {
            replicas: policy.min.max(1),
            last_increase: None,
            last_decrease: None,
        });
        let mut wanted = intent.desired.resolve(state.replicas)?;
        if policy.max > 0 {
            wanted = wanted.min(policy.max);
        }
        wanted = wanted.max(policy.min.max(1));
        let old = state.replicas;
        let within = |last: Option<i64>, cooldown: std::time::Duration| {
            let cooldown = i64::try_from(cooldown.as_nanos()).unwrap_or(i64::MAX);
            last.is_some_and(|t| now.saturating_sub(t) < cooldown)
        };
        let decision = if wanted == old {
            Decision::Unchanged
        } else if wanted > old {
            if within(state.last_increase, policy.increase_cooldown) {
                Decision::CooldownDrop
            } else {
                state.last_increase = Some(now);
                Decision::Increased
            }
        } else if within(state.last_decrease, policy.decrease_cooldown) {
            Decision::CooldownDrop
        } else {
            state.last_decrease = Some(now);
            Decision::Decreased
        };
        if matches!(decision, Decision::Increased | Decision::Decreased) {
            state.replicas = wanted;
        }
        let outcome = ScaleOutcome {
            decision,
            old,
            new: state.replicas,
            dry_run: true,
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
            desired: Desired::Fixed(desired),
            policy: Policy {
                min: 1,
                max: 10,
                increase_cooldown: Duration::from_secs(60),
                decrease_cooldown: Duration::from_secs(120),
                dry_run: true,
            },
            point_time_ns: 0,
            task: "t".into(),
            node: "k8s_autoscale6".into(),
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
        minus_one.desired = Desired::FromCurrent(Arc::new(|current| Ok(current - 1)));
        let outcome = scaler.decide(&minus_one).unwrap();
        assert_eq!((outcome.old, outcome.new), (4, 3));
    }
}
