//! `cargo run --release`: the local lab. `load`: the lab's load generator against any URL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use autoscaler_lab::lab::{self, Options};
use autoscaler_lab::loadgen::{LoadGenerator, Targets};
use autoscaler_lab::profile::{Plan, Profile};
use autoscaler_lab::task::VarArg;

use lifecycle::exit::USAGE as EX_USAGE;

/// The autoscaling loop on one machine: API stand-in, processor, app + agent replicas, load.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a load profile to any URL (the replacement for the tutorial's ramp.sh + hey).
    Load {
        /// Where to send GET requests.
        #[arg(long)]
        url: String,
        #[arg(long, value_enum, default_value = "tutorial-ramp")]
        profile: Profile,
        /// Peak of the tutorial ramp.
        #[arg(long, default_value_t = 500.0)]
        peak_rps: f64,
        /// How long each level is held, in seconds.
        #[arg(long, default_value_t = 30)]
        hold: u64,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Load profile.
    #[arg(long, value_enum, default_value_t = lab::DEFAULT_PROFILE)]
    profile: Profile,
    /// Run length in seconds (default: the profile's).
    #[arg(long)]
    duration: Option<u64>,
    /// How long each load level is held, in seconds (default: the profile's, 35 for
    /// short-ramp, 15 for the others).
    #[arg(long)]
    hold: Option<u64>,
    /// Requests per second per replica: the tick's target var [default: 100].
    #[arg(long)]
    target: Option<f64>,
    /// Override the tick's .min().
    #[arg(long)]
    min: Option<i64>,
    /// Override the tick's .max().
    #[arg(long)]
    max: Option<i64>,
    /// Capacity of one replica as a multiple of the target.
    #[arg(long, default_value_t = 1.5)]
    capacity: f64,
    /// Peak of the tutorial-ramp profile, requests per second.
    #[arg(long, default_value_t = 600.0)]
    peak_rps: f64,
    /// Run this TICKscript instead of the tutorial's.
    #[arg(long)]
    tick: Option<PathBuf>,
    /// Set a var of the tick, typed as the tick declares it (e.g. increase_cooldown=1m);
    /// repeatable; over the lab's moving_avg_count=10, increase_cooldown=5s,
    /// decrease_cooldown=15s and target.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<VarArg>,
    /// Where the chart and summary.json go.
    #[arg(long, default_value = "target/lab")]
    out: PathBuf,
    /// Live view on stderr; the last line of stdout is the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Exit 1 when a control-quality goal fails.
    #[arg(long)]
    check: bool,
    /// Run each replica as separate `app` and `agent` processes (build them first:
    /// `cargo build --release -p app -p agent`).
    #[arg(long)]
    processes: bool,
    /// Processor replicas: 1 runs it in-process; 2 or more run `processor` processes electing
    /// a leader on a Lease, every agent writing to all of them, and the churn profile kills
    /// the leader once (build it first: `cargo build --release -p processor`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5))]
    processor_replicas: u16,
}

fn main() -> ExitCode {
    let cli: Cli = match lifecycle::parse_flags(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // The lab prints its own view; logs only say what went wrong.
    lifecycle::init_tracing("warn");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lab: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Load {
            url,
            profile,
            peak_rps,
            hold,
        }) => runtime.block_on(load(url, profile, peak_rps, hold)),
        None => runtime.block_on(run(cli.run)),
    }
}

async fn run(args: RunArgs) -> ExitCode {
    if args.target.is_some() && args.vars.iter().any(|v| v.name == "target") {
        eprintln!("lab: --target and --var target=... both set the target: give one");
        return ExitCode::from(EX_USAGE);
    }
    let options = Options {
        profile: args.profile,
        duration: args.duration.map(Duration::from_secs),
        hold: args
            .hold
            .map_or_else(|| args.profile.default_hold(), Duration::from_secs)
            .max(Duration::from_secs(1)),
        target: args.target.unwrap_or(100.0),
        min: args.min,
        max: args.max,
        capacity: args.capacity,
        peak_rps: args.peak_rps,
        tick: args.tick,
        vars: args.vars,
        out: args.out.clone(),
        moving_avg_count: lab::DEFAULT_MOVING_AVG_COUNT,
        increase_cooldown: lab::DEFAULT_INCREASE_COOLDOWN,
        decrease_cooldown: lab::DEFAULT_DECREASE_COOLDOWN,
        interval: Duration::from_secs(1),
        flush_interval: Duration::from_secs(1),
        processes: args.processes,
        processor_replicas: usize::from(args.processor_replicas),
        processor_binary: None,
    };
    let result = if args.json {
        lab::run(options, std::io::stderr()).await
    } else {
        lab::run(options, std::io::stdout()).await
    };
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("lab: {error}");
            return if error.is_usage() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::FAILURE
            };
        }
    };
    let json = serde_json::to_string(&summary).unwrap_or_default();
    if args.json {
        println!("{json}");
    } else {
        println!();
        for (name, goal) in &summary.goals {
            match goal.value {
                Some(value) => println!(
                    "goal {name}: {value:.1} (limit {}) {}",
                    goal.limit,
                    if goal.pass { "PASS" } else { "FAIL" }
                ),
                None => println!(
                    "goal {name}: not scored: every second fell in a settle allowance \
                     (hold each level longer than the moving-average window + the cooldown \
                     + a flush) FAIL"
                ),
            }
        }
        if let (Some(p95), Some(max)) = (summary.lag_p95_s, summary.lag_max_s) {
            println!("decision lag: {p95:.0} s for 95 % of the run, at most {max:.0} s");
        }
        if let Some(takeover) = summary.leader_takeover_s {
            println!("processor leader killed: another replica led {takeover:.0} s later");
        }
        if let Some(to_ideal) = summary.step_to_ideal_s {
            println!("step: the ideal count reached {to_ideal:.0} s after the step");
        }
        println!(
            "scale events {}, flaps after settling {}; chart and summary.json in {}",
            summary.scale_events,
            summary.flaps_after_settle,
            args.out.display()
        );
    }
    if args.check && summary.goals.values().any(|g| !g.pass) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn load(url: String, profile: Profile, peak_rps: f64, hold: u64) -> ExitCode {
    let uri = match url.parse() {
        Ok(uri) => uri,
        Err(error) => {
            eprintln!("load: invalid --url {url:?}: {error}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let plan = Plan {
        profile,
        hold: Duration::from_secs(hold.max(1)),
        peak_rps,
    };
    let generator = Arc::new(LoadGenerator::new(Targets::Url(uri)));
    let start = tokio::time::Instant::now();
    let seconds = plan.duration().as_secs();
    println!(
        "{:>5} {:>8} {:>6} {:>7} {:>9}",
        "t", "offered", "ok", "failed", "p99(ms)"
    );
    let p99 = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    for t in 0..=seconds {
        tokio::time::sleep_until(start + Duration::from_secs(t)).await;
        if t < seconds {
            let rps = plan.offered_rps(Duration::from_secs(t), fastrand::f64() * 2.0 - 1.0);
            let generator = Arc::clone(&generator);
            let at = start + Duration::from_secs(t);
            tokio::spawn(async move { generator.run_second(t, at, rps).await });
        }
        if t > 0 {
            let stats = generator.stats(t - 1);
            println!(
                "{:>5} {:>8} {:>6} {:>7} {:>9}",
                t - 1,
                stats.sent,
                stats.ok,
                stats.failed,
                p99(stats.p99_ms())
            );
        }
    }
    ExitCode::SUCCESS
}
