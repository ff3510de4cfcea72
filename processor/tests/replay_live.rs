//! Replay against the live runtime: a ramp written to a running task (the task master, its
//! queue and loop, its 1-s ticker on a paused tokio clock, a dry-run scaler, `[record]` on) on
//! a processor clock that follows the points, then its recording replayed: the same
//! decisions, in the same order, at the same times.

mod replay_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use processor::decisions::{DecisionLog, Outcome, Record};
use processor::line_protocol::{Precision, parse_body};
use processor::replay::{self, Recording, Source};
use processor::routing::Router;
use processor::scaler::Decision;
use processor::scaler::dry_run::DryRunScaler;
use processor::tasks::{self, DbrpJson, RecordConfig, TaskMaster, TaskRequest, TasksConfig};
use processor::tick::{Dbrp, VarOverrides, compile};
use replay_support::{S, T0, TUTORIAL, second, up_and_down};

/// The tutorial's script, with a fallback that holds the count of a silent target.
fn script() -> String {
    TUTORIAL.replace(".max(10)", ".max(10).fallbackAfter(40s)")
}

/// The points of each second: 10 pods ramping up and down, pod-9 gone from 450 s, nothing
/// from 700 s to 760 s.
fn scenario() -> Vec<String> {
    let mut counters = vec![0i64; 10];
    (0..900)
        .map(|t| {
            for counter in &mut counters {
                *counter += up_and_down(t);
            }
            match t {
                700..760 => String::new(),
                450.. => second(t, &counters[..9]),
                _ => second(t, &counters),
            }
        })
        .collect()
}

/// Lets every ready task run: the task loop, the scaler calls it spawns, their answers.
async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

fn collected(master: &TaskMaster) -> u64 {
    let task = master.get("autoscale").unwrap();
    task["stats"]["node-stats"]["stream0"]["collected"]
        .as_u64()
        .unwrap_or(0)
}

/// What a decision says, live (the scaler's answer) or replayed (the record): outcome, old,
/// new, rules and the clock's time.
type Said = (String, Option<i64>, Option<i64>, String, i64);

#[tokio::test(start_paused = true)]
async fn a_recorded_ramp_gives_the_decisions_of_the_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(T0 * S));
    let reads = Arc::clone(&now);
    let clock: processor::clock::Clock = Arc::new(move || reads.load(Ordering::SeqCst));
    let scaler = Arc::new(DryRunScaler::new(Arc::clone(&clock)));
    let router = Arc::new(Router::new());
    let config = TasksConfig {
        record: RecordConfig {
            enabled: true,
            dir: Some(dir.path().join("recordings")),
            ..RecordConfig::default()
        },
        ..TasksConfig::default()
    };
    let master = TaskMaster::start(tasks::Options {
        router: Arc::clone(&router),
        scaler: Some(scaler.clone()),
        clock,
        config,
        data_dir: None,
    })
    .unwrap();
    master
        .create(TaskRequest {
            id: Some("autoscale".into()),
            kind: Some("stream".into()),
            dbrps: Some(vec![DbrpJson {
                db: "autoscale".into(),
                rp: "autogen".into(),
            }]),
            script: Some(script()),
            status: Some("enabled".into()),
            ..TaskRequest::default()
        })
        .unwrap();
    settle().await;

    // 15 minutes of 10 pods, one leaving at 450 s (its sum waits for lateness, emitted by a
    // tick), then a minute without any point (the fallback holds the count, from a tick):
    // each second's points in one write, at their time; the task's ticker at each second.
    let seconds = scenario();
    let mut written = 0u64;
    for (t, body) in (0i64..).zip(&seconds) {
        now.store((T0 + t) * S + 3_000_000, Ordering::SeqCst);
        if !body.is_empty() {
            let parsed = parse_body(
                body.as_bytes().to_vec(),
                "autoscale".into(),
                "autogen".into(),
                Precision::Nanoseconds,
                0,
            );
            written += parsed.batch.len() as u64;
            router.route(&Arc::new(parsed.batch));
            settle().await;
        }
        assert_eq!(collected(&master), written, "second {t} was taken");
        now.store((T0 + t + 1) * S, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    // The replay runs on for the lateness (15 s) after its last point; so does the clock here.
    for t in 900..915 {
        now.store((T0 + t + 1) * S, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    let live: Vec<Said> = scaler
        .decisions()
        .iter()
        .map(|(_, outcome)| {
            let said = match outcome.decision {
                Decision::Increased => Outcome::Increased,
                Decision::Decreased => Outcome::Decreased,
                Decision::CooldownDrop | Decision::Held | Decision::Stale => Outcome::Held,
                Decision::Standby => Outcome::Standby,
                Decision::Unchanged => Outcome::Unchanged,
            };
            (
                said.name().to_owned(),
                Some(outcome.old),
                Some(outcome.new),
                processor::scaler::decision::describe_steps(&outcome.steps),
                outcome.decided_at,
            )
        })
        .collect();

    // The task's own records (its decision log), as the API serves them; a change the
    // dry run decided is what the simulated target of the replay took.
    let live_records: Vec<Record> = master
        .decisions("autoscale", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|mut r| {
            if r.outcome == Outcome::DryRun {
                r.outcome = if r.desired < r.current {
                    Outcome::Decreased
                } else {
                    Outcome::Increased
                };
            }
            r
        })
        .collect();

    // The recording holds what the task received, line for line.
    master
        .update(
            "autoscale",
            TaskRequest {
                status: Some("disabled".into()),
                ..TaskRequest::default()
            },
        )
        .unwrap();
    settle().await;
    let path = dir.path().join("recordings").join("autoscale.lp");
    let expected: String = seconds.concat();
    let mut recorded = String::new();
    for _ in 0..500 {
        recorded = std::fs::read_to_string(&path).unwrap_or_default();
        if recorded.ends_with(&expected) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let points: String = recorded
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    if points != expected {
        let first = points
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b);
        panic!(
            "the recording differs from what was written: {} lines recorded, {} written, first difference at {first:?}: {:?}",
            points.lines().count(),
            expected.lines().count(),
            first.map(|i| (points.lines().nth(i), expected.lines().nth(i)))
        );
    }
    assert!(
        recorded.starts_with("# processor recording of task autoscale (dbrps: autoscale.autogen)"),
        "{}",
        recorded.lines().next().unwrap_or_default()
    );

    // Replayed: the same decisions.
    let recording = Recording::parse(
        vec![Source {
            name: path.display().to_string(),
            text: recorded.into_bytes(),
        }],
        "autoscale",
        "autogen",
        Precision::Nanoseconds,
        false,
    );
    assert!(recording.skipped().is_empty(), "{:?}", recording.skipped());
    let pipeline = compile(&script(), &VarOverrides::new()).unwrap();
    let options = replay::Options::new(Dbrp {
        database: "autoscale".into(),
        retention_policy: "autogen".into(),
    });
    let replayed = replay::run("autoscale", &pipeline, &recording, &options).unwrap();
    let said: Vec<Said> = replayed
        .records
        .iter()
        .map(|r| {
            (
                r.outcome.name().to_owned(),
                r.current,
                r.desired,
                processor::scaler::decision::describe_steps(&r.rules),
                r.time_ns,
            )
        })
        .collect();
    assert!(live.len() > 700, "{} decisions", live.len());
    let changes = live
        .iter()
        .filter(|d| d.0 == "increased" || d.0 == "decreased")
        .count();
    assert!(
        changes >= 4,
        "the ramp scales up and down: {changes} changes"
    );
    assert!(
        live.iter().any(|d| d.0 == "held"),
        "a cooldown held a change"
    );
    assert!(
        live.iter().any(|d| d.3.starts_with("stale")),
        "the silence fell back (held the count)"
    );
    // Decisions made by ticks (at whole seconds) as well as by points (3 ms past them).
    assert!(
        live.iter().any(|d| d.4 % S == 0),
        "no decision was made by a tick"
    );
    if let Some(i) = (0..live.len().min(said.len())).find(|&i| live[i] != said[i]) {
        panic!(
            "decision {i} differs: live {:?}, replayed {:?}",
            live[i], said[i]
        );
    }
    assert_eq!(live.len(), said.len());
    // And the records themselves (inputs, ages, delays, rules), kept as the task keeps them.
    let mut log = DecisionLog::default();
    for record in &replayed.records {
        log.push(record.clone());
    }
    let replayed_records = log.latest(usize::MAX);
    assert!(live_records.len() > 10, "{} records", live_records.len());
    if let Some(i) = (0..live_records.len().min(replayed_records.len()))
        .find(|&i| live_records[i] != replayed_records[i])
    {
        panic!(
            "record {i} (newest first) differs: live {:?}, replayed {:?}",
            live_records[i], replayed_records[i]
        );
    }
    assert_eq!(live_records.len(), replayed_records.len());
}

#[tokio::test]
async fn a_redefined_task_keeps_writing_its_one_recording() {
    let dir = tempfile::tempdir().unwrap();
    let router = Arc::new(Router::new());
    let master = TaskMaster::start(tasks::Options {
        router: Arc::clone(&router),
        scaler: None,
        clock: processor::clock::system(),
        config: TasksConfig {
            record: RecordConfig {
                enabled: true,
                tasks: vec!["logged".into()],
                ..RecordConfig::default()
            },
            ..TasksConfig::default()
        },
        data_dir: Some(dir.path().to_path_buf()),
    })
    .unwrap();
    let define = |script: &str| TaskRequest {
        id: Some("logged".into()),
        dbrps: Some(vec![DbrpJson {
            db: "autoscale".into(),
            rp: "autogen".into(),
        }]),
        script: Some(script.into()),
        status: Some("enabled".into()),
        ..TaskRequest::default()
    };
    master
        .create(define("stream|from().measurement('requests')|log()"))
        .unwrap();
    let write = |t: i64| {
        let body = second(t, &[t, t + 1]);
        let parsed = parse_body(
            body.into_bytes(),
            "autoscale".into(),
            "autogen".into(),
            Precision::Nanoseconds,
            0,
        );
        router.route(&Arc::new(parsed.batch));
    };
    for t in 0..3 {
        write(t);
        settle().await;
    }
    // Redefined: a new loop, the same recording.
    master
        .update(
            "logged",
            define("stream|from().measurement('requests')|httpOut('x')"),
        )
        .unwrap();
    for t in 3..6 {
        write(t);
        settle().await;
    }
    master.delete("logged").unwrap();
    settle().await;
    let path = dir.path().join("recordings").join("logged.lp");
    let expected: String = (0..6).map(|t| second(t, &[t, t + 1])).collect();
    let mut recorded = String::new();
    for _ in 0..500 {
        recorded = std::fs::read_to_string(&path).unwrap_or_default();
        if recorded.ends_with(&expected) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        recorded.lines().filter(|l| l.starts_with('#')).count(),
        2,
        "one header: {recorded}"
    );
    assert!(recorded.ends_with(&expected), "{recorded}");
    assert!(
        recorded.contains(&format!("--input {}", path.display())),
        "{recorded}"
    );
}
