//! compat.md 2.6 as a pure pipeline test: the tutorial's sum over pods that flush in 10-s
//! bursts at different phases equals the true total at every aligned second.

mod pipeline_scenario;

use std::collections::BTreeMap;

use pipeline_scenario::{S, SUM_SCRIPT, T0};
use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Effect, Graph, Settings};
use processor::tick::{VarOverrides, compile};

fn sums_from(effects: &mut Vec<Effect>, sums: &mut BTreeMap<i64, f64>) {
    for effect in effects.drain(..) {
        if let Effect::Write { line, .. } = effect {
            let (time, value) = pipeline_scenario::total_of(&line);
            assert!(
                sums.insert(time / S, value).is_none(),
                "second {} emitted twice",
                time / S - T0
            );
        }
    }
}

#[test]
fn sum_across_pods_flushing_in_bursts_equals_the_true_total() {
    let scenario = pipeline_scenario::build();
    let script = format!("{SUM_SCRIPT}    |influxDBOut().database('out')\n");
    let pipeline = compile(&script, &VarOverrides::new()).unwrap();
    let mut graph = Graph::new("cross_pod", &pipeline, Settings::default()).unwrap();
    let mut effects = Vec::new();
    let mut sums = BTreeMap::new();
    let mut flushes = scenario.flushes.iter().peekable();
    let mut now = T0 * S;
    let mut stats_at_240 = Vec::new();
    while now <= (scenario.end + 60) * S {
        if now == (T0 + 240) * S {
            stats_at_240 = graph.stats();
        }
        while let Some(flush) = flushes.next_if(|f| f.arrival_ns <= now) {
            let parsed = parse_body(
                flush.body.clone().into_bytes(),
                "autoscale".into(),
                "autogen".into(),
                Precision::Nanoseconds,
                flush.arrival_ns,
            );
            assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            graph.write(parsed.batch.points(), flush.arrival_ns, &mut effects);
        }
        graph.tick(now, &mut effects);
        sums_from(&mut effects, &mut sums);
        now += S / 10;
    }
    let compared = pipeline_scenario::check(&scenario, &sums);
    assert!(compared > 250, "compared only {compared} seconds");
    let sum = stats_at_240.iter().find(|s| s.name == "sum4").unwrap();
    let derivative = stats_at_240
        .iter()
        .find(|s| s.name == "derivative2")
        .unwrap();
    assert!(derivative.specific.contains(&("counter_resets", 1)));
    // the departed pod expired, the three others are live
    assert!(sum.specific.contains(&("expired_series", 1)), "{sum:?}");
    // late: only the joining pod's first rate. The group's first lateness learns its pods,
    // so the first bursts of b and c at start-up are summed with a's (before that warm-up,
    // a's first burst was emitted alone and 18 points of b and c were dropped as late).
    assert!(sum.specific.contains(&("late_points", 1)), "{sum:?}");
    assert!(sum.specific.contains(&("warm_up_times", 0)), "{sum:?}");
}

#[test]
fn kapacitors_run_rule_would_have_been_wrong_here() {
    // The same scenario with a lateness of zero and no waiting degenerates towards
    // Kapacitor's behaviour; this guards that the test data really exercises the alignment.
    let scenario = pipeline_scenario::build();
    let script = format!("{SUM_SCRIPT}    |influxDBOut().database('out')\n");
    let pipeline = compile(&script, &VarOverrides::new()).unwrap();
    let settings = Settings {
        lateness: std::time::Duration::ZERO,
        ..Settings::default()
    };
    let mut graph = Graph::new("cross_pod", &pipeline, settings).unwrap();
    let mut effects = Vec::new();
    let mut sums = BTreeMap::new();
    for flush in &scenario.flushes {
        let parsed = parse_body(
            flush.body.clone().into_bytes(),
            "autoscale".into(),
            "autogen".into(),
            Precision::Nanoseconds,
            flush.arrival_ns,
        );
        graph.write(parsed.batch.points(), flush.arrival_ns, &mut effects);
        sums_from(&mut effects, &mut sums);
    }
    let wrong = scenario
        .truth
        .range(T0 + 20..scenario.end - 20)
        .filter(|(t, want)| {
            let got = sums.get(t).copied().unwrap_or(0.0);
            (got - **want).abs() > **want * 0.02
        })
        .count();
    assert!(wrong > 100, "only {wrong} seconds differ without alignment");
}

/// One agent of the cadence scenario: it scrapes every second and flushes its buffer every
/// `every` seconds (at seconds where `(t - phase) % every == 0`); a flush reaches the processor
/// `delay_ns` after its second.
struct Agent {
    host: &'static str,
    every: i64,
    phase: i64,
    delay_ns: i64,
    /// The second it stops: it flushes what it has once more and sends nothing after.
    stop: Option<i64>,
    base_rate: i64,
}

/// A write: when it arrives, and its points as (host, second).
struct Arrival {
    at_ns: i64,
    body: String,
    points: Vec<(&'static str, i64)>,
}

/// Writes in arrival order, and the true total per second.
fn cadence_scenario(agents: &[Agent], end: i64) -> (Vec<Arrival>, BTreeMap<i64, f64>) {
    let mut arrivals = Vec::new();
    let mut truth = BTreeMap::new();
    for agent in agents {
        let mut counter = 0;
        let mut buffer: Vec<i64> = Vec::new();
        let mut lines = Vec::new();
        let last = agent.stop.unwrap_or(end);
        for t in T0..=last {
            let due = (t - agent.phase).rem_euclid(agent.every) == 0 || Some(t) == agent.stop;
            if due && !buffer.is_empty() {
                arrivals.push(Arrival {
                    at_ns: t * S + agent.delay_ns,
                    body: lines.join("\n"),
                    points: buffer.iter().map(|&p| (agent.host, p)).collect(),
                });
                buffer.clear();
                lines.clear();
            }
            if Some(t) == agent.stop {
                break;
            }
            if t > T0 {
                let served = agent.base_rate + (t * 7) % 13;
                counter += served;
                *truth.entry(t).or_default() += served as f64;
            }
            buffer.push(t);
            lines.push(format!(
                "requests,deployment=app,host={} counter={counter} {}",
                agent.host,
                t * S
            ));
        }
    }
    arrivals.sort_by_key(|a| a.at_ns);
    (arrivals, truth)
}

#[test]
fn cadence_mixed_agents_a_removed_pod_and_a_late_one_give_true_totals_without_waiting() {
    // a and d flush every second, b every 10 s, c every second but each batch lands 3.25 s
    // late; d stops at 100 s. Every pod is a live contributor of the one sum group.
    let stop = T0 + 100;
    let end = T0 + 200;
    let agents = [
        Agent {
            host: "a",
            every: 1,
            phase: 0,
            delay_ns: 300_000_000,
            stop: None,
            base_rate: 120,
        },
        Agent {
            host: "b",
            every: 10,
            phase: 3,
            delay_ns: 200_000_000,
            stop: None,
            base_rate: 90,
        },
        Agent {
            host: "c",
            every: 1,
            phase: 0,
            delay_ns: 3_250_000_000,
            stop: None,
            base_rate: 150,
        },
        Agent {
            host: "d",
            every: 1,
            phase: 0,
            delay_ns: 500_000_000,
            stop: Some(stop),
            base_rate: 60,
        },
    ];
    let (arrivals, truth) = cadence_scenario(&agents, end);
    // When the last point for each second reached the processor: a total is complete then.
    let mut ready: BTreeMap<i64, i64> = BTreeMap::new();
    for arrival in &arrivals {
        for (_, second) in &arrival.points {
            let at = ready.entry(*second).or_insert(arrival.at_ns);
            *at = (*at).max(arrival.at_ns);
        }
    }

    let script = format!("{SUM_SCRIPT}    |influxDBOut().database('out')\n");
    let pipeline = compile(&script, &VarOverrides::new()).unwrap();
    let mut graph = Graph::new("cadence", &pipeline, Settings::default()).unwrap();
    let mut effects = Vec::new();
    // second -> (total, processor time it was emitted)
    let mut totals: BTreeMap<i64, (f64, i64)> = BTreeMap::new();
    let mut stats_after_stop = Vec::new();
    let mut pending = arrivals.iter().peekable();
    let mut now = T0 * S;
    while now <= (end + 30) * S {
        while let Some(arrival) = pending.next_if(|a| a.at_ns <= now) {
            let parsed = parse_body(
                arrival.body.clone().into_bytes(),
                "autoscale".into(),
                "autogen".into(),
                Precision::Nanoseconds,
                arrival.at_ns,
            );
            assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            graph.write(parsed.batch.points(), arrival.at_ns, &mut effects);
            collect_totals(&mut effects, &mut totals, arrival.at_ns);
        }
        graph.tick(now, &mut effects);
        collect_totals(&mut effects, &mut totals, now);
        if now == (stop + 6) * S {
            stats_after_stop = graph.stats();
        }
        now += S / 10;
    }

    let mut compared = 0;
    for (&second, &want) in truth.range(T0 + 20..end - 10) {
        let Some(&(got, emitted_at)) = totals.get(&second) else {
            panic!("second {} has no total", second - T0);
        };
        assert!(
            (got - want).abs() <= want * 0.02,
            "second {}: total {got}, true total {want}",
            second - T0
        );
        let ready_at = ready[&second];
        // Never before the last live pod's point (the late pod and the 10-s pod are waited
        // for), never long after it (the stopped pod is not).
        assert!(
            emitted_at >= ready_at,
            "second {}: emitted {} ms before its last point",
            second - T0,
            (ready_at - emitted_at) / 1_000_000
        );
        assert!(
            emitted_at - ready_at <= S,
            "second {}: emitted {} ms after its last point",
            second - T0,
            (emitted_at - ready_at) / 1_000_000
        );
        compared += 1;
    }
    assert!(compared > 150, "compared only {compared} seconds");
    // The stopped pod is forgotten a few of its cadences after its last flush (not after the
    // 30-s series-expiry), and no point was late.
    let sum = stats_after_stop.iter().find(|s| s.name == "sum4").unwrap();
    assert!(sum.specific.contains(&("expired_series", 1)), "{sum:?}");
    assert!(sum.specific.contains(&("late_points", 0)), "{sum:?}");
}

fn collect_totals(effects: &mut Vec<Effect>, totals: &mut BTreeMap<i64, (f64, i64)>, now: i64) {
    for effect in effects.drain(..) {
        if let Effect::Write { line, .. } = effect {
            let (time, value) = pipeline_scenario::total_of(&line);
            assert!(
                totals.insert(time / S, (value, now)).is_none(),
                "second {} emitted twice",
                time / S - T0
            );
        }
    }
}
