//! The cross-pod scenario of compat.md 2.6, shared by the pure pipeline test and the
//! end-to-end test: pods whose agents scrape a `requests` counter every second and flush their
//! buffer every 10 s on their own phase, a pod joining, one leaving, one restarting.

#![allow(dead_code)]

use std::collections::BTreeMap;

pub const S: i64 = 1_000_000_000;
/// Scenario start (seconds since the epoch, a round number).
pub const T0: i64 = 1_700_000_000;

struct Pod {
    host: &'static str,
    /// Flushes when (t - phase) % 10 == 0.
    phase: i64,
    start: i64,
    /// Leaves after its flush at this time (agent flushes once more on shutdown).
    stop: Option<i64>,
    /// Restarts (counter back to 0) at this second.
    restart: Option<i64>,
    base_rate: i64,
}

/// One HTTP write as an agent sends it: arrival time (processor clock) and line protocol.
pub struct Flush {
    pub arrival_ns: i64,
    pub host: &'static str,
    pub body: String,
}

pub struct Scenario {
    /// Write requests in arrival order.
    pub flushes: Vec<Flush>,
    /// True total requests/s per aligned second (seconds since the epoch).
    pub truth: BTreeMap<i64, f64>,
    /// Seconds a joining pod's first burst covers (points there may arrive after the time was
    /// already emitted; see the aggregate's docs).
    pub join_burst: Vec<i64>,
    pub end: i64,
}

fn rate(pod: &Pod, t: i64) -> i64 {
    // a deterministic, varying load per pod
    pod.base_rate + (t * 7 + pod.phase * 13) % 23
}

pub fn build() -> Scenario {
    let pods = [
        Pod {
            host: "app-a",
            phase: 0,
            start: T0,
            stop: None,
            restart: None,
            base_rate: 120,
        },
        Pod {
            host: "app-b",
            phase: 3,
            start: T0,
            stop: Some(T0 + 200),
            restart: None,
            base_rate: 90,
        },
        Pod {
            host: "app-c",
            phase: 7,
            start: T0,
            stop: None,
            restart: Some(T0 + 150),
            base_rate: 150,
        },
        Pod {
            host: "app-d",
            phase: 5,
            start: T0 + 115,
            stop: None,
            restart: None,
            base_rate: 60,
        },
    ];
    let end = T0 + 300;
    let mut flushes = Vec::new();
    let mut truth: BTreeMap<i64, f64> = BTreeMap::new();
    for pod in &pods {
        let mut counter: i64 = 0;
        let mut buffer: Vec<String> = Vec::new();
        let last = pod.stop.unwrap_or(end);
        for t in pod.start..=last {
            // flush what was scraped before t
            let first_flush = t >= pod.start + 10;
            if (((t - pod.phase).rem_euclid(10) == 0 && first_flush) || Some(t) == pod.stop)
                && !buffer.is_empty()
            {
                {
                    flushes.push(Flush {
                        // agents flush a little after the second; network adds a little more
                        arrival_ns: t * S + 200_000_000 + pod.phase * 10_000_000,
                        host: pod.host,
                        body: buffer.join("\n"),
                    });
                    buffer.clear();
                }
            }
            if Some(t) == pod.stop {
                break;
            }
            // scrape at t: requests served during (t-1, t]
            if t > pod.start {
                let served = rate(pod, t);
                if Some(t) == pod.restart {
                    counter = served;
                } else {
                    counter += served;
                }
                // the first sample (at start) only primes the derivative
                *truth.entry(t).or_default() += served as f64;
            }
            // a few ns of jitter, removed by truncate(1s)
            buffer.push(format!(
                "requests,deployment=app,host={},url=http://localhost:8000/metrics counter={counter} {}",
                pod.host,
                t * S + 3_000_000
            ));
        }
    }
    flushes.sort_by_key(|f| f.arrival_ns);
    Scenario {
        flushes,
        truth,
        join_burst: (T0 + 115..T0 + 125).collect(),
        end,
    }
}

/// The script under test: the tutorial's pipeline up to the sum.
pub const SUM_SCRIPT: &str = r#"
stream
    |from()
        .measurement('requests')
        .groupBy('host', 'deployment')
        .truncate(1s)
    |derivative('counter')
        .as('requests_per_second')
        .unit(1s)
        .nonNegative()
    |groupBy('deployment')
    |sum('requests_per_second')
        .as('total_requests_per_second')
"#;

/// Checks the sums per second against the truth; returns the seconds compared.
pub fn check(scenario: &Scenario, sums: &BTreeMap<i64, f64>) -> usize {
    let warm_up = T0 + 20;
    let mut compared = 0;
    for (&t, &want) in scenario.truth.range(warm_up..scenario.end - 20) {
        let got = sums.get(&t).copied().unwrap_or(0.0);
        if scenario.join_burst.contains(&t) {
            // the joining pod may be missing here, never counted twice
            assert!(
                got <= want * 1.02 && got >= want * 0.6,
                "second {}: sum {got}, true total {want}",
                t - T0
            );
        } else {
            assert!(
                (got - want).abs() <= want * 0.02,
                "second {}: sum {got}, true total {want}",
                t - T0
            );
        }
        compared += 1;
    }
    compared
}

/// An influxDBOut line of a sum, `requests,deployment=app <field>=<value> <ns>`, as
/// (time in ns, value).
pub fn total_of(line: &str) -> (i64, f64) {
    let mut parts = line.split(' ');
    let (_, field, time) = (parts.next(), parts.next(), parts.next());
    let value: f64 = field
        .and_then(|f| f.split_once('='))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(f64::NAN);
    let time: i64 = time.and_then(|t| t.parse().ok()).unwrap_or(0);
    (time, value)
}
