//! The scaling decision, pure: (current replicas, the `.replicas()` result, policy, history,
//! now) -> the count to set and the rules that shaped it. Time is the processor clock
//! ([`crate::clock`], ns), passed in; point timestamps play no part beyond the staleness check,
//! so a replayed backlog can neither bypass nor block a cooldown. The Kubernetes scaler, the
//! dry run and `processor replay` all decide here.
//!
//! The rules, in the order they apply (each one that changes or holds the count leaves a
//! [`Step`]; [`super::behavior`] has the arithmetic):
//! 1. `tolerance`: the raw count within the band around `current` is `current`; else
//!    `ceil(raw)`. This is the recommendation HPA stores.
//! 2. `stabilization`: HPA's windows: `current` clamped into [min of the recommendations within
//!    the scale-up window, max of those within the scale-down window] (the new one included).
//! 3. `policy`: HPA's rate limits, from the changes this processor made within each period.
//! 4. `burst`: while a burst lasts, no decrease.
//! 5. `min`, `max`: the node's bounds (`min` at least 1, `max` 0 = none).
//! 6. `cooldown`: Kapacitor's: an increase only when none happened within `increase_cooldown`,
//!    a decrease only when none happened within `decrease_cooldown` (independent directions;
//!    the first change in each is always allowed).
//!
//! A node that sets no extension has no band, no windows, no policies and no burst: its
//! decision is Kapacitor's (clamp, then cooldowns). A burst node ([`Burst`]) decides apart:
//! when its count reaches `threshold × current` (or a burst it started still lasts) it raises
//! the count at once, past every rule but `min`/`max`, and it never lowers it.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::behavior::{self, Behavior, Burst};
use crate::scaler::{Decision, Policy};

/// Recommendations older than this are never read (HPA's longest stabilization window).
pub const MAX_STABILIZATION: Duration = Duration::from_secs(3600);
/// Scale events older than this are never read (HPA's longest policy period).
pub const MAX_POLICY_PERIOD: Duration = Duration::from_secs(1800);
/// At most this many recommendations and scale events are kept per target (runs of equal
/// recommendations are coalesced, so this is reached only by a count that changes on every
/// point for an hour).
pub const MAX_REMEMBERED: usize = 4096;

/// A rule that changed or held the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Tolerance,
    Stabilization,
    Policy,
    Burst,
    Min,
    Max,
    Cooldown,
    Stale,
    Conflict,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::Tolerance,
        Rule::Stabilization,
        Rule::Policy,
        Rule::Burst,
        Rule::Min,
        Rule::Max,
        Rule::Cooldown,
        Rule::Stale,
        Rule::Conflict,
    ];

    /// The name records, logs and metrics use.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Tolerance => "tolerance",
            Rule::Stabilization => "stabilization",
            Rule::Policy => "policy",
            Rule::Burst => "burst",
            Rule::Min => "min",
            Rule::Max => "max",
            Rule::Cooldown => "cooldown",
            Rule::Stale => "stale",
            Rule::Conflict => "conflict",
        }
    }

    /// Whether the rule is a bound of the target rather than a rule of timing.
    fn is_bound(self) -> bool {
        matches!(self, Rule::Min | Rule::Max)
    }
}

/// One rule at work: the count before and after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub rule: Rule,
    pub before: i64,
    pub after: i64,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}→{}", self.rule.name(), self.before, self.after)
    }
}

/// The steps as one line: `tolerance 4→3, cooldown 5→3`.
pub fn describe_steps(steps: &[Step]) -> String {
    if steps.is_empty() {
        return "none".to_owned();
    }
    steps
        .iter()
        .map(Step::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the scaler remembers about one target between decisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// When the last increase was applied (processor clock, ns).
    pub last_increase: Option<i64>,
    /// When the last decrease was applied (processor clock, ns).
    pub last_decrease: Option<i64>,
    /// The replica count this processor last saw or set, to notice changes made by someone
    /// else.
    pub last_set: Option<i64>,
    /// (when, recommendation) of regular nodes, oldest first; equal runs coalesced to the
    /// newest.
    recommendations: VecDeque<(i64, i64)>,
    /// (when, replicas added) by this processor, oldest first.
    ups: VecDeque<(i64, i64)>,
    /// (when, replicas removed) by this processor, oldest first.
    downs: VecDeque<(i64, i64)>,
    /// A burst lasts until then (processor clock, ns).
    burst_until: Option<i64>,
}

/// A decision and the replica count it leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// The count to set (equal to `current` unless increased or decreased).
    pub new: i64,
    /// The count the raw value asked for after the tolerance band (what HPA stores as a
    /// recommendation); `None` for a burst node or a fallback.
    pub recommendation: Option<i64>,
    /// Each rule that changed or held the count, in order.
    pub steps: Vec<Step>,
    /// A burst node's condition held (the burst lasts `hold` from now).
    pub burst: Option<Burst>,
}

/// `wanted` clamped to the policy's bounds (`min` is at least 1).
pub fn clamp(wanted: i64, policy: &Policy) -> i64 {
    let min = policy.min.max(1);
    let capped = if policy.max > 0 {
        wanted.min(policy.max)
    } else {
        wanted
    };
    capped.max(min)
}

/// Whether a point from `point_time_ns` is too old to act on at `now_unix_ns`.
pub fn is_stale(point_time_ns: i64, now_unix_ns: i64, max_age: Duration) -> bool {
    let age = now_unix_ns.saturating_sub(point_time_ns);
    age > nanos(max_age)
}

/// Why a `.replicas()` result cannot be acted on: NaN, infinite or negative.
pub fn check_raw(raw: f64) -> Result<f64, String> {
    if raw.is_nan() {
        Err("the replicas lambda gave NaN".to_owned())
    } else if raw.is_infinite() {
        Err(format!("the replicas lambda gave {raw}"))
    } else if raw < 0.0 {
        Err(format!("the replicas lambda gave a negative count, {raw}"))
    } else {
        Ok(raw)
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Applies `rule` when it moves the count, recording the step.
fn apply(steps: &mut Vec<Step>, count: &mut i64, rule: Rule, after: i64) {
    if after != *count {
        steps.push(Step {
            rule,
            before: *count,
            after,
        });
        *count = after;
    }
}

/// Decides what to do with a target at `current` replicas when the `.replicas()` lambda gave
/// `raw` (checked with [`check_raw`]).
pub fn decide(current: i64, raw: f64, policy: &Policy, history: &History, now: i64) -> Verdict {
    let behavior = &policy.behavior;
    if let Some(burst) = behavior.burst {
        return decide_burst(current, raw, burst, policy, history, now);
    }
    let mut steps = Vec::new();
    let mut count = behavior::ceil(raw);
    apply(
        &mut steps,
        &mut count,
        Rule::Tolerance,
        behavior::proposal(raw, current, behavior.tolerance),
    );
    let recommendation = count;
    apply(
        &mut steps,
        &mut count,
        Rule::Stabilization,
        history.stabilize(current, recommendation, behavior, now),
    );
    let changes = |period| history.changes(period, now);
    let limited = if count > current {
        behavior::up_limit(current, &behavior.up, changes).map(|limit| count.min(limit))
    } else if count < current {
        behavior::down_limit(current, &behavior.down, changes).map(|limit| count.max(limit))
    } else {
        None
    };
    if let Some(limited) = limited {
        apply(&mut steps, &mut count, Rule::Policy, limited);
    }
    if count < current && history.in_burst(now) {
        apply(&mut steps, &mut count, Rule::Burst, current);
    }
    bound(&mut steps, &mut count, policy);
    let within = |last: Option<i64>, cooldown: Duration| {
        last.is_some_and(|at| now.saturating_sub(at) < nanos(cooldown))
    };
    let cooling = (count > current && within(history.last_increase, policy.increase_cooldown))
        || (count < current && within(history.last_decrease, policy.decrease_cooldown));
    if cooling {
        apply(&mut steps, &mut count, Rule::Cooldown, current);
    }
    Verdict {
        decision: classify(current, count, &steps),
        new: count,
        recommendation: Some(recommendation),
        steps,
        burst: None,
    }
}

/// A burst node: raises the count at once when its count reaches `threshold × current` or a
/// burst lasts; never lowers it.
fn decide_burst(
    current: i64,
    raw: f64,
    burst: Burst,
    policy: &Policy,
    history: &History,
    now: i64,
) -> Verdict {
    let wanted = behavior::ceil(raw);
    let triggered = wanted > current && wanted as f64 >= burst.threshold * current as f64;
    let mut steps = Vec::new();
    let mut count = current;
    if wanted > current && (triggered || history.in_burst(now)) {
        apply(&mut steps, &mut count, Rule::Burst, wanted);
        bound(&mut steps, &mut count, policy);
    }
    Verdict {
        decision: classify(current, count, &steps),
        new: count,
        recommendation: None,
        steps,
        burst: triggered.then_some(burst),
    }
}

/// The fallback after every series feeding the target went silent: `replicas` (within the
/// bounds, past every timing rule) or, with `None`, the current count held.
pub fn fallback(current: i64, replicas: Option<i64>, policy: &Policy) -> Verdict {
    let mut steps = vec![Step {
        rule: Rule::Stale,
        before: current,
        after: replicas.unwrap_or(current),
    }];
    let mut count = replicas.unwrap_or(current);
    bound(&mut steps, &mut count, policy);
    let decision = match count.cmp(&current) {
        std::cmp::Ordering::Greater => Decision::Increased,
        std::cmp::Ordering::Less => Decision::Decreased,
        std::cmp::Ordering::Equal => Decision::Held,
    };
    Verdict {
        decision,
        new: count,
        recommendation: None,
        steps,
        burst: None,
    }
}

fn bound(steps: &mut Vec<Step>, count: &mut i64, policy: &Policy) {
    let clamped = clamp(*count, policy);
    let rule = if clamped > *count {
        Rule::Min
    } else {
        Rule::Max
    };
    apply(steps, count, rule, clamped);
}

/// Increased, decreased, or (no change) held when a rule of timing kept a wanted change from
/// happening, unchanged otherwise.
fn classify(current: i64, count: i64, steps: &[Step]) -> Decision {
    if count > current {
        Decision::Increased
    } else if count < current {
        Decision::Decreased
    } else if steps.iter().any(|s| s.rule == Rule::Cooldown) {
        Decision::CooldownDrop
    } else if steps.iter().any(|s| !s.rule.is_bound()) {
        Decision::Held
    } else {
        Decision::Unchanged
    }
}

impl History {
    /// HPA's `stabilizeRecommendationWithBehaviors`: `current` clamped into [lowest
    /// recommendation within the scale-up window, highest within the scale-down window],
    /// `recommendation` (this one) included in both.
    pub fn stabilize(&self, current: i64, recommendation: i64, b: &Behavior, now: i64) -> i64 {
        if b.up.stabilization.is_zero() && b.down.stabilization.is_zero() {
            return recommendation;
        }
        let (up_cutoff, down_cutoff) = (
            now.saturating_sub(nanos(b.up.stabilization)),
            now.saturating_sub(nanos(b.down.stabilization)),
        );
        let (mut lower, mut upper) = (recommendation, recommendation);
        for &(at, rec) in &self.recommendations {
            if at > up_cutoff {
                lower = lower.min(rec);
            }
            if at > down_cutoff {
                upper = upper.max(rec);
            }
        }
        current.clamp(lower, upper)
    }

    /// (replicas added, replicas removed) by this processor within `period` before `now`.
    pub fn changes(&self, period: Duration, now: i64) -> (i64, i64) {
        let cutoff = now.saturating_sub(nanos(period));
        let sum = |events: &VecDeque<(i64, i64)>| {
            events
                .iter()
                .filter(|(at, _)| *at > cutoff)
                .map(|(_, n)| n)
                .sum()
        };
        (sum(&self.ups), sum(&self.downs))
    }

    /// Whether a burst lasts at `now`.
    pub fn in_burst(&self, now: i64) -> bool {
        self.burst_until.is_some_and(|until| now < until)
    }

    /// Remembers a decision made at `now` (before its write): its recommendation and whether
    /// it started or extended a burst.
    pub fn decided(&mut self, verdict: &Verdict, now: i64) {
        if let Some(rec) = verdict.recommendation {
            if self.recommendations.back().is_some_and(|&(_, r)| r == rec) {
                self.recommendations.pop_back();
            }
            push_bounded(
                &mut self.recommendations,
                (now, rec),
                now,
                MAX_STABILIZATION,
            );
        }
        if let Some(burst) = verdict.burst {
            self.burst_until = Some(now.saturating_add(nanos(burst.hold)));
        }
    }

    /// Records a change applied at `now` from `old` replicas: its cooldown starts and it
    /// counts against the rate policies.
    pub fn applied(&mut self, verdict: &Verdict, old: i64, now: i64) {
        match verdict.decision {
            Decision::Increased => {
                self.last_increase = Some(now);
                push_bounded(
                    &mut self.ups,
                    (now, verdict.new - old),
                    now,
                    MAX_POLICY_PERIOD,
                );
            }
            Decision::Decreased => {
                self.last_decrease = Some(now);
                push_bounded(
                    &mut self.downs,
                    (now, old - verdict.new),
                    now,
                    MAX_POLICY_PERIOD,
                );
            }
            _ => {}
        }
        self.last_set = Some(verdict.new);
    }

    /// Someone else changed the count since this processor last saw it: the scale events no
    /// longer describe how the count got where it is, so the rate policies start afresh.
    pub fn changed_elsewhere(&mut self, current: i64) {
        self.ups.clear();
        self.downs.clear();
        self.last_set = Some(current);
    }
}

/// Appends `entry`, dropping what is older than `horizon` and the oldest beyond
/// [`MAX_REMEMBERED`].
fn push_bounded(queue: &mut VecDeque<(i64, i64)>, entry: (i64, i64), now: i64, horizon: Duration) {
    let cutoff = now.saturating_sub(nanos(horizon));
    while queue
        .front()
        .is_some_and(|&(at, _)| at <= cutoff || queue.len() >= MAX_REMEMBERED)
    {
        queue.pop_front();
    }
    queue.push_back(entry);
}

#[cfg(test)]
mod tests;
