//! Load profiles: the offered request rate at every second of a run, and the churn events, as
//! pure functions of time.

use std::time::Duration;

/// A named load profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// 150 -> 350 -> 550 -> 350 -> 150 rps, midway between replica counts, 35 s a level: the
    /// default run, scored in under 3 minutes.
    ShortRamp,
    /// 100 -> 600 -> 100 rps in 100-rps steps, each held long enough to settle.
    Ramp,
    /// 50 -> 550 -> 50 rps in 100-rps steps: every level in the middle of a replica's band, so
    /// the ideal count never flickers with the load's noise (the decision-lag run).
    MidRamp,
    /// 200 rps, then a step to 600.
    Step,
    /// 200 rps with a short burst to 800.
    Spike,
    /// 450 rps +- 10 % noise: no scaling should happen after settling.
    SteadyNoisy,
    /// Steady 300 rps while replicas are killed, restarted and a replica joins.
    Churn,
    /// The tutorial's ramp.sh: +10 rps every 5 s up to the peak, then back down by 10.
    TutorialRamp,
}

/// The levels of `short-ramp`: half a target above a multiple of it (the target is 100 by
/// default), so the moving average's wobble never crosses a replica boundary and each level
/// asks for 2, 4, 6, 4, 2 replicas.
const SHORT_RAMP: [f64; 5] = [150.0, 350.0, 550.0, 350.0, 150.0];

/// Something the lab does to the replicas during a run (the churn profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChurnEvent {
    /// Kill one replica's app and agent (the kubelet restarts it: the counter resets to 0).
    Restart,
    /// Kill one replica for good and let the kubelet replace it with a new pod.
    Replace,
}

/// A profile with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub profile: Profile,
    /// How long each level is held (settle allowance and then some).
    pub hold: Duration,
    /// The tutorial ramp's peak.
    pub peak_rps: f64,
}

impl Profile {
    /// How long each level is held unless told: every level of `short-ramp` outlasts the settle
    /// allowance of the lab's vars (16 s up, 26 s down) with scored seconds to spare.
    pub fn default_hold(self) -> Duration {
        match self {
            Profile::ShortRamp => Duration::from_secs(35),
            _ => Duration::from_secs(15),
        }
    }
}

impl Plan {
    /// The default run length of the profile.
    pub fn duration(&self) -> Duration {
        let hold = self.hold.as_secs_f64();
        let secs = match self.profile {
            Profile::ShortRamp => SHORT_RAMP.len() as f64 * hold,
            // 1..6..1 hundred: 11 levels.
            Profile::Ramp | Profile::MidRamp => 11.0 * hold,
            Profile::Step => 3.0 * hold,
            Profile::Spike => 3.0 * hold,
            Profile::SteadyNoisy => 3.0 * hold,
            Profile::Churn => 4.0 * hold,
            Profile::TutorialRamp => {
                let steps = (self.peak_rps / 10.0).ceil();
                (2.0 * steps - 1.0) * 5.0
            }
        };
        Duration::from_secs_f64(secs)
    }

    /// The offered rate at `t` since the start; `noise` in [-1, 1] is used by steady-noisy.
    pub fn offered_rps(&self, t: Duration, noise: f64) -> f64 {
        let hold = self.hold.as_secs_f64().max(1.0);
        let s = t.as_secs_f64();
        let level = (s / hold).floor();
        match self.profile {
            Profile::ShortRamp => SHORT_RAMP[(level as usize).min(SHORT_RAMP.len() - 1)],
            Profile::Ramp => {
                let step = level.min(10.0);
                let hundreds = if step <= 5.0 { step + 1.0 } else { 11.0 - step };
                100.0 * hundreds
            }
            Profile::MidRamp => {
                let ramp = Plan {
                    profile: Profile::Ramp,
                    ..self.clone()
                };
                ramp.offered_rps(t, noise) - 50.0
            }
            Profile::Step => {
                if s < hold {
                    200.0
                } else {
                    600.0
                }
            }
            Profile::Spike => {
                if (hold..hold + hold / 4.0).contains(&s) {
                    800.0
                } else {
                    200.0
                }
            }
            Profile::SteadyNoisy => 450.0 + 45.0 * noise.clamp(-1.0, 1.0),
            Profile::Churn => 300.0,
            Profile::TutorialRamp => {
                let steps = (self.peak_rps / 10.0).ceil();
                let step = (s / 5.0).floor();
                // ramp.sh: 10, 20, ... up to the peak (once), then peak - 10 ... down to 10.
                let rps = if step < steps {
                    10.0 * (step + 1.0)
                } else {
                    10.0 * (2.0 * steps - step - 1.0)
                };
                rps.clamp(10.0, self.peak_rps.max(10.0))
            }
        }
    }

    /// Churn events due at second `second` of the run.
    pub fn churn_at(&self, second: u64) -> Option<ChurnEvent> {
        if self.profile != Profile::Churn {
            return None;
        }
        let hold = self.hold.as_secs().max(1);
        if second == hold {
            Some(ChurnEvent::Restart)
        } else if second == 2 * hold {
            Some(ChurnEvent::Replace)
        } else if second == 3 * hold {
            Some(ChurnEvent::Restart)
        } else {
            None
        }
    }

    /// When a churn run with processor replicas kills the processor leader: halfway between
    /// the replacement and the last restart of an app replica, so each event is scored alone.
    pub fn leader_kill_at(&self) -> Option<u64> {
        let hold = self.hold.as_secs().max(1);
        (self.profile == Profile::Churn).then_some(2 * hold + hold / 2)
    }

    /// The second at which each change of offered load happens (for settle allowances).
    pub fn changes(&self) -> Vec<u64> {
        let total = self.duration().as_secs();
        let mut changes = vec![0];
        let mut previous = self.offered_rps(Duration::ZERO, 0.0);
        for second in 1..total {
            let rps = self.offered_rps(Duration::from_secs(second), 0.0);
            if (rps - previous).abs() > f64::EPSILON {
                changes.push(second);
                previous = rps;
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(profile: Profile) -> Plan {
        Plan {
            profile,
            hold: Duration::from_secs(30),
            peak_rps: 100.0,
        }
    }

    #[test]
    fn ramp_goes_up_to_600_and_back_in_steps_of_100() {
        let p = plan(Profile::Ramp);
        let levels: Vec<f64> = (0..11)
            .map(|i| p.offered_rps(Duration::from_secs(i * 30 + 1), 0.0))
            .collect();
        assert_eq!(
            levels,
            [
                100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 500.0, 400.0, 300.0, 200.0, 100.0
            ]
        );
        assert_eq!(p.duration(), Duration::from_secs(330));
        assert_eq!(p.changes().len(), 11);
    }

    #[test]
    fn the_short_ramp_climbs_to_550_and_back_in_under_three_minutes() {
        let p = Plan {
            profile: Profile::ShortRamp,
            hold: Profile::ShortRamp.default_hold(),
            peak_rps: 600.0,
        };
        let levels: Vec<f64> = (0..5)
            .map(|i| p.offered_rps(Duration::from_secs(i * 35 + 34), 0.0))
            .collect();
        assert_eq!(levels, [150.0, 350.0, 550.0, 350.0, 150.0]);
        assert_eq!(p.changes(), [0, 35, 70, 105, 140]);
        assert_eq!(p.duration(), Duration::from_secs(175));
        // Past the end it stays at the last level.
        assert_eq!(p.offered_rps(Duration::from_secs(400), 0.0), 150.0);
        assert_eq!(Profile::Ramp.default_hold(), Duration::from_secs(15));
    }

    #[test]
    fn the_mid_ramp_keeps_every_level_in_the_middle_of_a_band() {
        let p = plan(Profile::MidRamp);
        let levels: Vec<f64> = (0..11)
            .map(|i| p.offered_rps(Duration::from_secs(i * 30 + 1), 0.0))
            .collect();
        assert_eq!(
            levels,
            [
                50.0, 150.0, 250.0, 350.0, 450.0, 550.0, 450.0, 350.0, 250.0, 150.0, 50.0
            ]
        );
        assert_eq!(p.duration(), Duration::from_secs(330));
    }

    #[test]
    fn step_triples_the_load_once() {
        let p = plan(Profile::Step);
        assert_eq!(p.offered_rps(Duration::from_secs(29), 0.0), 200.0);
        assert_eq!(p.offered_rps(Duration::from_secs(30), 0.0), 600.0);
        assert_eq!(p.changes(), [0, 30]);
    }

    #[test]
    fn steady_noisy_stays_within_ten_percent() {
        let p = plan(Profile::SteadyNoisy);
        assert_eq!(p.offered_rps(Duration::ZERO, 1.0), 495.0);
        assert_eq!(p.offered_rps(Duration::ZERO, -5.0), 405.0);
    }

    #[test]
    fn the_tutorial_ramp_climbs_ten_rps_every_five_seconds_and_comes_down() {
        let p = plan(Profile::TutorialRamp);
        assert_eq!(p.offered_rps(Duration::from_secs(0), 0.0), 10.0);
        assert_eq!(p.offered_rps(Duration::from_secs(5), 0.0), 20.0);
        assert_eq!(p.offered_rps(Duration::from_secs(45), 0.0), 100.0);
        assert_eq!(p.offered_rps(Duration::from_secs(50), 0.0), 90.0);
        assert_eq!(p.offered_rps(Duration::from_secs(55), 0.0), 80.0);
        assert_eq!(p.offered_rps(Duration::from_secs(94), 0.0), 10.0);
        assert_eq!(p.duration(), Duration::from_secs(95));
    }

    #[test]
    fn churn_events_come_once_per_hold() {
        let p = plan(Profile::Churn);
        let events: Vec<(u64, ChurnEvent)> = (0..120)
            .filter_map(|s| p.churn_at(s).map(|e| (s, e)))
            .collect();
        assert_eq!(
            events,
            [
                (30, ChurnEvent::Restart),
                (60, ChurnEvent::Replace),
                (90, ChurnEvent::Restart)
            ]
        );
        assert_eq!(plan(Profile::Ramp).churn_at(30), None);
        // The processor leader dies between the replacement and the last restart.
        assert_eq!(p.leader_kill_at(), Some(75));
        assert_eq!(plan(Profile::Ramp).leader_kill_at(), None);
    }
}
