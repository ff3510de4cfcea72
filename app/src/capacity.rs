//! Capacity: one instance serves at most `rps` requests per second, like a pod with a fixed
//! amount of CPU. Excess requests queue (latency grows); none fail.
//!
//! The core is a pure pacer: each request reserves the next free service slot, slots are spaced
//! `1/rps` apart, and an idle instance does not bank slots for later bursts. Time is passed in.

use std::time::Duration;

use tokio::time::Instant;

/// Hands out service slots no closer together than `1 / rps`.
#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    /// The earliest time the next request may be served.
    next_free: Option<Instant>,
}

/// Why a capacity cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CapacityError {
    /// Zero, negative, NaN or infinite rates, and rates too high to pace (over 1 G/s).
    #[error("capacity must be a number of requests per second between 0.001 and 1e9, not {0}")]
    OutOfRange(f64),
}

impl Pacer {
    /// A pacer for at most `rps` requests per second.
    pub fn new(rps: f64) -> Result<Self, CapacityError> {
        if !(0.001..=1e9).contains(&rps) {
            return Err(CapacityError::OutOfRange(rps));
        }
        Ok(Self {
            spacing: Duration::from_secs_f64(1.0 / rps),
            next_free: None,
        })
    }

    /// Reserves a slot for a request that arrived at `now` and returns when it may be served.
    /// The result is `now` when the instance is keeping up.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = match self.next_free {
            Some(next_free) if next_free > now => next_free,
            _ => now,
        };
        self.next_free = Some(slot + self.spacing);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_within_capacity_are_served_at_once() {
        let mut pacer = Pacer::new(10.0).unwrap();
        let start = Instant::now();
        for i in 0..5 {
            let now = start + Duration::from_millis(100 * i);
            assert_eq!(pacer.reserve(now), now);
        }
    }

    #[test]
    fn a_burst_is_spread_one_slot_apart() {
        let mut pacer = Pacer::new(100.0).unwrap();
        let now = Instant::now();
        let slots: Vec<_> = (0..4).map(|_| pacer.reserve(now) - now).collect();
        assert_eq!(
            slots,
            [0, 10, 20, 30].map(Duration::from_millis).to_vec(),
            "each queued request waits one more 10 ms slot"
        );
    }

    #[test]
    fn an_idle_instance_does_not_bank_slots() {
        let mut pacer = Pacer::new(1.0).unwrap();
        let start = Instant::now();
        pacer.reserve(start);
        let later = start + Duration::from_secs(60);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later + Duration::from_secs(1));
    }

    #[test]
    fn overload_grows_the_wait_linearly() {
        // 200 requests offered at once to a 100 rps instance: the last waits about 2 s.
        let mut pacer = Pacer::new(100.0).unwrap();
        let now = Instant::now();
        let last = (0..200).map(|_| pacer.reserve(now)).last().unwrap();
        assert_eq!(last - now, Duration::from_millis(1990));
    }

    #[test]
    fn nonsense_capacities_are_refused() {
        for rps in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
            assert!(Pacer::new(rps).is_err(), "{rps} accepted");
        }
    }
}
