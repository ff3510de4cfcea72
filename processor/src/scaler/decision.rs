//! The scaling decision, pure: (current replicas, wanted replicas, policy, history, now) ->
//! decision. Time is the processor clock ([`crate::clock`], ns), passed in; point timestamps
//! play no part beyond the staleness check, so a replayed backlog can neither bypass nor block
//! a cooldown. The Kubernetes scaler and the dry run both decide here.
//!
//! Kapacitor's rules, with its clock fixed: clamp the wanted count to `[min, max]` (`max` 0 =
//! none); equal to the current count -> nothing to do; an increase is allowed when no increase
//! happened within `increase_cooldown`, a decrease when no decrease happened within
//! `decrease_cooldown` (the two directions are independent, and the first change in each is
//! always allowed).

use std::time::Duration;

use crate::scaler::{Decision, Policy};

/// What the scaler remembers about one target between decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// When the last increase was applied (processor clock, ns).
    pub last_increase: Option<i64>,
    /// When the last decrease was applied (processor clock, ns).
    pub last_decrease: Option<i64>,
    /// The replica count this processor last set, to notice changes made by someone else.
    pub last_set: Option<i64>,
}

/// A decision and the replica count it leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// The count to set (equal to `current` unless increased or decreased).
    pub new: i64,
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
    age > i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX)
}

/// Decides what to do with a target at `current` replicas when `wanted` are asked for.
pub fn decide(current: i64, wanted: i64, policy: &Policy, history: &History, now: i64) -> Verdict {
    let new = clamp(wanted, policy);
    let within = |last: Option<i64>, cooldown: Duration| {
        let cooldown = i64::try_from(cooldown.as_nanos()).unwrap_or(i64::MAX);
        last.is_some_and(|at| now.saturating_sub(at) < cooldown)
    };
    let decision = if new == current {
        Decision::Unchanged
    } else if new > current {
        if within(history.last_increase, policy.increase_cooldown) {
            Decision::CooldownDrop
        } else {
            Decision::Increased
        }
    } else if within(history.last_decrease, policy.decrease_cooldown) {
        Decision::CooldownDrop
    } else {
        Decision::Decreased
    };
    let new = match decision {
        Decision::Increased | Decision::Decreased => new,
        _ => current,
    };
    Verdict { decision, new }
}

impl History {
    /// Records an applied change.
    pub fn applied(&mut self, verdict: Verdict, now: i64) {
        match verdict.decision {
            Decision::Increased => self.last_increase = Some(now),
            Decision::Decreased => self.last_decrease = Some(now),
            _ => {}
        }
        self.last_set = Some(verdict.new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    fn policy(min: i64, max: i64, up: u64, down: u64) -> Policy {
        Policy {
            min,
            max,
            increase_cooldown: Duration::from_secs(up),
            decrease_cooldown: Duration::from_secs(down),
            dry_run: false,
        }
    }

    #[test]
    fn wanted_counts_are_clamped_to_min_and_max() {
        let p = policy(2, 10, 0, 0);
        assert_eq!(clamp(0, &p), 2);
        assert_eq!(clamp(-5, &p), 2);
        assert_eq!(clamp(7, &p), 7);
        assert_eq!(clamp(50, &p), 10);
        assert_eq!(
            clamp(500, &policy(1, 0, 0, 0)),
            500,
            "max 0 means no maximum"
        );
        assert_eq!(clamp(0, &policy(0, 0, 0, 0)), 1, "min is at least 1");
    }

    #[test]
    fn the_first_change_in_each_direction_is_always_allowed() {
        let now = 0;
        let p = policy(1, 0, 60, 60);
        let history = History::default();
        assert_eq!(
            decide(1, 3, &p, &history, now).decision,
            Decision::Increased
        );
        assert_eq!(
            decide(3, 1, &p, &history, now).decision,
            Decision::Decreased
        );
    }

    #[test]
    fn equal_counts_are_unchanged() {
        let verdict = decide(3, 3, &policy(1, 0, 0, 0), &History::default(), 0);
        assert_eq!(
            verdict,
            Verdict {
                decision: Decision::Unchanged,
                new: 3
            }
        );
        // Clamping can make a different wish equal to the current count.
        let verdict = decide(5, 9, &policy(1, 5, 0, 0), &History::default(), 0);
        assert_eq!(verdict.decision, Decision::Unchanged);
    }

    #[test]
    fn each_cooldown_blocks_only_its_own_direction() {
        let start = 1_000_000_000_000;
        let p = policy(1, 0, 10, 30);
        let mut history = History::default();
        let up = decide(1, 2, &p, &history, start);
        history.applied(up, start);
        let soon = start + 5 * SECOND;
        assert_eq!(
            decide(2, 3, &p, &history, soon).decision,
            Decision::CooldownDrop
        );
        assert_eq!(
            decide(2, 3, &p, &history, soon).new,
            2,
            "a dropped change keeps the count"
        );
        assert_eq!(
            decide(2, 1, &p, &history, soon).decision,
            Decision::Decreased,
            "no decrease happened yet"
        );
        let later = start + 10 * SECOND;
        assert_eq!(
            decide(2, 3, &p, &history, later).decision,
            Decision::Increased
        );
    }

    #[test]
    fn the_decrease_cooldown_runs_from_the_last_decrease() {
        let start = 1_000_000_000_000;
        let p = policy(1, 0, 0, 30);
        let mut history = History::default();
        history.applied(decide(5, 4, &p, &history, start), start);
        let t20 = start + 20 * SECOND;
        assert_eq!(
            decide(4, 3, &p, &history, t20).decision,
            Decision::CooldownDrop
        );
        let t31 = start + 31 * SECOND;
        assert_eq!(
            decide(4, 3, &p, &history, t31).decision,
            Decision::Decreased
        );
        assert_eq!(history.last_set, Some(4));
    }

    #[test]
    fn stale_points_are_recognised() {
        let second = 1_000_000_000;
        let max = Duration::from_secs(30);
        assert!(!is_stale(100 * second, 129 * second, max));
        assert!(!is_stale(100 * second, 130 * second, max));
        assert!(is_stale(100 * second, 131 * second, max));
        assert!(
            !is_stale(200 * second, 100 * second, max),
            "future points are not stale"
        );
        assert!(is_stale(i64::MIN, i64::MAX, max));
    }
}
