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
