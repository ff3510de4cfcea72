//! Recordings for the replay tests: pods' `requests` counters, one point per pod per second,
//! as the agent's `outputs.file` writes them.

#![allow(dead_code)]

pub const S: i64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600;

pub const TUTORIAL: &str = include_str!("../fixtures/tick/autoscale.tick");

/// The lines of second `t` (0-based) of `pods` pods whose counters stand at `counters`,
/// stamped 3 ms after the second (an agent's scrape time).
pub fn second(t: i64, counters: &[i64]) -> String {
    counters
        .iter()
        .enumerate()
        .map(|(pod, counter)| {
            format!(
                "requests,deployment=app,host=pod-{pod} counter={counter} {}\n",
                (T0 + t) * S + 3_000_000
            )
        })
        .collect()
}

/// `seconds` seconds of `pods` pods each serving `rate(t)` requests/s: one string per second.
pub fn ramp(pods: usize, seconds: i64, rate: impl Fn(i64) -> i64) -> Vec<String> {
    let mut counters = vec![0i64; pods];
    (0..seconds)
        .map(|t| {
            for counter in &mut counters {
                *counter += rate(t);
            }
            second(t, &counters)
        })
        .collect()
}

/// Up from 10 to 60 requests/s per pod over 5 minutes, then down to 10 and holding.
pub fn up_and_down(t: i64) -> i64 {
    if t < 300 {
        10 + t / 6
    } else {
        (60 - (t - 300) / 6).max(10)
    }
}
