//! Exponential backoff with jitter for failed writes. Telegraf retries a failed batch at every
//! flush, hammering a struggling receiver; the agent waits instead, doubling the pause after
//! each consecutive failure up to a cap, with jitter so that a fleet of sidecars spreads out.
//! Pure: the caller passes the clock and the random number.

use std::time::Duration;

/// The pause after the first failure.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Consecutive failures and when the next attempt may start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Records a failure and returns how long to wait before the next attempt. `random` in
    /// `[0, 1)` picks the pause within the upper half of the exponential step ("equal jitter"),
    /// so the pause never collapses to zero.
    pub fn failed(&mut self, random: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exponent = (self.failures - 1).min(16);
        let step = INITIAL_BACKOFF
            .saturating_mul(1 << exponent)
            .min(MAX_BACKOFF);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        step / 2 + step.mul_f64(random / 2.0)
    }

    /// Records a failure after which the receiver asked for a wait (`Retry-After`): that wait
    /// is honoured within the bounds, [`INITIAL_BACKOFF`] to [`MAX_BACKOFF`]; without one, the
    /// pause is [`Backoff::failed`]'s.
    pub fn failed_asking(&mut self, random: f64, asked: Option<Duration>) -> Duration {
        let pause = self.failed(random);
        match asked {
            Some(asked) => asked.clamp(INITIAL_BACKOFF, MAX_BACKOFF),
            None => pause,
        }
    }

    /// Records a success: the next failure starts from the initial pause again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let upper: Vec<Duration> = (0..10).map(|_| backoff.failed(0.999_999)).collect();
        let expected_steps = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0];
        for (pause, step) in upper.iter().zip(expected_steps) {
            let step = Duration::from_secs_f64(step);
            assert!(
                *pause <= step && *pause > step.mul_f64(0.99),
                "{pause:?} vs {step:?}"
            );
        }
    }

    #[test]
    fn jitter_stays_in_the_upper_half_of_the_step() {
        let mut low = Backoff::default();
        let mut high = Backoff::default();
        for _ in 0..3 {
            low.failed(0.0);
            high.failed(0.0);
        }
        assert_eq!(low.failed(0.0), Duration::from_secs(2));
        assert_eq!(high.failed(0.5), Duration::from_secs(3));
    }

    #[test]
    fn a_retry_after_is_honoured_within_the_bounds() {
        let mut backoff = Backoff::default();
        let secs = Duration::from_secs;
        assert_eq!(backoff.failed_asking(0.9, Some(secs(2))), secs(2));
        assert_eq!(backoff.failed_asking(0.9, Some(secs(3600))), MAX_BACKOFF);
        assert_eq!(
            backoff.failed_asking(0.9, Some(Duration::ZERO)),
            INITIAL_BACKOFF
        );
        assert_eq!(backoff.failures(), 3, "each counts as a failure");
        assert_eq!(
            backoff.failed_asking(0.0, None),
            secs(2),
            "the 4th step, 4 s, halved"
        );
    }

    #[test]
    fn success_resets_and_odd_randoms_are_safe() {
        let mut backoff = Backoff::default();
        for _ in 0..50 {
            backoff.failed(f64::NAN);
        }
        assert_eq!(backoff.failures(), 50);
        backoff.succeeded();
        assert_eq!(backoff.failed(7.0), INITIAL_BACKOFF);
    }
}
