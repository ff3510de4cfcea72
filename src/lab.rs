//! One lab run: the Kubernetes API stand-in holding Deployment `app`, the processor scaling it
//! through `kube` exactly as in a cluster, a local kubelet running app + agent replicas, the
//! tutorial's TICKscript, and an open-loop load following a profile; a line per second while it
//! runs, then a chart and `summary.json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, oneshot};
use tokio::time::Instant;

use crate::kubelet::{Binaries, Kubelet, PodTemplate};
use crate::loadgen::{LoadGenerator, Targets};
use crate::processors::{Http, Processors};
use crate::profile::{ChurnEvent, Plan, Profile};
use crate::score::{self, Rules, Second, Summary};
use crate::task::{self, Defaults, LoopParams, VarArg};
use crate::{chart, view};

/// The tutorial's TICKscript, as published (compat.md 1.3).
pub const TUTORIAL_TICK: &str = include_str!("../processor/tests/fixtures/tick/autoscale.tick");

/// The profile of a plain `cargo run --release`.
pub const DEFAULT_PROFILE: Profile = Profile::ShortRamp;
/// The lab's values for the tutorial's `moving_avg_count`, `increase_cooldown` and
/// `decrease_cooldown` (the tutorial's 60, 1m and 2m suit its 10-s flushes, not a 3-min run).
pub const DEFAULT_MOVING_AVG_COUNT: i64 = 10;
pub const DEFAULT_INCREASE_COOLDOWN: Duration = Duration::from_secs(5);
pub const DEFAULT_DECREASE_COOLDOWN: Duration = Duration::from_secs(15);

/// The lab's knobs (the command line).
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: Profile,
    /// Run length; default: the profile's.
    pub duration: Option<Duration>,
    /// How long each load level is held.
    pub hold: Duration,
    /// Requests per second per replica: the lab's value for the tick's `target` var (also used
    /// when the tick has no numeric `target`).
    pub target: f64,
    /// Override the tick's `.min()` / `.max()`.
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// Capacity of one replica as a multiple of `target` (1.5 by default).
    pub capacity: f64,
    pub peak_rps: f64,
    /// A TICKscript instead of the tutorial's.
    pub tick: Option<PathBuf>,
    /// `--var name=value`: any var the tick declares, over the lab's values below.
    pub vars: Vec<VarArg>,
    pub out: PathBuf,
    /// The lab's values for the tutorial's vars, set when the tick declares them (`vars`
    /// overrides them); the cooldowns are also scored with when the tick has no k8sAutoscale.
    pub moving_avg_count: i64,
    pub increase_cooldown: Duration,
    pub decrease_cooldown: Duration,
    /// Agent interval and flush interval.
    pub interval: Duration,
    pub flush_interval: Duration,
    /// Run each replica's app and agent as separate processes (the `app` and `agent` binaries
    /// beside the lab's own) instead of in-process.
    pub processes: bool,
    /// Processor replicas: 1 runs it in-process; more run `processor` processes (the binary
    /// beside the lab's own) electing a leader on a Lease, every agent writing to all of them.
    pub processor_replicas: usize,
    /// The `processor` binary the replicas run; default: beside the lab's own.
    pub processor_binary: Option<PathBuf>,
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The task cannot be defined as asked (`--var`, `--tick`): found before anything starts.
    #[error("{0}")]
    Setup(#[from] task::Error),
    #[error("stand-in: {0}")]
    StandIn(#[from] k8s_standin::Error),
    #[error("processor config: {0}")]
    ProcessorConfig(#[from] processor::config::Error),
    #[error("processor did not come up at {0}")]
    ProcessorDown(String),
    #[error("processor: {0}")]
    Processor(#[from] processor::Error),
    #[error("kubernetes client: {0}")]
    Kubernetes(#[from] processor::startup::Error),
    #[error("defining task {task}: {reason}")]
    Task { task: String, reason: String },
    #[error("replica: {0}")]
    Replica(#[from] crate::kubelet::StartError),
    #[error(
        "{0} not found: build the binaries first (cargo build --release -p app -p agent -p processor)"
    )]
    Binary(PathBuf),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LabError {
    /// Whether the command line asked for something impossible (exit 64), not a failed run.
    pub fn is_usage(&self) -> bool {
        matches!(self, LabError::Setup(_) | LabError::Read { .. })
    }
}

/// The lab's view task: the same computation as the tutorial's, exposed with httpOut so the
/// live view can show the measured total and the moving average.
fn view_script(moving_avg_count: i64) -> String {
    format!(
        "dbrp \"autoscale\".\"autogen\"\n\
         var total = stream\n    |from()\n        .measurement('requests')\n        .groupBy('host', 'deployment')\n        .truncate(1s)\n\
         \x20   |derivative('counter')\n        .as('requests_per_second')\n        .unit(1s)\n        .nonNegative()\n\
         \x20   |groupBy('deployment')\n    |sum('requests_per_second')\n        .as('total_requests_per_second')\n\
         total\n    |httpOut('total')\n\
         total\n    |movingAverage('total_requests_per_second', {moving_avg_count})\n        .as('avg_requests_per_second')\n    |httpOut('avg')\n"
    )
}

/// Applies `--min`/`--max` to the script's `.min(N)`/`.max(N)` calls.
pub fn override_bounds(script: &str, min: Option<i64>, max: Option<i64>) -> String {
    let mut out = script.to_owned();
    for (property, value) in [(".min(", min), (".max(", max)] {
        let Some(value) = value else { continue };
        let mut rewritten = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(property) {
            let after = &rest[at + property.len()..];
            let close = after.find(')').unwrap_or(0);
            if !after[..close].trim().is_empty()
                && after[..close].trim().chars().all(|c| c.is_ascii_digit())
            {
                rewritten.push_str(&rest[..at]);
                rewritten.push_str(&format!("{property}{value})"));
                rest = &after[close + 1..];
            } else {
                rewritten.push_str(&rest[..at + property.len()]);
                rest = after;
            }
        }
        rewritten.push_str(rest);
        out = rewritten;
    }
    out
}

/// Runs the lab and returns its summary; the live view goes to `view_out`.
pub async fn run(options: Options, mut view_out: impl std::io::Write) -> Result<Summary, LabError> {
    let plan = Plan {
        profile: options.profile,
        hold: options.hold,
        peak_rps: options.peak_rps,
    };
    let duration = options.duration.unwrap_or_else(|| plan.duration());

    // The task, its vars typed and the script compiled, before anything starts.
    let script = match &options.tick {
        Some(path) => std::fs::read_to_string(path).map_err(|source| LabError::Read {
            path: path.clone(),
            source,
        })?,
        None => TUTORIAL_TICK.to_owned(),
    };
    let script = override_bounds(&script, options.min, options.max);
    let defaults = Defaults {
        target: options.target,
        moving_avg_count: options.moving_avg_count,
        increase_cooldown: options.increase_cooldown,
        decrease_cooldown: options.decrease_cooldown,
        min: options.min.unwrap_or(1),
        max: options.max.unwrap_or(10),
    };
    let task = task::prepare(&script, &defaults, &options.vars)?;
    let params = task.params.clone();
    let min = params.min;

    // The Kubernetes API stand-in with the Deployment at its minimum.
    let api = Arc::new(
        k8s_standin::Server::start(
            k8s_standin::Config::default().with_deployment("default", "app", min),
        )
        .await?,
    );

    // The binaries beside the lab's own: the replicas' with `--processes`, the processor's
    // with `--processor-replicas` above 1.
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_default();
    let binaries = if options.processes {
        let (app, agent) = (dir.join("app"), dir.join("agent"));
        for binary in [&app, &agent] {
            if !binary.is_file() {
                return Err(LabError::Binary(binary.clone()));
            }
        }
        Some((app, agent))
    } else {
        None
    };

    // The processor: in-process, or replicas electing a leader on a Lease in the stand-in.
    let data_dir = tempdir()?;
    let (mut processors, warm_up) = if options.processor_replicas > 1 {
        let binary = options
            .processor_binary
            .clone()
            .unwrap_or_else(|| dir.join("processor"));
        if !binary.is_file() {
            return Err(LabError::Binary(binary));
        }
        let replicas = Processors::replicas(
            binary,
            options.processor_replicas,
            &data_dir,
            &api.url(),
            "default",
        )
        .await?;
        let lateness = processor::config::Config::parse("")?
            .config
            .tasks
            .pipeline
            .lateness;
        (replicas, lateness)
    } else {
        Processors::in_process(&data_dir, &api.url()).await?
    };
    let http = Http::new();

    // The tasks: the tutorial's (or the given) script with its vars, and the view.
    let vars = (!task.vars.is_empty())
        .then(|| serde_json::to_value(&task.vars).ok())
        .flatten();
    processors
        .define_task(&http, "autoscale", &script, vars.as_ref())
        .await?;
    processors
        .define_task(
            &http,
            "lab_view",
            &view_script(params.moving_avg_count),
            None,
        )
        .await?;

    // The kubelet, reconciling every 200 ms.
    let kubelet = Arc::new(Mutex::new(Kubelet::new(PodTemplate {
        namespace: "default".into(),
        deployment: "app".into(),
        capacity: Some(options.capacity * params.target),
        processor_urls: processors.urls(),
        interval: options.interval,
        flush_interval: options.flush_interval,
        binaries: binaries.map(|(app, agent)| Binaries {
            app,
            agent,
            config_dir: data_dir.clone(),
        }),
    })));
    kubelet.lock().await.reconcile(&api).await?;
    let endpoints = Arc::clone(&kubelet.lock().await.endpoints);
    let (stop_kubelet, mut kubelet_stopped) = oneshot::channel::<()>();
    let kubelet_task = {
        let kubelet = Arc::clone(&kubelet);
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut kubelet_stopped => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                if let Err(error) = kubelet.lock().await.reconcile(&api).await {
                    tracing::error!(%error, "kubelet cannot start a replica");
                }
            }
        })
    };

    // The run: one second at a time.
    let generator = Arc::new(LoadGenerator::new(Targets::Endpoints(endpoints)));
    let total_seconds = duration.as_secs();
    let mut seconds: Vec<Second> = Vec::new();
    let mut churn_events = Vec::new();
    // The processor leader the run killed (identity, second), and when another took over.
    let mut killed_leader: Option<(String, u64)> = None;
    let mut takeover: Option<u64> = None;
    let live = view::Live;
    if !task.settings.is_empty() {
        let _ = writeln!(view_out, "tick vars: {}", task.settings.join(" "));
    }
    live.header(&mut view_out);
    let start = Instant::now() + Duration::from_millis(200);
    // Second 0 on the processor's clock, to place its decision records on the chart.
    let start_ns = processor::clock::wall_ns() + 200_000_000;
    for t in 0..=total_seconds {
        tokio::time::sleep_until(start + Duration::from_secs(t)).await;
        if t < total_seconds {
            let rps = plan.offered_rps(Duration::from_secs(t), fastrand::f64() * 2.0 - 1.0);
            let generator = Arc::clone(&generator);
            let second_start = start + Duration::from_secs(t);
            tokio::spawn(async move { generator.run_second(t, second_start, rps).await });
            if plan.leader_kill_at() == Some(t)
                && let Some(leader) = processors.kill_leader(&api)
            {
                // The processor leader's pod dies (SIGKILL: no lease release); the others see
                // every point, and one takes over once the lease expires.
                churn_events.push(t);
                let _ = writeln!(
                    view_out,
                    "t={t}s: processor leader {leader} killed (SIGKILL)"
                );
                killed_leader = Some((leader, t));
            }
            if let Some(event) = plan.churn_at(t) {
                churn_events.push(t);
                // In the background: the load must keep its pace while pods come and go.
                let kubelet = Arc::clone(&kubelet);
                tokio::spawn(async move {
                    let mut kubelet = kubelet.lock().await;
                    let index = fastrand::usize(..kubelet.running().max(1));
                    let result = match event {
                        ChurnEvent::Restart => kubelet.restart(index).await,
                        ChurnEvent::Replace => kubelet.replace(index).await,
                    };
                    if let Err(error) = result {
                        tracing::error!(%error, "churn event failed");
                    }
                });
            }
        }
        for identity in processors.restart_killed() {
            let _ = writeln!(view_out, "t={t}s: processor replica {identity} restarted");
        }
        if let Some((killed, at)) = &killed_leader
            && takeover.is_none()
            && let Some(leader) = processors.leader(&api)
            && &leader != killed
        {
            let _ = writeln!(
                view_out,
                "t={t}s: processor {leader} leads, {} s after the kill",
                t - at
            );
            takeover = Some(t - at);
        }
        if t == 0 {
            continue;
        }
        // Report the second that just ended.
        let processor_url = processors.reading_url();
        let previous = t - 1;
        let stats = generator.stats(previous);
        let second = Second {
            t: previous,
            // What was really sent (the profile's rate, noise included).
            offered_rps: stats.sent as f64,
            measured_rps: http
                .last_value(&format!(
                    "{processor_url}/kapacitor/v1/tasks/lab_view/total"
                ))
                .await,
            smoothed_rps: http
                .last_value(&format!("{processor_url}/kapacitor/v1/tasks/lab_view/avg"))
                .await,
            desired: api.deployment_replicas("default", "app").unwrap_or(0),
            // Never wait on the kubelet (a churn event may hold it): the load keeps its pace.
            actual: kubelet
                .try_lock()
                .map(|k| k.running() as i64)
                .unwrap_or_else(|_| seconds.last().map_or(0, |s: &Second| s.actual)),
            p99_ms: stats.p99_ms(),
        };
        live.line(&mut view_out, &second);
        seconds.push(second);
    }

    // The decision records, for the rule behind each scale event on the chart.
    let records = processors.decision_records(&http).await;

    // Wind down: stop load, replicas, processor and stand-in.
    let _ = stop_kubelet.send(());
    let _ = kubelet_task.await;
    kubelet.lock().await.stop_all().await;
    processors.stop().await;
    if let Ok(api) = Arc::try_unwrap(api) {
        api.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&data_dir);

    let mut rules = score_rules(&options, &plan, &params, churn_events);
    rules.warm_up = warm_up;
    let mut summary = score::summarize(&rules, &seconds);
    summary.processor_replicas = options.processor_replicas.max(1);
    summary.leader_takeover_s = takeover.map(|s| s as f64);
    let mut title = format!(
        "{} profile: target {} rps/replica, moving average of {}, cooldowns {}/{}",
        summary.profile,
        params.target,
        params.moving_avg_count,
        humanize(params.increase_cooldown),
        humanize(params.decrease_cooldown),
    );
    if !(params.up_stabilization.is_zero() && params.down_stabilization.is_zero()) {
        title.push_str(&format!(
            ", stabilization {}/{}",
            humanize(params.up_stabilization),
            humanize(params.down_stabilization)
        ));
    }
    let mut marks = chart::scale_marks(&seconds);
    chart::attach_rules(&mut marks, &records, start_ns);
    write_outputs(
        &options.out,
        &title,
        params.target,
        &seconds,
        &marks,
        &records,
        &summary,
    )?;
    let _ = view_out.flush();
    Ok(summary)
}

/// How a run is judged: the loop as the task really runs it.
fn score_rules(
    options: &Options,
    plan: &Plan,
    params: &LoopParams,
    churn_events: Vec<u64>,
) -> Rules {
    Rules {
        profile: options.profile,
        target_rps: params.target,
        min: params.min,
        max: params.max,
        window: options
            .interval
            .saturating_mul(u32::try_from(params.moving_avg_count.max(1)).unwrap_or(u32::MAX)),
        increase_cooldown: params.increase_cooldown,
        decrease_cooldown: params.decrease_cooldown,
        up_stabilization: params.up_stabilization,
        down_stabilization: params.down_stabilization,
        warm_up: Duration::ZERO,
        flush_interval: options.flush_interval,
        load_changes: plan.changes(),
        churn_events,
        interval: options.interval,
    }
}

fn write_outputs(
    out: &std::path::Path,
    title: &str,
    target: f64,
    seconds: &[Second],
    marks: &[chart::ScaleMark],
    records: &[processor::decisions::Record],
    summary: &Summary,
) -> Result<(), LabError> {
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::create_dir_all(out)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|source| LabError::Write { path, source })
    };
    write("chart.svg", chart::svg(title, seconds, target, marks))?;
    write(
        "summary.json",
        serde_json::to_string_pretty(summary).unwrap_or_default() + "\n",
    )?;
    write(
        "seconds.json",
        serde_json::to_string(seconds).unwrap_or_default() + "\n",
    )?;
    let lines: Vec<String> = records
        .iter()
        .rev()
        .filter_map(|r| serde_json::to_string(r).ok())
        .collect();
    write("decisions.jsonl", lines.join("\n") + "\n")?;
    Ok(())
}

/// A duration as TICKscript writes it (`5s`, `1m`, `1500ms`).
fn humanize(duration: Duration) -> String {
    processor::tick::value::format_tick_duration(
        i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX),
    )
}

fn tempdir() -> Result<PathBuf, LabError> {
    let dir = std::env::temp_dir().join(format!(
        "autoscaler-lab-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).map_err(|source| LabError::Write {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_overrides_rewrite_only_literal_min_and_max() {
        let script = "|k8sAutoscale()\n  .min(1)\n  .max(10)\n  .replicas(lambda: max(1, 2))\n";
        let out = override_bounds(script, Some(2), Some(8));
        assert_eq!(
            out,
            "|k8sAutoscale()\n  .min(2)\n  .max(8)\n  .replicas(lambda: max(1, 2))\n"
        );
        assert_eq!(override_bounds(script, None, None), script);
    }

    /// The options of a plain `cargo run --release` (main's defaults).
    fn default_options() -> Options {
        Options {
            profile: DEFAULT_PROFILE,
            duration: None,
            hold: DEFAULT_PROFILE.default_hold(),
            target: 100.0,
            min: None,
            max: None,
            capacity: 1.5,
            peak_rps: 600.0,
            tick: None,
            vars: Vec::new(),
            out: PathBuf::from("target/lab"),
            moving_avg_count: DEFAULT_MOVING_AVG_COUNT,
            increase_cooldown: DEFAULT_INCREASE_COOLDOWN,
            decrease_cooldown: DEFAULT_DECREASE_COOLDOWN,
            interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(1),
            processes: false,
            processor_replicas: 1,
            processor_binary: None,
        }
    }

    #[test]
    fn the_default_run_fits_three_minutes_and_scores_every_level() {
        let options = default_options();
        let plan = Plan {
            profile: options.profile,
            hold: options.hold,
            peak_rps: options.peak_rps,
        };
        assert!(plan.duration() <= Duration::from_secs(175), "{plan:?}");
        let defaults = Defaults {
            target: options.target,
            moving_avg_count: options.moving_avg_count,
            increase_cooldown: options.increase_cooldown,
            decrease_cooldown: options.decrease_cooldown,
            min: 1,
            max: 10,
        };
        let params = task::prepare(TUTORIAL_TICK, &defaults, &[]).unwrap().params;
        let rules = score_rules(&options, &plan, &params, Vec::new());
        // A loop that is always right: every goal has a value, and passes.
        let perfect: Vec<Second> = (0..plan.duration().as_secs())
            .map(|t| {
                let offered = plan.offered_rps(Duration::from_secs(t), 0.0);
                let ideal = rules.ideal(offered);
                Second {
                    t,
                    offered_rps: offered,
                    measured_rps: Some(offered),
                    smoothed_rps: Some(offered),
                    desired: ideal,
                    actual: ideal,
                    p99_ms: Some(0.2),
                }
            })
            .collect();
        let summary = score::summarize(&rules, &perfect);
        assert!(!summary.goals.is_empty());
        for (name, goal) in &summary.goals {
            assert!(goal.value.is_some() && goal.pass, "{name}: {goal:?}");
        }
        assert_eq!(summary.tracking_exact_pct, Some(100.0));
        // A loop that never comes down from the peak is caught: the levels after each
        // decrease outlast the settle allowance too.
        let mut stuck = perfect.clone();
        for s in stuck.iter_mut().filter(|s| s.t >= 70) {
            s.actual = 6;
            s.desired = 6;
        }
        let stuck = score::summarize(&rules, &stuck);
        assert!(
            stuck.tracking_exact_pct.is_some_and(|pct| pct < 90.0),
            "{stuck:?}"
        );
        assert_eq!(stuck.max_abs_error, Some(4));
    }

    #[test]
    fn the_view_script_compiles() {
        let pipeline = processor::tick::compile(&view_script(10), &Default::default());
        assert!(pipeline.is_ok(), "{:?}", pipeline.err());
    }
}
