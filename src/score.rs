//! Control quality, pure: from the per-second record of a run to the summary and its goals.
//!
//! The ideal replica count is `ceil(offered / target)` within [min, max]. After each change of
//! offered load the loop gets a settle allowance: one smoothing window (moving-average count x
//! interval) + the cooldown of that direction + one flush interval. Seconds inside an allowance
//! are not scored.
//!
//! The decision lag of a second `t` is how far the running count trails the ideal in time: the
//! smallest `d` such that the running count at `t` is the ideal count of second `t - d`, or lies
//! strictly between it and the ideal of the second before (the ideal stepped past it then); 0
//! when it is right; a count the ideal never asked for nor passed up to `t` counts `t + 1`. Every second counts;
//! the summary gives its 95th percentile ("the replica count lags the ideal by at most this for
//! 95 % of the run") and its maximum.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::profile::Profile;

/// What the lab saw in one second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since the start of the run.
    pub t: u64,
    /// Requests per second the load generator offered.
    pub offered_rps: f64,
    /// The processor's total (sum of per-pod rates), if it produced one yet.
    pub measured_rps: Option<f64>,
    /// The processor's moving average, if any.
    pub smoothed_rps: Option<f64>,
    /// The replica count the Deployment asks for.
    pub desired: i64,
    /// Replicas running (app + agent up).
    pub actual: i64,
    /// 99th percentile latency of the requests answered in this second, in milliseconds.
    pub p99_ms: Option<f64>,
}

/// How the loop is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub profile: Profile,
    /// Requests per second one replica should serve (the tick's `target`).
    pub target_rps: f64,
    pub min: i64,
    /// 0 = no maximum.
    pub max: i64,
    /// Moving-average count x collection interval.
    pub window: Duration,
    pub increase_cooldown: Duration,
    pub decrease_cooldown: Duration,
    /// The task's stabilization windows: delays it asks for, as its cooldowns are.
    pub up_stabilization: Duration,
    pub down_stabilization: Duration,
    /// The pipeline's start-up: a new group's first total waits this long (the processor's
    /// `lateness`), so the first load level's allowance includes it.
    pub warm_up: Duration,
    pub flush_interval: Duration,
    /// Seconds at which the offered load changed.
    pub load_changes: Vec<u64>,
    /// Seconds at which a churn event happened.
    pub churn_events: Vec<u64>,
    /// Collection interval (churn error is read one interval after each event, plus a flush).
    pub interval: Duration,
}

/// One goal's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    pub value: Option<f64>,
    pub limit: f64,
    pub pass: bool,
}

/// The end-of-run summary (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub profile: String,
    pub tracking_exact_pct: Option<f64>,
    pub max_abs_error: Option<i64>,
    pub scale_events: u64,
    pub flaps_after_settle: u64,
    pub step_reaction_s: Option<f64>,
    /// Step profile: seconds from the step until the desired count first reached the ideal
    /// count of the new load.
    pub step_to_ideal_s: Option<f64>,
    pub churn_rps_error_pct: Option<f64>,
    /// 95th percentile of the decision lag over every second, in seconds.
    pub lag_p95_s: Option<f64>,
    /// Largest decision lag, in seconds.
    pub lag_max_s: Option<f64>,
    /// Processor replicas in the run (1: in-process; more: processes electing a leader).
    pub processor_replicas: usize,
    /// Seconds from the processor leader's kill until another replica held the Lease (a
    /// churn run with processor replicas kills the leader once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_takeover_s: Option<f64>,
    pub goals: BTreeMap<String, Goal>,
}

impl Rules {
    /// The ideal replica count for an offered rate.
    pub fn ideal(&self, offered: f64) -> i64 {
        let wanted = (offered / self.target_rps).ceil() as i64;
        let capped = if self.max > 0 {
            wanted.min(self.max)
        } else {
            wanted
        };
        capped.max(self.min.max(1))
    }

    /// The settle allowance after a change of load in the given direction: the moving
    /// average's window, the delays the task asks for in that direction (cooldown and
    /// stabilization window) and a flush.
    pub fn allowance(&self, up: bool) -> Duration {
        let (cooldown, stabilization) = if up {
            (self.increase_cooldown, self.up_stabilization)
        } else {
            (self.decrease_cooldown, self.down_stabilization)
        };
        self.window + cooldown + stabilization + self.flush_interval
    }

    /// Whether second `t` is scored (outside every settle allowance).
    fn scored(&self, t: u64, seconds: &[Second]) -> bool {
        !self.load_changes.iter().any(|&change| {
            let before = change
                .checked_sub(1)
                .and_then(|s| seconds.iter().find(|x| x.t == s))
                .map(|x| x.offered_rps);
            let after = seconds
                .iter()
                .find(|x| x.t == change)
                .map(|x| x.offered_rps);
            let up = match (before, after) {
                (Some(b), Some(a)) => a > b,
                _ => true,
            };
            let warm_up = if Some(&change) == self.load_changes.first() {
                self.warm_up
            } else {
                Duration::ZERO
            };
            t >= change && t < change + (self.allowance(up) + warm_up).as_secs()
        })
    }
}

/// The decision lag of every second, in seconds (see the module documentation).
pub fn decision_lags(rules: &Rules, seconds: &[Second]) -> Vec<u64> {
    seconds
        .iter()
        .enumerate()
        .map(|(i, now)| {
            (0..=i)
                .find(|&d| {
                    let ideal = |j: usize| seconds.get(j).map(|s| rules.ideal(s.offered_rps));
                    let Some(then) = ideal(i - d) else {
                        return false;
                    };
                    // Equal to it, or strictly between it and the ideal of the second before:
                    // on the way from one to the other (a step of 2 passes 3 on its way).
                    let before = (i - d).checked_sub(1).and_then(ideal).unwrap_or(then);
                    then == now.actual
                        || (before.min(then) < now.actual && now.actual < before.max(then))
                })
                .unwrap_or(i + 1) as u64
        })
        .collect()
}

/// The nearest-rank percentile `p` (0..=100) of `values`.
fn percentile(values: &[u64], p: f64) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// Scores a run.
pub fn summarize(rules: &Rules, seconds: &[Second]) -> Summary {
    let scored: Vec<&Second> = seconds
        .iter()
        .filter(|s| rules.scored(s.t, seconds))
        .collect();
    let (tracking_exact_pct, max_abs_error) = if scored.is_empty() {
        (None, None)
    } else {
        let exact = scored
            .iter()
            .filter(|s| s.actual == rules.ideal(s.offered_rps))
            .count();
        let max_error = scored
            .iter()
            .map(|s| (s.actual - rules.ideal(s.offered_rps)).abs())
            .max();
        (Some(100.0 * exact as f64 / scored.len() as f64), max_error)
    };
    let mut scale_events = 0;
    let mut flaps = 0;
    let mut last_direction = 0i64;
    for pair in seconds.windows(2) {
        let change = pair[1].desired - pair[0].desired;
        if change == 0 {
            continue;
        }
        scale_events += 1;
        let direction = change.signum();
        if rules.scored(pair[1].t, seconds) && last_direction != 0 && direction != last_direction {
            flaps += 1;
        }
        last_direction = direction;
    }
    let step_reaction_s = (rules.profile == Profile::Step)
        .then(|| {
            let step = *rules.load_changes.get(1)?;
            let before = seconds.iter().find(|s| s.t == step)?.desired;
            seconds
                .iter()
                .find(|s| s.t >= step && s.desired > before)
                .map(|s| (s.t - step) as f64)
        })
        .flatten();
    let step_to_ideal_s = (rules.profile == Profile::Step)
        .then(|| {
            let step = *rules.load_changes.get(1)?;
            seconds
                .iter()
                .find(|s| s.t >= step && s.desired >= rules.ideal(s.offered_rps))
                .map(|s| (s.t - step) as f64)
        })
        .flatten();
    let churn_rps_error_pct = if rules.churn_events.is_empty() {
        None
    } else {
        let delay = (rules.interval + rules.flush_interval).as_secs().max(1);
        rules
            .churn_events
            .iter()
            .filter_map(|&event| {
                let s = seconds.iter().find(|s| s.t == event + delay)?;
                let measured = s.measured_rps?;
                Some(100.0 * (measured - s.offered_rps).abs() / s.offered_rps.max(1.0))
            })
            .fold(None, |max: Option<f64>, e| {
                Some(max.map_or(e, |m| m.max(e)))
            })
    };
    let lags = decision_lags(rules, seconds);
    let lag_p95_s = percentile(&lags, 95.0).map(|s| s as f64);
    let lag_max_s = lags.iter().max().map(|&s| s as f64);
    let mut goals = BTreeMap::new();
    let mut goal = |name: &str, value: Option<f64>, limit: f64, at_least: bool| {
        let pass = value.is_some_and(|v| if at_least { v >= limit } else { v <= limit });
        goals.insert(name.to_owned(), Goal { value, limit, pass });
    };
    match rules.profile {
        Profile::ShortRamp | Profile::Ramp | Profile::MidRamp | Profile::TutorialRamp => {
            goal("tracking_exact_pct", tracking_exact_pct, 95.0, true);
            goal("max_abs_error", max_abs_error.map(|e| e as f64), 1.0, false);
        }
        Profile::SteadyNoisy => {
            let after_settle = seconds
                .windows(2)
                .filter(|p| p[1].desired != p[0].desired && rules.scored(p[1].t, seconds))
                .count();
            goal(
                "scale_events_after_settle",
                Some(after_settle as f64),
                0.0,
                false,
            );
        }
        Profile::Churn => goal("churn_rps_error_pct", churn_rps_error_pct, 2.0, false),
        Profile::Step => goal(
            "step_reaction_s",
            step_reaction_s,
            rules.allowance(true).as_secs_f64(),
            false,
        ),
        Profile::Spike => {}
    }
    Summary {
        profile: clap::ValueEnum::to_possible_value(&rules.profile)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
        tracking_exact_pct,
        max_abs_error,
        scale_events,
        flaps_after_settle: flaps,
        step_reaction_s,
        step_to_ideal_s,
        churn_rps_error_pct,
        lag_p95_s,
        lag_max_s,
        processor_replicas: 1,
        leader_takeover_s: None,
        goals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(profile: Profile, changes: Vec<u64>) -> Rules {
        Rules {
            profile,
            target_rps: 100.0,
            min: 1,
            max: 0,
            window: Duration::from_secs(10),
            increase_cooldown: Duration::from_secs(5),
            decrease_cooldown: Duration::from_secs(15),
            up_stabilization: Duration::ZERO,
            down_stabilization: Duration::ZERO,
            warm_up: Duration::ZERO,
            flush_interval: Duration::from_secs(1),
            load_changes: changes,
            churn_events: Vec::new(),
            interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_first_level_allows_for_the_pipelines_start_up_and_stabilization_counts() {
        // steady-noisy from 0: window 10 s + cooldown 5 s + flush 1 s = 16 s, then 15 s of
        // warm-up for the first level only.
        let mut r = rules(Profile::SteadyNoisy, vec![0]);
        let run: Vec<Second> = (0..60)
            .map(|t| second(t, 450.0, if t < 25 { 1 } else { 5 }))
            .collect();
        assert_eq!(
            summarize(&r, &run).goals["scale_events_after_settle"].value,
            Some(1.0)
        );
        r.warm_up = Duration::from_secs(15);
        assert_eq!(
            summarize(&r, &run).goals["scale_events_after_settle"].value,
            Some(0.0)
        );
        r.down_stabilization = Duration::from_secs(30);
        assert_eq!(r.allowance(false), Duration::from_secs(10 + 15 + 30 + 1));
        assert_eq!(r.allowance(true), Duration::from_secs(10 + 5 + 1));
    }

    fn second(t: u64, offered: f64, replicas: i64) -> Second {
        Second {
            t,
            offered_rps: offered,
            measured_rps: Some(offered),
            smoothed_rps: Some(offered),
            desired: replicas,
            actual: replicas,
            p99_ms: None,
        }
    }

    #[test]
    fn ideal_is_the_ceiling_within_bounds() {
        let mut r = rules(Profile::Ramp, vec![0]);
        assert_eq!(r.ideal(0.0), 1);
        assert_eq!(r.ideal(100.0), 1);
        assert_eq!(r.ideal(101.0), 2);
        r.max = 4;
        assert_eq!(r.ideal(600.0), 4);
    }

    #[test]
    fn seconds_inside_a_settle_allowance_are_not_scored() {
        // Load steps up at 30 s: 10 + 5 + 1 = 16 s of allowance.
        let r = rules(Profile::Ramp, vec![0, 30]);
        let mut run: Vec<Second> = (0..60)
            .map(|t| second(t, if t < 30 { 100.0 } else { 300.0 }, 1))
            .collect();
        for s in run.iter_mut().filter(|s| s.t >= 40) {
            s.actual = 3;
            s.desired = 3;
        }
        let summary = summarize(&r, &run);
        // Scored: 16..30 (15 s at 1 = ideal) and 46..60 (14 s at 3 = ideal); 0..16 is warm-up.
        assert_eq!(summary.tracking_exact_pct, Some(100.0));
        assert_eq!(summary.max_abs_error, Some(0));
        assert_eq!(summary.scale_events, 1);
        assert!(summary.goals["tracking_exact_pct"].pass);
    }

    #[test]
    fn the_decision_lag_is_how_far_the_running_count_trails_the_ideal() {
        let r = rules(Profile::MidRamp, vec![0, 10]);
        // 150 rps (2 replicas) from second 10; the running count follows at 17, and at 30 a
        // third replica that no load ever asked for starts.
        let run: Vec<Second> = (0..40)
            .map(|t| {
                let offered = if t < 10 { 50.0 } else { 150.0 };
                let running = match t {
                    0..17 => 1,
                    17..30 => 2,
                    _ => 3,
                };
                second(t, offered, running)
            })
            .collect();
        // A step of two ideal counts: the count between them trails from the step on.
        let two: Vec<Second> = (0..20)
            .map(|t| {
                let offered = if t < 10 { 150.0 } else { 350.0 };
                let running = match t {
                    0..13 => 2,
                    13..16 => 3,
                    _ => 4,
                };
                second(t, offered, running)
            })
            .collect();
        let lags = decision_lags(&r, &two);
        assert_eq!(&lags[9..17], [0, 1, 2, 3, 3, 4, 5, 0]);
        let lags = decision_lags(&r, &run);
        assert_eq!(lags[9], 0);
        assert_eq!(&lags[10..18], [1, 2, 3, 4, 5, 6, 7, 0]);
        assert_eq!(lags[30], 31);
        let summary = summarize(&r, &run[..30]);
        // 30 seconds, 7 of them late by 1..=7 s: the 95th percentile is the 29th smallest.
        assert_eq!(summary.lag_p95_s, Some(6.0));
        assert_eq!(summary.lag_max_s, Some(7.0));
    }

    #[test]
    fn flapping_after_settling_is_counted_and_fails_steady_noisy() {
        let r = rules(Profile::SteadyNoisy, vec![0]);
        let run: Vec<Second> = (0..60)
            .map(|t| second(t, 450.0, if t > 30 && t % 10 < 5 { 6 } else { 5 }))
            .collect();
        let summary = summarize(&r, &run);
        assert!(summary.flaps_after_settle > 0);
        assert!(!summary.goals["scale_events_after_settle"].pass);
    }

    #[test]
    fn step_reaction_and_churn_error_are_measured() {
        let mut r = rules(Profile::Step, vec![0, 30]);
        let run: Vec<Second> = (0..60)
            .map(|t| {
                second(
                    t,
                    if t < 30 { 200.0 } else { 600.0 },
                    if t < 37 { 2 } else { 6 },
                )
            })
            .collect();
        let summary = summarize(&r, &run);
        assert_eq!(summary.step_reaction_s, Some(7.0));
        assert_eq!(summary.step_to_ideal_s, Some(7.0));
        let partial: Vec<Second> = (0..60)
            .map(|t| {
                let desired = match t {
                    0..32 => 2,
                    32..45 => 4,
                    _ => 6,
                };
                second(t, if t < 30 { 200.0 } else { 600.0 }, desired)
            })
            .collect();
        let partial = summarize(&r, &partial);
        assert_eq!(partial.step_reaction_s, Some(2.0));
        assert_eq!(partial.step_to_ideal_s, Some(15.0));
        assert!(summary.goals["step_reaction_s"].pass);

        r.profile = Profile::Churn;
        r.churn_events = vec![10];
        let mut run: Vec<Second> = (0..20).map(|t| second(t, 300.0, 3)).collect();
        run[12].measured_rps = Some(297.0);
        let summary = summarize(&r, &run);
        assert_eq!(summary.churn_rps_error_pct, Some(1.0));
        assert!(summary.goals["churn_rps_error_pct"].pass);
    }
}
