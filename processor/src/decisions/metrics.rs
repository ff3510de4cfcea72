//! What `/metrics` shows of one task's decisions, per target: the last desired and current
//! replicas, evaluations by outcome, rules by name, and the delay from the newest
//! contributing sample to the API call as a histogram. Fed every record (coalescing is the
//! log's business: each evaluation counts here), read when `/metrics` is scraped. It lives
//! with the running task, so a deleted task's label sets go with it; past [`MAX_TARGETS`]
//! targets, the one updated longest ago is forgotten.

use std::collections::BTreeMap;

use super::log::MAX_TARGETS;
use super::record::{Outcome, Record, RecordTarget};
use crate::scaler::decision::Rule;

/// Upper bounds of the delay histogram's buckets, seconds (`+Inf` follows).
pub const DELAY_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// A histogram of delays: per bucket the observations that fell in it (not cumulative), the
/// ones above every bound, their count and sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DelayHistogram {
    /// `in_bucket[i]`: observations in `(DELAY_BUCKETS[i-1], DELAY_BUCKETS[i]]`.
    pub in_bucket: [u64; DELAY_BUCKETS.len()],
    /// Observations above the last bound.
    pub above: u64,
    pub count: u64,
    /// Seconds.
    pub sum: f64,
}

impl DelayHistogram {
    /// Adds one delay (seconds; a negative one, from a point stamped ahead of the processor
    /// clock, counts as 0).
    pub fn observe(&mut self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            f64::MAX
        };
        match DELAY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            Some(i) => {
                if let Some(bucket) = self.in_bucket.get_mut(i) {
                    *bucket += 1;
                }
            }
            None => self.above += 1,
        }
        self.count += 1;
        if seconds < f64::MAX {
            self.sum += seconds;
        }
    }

    /// `(bound, observations at or below it)` for every bound, as the exposition's `le`
    /// buckets (the `+Inf` bucket is [`DelayHistogram::count`]).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        DELAY_BUCKETS
            .iter()
            .zip(self.in_bucket)
            .map(|(bound, n)| {
                total += n;
                (*bound, total)
            })
            .collect()
    }
}

/// One target's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMetrics {
    pub node: String,
    pub target: RecordTarget,
    /// The count after every rule, as last decided (`None` until a decision read the API).
    pub desired: Option<i64>,
    /// Replicas as last read from the API.
    pub current: Option<i64>,
    /// Evaluations by outcome, in the order of [`Outcome::ALL`].
    pub outcomes: [u64; Outcome::ALL.len()],
    /// Rules at work, in the order of [`Rule::ALL`]: one per record each rule appears in.
    pub rules: [u64; Rule::ALL.len()],
    pub delay: DelayHistogram,
    /// Decreases decided while series of the total had just stopped reporting: a total that
    /// fell because pods went silent, not because load fell.
    pub decreases_after_silence: u64,
    /// The newest record's time (ns), to forget the target updated longest ago.
    last: i64,
}

impl TargetMetrics {
    fn new(node: String, target: RecordTarget) -> TargetMetrics {
        TargetMetrics {
            node,
            target,
            desired: None,
            current: None,
            outcomes: [0; Outcome::ALL.len()],
            rules: [0; Rule::ALL.len()],
            delay: DelayHistogram::default(),
            decreases_after_silence: 0,
            last: i64::MIN,
        }
    }

    /// `(outcome, evaluations)` for every outcome.
    pub fn by_outcome(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL.into_iter().zip(self.outcomes)
    }

    /// `(rule, records it appears in)` for every rule.
    pub fn by_rule(&self) -> impl Iterator<Item = (Rule, u64)> + '_ {
        Rule::ALL.into_iter().zip(self.rules)
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct DecisionMetrics {
    /// By (node, target).
    targets: BTreeMap<(String, RecordTarget), TargetMetrics>,
}

impl DecisionMetrics {
    /// Counts one evaluation. The gauges follow records whose decision read the API (those
    /// with a delay): a stale point's record, which made no call, leaves them as they were.
    pub fn record(&mut self, record: &Record) {
        let key = (record.node.clone(), record.target.clone());
        if !self.targets.contains_key(&key) && self.targets.len() >= MAX_TARGETS {
            let oldest = self
                .targets
                .iter()
                .min_by_key(|(_, m)| m.last)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.targets.remove(&oldest);
            }
        }
        let metrics = self
            .targets
            .entry(key)
            .or_insert_with(|| TargetMetrics::new(record.node.clone(), record.target.clone()));
        metrics.last = metrics.last.max(record.time_ns);
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == record.outcome)
            && let Some(n) = metrics.outcomes.get_mut(i)
        {
            *n += 1;
        }
        for (i, rule) in Rule::ALL.iter().enumerate() {
            if record.rules.iter().any(|step| step.rule == *rule)
                && let Some(n) = metrics.rules.get_mut(i)
            {
                *n += 1;
            }
        }
        if record.is_decrease_after_silence() {
            metrics.decreases_after_silence += 1;
        }
        if let Some(delay) = record.delay_seconds {
            metrics.delay.observe(delay);
            if record.current.is_some() {
                metrics.current = record.current;
            }
            if record.desired.is_some() {
                metrics.desired = record.desired;
            }
        }
    }

    /// Every target's figures, by node then target.
    pub fn targets(&self) -> Vec<TargetMetrics> {
        self.targets.values().cloned().collect()
    }

    /// How many targets are counted.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::decision::Step;

    fn record(name: &str, time_ns: i64, outcome: Outcome, rules: &[Rule]) -> Record {
        let mut record = Record::fixture(name, time_ns, outcome, 3, 4);
        record.target.namespace = "default".into();
        record.raw = Some(5.0);
        record.delay_seconds = Some(0.3);
        record.rules = rules
            .iter()
            .map(|rule| Step {
                rule: *rule,
                before: 5,
                after: 4,
            })
            .collect();
        record
    }

    #[test]
    fn every_evaluation_counts_by_outcome_and_rule() {
        let mut metrics = DecisionMetrics::default();
        metrics.record(&record(
            "app",
            1,
            Outcome::Increased,
            &[Rule::Policy, Rule::Max],
        ));
        metrics.record(&record("app", 2, Outcome::Unchanged, &[]));
        metrics.record(&record("app", 3, Outcome::Unchanged, &[]));
        metrics.record(&record(
            "app",
            4,
            Outcome::Held,
            &[Rule::Max, Rule::Cooldown],
        ));
        let all = metrics.targets();
        assert_eq!(all.len(), 1);
        let app = &all[0];
        let outcomes: Vec<(&str, u64)> = app
            .by_outcome()
            .filter(|(_, n)| *n > 0)
            .map(|(o, n)| (o.name(), n))
            .collect();
        assert_eq!(outcomes, [("increased", 1), ("unchanged", 2), ("held", 1)]);
        let rules: Vec<(&str, u64)> = app
            .by_rule()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.name(), n))
            .collect();
        assert_eq!(rules, [("policy", 1), ("max", 2), ("cooldown", 1)]);
        assert_eq!((app.current, app.desired), (Some(3), Some(4)));
        assert_eq!(app.delay.count, 4);
        assert_eq!(app.delay.cumulative()[0], (0.1, 0));
        assert_eq!(app.delay.cumulative()[1], (0.25, 0));
        assert_eq!(app.delay.cumulative()[2], (0.5, 4));
    }

    #[test]
    fn a_stale_point_or_an_error_leaves_the_gauges_alone() {
        let mut metrics = DecisionMetrics::default();
        metrics.record(&record("app", 1, Outcome::Increased, &[]));
        let mut stale = record("app", 2, Outcome::Held, &[Rule::Stale]);
        (stale.current, stale.desired, stale.delay_seconds) = (Some(0), Some(0), None);
        metrics.record(&stale);
        let mut failed = record("app", 3, Outcome::Error, &[]);
        (failed.current, failed.desired, failed.delay_seconds) = (None, None, None);
        metrics.record(&failed);
        let app = &metrics.targets()[0];
        assert_eq!((app.current, app.desired), (Some(3), Some(4)));
        assert_eq!(app.delay.count, 1, "only the decision that called the API");
        assert_eq!(app.outcomes.iter().sum::<u64>(), 3);
    }

    #[test]
    fn delays_fill_their_buckets_and_never_go_negative() {
        let mut h = DelayHistogram::default();
        for seconds in [-2.0, 0.1, 0.2, 7.0, 120.0, 500.0, f64::INFINITY] {
            h.observe(seconds);
        }
        let cumulative = h.cumulative();
        assert_eq!(cumulative[0], (0.1, 2), "-2 counts as 0, and 0.1 is <= 0.1");
        assert_eq!(cumulative[1], (0.25, 3));
        assert_eq!(cumulative[6], (10.0, 4));
        assert_eq!(cumulative[9], (120.0, 5));
        assert_eq!((h.above, h.count), (2, 7));
        assert!((h.sum - 627.3).abs() < 1e-9, "{}", h.sum);
    }

    #[test]
    fn the_number_of_targets_is_bounded() {
        let mut metrics = DecisionMetrics::default();
        for t in 0..(MAX_TARGETS as i64 + 10) {
            metrics.record(&record(&format!("app{t}"), t, Outcome::Unchanged, &[]));
        }
        assert_eq!(metrics.len(), MAX_TARGETS);
        assert!(
            metrics.targets().iter().all(|m| m.last >= 10),
            "the ten oldest targets went first"
        );
    }
}
