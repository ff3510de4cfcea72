//! `processor replay` as a user runs it: the binary on files in a temp dir. What it prints,
//! that it prints the same twice, and that bad input is reported with its place and never
//! leaves half an output.

mod replay_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use replay_support::{S, T0, TUTORIAL, ramp, up_and_down};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn replay(args: &[&str]) -> Run {
    let output = Command::new(workspace_bins::binary("processor", "processor"))
        .arg("replay")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The tutorial's script and a 10-minute ramp of 5 pods in `dir`: (tick, input).
fn files(dir: &Path) -> (String, String) {
    (
        write(dir, "autoscale.tick", TUTORIAL),
        write(dir, "in.lp", &ramp(5, 600, up_and_down).concat()),
    )
}

#[test]
fn a_replay_prints_its_records_then_its_summary_and_the_same_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let (tick, input) = files(dir.path());
    let args = [
        "--tick",
        &tick,
        "--dbrp",
        "autoscale.autogen",
        "--input",
        &input,
    ];
    let first = replay(&args);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.stderr, "");
    let lines: Vec<&str> = first.stdout.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{}", lines[0]);
    assert!(lines[0].contains("OUTCOME") && lines[0].contains("RULES"));
    let increases: Vec<&&str> = lines.iter().filter(|l| l.contains(" increased ")).collect();
    assert!(increases.len() >= 2, "{}", first.stdout);
    assert!(
        increases[0].contains("deployments/app") && increases[0].contains("1 -> "),
        "{}",
        increases[0]
    );
    assert!(first.stdout.contains("\nSummary\n"), "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("  points     3000 read, 3000 fed to the task, 0 out of order\n"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("  span       2026-01-01T00:00:00.003Z to "),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("    replicas  time"),
        "{}",
        first.stdout
    );
    let second = replay(&args);
    assert_eq!(second.code, Some(0));
    assert!(second.stdout == first.stdout, "two runs differ");

    // JSON lines: every record, then the summary; also the same twice.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let json = replay(&json_args);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    assert_eq!(replay(&json_args).stdout, json.stdout);
    let values: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, records) = values.split_last().unwrap();
    assert!(records.iter().all(|r| r["task"] == "autoscale"));
    let changes = records
        .iter()
        .filter(|r| r["outcome"] == "increased" || r["outcome"] == "decreased")
        .count() as u64;
    assert_eq!(summary["summary"]["changes"], changes);
    let repeated: u64 = records
        .iter()
        .map(|r| r["repeated"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["summary"]["decisions"], repeated);
    let target = &summary["summary"]["targets"][0];
    assert_eq!(target["target"]["name"], "app");
    let seconds: f64 = target["time_at"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["seconds"].as_f64().unwrap())
        .sum();
    let span = (summary["summary"]["end_ns"].as_i64().unwrap()
        - summary["summary"]["start_ns"].as_i64().unwrap()) as f64
        / 1e9;
    assert!((seconds - span).abs() < 1e-6, "{seconds} vs {span}");
}

#[test]
fn replicas_and_vars_change_the_replay_as_they_would_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let (tick, input) = files(dir.path());
    let base = [
        "--tick",
        &tick,
        "--dbrp",
        "autoscale.autogen",
        "--input",
        &input,
    ];
    let plain = replay(&base);
    let mut with_replicas = base.to_vec();
    with_replicas.extend(["--replicas", "8", "--json"]);
    let run = replay(&with_replicas);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let first: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["current"], 8);
    // A target of 1,000 requests/s per replica never leaves one replica.
    let vars = write(
        dir.path(),
        "vars.json",
        r#"{"target": {"type": "float", "value": 1000.0}}"#,
    );
    let mut with_vars = base.to_vec();
    with_vars.extend(["--vars", &vars]);
    let run = replay(&with_vars);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_ne!(run.stdout, plain.stdout);
    assert!(
        run.stdout.contains("decisions") && run.stdout.contains(": 0 changes"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_malformed_line_is_skipped_and_reported_with_its_place_or_fails_the_strict_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (tick, _) = files(dir.path());
    let mut lines: Vec<String> = ramp(2, 120, |_| 100)
        .concat()
        .lines()
        .map(str::to_owned)
        .collect();
    lines[4] = "requests,deployment=app,host=pod-0 counter= 5".to_owned();
    lines[9] = "requests,deployment=app,host=pod-1 counter=5".to_owned();
    let input = write(dir.path(), "bad.lp", &lines.join("\n"));
    let args = [
        "--tick",
        &tick,
        "--dbrp",
        "autoscale.autogen",
        "--input",
        &input,
    ];
    let run = replay(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let reported: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(reported.len(), 2, "{}", run.stderr);
    assert!(
        reported[0].starts_with(&format!("processor: {input}:5: unable to parse")),
        "{}",
        reported[0]
    );
    assert_eq!(
        reported[1],
        format!("processor: {input}:10: no timestamp: a replayed point needs its time (skipped)")
    );
    assert!(
        run.stdout.contains("  points     238 read"),
        "{}",
        run.stdout
    );

    let mut strict = args.to_vec();
    strict.push("--strict");
    let run = replay(&strict);
    assert_eq!(run.code, Some(65));
    assert_eq!(run.stdout, "", "nothing printed");
    assert!(
        run.stderr.contains(&format!("{input}:5: unable to parse")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{input}:10: no timestamp")),
        "{}",
        run.stderr
    );
}

#[test]
fn out_of_order_points_arrive_late_and_are_named_unless_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let (tick, _) = files(dir.path());
    // Two pods recorded in two files (each agent's outputs.file).
    let pod = |name: &str, offset: i64| -> String {
        (0..120)
            .map(|t| {
                format!(
                    "requests,deployment=app,host={name} counter={} {}\n",
                    t * 150 + offset,
                    (T0 + t) * S
                )
            })
            .collect()
    };
    let a = write(dir.path(), "a.lp", &pod("a", 0));
    let b = write(dir.path(), "b.lp", &pod("b", 7));
    let args = [
        "--tick",
        &tick,
        "--dbrp",
        "autoscale.autogen",
        "--input",
        &a,
        "--input",
        &b,
    ];
    let run = replay(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "240 read, 240 fed to the task, 119 out of order (first at {b}:1)"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("late_points="), "{}", run.stdout);
    let mut sorted = args.to_vec();
    sorted.push("--sort");
    let run = replay(&sorted);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("240 fed to the task, 0 out of order\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(" increased "),
        "two pods at 150/s: {}",
        run.stdout
    );
}

#[test]
fn a_tickscript_error_exits_64_with_its_line_and_column_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, input) = files(dir.path());
    let tick = write(
        dir.path(),
        "bad.tick",
        "stream\n    |from()\n        .measurement('requests')\n    |alert()\n",
    );
    let run = replay(&["--tick", &tick, "--dbrp", "a.b", "--input", &input]);
    assert_eq!(run.code, Some(64));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with(&format!("processor: {tick}: line 4:")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn flags_and_files_that_cannot_be_used_print_nothing_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (tick, input) = files(dir.path());
    let missing = dir.path().join("missing.lp").display().to_string();
    let bad_vars = write(dir.path(), "vars.json", "{not json");
    for (args, code, says) in [
        (
            vec![
                "--tick",
                &tick,
                "--dbrp",
                "autoscale.autogen",
                "--input",
                &missing,
            ],
            66,
            "cannot read",
        ),
        (vec!["--tick", &tick, "--input", &input], 64, "no dbrp"),
        (
            vec!["--tick", &tick, "--dbrp", "nodot", "--input", &input],
            64,
            "invalid -dbrp",
        ),
        (
            vec![
                "--tick", &tick, "--dbrp", "a.b", "--vars", &bad_vars, "--input", &input,
            ],
            64,
            "invalid vars file",
        ),
        (
            vec![
                "--tick",
                &tick,
                "--dbrp",
                "a.b",
                "--precision",
                "x",
                "--input",
                &input,
            ],
            64,
            "--precision",
        ),
        (vec!["--tick", &tick, "--dbrp", "a.b"], 64, "--input"),
        (
            vec![
                "--tick",
                &tick,
                "--dbrp",
                "a.b",
                "--replicas=-1",
                "--input",
                &input,
            ],
            64,
            "replicas",
        ),
    ] {
        let run = replay(&args);
        assert_eq!(run.code, Some(code), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    // A dbrp statement in the script stands for --dbrp.
    let with_dbrp = write(
        dir.path(),
        "dbrp.tick",
        &format!("dbrp \"autoscale\".\"autogen\"\n{TUTORIAL}"),
    );
    let run = replay(&["--tick", &with_dbrp, "--input", &input]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("3000 fed to the task"),
        "{}",
        run.stdout
    );
}

/// The README's figure: a day of one Deployment, 10 pods, a point per pod per second
/// (864,000 points), replayed by the binary. `cargo test --release -p processor --test
/// replay_cli -- --ignored --nocapture`.
#[test]
#[ignore = "prints the replay speed; run it on a release build"]
fn a_day_of_ten_pods_replays_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let tick = write(dir.path(), "autoscale.tick", TUTORIAL);
    // A daily shape: 10 to 90 requests/s per pod and back.
    let day = |t: i64| {
        let phase = (t as f64 / 86_400.0) * std::f64::consts::TAU;
        (50.0 - 40.0 * phase.cos()) as i64
    };
    let input = dir.path().join("day.lp");
    std::fs::write(&input, ramp(10, 86_400, day).concat()).unwrap();
    let input = input.display().to_string();
    let bytes = std::fs::metadata(&input).unwrap().len();
    let binary = workspace_bins::binary("processor", "processor");
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let run = replay(&[
            "--tick",
            &tick,
            "--dbrp",
            "autoscale.autogen",
            "--input",
            &input,
        ]);
        let elapsed = start.elapsed();
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let summary = run.stdout.split("\nSummary\n").nth(1).unwrap_or_default();
        println!(
            "{}: 864,000 points ({:.1} MB) in {:.2} s = {:.0} points/s\n{summary}",
            binary.display(),
            bytes as f64 / 1e6,
            elapsed.as_secs_f64(),
            864_000.0 / elapsed.as_secs_f64()
        );
    }
}
