//! Short lab runs, in-process: the whole loop (stand-in, processor with the tutorial's tick and
//! the Kubernetes scaler, kubelet with app + agent replicas, open-loop load). The assertions are
//! about correctness with generous margins (it reaches the ideal count, comes back down, does not
//! flap on steady load, keeps the total through churn); the strict control-quality goals are
//! checked by `--check` runs whose output the README records, not by timed assertions here.
//!
//! The runs take real time (about a minute each), so they run one at a time.

use std::sync::Mutex;
use std::time::Duration;

use autoscaler_lab::lab::{self, Options};
use autoscaler_lab::profile::Profile;
use autoscaler_lab::score::Summary;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn options(profile: Profile, hold: u64) -> Options {
    Options {
        profile,
        duration: None,
        hold: Duration::from_secs(hold),
        target: 100.0,
        min: None,
        max: None,
        capacity: 1.5,
        peak_rps: 600.0,
        tick: None,
        vars: Vec::new(),
        out: std::env::temp_dir().join(format!("lab-test-{profile:?}-{}", std::process::id())),
        moving_avg_count: 10,
        increase_cooldown: Duration::from_secs(5),
        decrease_cooldown: Duration::from_secs(15),
        interval: Duration::from_secs(1),
        flush_interval: Duration::from_secs(1),
        processes: false,
        processor_replicas: 1,
        processor_binary: None,
    }
}

/// Runs the lab; returns the summary and the per-second record it wrote.
fn run(options: Options) -> (Summary, Vec<serde_json::Value>) {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut view = Vec::new();
    let out = options.out.clone();
    let summary = runtime
        .block_on(lab::run(options, &mut view))
        .unwrap_or_else(|e| panic!("lab run failed: {e}"));
    let text = String::from_utf8_lossy(&view).into_owned();
    eprintln!("{text}");
    let seconds: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("seconds.json")).unwrap()).unwrap();
    assert!(out.join("chart.svg").is_file());
    assert!(out.join("summary.json").is_file());
    let _ = std::fs::remove_dir_all(out);
    (summary, seconds)
}

fn desired(second: &serde_json::Value) -> i64 {
    second["desired"].as_i64().unwrap()
}

#[test]
fn ramp_scales_up_to_the_ideal_count_and_back_down() {
    let (summary, seconds) = run(options(Profile::Ramp, 15));
    let peak = seconds.iter().map(desired).max().unwrap();
    assert!(
        (5..=7).contains(&peak),
        "600 rps at 100 per replica wants 6 replicas; the peak was {peak}"
    );
    let last = desired(seconds.last().unwrap());
    assert!(
        last <= 2,
        "back down to 100 rps: {last} replicas at the end"
    );
    assert!(summary.scale_events >= 4, "{summary:?}");
}

#[test]
fn steady_noisy_load_does_not_flap() {
    let (_, seconds) = run(options(Profile::SteadyNoisy, 25));
    // 450 +- 10 % always wants 5 replicas. Climbing from 1 takes a few windows and cooldowns;
    // after that the count must hold.
    let settled: Vec<i64> = seconds.iter().skip(45).map(desired).collect();
    let changes = settled.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(
        changes, 0,
        "no scaling on steady load after settling: {settled:?}"
    );
    assert!((4..=6).contains(&settled[0]), "{settled:?}");
}

#[test]
fn churn_keeps_the_measured_total_and_the_count() {
    // The processor runs on its defaults: the sum's group learns its series for one
    // `lateness` (15 s) before its first total, then the moving average fills (10 s). The
    // first churn event comes after that.
    let (summary, seconds) = run(options(Profile::Churn, 30));
    // 300 rps: 3 replicas throughout, whatever restarts and replacements happen.
    let settled: Vec<i64> = seconds.iter().skip(30).map(desired).collect();
    assert!(settled.iter().all(|&d| (2..=4).contains(&d)), "{settled:?}");
    let error = summary
        .churn_rps_error_pct
        .expect("the measured total after each churn event");
    assert!(
        error < 25.0,
        "the total right after a restart or replacement stays near the offered load: {error}%"
    );
}

#[test]
fn churn_with_two_processor_replicas_survives_the_leader_kill() {
    // Two processor processes elect a leader on the stand-in's Lease; every agent writes to
    // both. The churn profile SIGKILLs the leader at second 75: the other, whose windows saw
    // every point, takes over once the lease (15 s) expires, and the killed one comes back.
    let mut options = options(Profile::Churn, 30);
    options.processor_replicas = 2;
    options.processor_binary = Some(workspace_bins::binary("processor", "processor"));
    let (summary, seconds) = run(options);
    let takeover = summary
        .leader_takeover_s
        .expect("another replica leads after the kill");
    // The lease duration (15 s) + a retry period (2 s) + the lab's one-second view.
    assert!(takeover <= 20.0, "takeover after {takeover} s");
    let settled: Vec<i64> = seconds.iter().skip(30).map(desired).collect();
    assert!(settled.iter().all(|&d| (2..=4).contains(&d)), "{settled:?}");
    let error = summary
        .churn_rps_error_pct
        .expect("the measured total after each churn event, the leader kill included");
    assert!(
        error < 25.0,
        "the total read from the new leader right after the kill stays near the offered load: {error}%"
    );
}
