use super::*;
use crate::line_protocol::Precision;
use crate::tick::{VarOverrides, compile};

const S: i64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

const TUTORIAL: &str = include_str!("../../tests/fixtures/tick/autoscale.tick");

/// `pods` pods' `requests` counters, one point per pod per second for `seconds` seconds,
/// each pod serving `rate(t)` requests/s; timestamps 3 ms after the second, as an agent's.
fn ramp(pods: usize, seconds: i64, rate: impl Fn(i64) -> i64) -> String {
    let mut counters = vec![0i64; pods];
    let mut out = String::new();
    for t in 0..seconds {
        for (pod, counter) in counters.iter_mut().enumerate() {
            *counter += rate(t);
            out.push_str(&format!(
                "requests,deployment=app,host=pod-{pod} counter={counter} {}\n",
                (T0 + t) * S + 3_000_000
            ));
        }
    }
    out
}

/// Up from 10 to 60 requests/s per pod over 5 minutes, then down.
fn up_and_down(t: i64) -> i64 {
    if t < 300 {
        10 + t / 6
    } else {
        (60 - (t - 300) / 6).max(10)
    }
}

fn recording(text: &str) -> Recording {
    Recording::parse(
        vec![Source {
            name: "in.lp".into(),
            text: text.as_bytes().to_vec(),
        }],
        "autoscale",
        "autogen",
        Precision::Nanoseconds,
        false,
    )
}

fn options() -> Options {
    Options::new(Dbrp {
        database: "autoscale".into(),
        retention_policy: "autogen".into(),
    })
}

fn replay(script: &str, text: &str, options: &Options) -> Replay {
    let pipeline = compile(script, &VarOverrides::new()).unwrap();
    run("autoscale", &pipeline, &recording(text), options).unwrap()
}

fn changes(replay: &Replay) -> Vec<(Outcome, Option<i64>, Option<i64>)> {
    replay
        .records
        .iter()
        .filter(|r| r.outcome.is_change())
        .map(|r| (r.outcome, r.current, r.desired))
        .collect()
}

#[test]
fn a_ramp_scales_up_within_the_cooldowns_then_down_and_the_summary_says_so() {
    let replay = replay(TUTORIAL, &ramp(10, 900, up_and_down), &options());
    let changes = changes(&replay);
    assert!(!changes.is_empty());
    let ups = changes
        .iter()
        .take_while(|c| c.0 == Outcome::Increased)
        .count();
    assert!(ups >= 2, "{changes:?}");
    assert!(
        changes[ups..].iter().all(|c| c.0 == Outcome::Decreased),
        "up, then only down: {changes:?}"
    );
    let summary = &replay.summary;
    assert_eq!(summary.points.read, 9000);
    assert_eq!(summary.points.fed, 9000);
    assert_eq!(summary.changes as usize, changes.len());
    assert_eq!(summary.reversals, 1, "one turn from up to down");
    let target = &summary.targets[0];
    assert_eq!(target.initial, Some(1));
    assert_eq!(target.last, changes.last().and_then(|c| c.2));
    let at: f64 = target.time_at.iter().map(|t| t.seconds).sum();
    assert_eq!(at, (summary.end_ns - summary.start_ns) as f64 / 1e9);
    // Increases at least a minute apart (the tutorial's increase cooldown), on the clock.
    let times: Vec<i64> = replay
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Increased)
        .map(|r| r.time_ns)
        .collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] >= 60 * S), "{times:?}");
    // A decision per aligned second once the moving average is fed.
    assert!(summary.decisions > 800, "{}", summary.decisions);
}

#[test]
fn the_same_input_gives_the_same_output_byte_for_byte() {
    let text = ramp(10, 600, up_and_down);
    let first = replay(TUTORIAL, &text, &options());
    let second = replay(TUTORIAL, &text, &options());
    assert_eq!(render::table(&first), render::table(&second));
    assert_eq!(render::json_lines(&first), render::json_lines(&second));
    assert!(render::table(&first).contains("increased"));
}

#[test]
fn replicas_set_where_every_target_starts() {
    let mut opts = options();
    opts.replicas = Some(7);
    let replay = replay(TUTORIAL, &ramp(2, 120, |_| 10), &opts);
    let first = &replay.records[0];
    assert_eq!(first.current, Some(7));
    assert_eq!(replay.summary.targets[0].initial, Some(7));
    // 20 requests/s want one replica: a decrease from 7.
    assert_eq!(
        changes(&replay).first(),
        Some(&(Outcome::Decreased, Some(7), Some(1)))
    );
}

#[test]
fn out_of_order_points_arrive_late_and_the_first_is_named() {
    let mut text = ramp(2, 60, |_| 100);
    // A point 20 s old after the others: late for the sum, out of order for the derivative.
    text.push_str(&format!(
        "requests,deployment=app,host=pod-0 counter=1 {}\n",
        (T0 + 40) * S
    ));
    text.push_str(&format!(
        "requests,deployment=app,host=pod-1 counter=1 {}\n",
        (T0 + 41) * S
    ));
    let replay = replay(TUTORIAL, &text, &options());
    let points = &replay.summary.points;
    assert_eq!(points.out_of_order, 2);
    assert_eq!(points.first_out_of_order.as_deref(), Some("in.lp:121"));
    let counter = |name: &str| {
        replay
            .summary
            .counters
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.value)
            .sum::<u64>()
    };
    assert_eq!(
        counter("out_of_order_points"),
        2,
        "{:?}",
        replay.summary.counters
    );
}

#[test]
fn skipping_the_ticks_of_a_quiet_pipeline_changes_nothing() {
    // Two hours of silence between two ramps, and a fallback that fires in the silence.
    let script = TUTORIAL.replace(".max(10)", ".max(10).fallbackAfter(2m).fallbackReplicas(3)");
    let mut text = ramp(3, 200, |t| 20 + t);
    let later: String = ramp(3, 200, |t| 220 - t)
        .lines()
        .map(|line| {
            let (head, time) = line.rsplit_once(' ').unwrap();
            let time: i64 = time.parse().unwrap();
            format!("{head} {}\n", time + 7200 * S + 200 * S)
        })
        .collect();
    text.push_str(&later);
    let mut every_tick = options();
    every_tick.skip_quiet_ticks = false;
    let skipping = replay(&script, &text, &options());
    let ticking = replay(&script, &text, &every_tick);
    assert_eq!(skipping.records, ticking.records);
    assert_eq!(
        render::json_lines(&skipping),
        render::json_lines(&ticking).replace(
            &format!("\"ticks\":{}", ticking.summary.ticks),
            &format!("\"ticks\":{}", skipping.summary.ticks),
        )
    );
    assert!(
        skipping.summary.ticks < ticking.summary.ticks,
        "{} ticks skipped",
        ticking.summary.ticks - skipping.summary.ticks
    );
    let fallback: Vec<i64> = skipping
        .records
        .iter()
        .filter(|r| {
            r.rules
                .first()
                .is_some_and(|s| s.rule == crate::scaler::decision::Rule::Stale)
        })
        .map(|r| r.time_ns / S - T0)
        .collect();
    assert_eq!(
        fallback.len(),
        1,
        "one fallback, in the silence: {fallback:?}"
    );
    assert!((320..=325).contains(&fallback[0]), "{fallback:?}");
}

#[test]
fn points_the_task_does_not_read_are_neither_fed_nor_clocked() {
    let mut lines: Vec<String> = ramp(1, 31, |_| 100).lines().map(str::to_owned).collect();
    // Another measurement, a day ahead: not the task's, so it moves nothing.
    lines.insert(30, format!("cpu,host=a usage=1 {}", (T0 + 86_400) * S));
    let text = lines.join("\n");
    let replay = replay(TUTORIAL, &text, &options());
    assert_eq!(replay.summary.points.read, 32);
    assert_eq!(replay.summary.points.fed, 31);
    assert_eq!(replay.summary.points.out_of_order, 0);
    assert!(replay.summary.end_ns < (T0 + 100) * S);
}

#[test]
fn an_empty_input_replays_to_an_empty_summary() {
    let pipeline = compile(
        "stream|from().measurement('m')|k8sAutoscale().resourceName('app').replicas(lambda: 1)",
        &VarOverrides::new(),
    )
    .unwrap();
    let replay = run("t", &pipeline, &recording(""), &options()).unwrap();
    assert!(replay.records.is_empty());
    assert_eq!(replay.summary.points.fed, 0);
    assert!(render::table(&replay).contains("0 read, 0 fed"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A line: a pod's counter at a time anywhere in InfluxDB's range (out of order, far
    /// ahead, far behind), or a line that is not line protocol.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => (0..4usize, 0..1_000_000i64, -5i64..600).prop_map(|(pod, counter, t)| format!(
                "requests,deployment=app,host=pod-{pod} counter={counter} {}",
                (T0 + t) * S
            )),
            1 => (0..4usize, any::<i64>()).prop_map(|(pod, time)| format!(
                "requests,deployment=app,host=pod-{pod} counter=1 {time}"
            )),
            1 => "[ -~]{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn any_input_replays_without_a_panic_and_the_same_twice(
            lines in proptest::collection::vec(line(), 0..300),
            sort in any::<bool>(),
        ) {
            let script = TUTORIAL.replace(".max(10)", ".max(10).fallbackAfter(20s)");
            let pipeline = compile(&script, &VarOverrides::new()).unwrap();
            let text = lines.join("\n");
            let run_once = || {
                let recording = Recording::parse(
                    vec![Source { name: "p.lp".into(), text: text.as_bytes().to_vec() }],
                    "autoscale",
                    "autogen",
                    Precision::Nanoseconds,
                    sort,
                );
                let replay = run("autoscale", &pipeline, &recording, &options()).unwrap();
                (render::table(&replay), render::json_lines(&replay), replay.summary)
            };
            let (table, json, summary) = run_once();
            let again = run_once();
            prop_assert_eq!(&table, &again.0);
            prop_assert_eq!(&json, &again.1);
            prop_assert!(summary.points.fed <= summary.points.read);
            prop_assert!(summary.start_ns <= summary.end_ns);
            for target in &summary.targets {
                for at in &target.time_at {
                    prop_assert!(at.seconds >= 0.0 && (1..=10).contains(&at.replicas));
                }
            }
        }
    }
}
