//! System tests for faults, with the real binaries as separate processes (`app`, `agent`,
//! `processor`) and the Kubernetes API stand-in in-process: the processor down (SIGKILL) and
//! back, restarted under load (SIGTERM and SIGKILL), the Kubernetes API failing in each way it
//! does, and agents whose clocks and batches are off. Each prints what it measured
//! (`cargo test --test faults -- --nocapture`).

mod faults_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faults_support::{
    Api, Load, Pod, Processor, TICK, TempDir, now_ns, samples, true_totals, until,
};
use serde_json::Value;

const SECOND: i64 = 1_000_000_000;

/// Whether `total` (time, value) is within `tolerance` of the true total of its second.
fn right(total: Option<(i64, f64)>, truth: &BTreeMap<i64, f64>, tolerance: f64) -> bool {
    let Some((time, value)) = total else {
        return false;
    };
    truth
        .get(&time)
        .is_some_and(|want| *want > 0.0 && (value - want).abs() <= tolerance * want)
}

fn gathered(pods: &[Pod]) -> BTreeMap<String, Vec<faults_support::Sample>> {
    let mut all = BTreeMap::new();
    for pod in pods {
        all.extend(samples(&pod.gathered, 0));
    }
    all
}

fn rule_names(record: &Value) -> Vec<String> {
    record["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["rule"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_processor_down_for_several_flushes_gets_every_buffered_point_once_and_no_decision_from_the_backlog()
 {
    const BUFFER: usize = 8;
    const OUTAGE: Duration = Duration::from_secs(15);
    let dir = TempDir::new("outage");
    let api = Api::start(1);
    let mut processor = Processor::start(
        &dir.0,
        &format!(
            "{}[record]\nenabled = true\n",
            api.section("max-point-age = \"5s\"")
        ),
    );
    processor.define("autoscale", TICK);
    let mut pods: Vec<Pod> = (1..=2)
        .map(|i| Pod::start(&dir.0, i, processor.addr, BUFFER))
        .collect();
    let load = Load::start(pods.iter().map(|p| p.addr).collect(), 150.0);

    // Warm: the total right and the Deployment at ceil(150 / 100) = 2.
    let warm = until(Duration::from_secs(90), || {
        api.replicas() == 2
            && right(
                processor.total("autoscale"),
                &true_totals(&gathered(&pods)),
                0.02,
            )
    });
    assert!(
        warm,
        "never warm: replicas {}, total {:?}",
        api.replicas(),
        processor.total("autoscale")
    );
    let writes_before = api.scale_writes().len();

    processor.kill();
    let killed_at = Instant::now();
    let recording = dir.0.join("data/recordings/autoscale.lp");
    let recorded_before = std::fs::metadata(&recording).map(|m| m.len()).unwrap_or(0);
    std::thread::sleep(OUTAGE);
    processor.restart();
    let back = Instant::now();
    let back_ns = now_ns();

    // The total is right again: a current second's total (not the backlog's) within 2 %.
    let mut right_after = None;
    until(Duration::from_secs(60), || {
        let total = processor.total("autoscale");
        let current = total.is_some_and(|(t, _)| t >= back_ns - SECOND);
        if current && right(total, &true_totals(&gathered(&pods)), 0.02) {
            right_after = Some(back.elapsed());
            return true;
        }
        false
    });
    // Let the agents deliver a few more seconds, then stop them (each flushes once more).
    std::thread::sleep(Duration::from_secs(3));
    drop(load);
    let dropped: Vec<f64> = pods
        .iter()
        .map(|p| p.agent_counter("agent_dropped_metrics_total"))
        .collect();
    for pod in &mut pods {
        pod.stop_agent();
    }
    std::thread::sleep(Duration::from_millis(500));
    let decisions = processor.decisions("autoscale");
    let writes_after = api.scale_writes().len();
    let replicas = api.replicas();

    let before = faults_support::samples_between(&recording, 0, recorded_before);
    let after = samples(&recording, recorded_before);
    let mut report = Vec::new();
    let mut problems = Vec::new();
    for (pod, dropped) in pods.iter().zip(&dropped) {
        let gathered = samples(&pod.gathered, 0)
            .remove(&pod.name)
            .unwrap_or_default();
        let received = after.get(&pod.name).cloned().unwrap_or_default();
        let last_before = before
            .get(&pod.name)
            .and_then(|s| s.last())
            .map_or(i64::MIN, |s| s.time);
        // What the agent held when the processor went down, the oldest `dropped` left out.
        let held: Vec<_> = gathered.iter().filter(|s| s.time > last_before).collect();
        let expected: Vec<_> = held
            .iter()
            .skip(*dropped as usize)
            .copied()
            .copied()
            .collect();
        report.push(format!(
            "{}: {} points after the last one received before the kill, {} dropped by the agent (counted), {} delivered after the return",
            pod.name,
            held.len(),
            dropped,
            received.len()
        ));
        if received != expected {
            problems.push(format!(
                "{}: after the return the processor must receive every point the agent held, once, in order, less the {dropped} oldest it dropped: received {:?}, expected {:?}",
                pod.name,
                received.iter().map(|s| s.time / SECOND).collect::<Vec<_>>(),
                expected.iter().map(|s| s.time / SECOND).collect::<Vec<_>>()
            ));
        }
        if dropped.is_nan() || *dropped <= 0.0 {
            problems.push(format!(
                "{}: the outage must outlast the buffer (dropped {dropped})",
                pod.name
            ));
        }
    }
    let stale = decisions
        .iter()
        .filter(|r| rule_names(r).iter().any(|n| n == "stale"))
        .count();
    let changes_from_old_points: Vec<&Value> = decisions
        .iter()
        .filter(|r| matches!(r["outcome"].as_str(), Some("increased" | "decreased")))
        .filter(|r| r["inputs"]["age_seconds"].as_f64().is_none_or(|a| a > 5.0))
        .collect();
    println!(
        "outage {:?} (SIGKILL), agent buffers of {BUFFER} metrics, 1-s flushes, 2 pods at 150 rps:\n  {}\n  total right (within 2 %) again {:.1} s after the return\n  decisions after the return: {} records, {} held as stale (the backlog), {} changes; scale writes during and after: {}",
        OUTAGE,
        report.join("\n  "),
        right_after.map_or(f64::NAN, |d| d.as_secs_f64()),
        decisions.len(),
        stale,
        decisions
            .iter()
            .filter(|r| matches!(r["outcome"].as_str(), Some("increased" | "decreased")))
            .count(),
        writes_after - writes_before,
    );
    let _ = killed_at;
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        changes_from_old_points.is_empty(),
        "the backlog made a decision: {changes_from_old_points:?}"
    );
    assert_eq!(replicas, 2, "the backlog changed nothing");
    assert_eq!(
        writes_after, writes_before,
        "no scale write from the backlog"
    );
    // The sum's warm-up after a start (one `lateness`, 15 s) plus the agents' backoff (their
    // pause had doubled to 8 s by the end of the outage) plus a flush: within the tutorial's
    // 60-s window, not within this test's 10-s one (see README, Reliability).
    assert!(
        right_after.is_some_and(|d| d <= Duration::from_secs(60)),
        "the total right again within 60 s of the return: {right_after:?}, {:?}",
        processor.total("autoscale")
    );
}

/// The k8sAutoscale node's stats of task `autoscale`.
fn autoscale_stats(processor: &Processor) -> Value {
    let task = processor.get("/kapacitor/v1/tasks/autoscale");
    task.pointer("/stats/node-stats")
        .and_then(Value::as_object)
        .and_then(|nodes| {
            nodes
                .iter()
                .find(|(name, _)| name.starts_with("k8s_autoscale"))
                .map(|(_, stats)| stats.clone())
        })
        .unwrap_or(Value::Null)
}

fn errors(processor: &Processor) -> i64 {
    autoscale_stats(processor)["errors"].as_i64().unwrap_or(-1)
}

/// A live processor scaling `app` (1 replica) for 150 rps over two pods: it wants 2.
struct Live {
    dir: TempDir,
    api: Api,
    processor: Processor,
    _pods: Vec<Pod>,
    _load: Load,
}

impl Live {
    fn start(name: &str) -> Live {
        let dir = TempDir::new(name);
        let api = Api::start(1);
        let processor = Processor::start(&dir.0, &api.section(""));
        processor.define("autoscale", TICK);
        let pods: Vec<Pod> = (1..=2)
            .map(|i| Pod::start(&dir.0, i, processor.addr, 10_000))
            .collect();
        let load = Load::start(pods.iter().map(|p| p.addr).collect(), 150.0);
        assert!(
            until(Duration::from_secs(90), || api.replicas() == 2),
            "never scaled to 2: {:?}",
            processor.decisions("autoscale").last()
        );
        Live {
            dir,
            api,
            processor,
            _pods: pods,
            _load: load,
        }
    }

    /// Puts the Deployment back at 1 (as someone else would), past the increase cooldown, so
    /// the processor steps to 2 again through whatever fault is armed; returns (seconds to
    /// 2, successful writes, generations the step took, writes answered with an error).
    fn step_through(&self, fault: Option<k8s_standin::Fault>, limit: Duration) -> Step {
        std::thread::sleep(Duration::from_secs(4));
        let writes = self.api.scale_writes().len();
        self.api.set_replicas(1);
        let generation = self.api.generation();
        let errors = errors(&self.processor);
        if let Some(fault) = fault {
            self.api.server().inject(fault);
        }
        let started = Instant::now();
        let stepped = until(limit, || self.api.replicas() == 2);
        let took = started.elapsed();
        self.api.server().clear_faults();
        // Anything still in flight lands.
        std::thread::sleep(Duration::from_secs(2));
        let new_writes: Vec<(u64, u16)> = self.api.scale_writes()[writes..].to_vec();
        Step {
            stepped,
            seconds: took.as_secs_f64(),
            writes_ok: new_writes.iter().filter(|(_, s)| *s < 300).count(),
            writes_failed: new_writes.iter().filter(|(_, s)| *s >= 300).count(),
            generations: self.api.generation() - generation,
            errors: errors_delta(errors, &self.processor),
            replicas: self.api.replicas(),
        }
    }
}

fn errors_delta(before: i64, processor: &Processor) -> i64 {
    errors(processor) - before
}

#[derive(Debug)]
struct Step {
    stepped: bool,
    seconds: f64,
    writes_ok: usize,
    writes_failed: usize,
    generations: i64,
    errors: i64,
    replicas: i64,
}

impl Step {
    /// Stepped to 2 exactly once: one generation, the count 2.
    fn once(&self, what: &str) {
        assert!(self.stepped, "{what}: never stepped: {self:?}");
        assert_eq!(self.generations, 1, "{what}: exactly one step: {self:?}");
        assert_eq!(self.replicas, 2, "{what}: {self:?}");
    }
}

#[test]
fn kubernetes_api_faults_are_retried_with_backoff_never_step_twice_and_are_reported() {
    use k8s_standin::{Fault, Rule};
    let live = Live::start("api-faults");
    let mut lines = Vec::new();

    // 500s: retried, one step.
    let step = live.step_through(
        Some(
            Fault::status(500)
                .times(2)
                .verb("update")
                .subresource("scale"),
        ),
        Duration::from_secs(20),
    );
    step.once("500 x2");
    assert_eq!((step.writes_ok, step.writes_failed), (1, 2), "{step:?}");
    lines.push(format!("500 x2 on the write: {step:?}"));

    // 503 with Retry-After: the next read waits the 3 s asked for.
    let step = live.step_through(
        Some(
            Fault::status(503)
                .retry_after(3)
                .verb("get")
                .subresource("scale"),
        ),
        Duration::from_secs(20),
    );
    step.once("503 + Retry-After");
    let reads: Vec<u64> = live
        .api
        .server()
        .requests()
        .iter()
        .filter(|r| r.info.subresource == "scale" && r.info.verb == "get" && r.status == 503)
        .map(|r| r.seq)
        .collect();
    assert_eq!(reads.len(), 1, "one refused read");
    assert!(step.seconds >= 3.0, "Retry-After 3 honoured: {step:?}");
    lines.push(format!("503 with Retry-After: 3 on the read: {step:?}"));

    // A 409 storm: six conflicts; each reads and decides again, an intent gives up after 4
    // attempts (an error), the next one steps.
    let step = live.step_through(
        Some(
            Fault::status(409)
                .times(6)
                .verb("update")
                .subresource("scale"),
        ),
        Duration::from_secs(30),
    );
    step.once("409 storm");
    assert_eq!(step.writes_ok, 1, "{step:?}");
    assert!(
        step.errors >= 1,
        "an intent gave up after its attempts: {step:?}"
    );
    lines.push(format!("409 x6 on the write: {step:?}"));

    // A write applied and answered 500: read back, taken as ours, not sent again.
    let step = live.step_through(
        Some(
            Fault::status(500)
                .after_applying()
                .verb("update")
                .subresource("scale"),
        ),
        Duration::from_secs(20),
    );
    step.once("applied, answered 500");
    assert_eq!(
        (step.writes_ok, step.writes_failed),
        (0, 1),
        "the applied write is never sent again: {step:?}"
    );
    lines.push(format!("a write applied yet answered 500: {step:?}"));

    // Multi-second delays on every call for a while: one call at a time, one step.
    let step = live.step_through(
        Some(
            Fault::delay(Duration::from_secs(3))
                .always()
                .subresource("scale"),
        ),
        Duration::from_secs(30),
    );
    step.once("3-s delays");
    lines.push(format!("3-s delay on every scale call: {step:?}"));

    // 403 after the Role loses `update` on deployments/scale: an ERROR, errors counted, a
    // FailedRescale Event, no change; back when the Role is restored.
    let failed_events = live.api.events("FailedRescale").len();
    let reduced = vec![
        Rule::allow(
            &["get", "list", "watch"],
            "apps",
            &["deployments", "deployments/scale"],
        ),
        Rule::allow(&["*"], "", &["events"]),
        Rule::allow(&["*"], "events.k8s.io", &["events"]),
        Rule::allow(
            &["get", "list"],
            "autoscaling",
            &["horizontalpodautoscalers"],
        ),
        Rule::allow(&["*"], "coordination.k8s.io", &["leases"]),
    ];
    live.api.server().set_rules(Some(reduced));
    std::thread::sleep(Duration::from_secs(4));
    let errors_before = errors(&live.processor);
    let generation = live.api.generation();
    live.api.set_replicas(1);
    std::thread::sleep(Duration::from_secs(8));
    let forbidden_errors = errors(&live.processor) - errors_before;
    let forbidden_generations = live.api.generation() - generation - 1;
    let replicas_while_forbidden = live.api.replicas();
    let log = live.processor.log_text();
    let error_lines = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("forbidden"))
        .count();
    let records = live.processor.decisions("autoscale");
    let error_records = records
        .iter()
        .filter(|r| {
            r["outcome"] == "error" && r["error"].as_str().is_some_and(|e| e.contains("forbidden"))
        })
        .count();
    let new_failed_events = live.api.events("FailedRescale").len() - failed_events;
    live.api.server().set_rules(None);
    let started = Instant::now();
    let recovered = until(Duration::from_secs(20), || live.api.replicas() == 2);
    let recovery = started.elapsed().as_secs_f64();
    lines.push(format!(
        "403 after the Role lost update on deployments/scale (8 s): {forbidden_errors} errors counted, {error_lines} ERROR log lines, {error_records} error records, {new_failed_events} FailedRescale Events, replicas held at {replicas_while_forbidden}; back to 2 {recovery:.1} s after the Role was restored"
    ));
    println!(
        "Kubernetes API faults (processor stepping 1 -> 2 through each):\n  {}",
        lines.join("\n  ")
    );
    assert!(
        forbidden_errors > 0,
        "forbidden calls counted in the node's errors"
    );
    assert!(
        error_lines > 0,
        "an ERROR log line names the refusal:\n{log}"
    );
    assert!(error_records > 0, "decision records say error");
    assert!(new_failed_events > 0, "a FailedRescale Event");
    assert_eq!(
        replicas_while_forbidden, 1,
        "nothing changed while forbidden"
    );
    assert_eq!(
        forbidden_generations, 0,
        "no write went through while forbidden"
    );
    assert!(recovered, "recovers when the Role is restored");
    drop(live.dir);
}

#[test]
fn the_kubernetes_api_gone_for_a_minute_is_backed_off_from_and_scaling_resumes_when_it_returns() {
    const GONE: Duration = Duration::from_secs(60);
    let mut live = Live::start("api-gone");
    let addr = live.api.server().addr();
    let errors_before = errors(&live.processor);
    live.api.stop();
    // While it is gone its port accepts and closes every connection, counting them: the calls
    // the processor makes (a refused connection would count nothing).
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&attempts);
    let listener = live
        .api
        .runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .expect("the API's port again");
    let closer = live.api.runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    // Meanwhile the load would want 3 replicas.
    let more = Load::start(live._pods.iter().map(|p| p.addr).collect(), 100.0);
    std::thread::sleep(GONE);
    closer.abort();
    let _ = live.api.runtime.block_on(closer);
    let calls = attempts.load(std::sync::atomic::Ordering::SeqCst);
    let errors_while_gone = errors(&live.processor) - errors_before;
    let mut config = k8s_standin::Config::default().with_deployment("default", "app", 2);
    config.listen = addr;
    let api = Api::start_with(config);
    let started = Instant::now();
    let resumed = until(Duration::from_secs(30), || api.replicas() == 3);
    let took = started.elapsed().as_secs_f64();
    let log = live.processor.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("scale failed"))
        .count();
    println!(
        "Kubernetes API gone for {GONE:?}: {calls} connections tried ({:.2}/s), {errors_while_gone} errors counted, {warnings} 'scale failed' warnings; scaled 2 -> 3 {took:.1} s after it returned",
        calls as f64 / GONE.as_secs_f64()
    );
    drop(more);
    assert!(resumed, "scaling resumes: replicas {}", api.replicas());
    assert!(errors_while_gone > 0, "failures counted");
    assert!(calls > 0, "the processor kept trying");
    assert!(
        (calls as f64) / GONE.as_secs_f64() < 2.0,
        "backoff, not a hot loop: {calls} connections in {GONE:?}"
    );
}

/// A node's stats in task `task`, by the prefix of its name (`moving_average`).
/// The stats of `task`'s nodes named `prefix…`, in order, from one read of the task (two
/// reads would race the points flowing between the nodes).
fn nodes<const N: usize>(processor: &Processor, task: &str, prefixes: [&str; N]) -> [Value; N] {
    let shown = processor.get(&format!("/kapacitor/v1/tasks/{task}"));
    prefixes.map(|prefix| node_in(&shown, prefix))
}

fn node_in(shown: &Value, prefix: &str) -> Value {
    shown
        .pointer("/stats/node-stats")
        .and_then(Value::as_object)
        .and_then(|nodes| {
            nodes
                .iter()
                .find(|(name, _)| name.starts_with(prefix))
                .map(|(_, stats)| stats.clone())
        })
        .unwrap_or(Value::Null)
}

#[test]
fn a_processor_restarted_under_load_brings_its_tasks_back_decides_only_from_warm_windows_and_loses_no_point()
 {
    let dir = TempDir::new("restart");
    let api = Api::start_with(
        k8s_standin::Config::default()
            .with_deployment("default", "app", 1)
            .with_deployment("default", "web", 1),
    );
    // A second task from the load dir, scaling `web` from the same points.
    let load_dir = dir.0.join("load");
    std::fs::create_dir_all(load_dir.join("tasks")).expect("load dir");
    std::fs::write(
        load_dir.join("tasks/loaded.tick"),
        TICK.replace(".resourceNameTag('deployment')", ".resourceName('web')"),
    )
    .expect("loaded tick");
    let mut processor = Processor::start(
        &dir.0,
        &format!(
            "{}[record]\nenabled = true\n[load]\nenabled = true\ndir = {:?}\n",
            api.section(""),
            load_dir.display().to_string()
        ),
    );
    processor.define("autoscale", TICK);
    let mut pods: Vec<Pod> = (1..=2)
        .map(|i| Pod::start(&dir.0, i, processor.addr, 10_000))
        .collect();
    let load = Load::start(pods.iter().map(|p| p.addr).collect(), 150.0);
    let web = || {
        api.server()
            .deployment_replicas("default", "web")
            .unwrap_or(-1)
    };
    assert!(
        until(Duration::from_secs(90), || api.replicas() == 2
            && web() == 2),
        "never warm: app {}, web {}",
        api.replicas(),
        web()
    );

    let mut report = Vec::new();
    for how in ["TERM", "KILL"] {
        // Someone scales both down while the processor is away: after the restart the tasks
        // must step them back, from warm windows only.
        let exit = if how == "TERM" {
            processor.terminate().map(|s| s.code())
        } else {
            processor.kill();
            None
        };
        api.set_replicas(1);
        api.server()
            .set_replicas(k8s_standin::WorkloadKind::Deployment, "default", "web", 1)
            .expect("scale web");
        std::thread::sleep(Duration::from_secs(5));
        processor.restart();
        for task in ["autoscale", "loaded"] {
            let shown = processor.get(&format!("/kapacitor/v1/tasks/{task}"));
            assert_eq!(
                shown["executing"], true,
                "SIG{how}: {task} came back: {shown}"
            );
            assert!(
                until(Duration::from_secs(60), || !processor
                    .decisions(task)
                    .is_empty()),
                "SIG{how}: {task} decides again"
            );
            let decisions = processor.decisions(task);
            let [average, scaler] = nodes(&processor, task, ["movingAverage", "k8s_autoscale"]);
            let (collected, emitted) = (
                average["collected"].as_i64().unwrap_or(-1),
                average["emitted"].as_i64().unwrap_or(-1),
            );
            let partial: Vec<&Value> = decisions
                .iter()
                .filter(|r| r["inputs"]["series_count"].as_u64() != Some(2))
                .collect();
            report.push(format!(
                "SIG{how} (exit {exit:?}), task {task}: executing again; moving average took {collected} totals and passed on {emitted} (k8sAutoscale got {}), {} decision records, each over {} series",
                scaler["collected"],
                decisions.len(),
                decisions.first().map_or(Value::Null, |r| r["inputs"]["series_count"].clone())
            ));
            // Warm: the moving average holds moving_avg_count (10) totals, each of which sums
            // every pod (the sum's warm-up): the first 9 totals after a start decide nothing.
            assert_eq!(
                collected - emitted,
                9,
                "SIG{how} {task}: the moving average passed on a point before it held 10 totals"
            );
            assert_eq!(
                scaler["collected"].as_i64(),
                Some(emitted),
                "SIG{how} {task}: k8sAutoscale saw only warm averages"
            );
            assert!(
                partial.is_empty(),
                "SIG{how} {task}: decided on a partial total: {partial:?}"
            );
        }
        if how == "TERM" {
            assert_eq!(exit, Some(Some(0)), "SIGTERM exits 0");
        }
        assert!(
            until(Duration::from_secs(30), || api.replicas() == 2
                && web() == 2),
            "SIG{how}: stepped back to 2: app {}, web {}",
            api.replicas(),
            web()
        );
    }
    drop(load);
    for pod in &mut pods {
        pod.stop_agent();
    }
    std::thread::sleep(Duration::from_millis(500));
    let received = samples(&dir.0.join("data/recordings/autoscale.lp"), 0);
    for pod in &pods {
        let gathered = samples(&pod.gathered, 0)
            .remove(&pod.name)
            .unwrap_or_default();
        let got = received.get(&pod.name).cloned().unwrap_or_default();
        let first = got.first().map_or(i64::MAX, |s| s.time);
        let missing: Vec<i64> = gathered
            .iter()
            .filter(|s| s.time >= first && !got.iter().any(|g| g.time == s.time))
            .map(|s| s.time)
            .collect();
        let mut times: Vec<i64> = got.iter().map(|s| s.time).collect();
        times.sort_unstable();
        let before = times.len();
        times.dedup();
        report.push(format!(
            "{}: {} points gathered, {} received by the task, {} missing, {} received twice",
            pod.name,
            gathered.iter().filter(|s| s.time >= first).count(),
            got.len(),
            missing.len(),
            before - times.len()
        ));
        assert!(
            missing.is_empty(),
            "{}: points lost across the restarts: {missing:?}",
            pod.name
        );
    }
    println!(
        "restarts under load (2 pods, 150 rps, 1-s flushes):\n  {}",
        report.join("\n  ")
    );
}

/// A pod the test plays itself through the real write API: a counter rising `rate` per second
/// stamped by a clock `skew_s` off, flushed every second; every `late_every`-th batch held back
/// and sent with the next one (late, after other pods' newer batches), every `twice_every`-th
/// sent twice (a client's retry after a timeout whose first attempt was taken), every
/// `bad_every`-th with a bad line beside its good one.
struct Writer {
    host: &'static str,
    rate: i64,
    skew_s: i64,
    late_every: u64,
    twice_every: u64,
    /// Every `bad_every`-th batch also carries a line that is not line protocol: the batch is
    /// answered 400 `partial write` and its good line must count all the same.
    bad_every: u64,
}

impl Writer {
    fn run(
        &self,
        processor: std::net::SocketAddr,
        stop: &std::sync::atomic::AtomicBool,
    ) -> (u64, u64, u64) {
        let t0 = now_ns() / SECOND;
        let (mut late, mut twice, mut bad) = (0, 0, 0);
        let mut held: Vec<String> = Vec::new();
        let mut batch = 0u64;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let now = now_ns();
            let second = now / SECOND;
            std::thread::sleep(Duration::from_nanos(((second + 1) * SECOND - now) as u64));
            batch += 1;
            let stamp = second + 1 + self.skew_s;
            held.push(format!(
                "requests,deployment=app,host={},url=synthetic counter={} {stamp}",
                self.host,
                self.rate * (second + 1 - t0)
            ));
            if self.late_every > 0 && batch.is_multiple_of(self.late_every) {
                late += 1;
                continue;
            }
            let mut body = held.join("\n");
            held.clear();
            let with_bad = self.bad_every > 0 && batch.is_multiple_of(self.bad_every);
            if with_bad {
                bad += 1;
                body.push_str(&format!("\nrequests,host={} counter= {stamp}", self.host));
            }
            let sends = if self.twice_every > 0 && batch.is_multiple_of(self.twice_every) {
                twice += 1;
                2
            } else {
                1
            };
            for _ in 0..sends {
                let answer = workspace_bins::peers::try_http(
                    processor,
                    "POST",
                    "/write?db=autoscale&rp=autogen&precision=s",
                    &body,
                );
                let expected = if with_bad { 400 } else { 204 };
                assert!(
                    answer
                        .as_ref()
                        .is_some_and(|(status, body)| *status == expected
                            && (!with_bad || body.contains("partial write"))),
                    "{}: {answer:?}",
                    self.host
                );
            }
        }
        (late, twice, bad)
    }
}

#[test]
fn agents_with_skewed_clocks_late_reordered_and_repeated_batches_keep_the_cross_pod_total_within_two_percent()
 {
    let dir = TempDir::new("skew");
    let api = Api::start(1);
    let processor = Processor::start(&dir.0, &api.section(""));
    processor.define("autoscale", TICK);
    let pod = Pod::start(&dir.0, 1, processor.addr, 10_000);
    let load = Load::start(vec![pod.addr], 100.0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = [
        Writer {
            host: "ahead-2s",
            rate: 50,
            skew_s: 2,
            late_every: 0,
            twice_every: 7,
            bad_every: 11,
        },
        Writer {
            host: "behind-2s",
            rate: 50,
            skew_s: -2,
            late_every: 5,
            twice_every: 0,
            bad_every: 0,
        },
    ];
    let threads: Vec<_> = writers
        .into_iter()
        .map(|writer| {
            let stop = std::sync::Arc::clone(&stop);
            let addr = processor.addr;
            std::thread::spawn(move || writer.run(addr, &stop))
        })
        .collect();
    // Past the sum's warm-up (one lateness) and the writers' cadences being learned.
    let warm = until(Duration::from_secs(60), || {
        processor.total("autoscale").is_some()
    });
    assert!(warm, "no total");
    std::thread::sleep(Duration::from_secs(5));
    let mut seen: BTreeMap<i64, f64> = BTreeMap::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(40) {
        if let Some((time, value)) = processor.total("autoscale") {
            seen.insert(time, value);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let counts: Vec<(u64, u64, u64)> = threads
        .into_iter()
        .map(|t| t.join().expect("writer"))
        .collect();
    drop(load);
    let real = true_totals(&samples(&pod.gathered, 0));
    let mut errors: Vec<(i64, f64, f64)> = Vec::new();
    for (time, value) in &seen {
        if let Some(real) = real.get(time) {
            let truth = real + 100.0;
            errors.push((*time, *value, (value - truth).abs() / truth * 100.0));
        }
    }
    let worst = errors.iter().map(|e| e.2).fold(0.0, f64::max);
    let within = errors.iter().filter(|e| e.2 <= 2.0).count();
    let [sum] = nodes(&processor, "autoscale", ["sum"]);
    println!(
        "skewed clocks (+2 s, -2 s writers beside a real agent at 100 rps; {} late batches, {} batches sent twice, {} with a bad line answered 400 partial write): {} totals checked, {within} within 2 %, worst {worst:.2} %; sum node: late_points {}, duplicate_points {}, expired_series {}",
        counts[1].0,
        counts[0].1,
        counts[0].2,
        errors.len(),
        sum["late_points"],
        sum["duplicate_points"],
        sum["expired_series"],
    );
    assert!(errors.len() >= 20, "enough totals checked: {errors:?}");
    assert_eq!(within, errors.len(), "every total within 2 %: {errors:?}");
}
