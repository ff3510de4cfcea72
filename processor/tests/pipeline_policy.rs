//! The k8sAutoscale extensions through the whole pipeline (derivative → sum → movingAverage →
//! k8sAutoscale) on a simulated clock: pods report a `requests` counter every second; a
//! dry-run scaler applies each decision to a simulated Deployment. Burst acts on a step and
//! not on noise; a silent target holds, then falls back; a bad `.replicas()` value is counted
//! and never written; the example ticks define and behave as their comments say.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use processor::decisions::{Outcome, Record};
use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Effect, Graph, Settings};
use processor::scaler::decision::Rule;
use processor::scaler::dry_run::DryRunScaler;
use processor::tick::{VarOverrides, compile};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000 * S;

const HPA_LIKE: &str = include_str!("../examples/hpa-like.tick");
const BURST: &str = include_str!("../examples/burst.tick");

/// One Deployment's pods and the pipeline that scales it.
struct Sim {
    graph: Graph,
    scaler: DryRunScaler,
    now: Arc<AtomicI64>,
    /// Each pod's counter.
    counters: Vec<f64>,
    /// Pods whose agent no longer reports (their app still serves its share).
    silent: Vec<bool>,
    /// The simulated Deployment's replicas at the start.
    initial: i64,
    /// The simulated Deployment's replicas after each second.
    replicas: Vec<i64>,
    records: Vec<Record>,
    second: i64,
}

impl Sim {
    fn new(script: &str, pods: usize, replicas: i64) -> Sim {
        let pipeline = compile(script, &VarOverrides::new()).expect("the tick compiles");
        let graph = Graph::new("t", &pipeline, Settings::default()).unwrap();
        let now = Arc::new(AtomicI64::new(T0));
        let clock_now = Arc::clone(&now);
        let scaler = DryRunScaler::starting_at(
            Arc::new(move || clock_now.load(Ordering::SeqCst)),
            Some(replicas),
        );
        Sim {
            graph,
            scaler,
            now,
            counters: vec![0.0; pods],
            silent: vec![false; pods],
            initial: replicas,
            replicas: Vec::new(),
            records: Vec::new(),
            second: 0,
        }
    }

    /// One second: every pod reports its counter, `total_rps` shared evenly; the points
    /// arrive 100 ms after their time; then the second's tick.
    fn second(&mut self, total_rps: f64) {
        let time = T0 + self.second * S;
        let share = total_rps / self.counters.len() as f64;
        let mut body = String::new();
        for (pod, counter) in self.counters.iter_mut().enumerate() {
            *counter += share;
            if self.silent[pod] {
                continue;
            }
            body.push_str(&format!(
                "requests,host=pod{pod},deployment=app counter={counter} {time}\n"
            ));
        }
        let arrival = time + S / 10;
        self.now.store(arrival, Ordering::SeqCst);
        let parsed = parse_body(
            body.into_bytes(),
            "telegraf".into(),
            "autogen".into(),
            Precision::Nanoseconds,
            arrival,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let mut effects = Vec::new();
        self.graph
            .write(parsed.batch.points(), arrival, &mut effects);
        self.settle(effects, arrival);
        let tick = time + S - 1;
        self.now.store(tick, Ordering::SeqCst);
        let mut effects = Vec::new();
        self.graph.tick(tick, &mut effects);
        self.settle(effects, tick);
        self.replicas.push(self.current());
        self.second += 1;
    }

    /// One second in which no pod reports (only the tick).
    fn silent_second(&mut self) {
        let tick = T0 + self.second * S + S - 1;
        self.now.store(tick, Ordering::SeqCst);
        let mut effects = Vec::new();
        self.graph.tick(tick, &mut effects);
        self.settle(effects, tick);
        self.replicas.push(self.current());
        self.second += 1;
    }

    fn settle(&mut self, mut effects: Vec<Effect>, now: i64) {
        while let Some(effect) = effects.pop() {
            match effect {
                Effect::Scale {
                    node,
                    intent,
                    point,
                } => {
                    let result = self.scaler.decide(&intent);
                    let mut more = Vec::new();
                    self.graph.scaled(node, point, result, now, &mut more);
                    effects.extend(more);
                }
                Effect::Decision(record) => self.records.push(*record),
                Effect::Write { .. } => {}
            }
        }
    }

    fn current(&self) -> i64 {
        self.scaler
            .decisions()
            .last()
            .map_or(self.initial, |(_, o)| o.new)
    }

    /// (second, old, new) of every change.
    fn changes(&self) -> Vec<(usize, i64, i64)> {
        let mut out = Vec::new();
        let mut last = None;
        for (second, &n) in self.replicas.iter().enumerate() {
            if let Some(prev) = last
                && prev != n
            {
                out.push((second, prev, n));
            }
            last = Some(n);
        }
        out
    }

    /// A counter summed over the task's k8sAutoscale nodes.
    fn k8s_stat(&self, name: &str) -> u64 {
        self.graph
            .stats()
            .iter()
            .filter(|s| s.name.starts_with("k8s_autoscale"))
            .map(|node| {
                if name == "errors" {
                    return node.errors;
                }
                node.specific
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map_or(0, |(_, v)| *v)
            })
            .sum()
    }
}

#[test]
fn records_name_the_series_of_a_total_and_a_decrease_after_a_pod_went_silent() {
    let mut sim = Sim::new(HPA_LIKE, 3, 3);
    for _ in 0..60 {
        sim.second(270.0);
    }
    assert_eq!(*sim.replicas.last().unwrap(), 3);
    let steady = sim.records.last().unwrap();
    assert_eq!(steady.inputs.series_count, 3);
    let named: Vec<&str> = steady
        .inputs
        .series
        .iter()
        .map(|c| c.series.as_str())
        .collect();
    assert!(
        named.contains(&"requests,deployment=app,host=pod2"),
        "{named:?}"
    );
    assert!(steady.inputs.expired.is_empty());
    // pod2's agent stops; its app still serves a third of the load, which the total loses.
    sim.silent[2] = true;
    for _ in 0..60 {
        sim.second(270.0);
    }
    let decrease = sim
        .records
        .iter()
        .find(|r| r.outcome == Outcome::Decreased)
        .expect("the lost third scales down");
    assert_eq!(decrease.inputs.series_count, 2);
    let gone: Vec<&str> = decrease
        .inputs
        .expired
        .iter()
        .map(|c| c.series.as_str())
        .collect();
    assert_eq!(gone, ["requests,deployment=app,host=pod2"]);
    assert!(decrease.is_decrease_after_silence());
    assert!(
        decrease.delay_seconds.is_some_and(|d| d > 0.0 && d < 2.0),
        "from the newest sample: {decrease:?}"
    );
}

fn settled_increases(sim: &Sim) -> u64 {
    sim.changes().iter().filter(|c| c.2 > c.1).count() as u64
}

/// A load that wobbles ±`amplitude` around `mean`, the same every run.
fn noisy(mean: f64, amplitude: f64, second: i64) -> f64 {
    let wobble = ((second * 7919) % 13) as f64 / 6.0 - 1.0;
    mean + amplitude * wobble
}

#[test]
fn burst_reaches_the_ideal_count_of_a_3x_step_within_10_s_past_the_tutorials_cooldowns() {
    // The tutorial's own vars: a 60-point average and cooldowns of 1 and 2 minutes.
    let mut sim = Sim::new(BURST, 3, 2);
    for _ in 0..120 {
        sim.second(190.0);
    }
    assert_eq!(*sim.replicas.last().unwrap(), 2, "{:?}", sim.changes());
    let before = sim.changes().len();
    for _ in 0..30 {
        sim.second(570.0);
    }
    let reached = sim.replicas[120..].iter().position(|&n| n >= 6);
    assert!(
        reached.is_some_and(|s| s < 10),
        "6 replicas within 10 s of the step: {reached:?}, {:?}",
        sim.changes()
    );
    let burst_changes: Vec<_> = sim
        .records
        .iter()
        .filter(|r| {
            r.outcome == Outcome::Increased && r.rules.iter().any(|s| s.rule == Rule::Burst)
        })
        .collect();
    assert!(!burst_changes.is_empty(), "the burst node made the changes");
    assert!(sim.changes().len() > before);
    // And without the burst node, the tutorial's task alone takes over a minute (capped by its
    // cooldown after the first small step).
    let stable_only = BURST
        .split("\ntotal\n    |movingAverage('total_requests_per_second', burst_avg_count)")
        .next()
        .unwrap();
    let mut slow = Sim::new(stable_only, 3, 2);
    for _ in 0..120 {
        slow.second(190.0);
    }
    for _ in 0..60 {
        slow.second(570.0);
    }
    assert!(
        slow.replicas[120..].iter().all(|&n| n < 6),
        "{:?}",
        slow.changes()
    );
}

#[test]
fn burst_does_not_act_on_noise_and_holds_decreases_while_it_lasts() {
    let mut sim = Sim::new(BURST, 3, 3);
    // 250 ± 60 rps: the stable node wants 3 (not a multiple of the target, where the
    // tutorial's `int(ceil(...))` flaps by design), the short window up to 4: below 2 x 3.
    for s in 0..300 {
        sim.second(noisy(250.0, 60.0, s));
    }
    let settled: Vec<_> = sim.changes().into_iter().filter(|c| c.0 >= 60).collect();
    assert!(settled.is_empty(), "no change on ±20 % noise: {settled:?}");
    assert_eq!(
        sim.k8s_stat("increase_events"),
        settled_increases(&sim),
        "only the start-up"
    );
    // A step then a quick drop back: the burst scales up, and the stable node's wish to come
    // down is held until the burst's hold has passed.
    let step_at = sim.replicas.len();
    for _ in 0..8 {
        sim.second(1000.0);
    }
    for _ in 0..20 {
        sim.second(250.0);
    }
    let peak = *sim.replicas[step_at..].iter().max().unwrap();
    assert!(peak >= 6, "{:?}", sim.changes());
    let held = sim
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Held && r.rules.iter().any(|s| s.rule == Rule::Burst))
        .count();
    assert!(
        held > 0,
        "the stable node's decreases were held by the burst"
    );
    let decreased_early = sim
        .changes()
        .into_iter()
        .any(|(s, old, new)| s > step_at && new < old && s < step_at + 28);
    assert!(!decreased_early, "{:?}", sim.changes());
}

#[test]
fn the_hpa_like_tick_settles_on_steady_noise_and_follows_a_step() {
    let mut sim = Sim::new(HPA_LIKE, 3, 3);
    for s in 0..180 {
        sim.second(noisy(300.0, 20.0, s));
    }
    let settled: Vec<_> = sim.changes().into_iter().filter(|c| c.0 >= 30).collect();
    assert!(
        settled.is_empty(),
        "tolerance keeps a noisy steady load still: {settled:?}"
    );
    let held = sim
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Held && r.rules.iter().any(|s| s.rule == Rule::Tolerance))
        .count();
    assert!(held > 0, "the tolerance band held changes");
    let step_at = sim.replicas.len();
    for _ in 0..40 {
        sim.second(900.0);
    }
    let first_change = sim.replicas[step_at..].iter().position(|&n| n != 3);
    assert!(
        first_change.is_some_and(|s| s <= 2),
        "{first_change:?} {:?}",
        sim.changes()
    );
    assert_eq!(*sim.replicas.last().unwrap(), 9, "{:?}", sim.changes());
    // Down: the 30-s stabilization keeps the count for 30 s after the load falls.
    let drop_at = sim.replicas.len();
    for _ in 0..60 {
        sim.second(300.0);
    }
    let first_down = sim.replicas[drop_at..].iter().position(|&n| n < 9).unwrap();
    assert!(first_down >= 30, "{first_down} {:?}", sim.changes());
    assert_eq!(*sim.replicas.last().unwrap(), 3, "{:?}", sim.changes());
}

#[test]
fn a_silent_target_holds_then_falls_back_and_says_so() {
    let script = HPA_LIKE.replace(
        ".tolerance(0.1)",
        ".tolerance(0.1)\n        .fallbackAfter(30s)\n        .fallbackReplicas(4)",
    );
    let mut sim = Sim::new(&script, 2, 3);
    for _ in 0..60 {
        sim.second(300.0);
    }
    assert_eq!(*sim.replicas.last().unwrap(), 3);
    for _ in 0..29 {
        sim.silent_second();
    }
    assert_eq!(*sim.replicas.last().unwrap(), 3, "held while silent");
    for _ in 0..5 {
        sim.silent_second();
    }
    assert_eq!(*sim.replicas.last().unwrap(), 4, "the fallback count");
    let fallbacks: Vec<&Record> = sim
        .records
        .iter()
        .filter(|r| r.rules.iter().any(|s| s.rule == Rule::Stale))
        .collect();
    assert_eq!(fallbacks.len(), 1, "one fallback per silence");
    assert_eq!(fallbacks[0].outcome, Outcome::Increased);
    assert_eq!(fallbacks[0].raw, None);
    assert_eq!(sim.k8s_stat("fallbacks"), 1);
    // Without `.fallbackReplicas()` the fallback holds, and says so.
    let script = HPA_LIKE.replace(".tolerance(0.1)", ".tolerance(0.1).fallbackAfter(30s)");
    let mut sim = Sim::new(&script, 2, 3);
    for _ in 0..60 {
        sim.second(300.0);
    }
    for _ in 0..40 {
        sim.silent_second();
    }
    assert_eq!(*sim.replicas.last().unwrap(), 3);
    let held: Vec<&Record> = sim
        .records
        .iter()
        .filter(|r| r.rules.iter().any(|s| s.rule == Rule::Stale))
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].outcome, Outcome::Held);
}

#[test]
fn a_nan_or_negative_count_is_counted_per_point_and_never_written() {
    for lambda in [
        "\"avg_requests_per_second\" / 0.0 * 0.0",
        "0.0 - \"avg_requests_per_second\"",
    ] {
        let script = HPA_LIKE.replace("\"avg_requests_per_second\" / target", lambda);
        let mut sim = Sim::new(&script, 2, 3);
        for _ in 0..20 {
            sim.second(300.0);
        }
        assert!(
            sim.scaler.decisions().is_empty(),
            "{lambda}: nothing reached the scaler"
        );
        assert!(sim.k8s_stat("errors") >= 10, "{lambda}");
        assert_eq!(*sim.replicas.last().unwrap(), 3, "never written");
    }
}

#[test]
fn every_decision_leaves_a_record_with_its_inputs() {
    let mut sim = Sim::new(HPA_LIKE, 2, 1);
    for _ in 0..20 {
        sim.second(500.0);
    }
    let increases: Vec<&Record> = sim
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Increased)
        .collect();
    let first = increases.first().expect("an increase");
    assert_eq!(first.target.name, "app");
    assert_eq!(first.target.kind, "deployments");
    assert_eq!(first.task, "t");
    assert_eq!(first.node, "k8s_autoscale6");
    assert!(first.inputs.fields.contains_key("avg_requests_per_second"));
    assert_eq!(first.current, Some(1));
    assert!(first.raw.is_some());
    assert!(
        first.delay_seconds.is_some_and(|d| d > 0.0 && d < 5.0),
        "{first:?}"
    );
    let by_outcome: BTreeMap<&str, usize> = sim.records.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.outcome.name()).or_default() += 1;
        m
    });
    assert!(by_outcome.contains_key("increased"), "{by_outcome:?}");
}
