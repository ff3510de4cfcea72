//! The cross-pod sum against time faults: a point stamped far ahead (a pod with a broken
//! clock) and a task's first seconds, when not every pod has flushed yet.

mod pipeline_scenario;

use std::collections::BTreeMap;

use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Effect, Graph, Settings};
use processor::tick::{VarOverrides, compile};

use pipeline_scenario::S;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

const SCRIPT: &str = "stream
    |from()
        .measurement('requests')
        .groupBy('host', 'deployment')
        .truncate(1s)
    |derivative('counter')
        .as('rate')
        .unit(1s)
        .nonNegative()
    |groupBy('deployment')
    |sum('rate')
        .as('total')
    |influxDBOut()
        .database('out')
";

struct Run {
    graph: Graph,
    effects: Vec<Effect>,
    /// Second -> total.
    sums: BTreeMap<i64, f64>,
}

impl Run {
    fn new() -> Run {
        let pipeline = compile(SCRIPT, &VarOverrides::new()).unwrap();
        Run {
            graph: Graph::new("t", &pipeline, Settings::default()).unwrap(),
            effects: Vec::new(),
            sums: BTreeMap::new(),
        }
    }

    /// Writes `lines` (second timestamps) arriving at `now_ns`.
    fn write(&mut self, lines: &str, now_ns: i64) {
        let parsed = parse_body(
            lines.as_bytes().to_vec(),
            "autoscale".into(),
            "autogen".into(),
            Precision::Seconds,
            now_ns,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        self.graph
            .write(parsed.batch.points(), now_ns, &mut self.effects);
        self.collect();
    }

    fn tick(&mut self, now_ns: i64) {
        self.graph.tick(now_ns, &mut self.effects);
        self.collect();
    }

    fn collect(&mut self) {
        for effect in self.effects.drain(..) {
            if let Effect::Write { line, .. } = effect {
                let (time, value) = pipeline_scenario::total_of(&line);
                let second = time / S - T0;
                assert!(
                    self.sums.insert(second, value).is_none(),
                    "second {second} emitted twice"
                );
            }
        }
    }

    fn stat(&self, node: &str, name: &str) -> u64 {
        let stats = self.graph.stats();
        let node = stats.iter().find(|s| s.name == node).unwrap();
        node.specific
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, v)| *v)
    }
}

fn line(host: &str, counter: i64, second: i64) -> String {
    format!(
        "requests,deployment=app,host={host} counter={counter} {}\n",
        T0 + second
    )
}

#[test]
fn a_point_stamped_far_ahead_is_dropped_and_one_ahead_within_the_limit_stalls_nothing() {
    let mut run = Run::new();
    for t in 0..=120 {
        let now = (T0 + t) * S + S / 2;
        // Three pods at 100 requests/s each, flushing every second.
        for (i, host) in ["a", "b", "c"].into_iter().enumerate() {
            run.write(
                &line(host, 100 * t, t),
                now + i64::try_from(i).unwrap() * S / 10,
            );
        }
        if t == 30 {
            // A writer a year ahead: dropped by the from node.
            run.write(&line("year", 5, t + 365 * 86_400), now);
            run.write(&line("year", 10, t + 365 * 86_400 + 1), now);
            // A pod 40 s fast (inside the future limit): its rates are zero, its times
            // wait for the clock, and it holds no one else's.
            run.write(&line("fast", 7, t + 40), now);
            run.write(&line("fast", 7, t + 41), now);
        }
        run.tick(now + S / 2);
    }
    assert_eq!(run.stat("from1", "future_points"), 2);
    assert_eq!(
        run.stat("sum4", "late_points"),
        0,
        "{:?} {:?}",
        run.graph.stats(),
        run.sums
    );
    let first = *run.sums.keys().next().unwrap();
    let expected: Vec<(i64, f64)> = (first..=120).map(|t| (t, 300.0)).collect();
    let got: Vec<(i64, f64)> = run.sums.iter().map(|(t, v)| (*t, *v)).collect();
    assert_eq!(got, expected);
}

#[test]
fn the_first_total_after_a_start_counts_every_pod() {
    let mut run = Run::new();
    // Three pods at 117 requests/s; their 1-s flushes land 0.3 s apart, and c's first point
    // comes a second after the others'.
    for t in 0..=40 {
        let now = (T0 + t) * S;
        for (i, host) in ["a", "b", "c"].into_iter().enumerate() {
            if host == "c" && t == 0 {
                continue;
            }
            let arrival = now + S / 10 + i64::try_from(i).unwrap() * 3 * S / 10;
            run.write(&line(host, 117 * t, t), arrival);
        }
        run.tick(now + S);
    }
    let got: Vec<f64> = run.sums.values().copied().collect();
    assert!(!got.is_empty());
    assert!(got.iter().all(|v| *v == 351.0), "{:?}", run.sums);
    // Times before c's first rate could not hold c: dropped, not emitted partial.
    assert_eq!(run.stat("sum4", "warm_up_times"), 1);
}
