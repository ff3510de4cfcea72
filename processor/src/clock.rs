//! The processor clock: "now" in nanoseconds since the Unix epoch, handed to everything that
//! needs time (write times of points without one, lateness, expiry, cooldowns, staleness), so
//! the cores stay pure and tests, the lab and replays choose their own.
//!
//! [`system`] is the machine's wall clock, never going backwards: a clock stepped back (NTP,
//! an operator) holds the processor clock until wall time catches up, so no cooldown is
//! stretched and no aligned time is revisited. A step forward is taken as it comes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock: ns since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock now, ns since the epoch (0 before 1970, `i64::MAX` after 2262).
pub fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The system clock (see the module documentation).
pub fn system() -> Clock {
    let latest = AtomicI64::new(i64::MIN);
    Arc::new(move || {
        let now = wall_ns();
        let before = latest.fetch_max(now, Ordering::Relaxed);
        before.max(now)
    })
}

/// `ns` since the epoch as RFC 3339 in whole seconds (`2026-12-05T13:03:14Z`); times before
/// the epoch read as the epoch.
pub fn rfc3339_seconds(ns: i64) -> String {
    humantime::format_rfc3339_seconds(system_time(ns)).to_string()
}

/// `ns` since the epoch as RFC 3339 with Go's `RFC3339Nano` fraction (trailing zeros dropped),
/// as Kapacitor's JSON times: `…T00:16:50Z`, `…T00:16:50.5Z`.
pub fn rfc3339_nanos(ns: i64) -> String {
    let text = humantime::format_rfc3339_nanos(system_time(ns)).to_string();
    match text.strip_suffix('Z').and_then(|t| t.split_once('.')) {
        Some((seconds, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{fraction}Z")
            }
        }
        None => text,
    }
}

fn system_time(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_wall_time_and_never_goes_back() {
        let clock = system();
        let before = wall_ns();
        let mut last = clock();
        assert!(last >= before);
        for _ in 0..1000 {
            let now = clock();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn times_format_as_kapacitor_writes_them() {
        assert_eq!(
            rfc3339_seconds(1_000_000_000_000_000_500),
            "2001-09-09T01:46:40Z"
        );
        assert_eq!(
            rfc3339_nanos(1_000_000_000_000_000_000),
            "2001-09-09T01:46:40Z"
        );
        assert_eq!(
            rfc3339_nanos(1_000_000_000_500_000_000),
            "2001-09-09T01:46:40.5Z"
        );
        assert_eq!(rfc3339_seconds(-5), "1970-01-01T00:00:00Z");
    }
}
