//! The decision's unit tests: Kapacitor's rules as before, and the HPA parity table.

use super::*;
use crate::scaler::behavior::{Direction, PolicyKind, RatePolicy, Select};

const SECOND: i64 = 1_000_000_000;
const START: i64 = 1_000_000 * SECOND;

fn policy(min: i64, max: i64, up: u64, down: u64) -> Policy {
    Policy {
        min,
        max,
        increase_cooldown: Duration::from_secs(up),
        decrease_cooldown: Duration::from_secs(down),
        dry_run: false,
        behavior: Behavior::default(),
    }
}

fn steps(verdict: &Verdict) -> Vec<(Rule, i64, i64)> {
    verdict
        .steps
        .iter()
        .map(|s| (s.rule, s.before, s.after))
        .collect()
}

/// Decides, remembers and applies (as the scalers do) one evaluation at `now`.
fn step(current: &mut i64, raw: f64, p: &Policy, h: &mut History, now: i64) -> Verdict {
    let verdict = decide(*current, raw, p, h, now);
    h.decided(&verdict, now);
    if matches!(verdict.decision, Decision::Increased | Decision::Decreased) {
        h.applied(&verdict, *current, now);
        *current = verdict.new;
    }
    verdict
}

fn rate(kind: PolicyKind, value: i64, period: u64) -> RatePolicy {
    RatePolicy {
        kind,
        value,
        period: Duration::from_secs(period),
    }
}

/// HPA's defaults when `behavior` is given: up 0 s, 100 %/15 s and 4 pods/15 s, Max; down
/// 300 s, 100 %/15 s, Max.
fn hpa_defaults() -> Behavior {
    Behavior {
        tolerance: Some(0.1),
        up: Direction {
            stabilization: Duration::ZERO,
            policies: vec![
                rate(PolicyKind::Percent, 100, 15),
                rate(PolicyKind::Pods, 4, 15),
            ],
            select: Select::Max,
        },
        down: Direction {
            stabilization: Duration::from_secs(300),
            policies: vec![rate(PolicyKind::Percent, 100, 15)],
            select: Select::Max,
        },
        burst: None,
    }
}

fn with(behavior: Behavior, min: i64, max: i64) -> Policy {
    Policy {
        behavior,
        ..policy(min, max, 0, 0)
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
    let p = policy(1, 0, 60, 60);
    let history = History::default();
    assert_eq!(
        decide(1, 3.0, &p, &history, 0).decision,
        Decision::Increased
    );
    assert_eq!(
        decide(3, 1.0, &p, &history, 0).decision,
        Decision::Decreased
    );
}

#[test]
fn equal_counts_are_unchanged_and_a_bound_is_not_a_hold() {
    let verdict = decide(3, 3.0, &policy(1, 0, 0, 0), &History::default(), 0);
    assert_eq!(verdict.decision, Decision::Unchanged);
    assert_eq!(verdict.new, 3);
    assert!(verdict.steps.is_empty());
    // Clamping can make a different wish equal to the current count.
    let verdict = decide(5, 9.0, &policy(1, 5, 0, 0), &History::default(), 0);
    assert_eq!(verdict.decision, Decision::Unchanged);
    assert_eq!(steps(&verdict), vec![(Rule::Max, 9, 5)]);
}

#[test]
fn each_cooldown_blocks_only_its_own_direction() {
    let p = policy(1, 0, 10, 30);
    let mut history = History::default();
    let mut current = 1;
    step(&mut current, 2.0, &p, &mut history, START);
    let soon = START + 5 * SECOND;
    let blocked = decide(2, 3.0, &p, &history, soon);
    assert_eq!(blocked.decision, Decision::CooldownDrop);
    assert_eq!(blocked.new, 2, "a dropped change keeps the count");
    assert_eq!(steps(&blocked), vec![(Rule::Cooldown, 3, 2)]);
    assert_eq!(
        decide(2, 1.0, &p, &history, soon).decision,
        Decision::Decreased,
        "no decrease happened yet"
    );
    let later = START + 10 * SECOND;
    assert_eq!(
        decide(2, 3.0, &p, &history, later).decision,
        Decision::Increased
    );
}

#[test]
fn the_decrease_cooldown_runs_from_the_last_decrease() {
    let p = policy(1, 0, 0, 30);
    let mut history = History::default();
    let mut current = 5;
    step(&mut current, 4.0, &p, &mut history, START);
    assert_eq!(
        decide(4, 3.0, &p, &history, START + 20 * SECOND).decision,
        Decision::CooldownDrop
    );
    assert_eq!(
        decide(4, 3.0, &p, &history, START + 31 * SECOND).decision,
        Decision::Decreased
    );
    assert_eq!(history.last_set, Some(4));
}

#[test]
fn a_float_count_is_rounded_up_and_an_int_one_works_as_before() {
    let p = policy(1, 0, 0, 0);
    assert_eq!(decide(1, 2.01, &p, &History::default(), 0).new, 3);
    assert_eq!(decide(1, 2.0, &p, &History::default(), 0).new, 2);
    assert_eq!(decide(4, 0.0, &p, &History::default(), 0).new, 1, "min 1");
}

#[test]
fn stale_points_are_recognised() {
    let max = Duration::from_secs(30);
    assert!(!is_stale(100 * SECOND, 129 * SECOND, max));
    assert!(!is_stale(100 * SECOND, 130 * SECOND, max));
    assert!(is_stale(100 * SECOND, 131 * SECOND, max));
    assert!(
        !is_stale(200 * SECOND, 100 * SECOND, max),
        "future points are not stale"
    );
    assert!(is_stale(i64::MIN, i64::MAX, max));
}

#[test]
fn nan_infinite_and_negative_counts_are_refused() {
    assert!(check_raw(f64::NAN).unwrap_err().contains("NaN"));
    assert!(check_raw(f64::INFINITY).is_err());
    assert!(check_raw(-1.0).unwrap_err().contains("negative"));
    assert_eq!(check_raw(0.0), Ok(0.0));
    assert_eq!(check_raw(3.5), Ok(3.5));
}

// ---- The HPA parity table. Numbers as HPA computes them (horizontal.go with behavior). ----

#[test]
fn hpa_tolerance_inside_and_outside_the_band() {
    let p = with(
        Behavior {
            tolerance: Some(0.1),
            ..Behavior::default()
        },
        1,
        0,
    );
    let h = History::default();
    // 10 replicas, raw 10.8 (ratio 1.08): inside the band, held.
    let inside = decide(10, 10.8, &p, &h, START);
    assert_eq!((inside.decision, inside.new), (Decision::Held, 10));
    assert_eq!(steps(&inside), vec![(Rule::Tolerance, 11, 10)]);
    // raw 11.5 (ratio 1.15): outside, ceil.
    let outside = decide(10, 11.5, &p, &h, START);
    assert_eq!((outside.decision, outside.new), (Decision::Increased, 12));
    // raw 8.5 (ratio 0.85): outside, down to 9.
    assert_eq!(decide(10, 8.5, &p, &h, START).new, 9);
    // raw 9.1 (ratio 0.91): inside.
    assert_eq!(decide(10, 9.1, &p, &h, START).new, 10);
}

#[test]
fn hpa_scale_down_stabilization_takes_the_highest_recent_recommendation() {
    let p = with(
        Behavior {
            down: Direction {
                stabilization: Duration::from_secs(300),
                ..Direction::default()
            },
            ..Behavior::default()
        },
        1,
        0,
    );
    let mut h = History::default();
    let mut current = 5;
    // Recommendations 5 at t0, 4 at t+60 s, 2 at t+120 s: the highest within 300 s wins.
    assert_eq!(step(&mut current, 5.0, &p, &mut h, START).new, 5);
    let at60 = step(&mut current, 4.0, &p, &mut h, START + 60 * SECOND);
    assert_eq!((at60.decision, at60.new), (Decision::Held, 5));
    assert_eq!(steps(&at60), vec![(Rule::Stabilization, 4, 5)]);
    let at120 = step(&mut current, 2.0, &p, &mut h, START + 120 * SECOND);
    assert_eq!(at120.new, 5);
    // 301 s after the 5: the 4 (t+60) is the highest left.
    let at301 = step(&mut current, 2.0, &p, &mut h, START + 301 * SECOND);
    assert_eq!((at301.decision, at301.new), (Decision::Decreased, 4));
    assert_eq!(steps(&at301), vec![(Rule::Stabilization, 2, 4)]);
    // 361 s: only 2s within the window.
    let at361 = step(&mut current, 2.0, &p, &mut h, START + 361 * SECOND);
    assert_eq!(at361.new, 2);
}

#[test]
fn hpa_scale_up_stabilization_takes_the_lowest_recent_recommendation() {
    let p = with(
        Behavior {
            up: Direction {
                stabilization: Duration::from_secs(60),
                ..Direction::default()
            },
            ..Behavior::default()
        },
        1,
        0,
    );
    let mut h = History::default();
    let mut current = 2;
    step(&mut current, 2.0, &p, &mut h, START);
    let spike = step(&mut current, 8.0, &p, &mut h, START + 10 * SECOND);
    assert_eq!((spike.decision, spike.new), (Decision::Held, 2));
    assert_eq!(steps(&spike), vec![(Rule::Stabilization, 8, 2)]);
    let more = step(&mut current, 6.0, &p, &mut h, START + 30 * SECOND);
    assert_eq!(more.new, 2, "the 2 at t0 is still within 60 s");
    // At 61 s the lowest within the window is 6 (the 8 and the 6 remain).
    let later = step(&mut current, 7.0, &p, &mut h, START + 61 * SECOND);
    assert_eq!((later.decision, later.new), (Decision::Increased, 6));
    // Between the bounds the current count stays: lower 6, upper 7, current 6.
    assert_eq!(decide(6, 7.0, &p, &h, START + 62 * SECOND).new, 6);
}

#[test]
fn hpa_default_policies_limit_a_large_scale_up_per_15_seconds() {
    let p = with(hpa_defaults(), 1, 100);
    let mut h = History::default();
    let mut current = 1;
    // 1 -> 20 wanted: max(100 % of 1 = 2, 1 + 4 = 5) = 5.
    let first = step(&mut current, 20.0, &p, &mut h, START);
    assert_eq!((first.decision, first.new), (Decision::Increased, 5));
    assert_eq!(steps(&first), vec![(Rule::Policy, 20, 5)]);
    // 5 s later: the period started at 1 (4 added): limit max(2, 5) = 5, no change.
    let held = step(&mut current, 20.0, &p, &mut h, START + 5 * SECOND);
    assert_eq!((held.decision, held.new), (Decision::Held, 5));
    assert_eq!(steps(&held), vec![(Rule::Policy, 20, 5)]);
    // 16 s after the first: a new period from 5: max(10, 9) = 10.
    let second = step(&mut current, 20.0, &p, &mut h, START + 16 * SECOND);
    assert_eq!(second.new, 10);
    let third = step(&mut current, 20.0, &p, &mut h, START + 32 * SECOND);
    assert_eq!(third.new, 20);
}

#[test]
fn hpa_pods_and_percent_down_policies_with_select_min_and_max() {
    let down = |select| Behavior {
        down: Direction {
            stabilization: Duration::ZERO,
            policies: vec![
                rate(PolicyKind::Pods, 4, 60),
                rate(PolicyKind::Percent, 10, 60),
            ],
            select,
        },
        ..Behavior::default()
    };
    // From 20 to 1: Pods allows 16, Percent allows trunc(18) = 18.
    let h = History::default();
    let max = decide(20, 1.0, &with(down(Select::Max), 1, 0), &h, START);
    assert_eq!(max.new, 16, "Max: the larger change");
    let min = decide(20, 1.0, &with(down(Select::Min), 1, 0), &h, START);
    assert_eq!(min.new, 18, "Min: the smaller change");
    let disabled = decide(20, 1.0, &with(down(Select::Disabled), 1, 0), &h, START);
    assert_eq!((disabled.decision, disabled.new), (Decision::Held, 20));
    assert_eq!(steps(&disabled), vec![(Rule::Policy, 1, 20)]);
    // Up is unaffected by the down policies (none for up: no limit).
    assert_eq!(
        decide(20, 50.0, &with(down(Select::Disabled), 1, 0), &h, START).new,
        50
    );
}

#[test]
fn hpa_percent_policy_periods_count_the_changes_within_them() {
    let p = with(
        Behavior {
            down: Direction {
                stabilization: Duration::ZERO,
                policies: vec![rate(PolicyKind::Percent, 50, 60)],
                select: Select::Max,
            },
            ..Behavior::default()
        },
        1,
        0,
    );
    let mut h = History::default();
    let mut current = 16;
    assert_eq!(step(&mut current, 1.0, &p, &mut h, START).new, 8);
    // 30 s later, the period still starts at 16: floor 8, no change.
    assert_eq!(
        step(&mut current, 1.0, &p, &mut h, START + 30 * SECOND).new,
        8
    );
    // 61 s: a new period from 8.
    assert_eq!(
        step(&mut current, 1.0, &p, &mut h, START + 61 * SECOND).new,
        4
    );
}

#[test]
fn hpa_min_and_max_clamp_after_the_policies() {
    let p = with(hpa_defaults(), 3, 8);
    let h = History::default();
    let up = decide(4, 30.0, &p, &h, START);
    assert_eq!(up.new, 8);
    assert_eq!(steps(&up), vec![(Rule::Policy, 30, 8)]);
    let down = decide(4, 1.0, &with(Behavior::default(), 3, 8), &h, START);
    assert_eq!(steps(&down), vec![(Rule::Min, 1, 3)]);
    assert_eq!((down.decision, down.new), (Decision::Decreased, 3));
}

#[test]
fn a_change_made_elsewhere_resets_the_rate_history() {
    let p = with(hpa_defaults(), 1, 100);
    let mut h = History::default();
    let mut current = 1;
    step(&mut current, 20.0, &p, &mut h, START);
    assert_eq!(h.changes(Duration::from_secs(15), START + SECOND), (4, 0));
    h.changed_elsewhere(7);
    assert_eq!(h.changes(Duration::from_secs(15), START + SECOND), (0, 0));
    assert_eq!(h.last_set, Some(7));
    // From 7 with a fresh period: max(14, 11) = 14.
    assert_eq!(decide(7, 20.0, &p, &h, START + SECOND).new, 14);
}

#[test]
fn burst_raises_at_once_past_cooldowns_and_holds_decreases_while_it_lasts() {
    let regular = Policy {
        behavior: Behavior {
            down: Direction {
                stabilization: Duration::from_secs(30),
                ..Direction::default()
            },
            ..Behavior::default()
        },
        ..policy(1, 20, 60, 120)
    };
    let burst = Policy {
        behavior: Behavior {
            burst: Some(Burst {
                threshold: 2.0,
                hold: Duration::from_secs(60),
            }),
            ..Behavior::default()
        },
        ..policy(1, 20, 60, 120)
    };
    let mut h = History::default();
    let mut current = 2;
    // The stable node made an increase: its cooldown runs for 60 s.
    step(&mut current, 3.0, &regular, &mut h, START);
    assert_eq!(current, 3);
    // Noise below 2x: the burst node does nothing.
    let calm = step(&mut current, 5.0, &burst, &mut h, START + SECOND);
    assert_eq!((calm.decision, calm.new), (Decision::Unchanged, 3));
    assert!(!h.in_burst(START + SECOND));
    // A 3x step: 9 >= 2 x 3, past the cooldown.
    let jump = step(&mut current, 9.0, &burst, &mut h, START + 2 * SECOND);
    assert_eq!((jump.decision, jump.new), (Decision::Increased, 9));
    assert_eq!(steps(&jump), vec![(Rule::Burst, 3, 9)]);
    // During the burst the burst node keeps raising below the threshold.
    let more = step(&mut current, 11.0, &burst, &mut h, START + 3 * SECOND);
    assert_eq!(more.new, 11);
    // The stable node asks for less: held by the burst.
    let held = step(&mut current, 4.0, &regular, &mut h, START + 4 * SECOND);
    assert_eq!((held.decision, held.new), (Decision::Held, 11));
    assert!(steps(&held).contains(&(Rule::Burst, 4, 11)), "{held:?}");
    // A burst node never lowers the count.
    assert_eq!(decide(11, 1.0, &burst, &h, START + 5 * SECOND).new, 11);
    // After the hold (60 s from the last trigger at +2 s) the stable node may decrease.
    let after = step(&mut current, 4.0, &regular, &mut h, START + 100 * SECOND);
    assert_eq!((after.decision, after.new), (Decision::Decreased, 4));
    // The burst count is within max.
    let capped = decide(4, 50.0, &burst, &h, START + 101 * SECOND);
    assert_eq!(
        steps(&capped),
        vec![(Rule::Burst, 4, 50), (Rule::Max, 50, 20)]
    );
}

#[test]
fn fallback_holds_or_sets_its_count_within_the_bounds() {
    let p = policy(2, 10, 60, 60);
    let hold = fallback(5, None, &p);
    assert_eq!((hold.decision, hold.new), (Decision::Held, 5));
    assert_eq!(steps(&hold), vec![(Rule::Stale, 5, 5)]);
    let set = fallback(5, Some(3), &p);
    assert_eq!((set.decision, set.new), (Decision::Decreased, 3));
    let bounded = fallback(5, Some(30), &p);
    assert_eq!(bounded.new, 10);
    assert_eq!(
        steps(&bounded),
        vec![(Rule::Stale, 5, 30), (Rule::Max, 30, 10)]
    );
}

#[test]
fn equal_recommendations_are_coalesced_and_the_memory_is_bounded() {
    let p = with(
        Behavior {
            down: Direction {
                stabilization: Duration::from_secs(3600),
                ..Direction::default()
            },
            ..Behavior::default()
        },
        1,
        0,
    );
    let mut h = History::default();
    for i in 0..10_000 {
        let v = decide(5, 5.0, &p, &h, START + i * SECOND);
        h.decided(&v, START + i * SECOND);
    }
    assert_eq!(h.recommendations.len(), 1);
    for i in 0..10_000 {
        let v = decide(5, (i % 7) as f64, &p, &h, START + i * SECOND);
        h.decided(&v, START + i * SECOND);
    }
    assert!(h.recommendations.len() <= MAX_REMEMBERED);
}
