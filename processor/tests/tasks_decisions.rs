//! Decision records end to end: tasks scale workloads of the Kubernetes API stand-in through
//! the real Kubernetes scaler, and every evaluation shows up in
//! `GET /kapacitor/v1/decisions` (each outcome, each rule), in `processor decisions` (the
//! binary) and in `/metrics` (checked by promtool and scraped by a real Prometheus).

mod tasks_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use k8s_standin::{Config as StandinConfig, Fault, Handle, Server};
use processor::scaler::cluster::{self, Kubernetes};
use processor::scaler::kubernetes::KubernetesScaler;
use processor::scaler::{ScaleError, ScaleFuture, ScaleIntent, Scaler};
use processor::{Options, Processor};
use serde_json::{Value, json};
use tasks_support::{call, config, define_body, eventually};

/// The Kubernetes scaler, except that a target named `owned` is refused as another
/// autoscaler's (what the HPA check answers).
struct HpaGuard(KubernetesScaler);

impl Scaler for HpaGuard {
    fn scale(&self, intent: ScaleIntent) -> ScaleFuture {
        if intent.target.name == "owned" {
            let target = format!("default/deployments/{}", intent.target.name);
            return Box::pin(async move {
                Err(ScaleError::Conflict {
                    target,
                    hpa: "owned-hpa".to_owned(),
                    current: 1,
                    wanted: 3,
                })
            });
        }
        self.0.scale(intent)
    }

    fn has_cluster(&self, id: &str) -> bool {
        self.0.has_cluster(id)
    }
}

/// A processor scaling the stand-in's workloads.
struct Lab {
    standin: Handle,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Lab {
    async fn start() -> Lab {
        let standin = Server::start(
            StandinConfig::default()
                .with_deployment("default", "app", 1)
                .with_deployment("default", "web", 4)
                .with_deployment("default", "burst", 1)
                .with_deployment("default", "locked", 1)
                .with_deployment("default", "owned", 1)
                .with_deployment("shop", "web", 2),
        )
        .await
        .expect("the stand-in starts");
        standin.inject(
            Fault::status(403)
                .always()
                .verb("update")
                .subresource("scale")
                .name("locked"),
        );
        let settings = Kubernetes {
            enabled: true,
            api_servers: vec![standin.url()],
            ..Kubernetes::default()
        };
        let client = cluster::connect(&settings).await.expect("a client");
        let scaler = KubernetesScaler::with_clusters(
            HashMap::from([(String::new(), client)]),
            processor::clock::system(),
        );
        let dir = tempfile::tempdir().unwrap();
        let processor = Processor::bind(
            config(dir.path(), ""),
            Options {
                scaler: Some(Arc::new(HpaGuard(scaler))),
                ..Options::default()
            },
        )
        .await
        .unwrap();
        let addr = processor.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(processor.serve(async {
            let _ = stopped.await;
        }));
        Lab {
            standin,
            addr,
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Defines task `id`, enabled, over `script`.
    async fn define(&self, id: &str, script: &str) {
        let (status, _, text) = call(
            self.addr,
            Method::POST,
            "/kapacitor/v1/tasks",
            &define_body(id, script, "enabled"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }

    /// Task `task`'s records, newest first.
    async fn decisions(&self, task: &str) -> Vec<Value> {
        let (status, body, text) = call(
            self.addr,
            Method::GET,
            &format!("/kapacitor/v1/decisions?task={task}&limit=10000"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        body["decisions"].as_array().cloned().unwrap_or_default()
    }

    /// When task `task`'s newest record was made (ns): every evaluation changes it, whether
    /// it adds a record or coalesces into the newest.
    async fn newest(&self, task: &str) -> Option<i64> {
        let (status, body, text) = call(
            self.addr,
            Method::GET,
            &format!("/kapacitor/v1/decisions?task={task}&limit=1"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        body["decisions"][0]["time_ns"].as_i64()
    }

    /// Writes `line` and waits until task `task` has evaluated it.
    async fn evaluate(&self, task: &str, line: &str) {
        let before = self.newest(task).await;
        let (status, _, text) = call(
            self.addr,
            Method::POST,
            "/write?db=autoscale&rp=autogen",
            line,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        assert!(
            eventually(|| async { self.newest(task).await != before }).await,
            "task {task} never evaluated {line:?}"
        );
    }

    async fn metrics(&self) -> String {
        let (status, _, text) = call(self.addr, Method::GET, "/metrics", "").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        text
    }
}

/// `stream|from()` of `measurement` grouped by deployment, into a k8sAutoscale node
/// (`k8s_autoscale2`) with `extra` properties, the count being the `v` field.
fn script(measurement: &str, extra: &str) -> String {
    format!(
        "stream\n    |from()\n        .measurement('{measurement}')\n        .groupBy('deployment')\n    \
         |k8sAutoscale()\n        .namespace('default')\n        .resourceNameTag('deployment')\n        \
         .replicas(lambda: \"v\")\n{extra}"
    )
}

/// The wall clock, ns.
fn now_ns() -> i64 {
    processor::clock::wall_ns()
}

/// Task `plain` over default/app (1 replica): increased, decreased, unchanged twice (one
/// record), held by max and cooldown, decreased by min, held as stale.
async fn plain(lab: &Lab) {
    lab.define(
        "plain",
        &script("plain", "        .max(5)\n        .increaseCooldown(1h)\n"),
    )
    .await;
    for v in [3, 2, 2, 2, 20, 0] {
        lab.evaluate("plain", &format!("plain,deployment=app v={v}"))
            .await;
    }
    let old = now_ns() - 600_000_000_000;
    lab.evaluate("plain", &format!("plain,deployment=app v=4 {old}"))
        .await;
}

/// Every other task: HPA's rules on default/web (4), a burst on default/burst (1), a dry run
/// on shop/web (2), a refused write on default/locked and another autoscaler's default/owned.
async fn the_others(lab: &Lab) {
    lab.define(
        "hpa",
        &script(
            "hpa",
            "        .tolerance(0.2)\n        .scaleDownStabilization(1h)\n        .scaleUpPolicy('pods', 1, 30m)\n",
        ),
    )
    .await;
    for v in ["4.5", "7", "2"] {
        lab.evaluate("hpa", &format!("hpa,deployment=web v={v}"))
            .await;
    }
    lab.define(
        "burst",
        &script("burst", "        .burst(2.0)\n        .max(4)\n"),
    )
    .await;
    lab.evaluate("burst", "burst,deployment=burst v=5").await;
    lab.define(
        "dry",
        &script("dry", "        .dryRun()\n").replace("'default'", "'shop'"),
    )
    .await;
    lab.evaluate("dry", "dry,deployment=web v=5").await;
    lab.define("fail", &script("fail", "")).await;
    lab.evaluate("fail", "fail,deployment=locked v=3").await;
    lab.evaluate("fail", "fail,deployment=owned v=3").await;
}

/// `(outcome, current, raw, desired, rules, repeated)` of each record, newest first.
fn summary(records: &[Value]) -> Vec<(String, Value, Value, Value, Vec<String>, u64)> {
    records
        .iter()
        .map(|r| {
            let rules = r["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    format!(
                        "{} {}→{}",
                        s["rule"].as_str().unwrap(),
                        s["before"],
                        s["after"]
                    )
                })
                .collect();
            (
                r["outcome"].as_str().unwrap().to_owned(),
                r["current"].clone(),
                r["raw"].clone(),
                r["desired"].clone(),
                rules,
                r["repeated"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(
    outcome: &str,
    current: Value,
    raw: Value,
    desired: Value,
    rules: &[&str],
    repeated: u64,
) -> (String, Value, Value, Value, Vec<String>, u64) {
    (
        outcome.to_owned(),
        current,
        raw,
        desired,
        rules.iter().map(|r| (*r).to_owned()).collect(),
        repeated,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_outcome_and_rule_leaves_a_record_served_newest_first() {
    let lab = Lab::start().await;
    plain(&lab).await;
    the_others(&lab).await;

    let records = lab.decisions("plain").await;
    assert_eq!(
        summary(&records),
        [
            row("held", json!(1), json!(null), json!(1), &["stale 1→1"], 1),
            row("decreased", json!(2), json!(0.0), json!(1), &["min 0→1"], 1),
            row(
                "held",
                json!(2),
                json!(20.0),
                json!(2),
                &["max 20→5", "cooldown 5→2"],
                1
            ),
            row("unchanged", json!(2), json!(2.0), json!(2), &[], 2),
            row("decreased", json!(3), json!(2.0), json!(2), &[], 1),
            row("increased", json!(1), json!(3.0), json!(3), &[], 1),
        ]
    );
    let increased = &records[5];
    assert_eq!(increased["task"], "plain");
    assert_eq!(increased["node"], "k8s_autoscale2");
    assert_eq!(
        increased["target"],
        json!({"namespace": "default", "kind": "deployments", "name": "app"})
    );
    assert_eq!(increased["inputs"]["fields"], json!({"v": 3.0}));
    assert!(increased["inputs"]["age_seconds"].as_f64().unwrap() >= 0.0);
    assert!(increased["delay_seconds"].as_f64().unwrap() >= 0.0);
    let stale = &records[0];
    assert_eq!(stale["delay_seconds"], Value::Null, "no API call was made");
    assert!(stale["inputs"]["age_seconds"].as_f64().unwrap() >= 600.0);
    let times: Vec<i64> = records
        .iter()
        .map(|r| r["time_ns"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(lab.standin.deployment_replicas("default", "app"), Some(1));

    assert_eq!(
        summary(&lab.decisions("hpa").await),
        [
            row(
                "held",
                json!(5),
                json!(2.0),
                json!(5),
                &["stabilization 2→5"],
                1
            ),
            row(
                "increased",
                json!(4),
                json!(7.0),
                json!(5),
                &["policy 7→5"],
                1
            ),
            row(
                "held",
                json!(4),
                json!(4.5),
                json!(4),
                &["tolerance 5→4"],
                1
            ),
        ]
    );
    assert_eq!(lab.standin.deployment_replicas("default", "web"), Some(5));
    assert_eq!(
        summary(&lab.decisions("burst").await),
        [row(
            "increased",
            json!(1),
            json!(5.0),
            json!(4),
            &["burst 1→5", "max 5→4"],
            1
        )]
    );
    let dry = lab.decisions("dry").await;
    assert_eq!(
        summary(&dry),
        [row("dry-run", json!(2), json!(5.0), json!(5), &[], 1)]
    );
    assert_eq!(dry[0]["target"]["namespace"], "shop");
    assert_eq!(
        lab.standin.deployment_replicas("shop", "web"),
        Some(2),
        "a dry run writes nothing"
    );
    let failed = lab.decisions("fail").await;
    assert_eq!(
        summary(&failed),
        [
            row(
                "held",
                json!(1),
                json!(null),
                json!(1),
                &["conflict 3→1"],
                1
            ),
            row("error", json!(null), json!(null), json!(null), &[], 1),
        ]
    );
    let owned = failed[0]["error"].as_str().unwrap();
    assert!(owned.contains("owned-hpa"), "{owned}");
    let locked = failed[1]["error"].as_str().unwrap();
    assert!(locked.starts_with("forbidden: "), "{locked}");
    // The refused write's Event carries the decision and its rules, as HPA's do.
    let events: Vec<String> = lab
        .standin
        .events()
        .iter()
        .filter(|e| e["reason"] == "FailedRescale")
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        events.iter().any(|m| m.starts_with(
            "New size: 3; reason: task fail node k8s_autoscale2 asked for 3 replicas, current 1, new 3; rules: none; error: "
        )),
        "{events:?}"
    );

    // Newest first over every target, at most `limit`.
    let (status, body, _) = call(
        lab.addr,
        Method::GET,
        "/kapacitor/v1/decisions?task=plain&limit=2",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decisions"], json!(records[..2]));
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_requests_are_checked_and_records_go_with_their_task() {
    let lab = Lab::start().await;
    lab.define("plain", &script("plain", "")).await;
    lab.evaluate("plain", "plain,deployment=app v=2").await;
    let get = |path: &'static str| call(lab.addr, Method::GET, path, "");
    let (status, body, _) = get("/kapacitor/v1/decisions").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "missing task: GET /kapacitor/v1/decisions?task=ID[&limit=N]"
    );
    for limit in ["0", "x", "10001", "-3"] {
        let (status, body, _) = call(
            lab.addr,
            Method::GET,
            &format!("/kapacitor/v1/decisions?task=plain&limit={limit}"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{limit}");
        assert_eq!(
            body["error"],
            format!("invalid limit \"{limit}\": a whole number from 1 to 10000")
        );
    }
    let (status, body, _) = get("/kapacitor/v1/decisions?task=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    let (status, _, _) = call(
        lab.addr,
        Method::POST,
        "/kapacitor/v1/decisions?task=plain",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // An httpOut named `decisions` is served under its task, apart from the records.
    let (status, _, _) = get("/kapacitor/v1/tasks/plain/decisions").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "plain has no such httpOut");

    assert_eq!(lab.decisions("plain").await.len(), 1);
    let labels = "task=\"plain\",node=\"k8s_autoscale2\",namespace=\"default\",kind=\"deployments\",name=\"app\"";
    let metrics = lab.metrics().await;
    assert!(
        metrics.contains(&format!(
            "processor_autoscale_desired_replicas{{{labels}}} 2\n"
        )),
        "{metrics}"
    );
    // Disabled: the records and the figures went with the running task.
    let (status, _, text) = call(
        lab.addr,
        Method::PATCH,
        "/kapacitor/v1/tasks/plain",
        r#"{"status":"disabled"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(lab.decisions("plain").await.is_empty());
    assert!(!lab.metrics().await.contains("task=\"plain\""));
    let (status, _, _) = call(lab.addr, Method::DELETE, "/kapacitor/v1/tasks/plain", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = get("/kapacitor/v1/decisions?task=plain").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    lab.stop().await;
}

/// `name{labels}` lines of `text` as a map to their values.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_decisions_pass_promtool_and_a_real_prometheus_scrapes_them() {
    let lab = Lab::start().await;
    plain(&lab).await;
    the_others(&lab).await;
    let text = lab.metrics().await;
    let samples = samples(&text);
    let app = "task=\"plain\",node=\"k8s_autoscale2\",namespace=\"default\",kind=\"deployments\",name=\"app\"";
    let web = "task=\"hpa\",node=\"k8s_autoscale2\",namespace=\"default\",kind=\"deployments\",name=\"web\"";
    let value = |series: String| {
        *samples
            .get(&series)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        value(format!("processor_autoscale_desired_replicas{{{app}}}")),
        1.0
    );
    assert_eq!(
        value(format!("processor_autoscale_current_replicas{{{app}}}")),
        2.0
    );
    for (outcome, count) in [
        ("increased", 1.0),
        ("decreased", 2.0),
        ("unchanged", 2.0),
        ("held", 2.0),
        ("dry-run", 0.0),
        ("error", 0.0),
    ] {
        assert_eq!(
            value(format!(
                "processor_autoscale_decisions_total{{{app},outcome=\"{outcome}\"}}"
            )),
            count,
            "{outcome}"
        );
    }
    for (rule, count) in [
        ("max", 1.0),
        ("cooldown", 1.0),
        ("min", 1.0),
        ("stale", 1.0),
        ("policy", 0.0),
    ] {
        assert_eq!(
            value(format!(
                "processor_autoscale_decision_rules_total{{{app},rule=\"{rule}\"}}"
            )),
            count,
            "{rule}"
        );
    }
    for rule in ["tolerance", "policy", "stabilization"] {
        assert_eq!(
            value(format!(
                "processor_autoscale_decision_rules_total{{{web},rule=\"{rule}\"}}"
            )),
            1.0,
            "{rule}"
        );
    }
    // Six evaluations called the API; the stale point did not.
    assert_eq!(
        value(format!(
            "processor_autoscale_decision_delay_seconds_count{{{app}}}"
        )),
        6.0
    );
    assert_eq!(
        value(format!(
            "processor_autoscale_decision_delay_seconds_bucket{{{app},le=\"+Inf\"}}"
        )),
        6.0
    );
    assert!(
        value(format!(
            "processor_autoscale_decision_delay_seconds_bucket{{{app},le=\"120\"}}"
        )) <= 6.0
    );
    let owned = "task=\"fail\",node=\"k8s_autoscale2\",namespace=\"default\",kind=\"deployments\",name=\"owned\"";
    assert_eq!(
        value(format!(
            "processor_autoscale_decision_rules_total{{{owned},rule=\"conflict\"}}"
        )),
        1.0
    );
    assert!(
        !samples.contains_key(&format!("processor_autoscale_current_replicas{{{owned}}}")),
        "an error reads no replicas"
    );
    if let Some(check) = workspace_bins::peers::promtool_check_metrics(&text) {
        assert!(check.passed(), "promtool: {}\n{text}", check.report);
    }

    let dir = tempfile::tempdir().unwrap();
    let addr = lab.addr;
    let prometheus = tokio::task::spawn_blocking(move || {
        let prometheus =
            workspace_bins::peers::Prometheus::start(dir.path(), "processor", &[addr])?;
        Some((prometheus, dir))
    })
    .await
    .unwrap();
    if let Some((prometheus, _dir)) = prometheus {
        let prometheus = Arc::new(prometheus);
        let scraped = |query: String, want: f64| {
            let prometheus = Arc::clone(&prometheus);
            async move {
                eventually(|| {
                    let (prometheus, query) = (Arc::clone(&prometheus), query.clone());
                    async move {
                        tokio::task::spawn_blocking(move || prometheus.value(&query))
                            .await
                            .unwrap()
                            == Some(want)
                    }
                })
                .await
            }
        };
        assert!(
            scraped("up{job=\"processor\"}".into(), 1.0).await,
            "Prometheus never scraped the processor: {:?}",
            prometheus.query("up")
        );
        assert!(
            scraped(
                "processor_autoscale_decisions_total{task=\"plain\",outcome=\"unchanged\"}".into(),
                2.0
            )
            .await,
            "{:?}",
            prometheus.query("processor_autoscale_decisions_total")
        );
        assert!(
            scraped(
                "processor_autoscale_decision_delay_seconds_count{task=\"plain\"}".into(),
                6.0
            )
            .await,
            "{:?}",
            prometheus.query("processor_autoscale_decision_delay_seconds_count")
        );
        assert!(
            scraped(
                "processor_autoscale_desired_replicas{task=\"hpa\"}".into(),
                5.0
            )
            .await,
            "{:?}",
            prometheus.query("processor_autoscale_desired_replicas")
        );
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ring_of_a_target_stays_bounded() {
    let lab = Lab::start().await;
    lab.define(
        "dry",
        &script("dry", "        .dryRun()\n").replace("'default'", "'shop'"),
    )
    .await;
    // Every evaluation is a change (a dry run from the 2 replicas shop/web keeps, to 3 and 4
    // in turn): none coalesces.
    let per_target = processor::decisions::log::DEFAULT_PER_TARGET;
    let total = per_target + 44;
    for i in 0..total {
        lab.evaluate("dry", &format!("dry,deployment=web v={}", 3 + i % 2))
            .await;
    }
    let records = lab.decisions("dry").await;
    assert_eq!(records.len(), per_target);
    assert!(records.iter().all(|r| r["outcome"] == "dry-run"));
    let last = format!("{}.0", 3 + (total - 1) % 2);
    assert_eq!(records[0]["raw"].to_string(), last, "the newest is kept");
    let metrics = lab.metrics().await;
    let line = format!(
        "processor_autoscale_decisions_total{{task=\"dry\",node=\"k8s_autoscale2\",namespace=\"shop\",kind=\"deployments\",name=\"web\",outcome=\"dry-run\"}} {total}\n"
    );
    assert!(
        metrics.contains(&line),
        "the metrics count them all: {metrics}"
    );
    lab.stop().await;
}

/// Runs `processor ARGS` (the binary's client commands) against `url`: (exit code, stdout,
/// stderr).
async fn processor_cli(url: String, args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(workspace_bins::binary("processor", "processor"))
            .args(&args)
            .env("PROCESSOR_URL", url)
            .env_remove("KAPACITOR_URL")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_decisions_command_prints_a_table_and_json_lines() {
    let lab = Lab::start().await;
    lab.define("plain", &script("plain", "        .max(5)\n"))
        .await;
    for v in [3, 20, 20, 20] {
        lab.evaluate("plain", &format!("plain,deployment=app v={v}"))
            .await;
    }
    let url = format!("http://{}", lab.addr);

    let (code, table, err) = processor_cli(url.clone(), &["decisions", "plain"]).await;
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "TIME", "TARGET", "CURRENT", "RAW", "DESIRED", "OUTCOME", "DELAY", "RULES"
        ],
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    let columns = |line: &[&str]| {
        let mut kept: Vec<String> = line[1..].iter().map(|s| (*s).to_owned()).collect();
        // The delay is whatever it was; it reads as seconds.
        let delay = kept
            .iter()
            .position(|c| c.ends_with('s') && c.contains('.'));
        assert!(delay.is_some(), "{line:?}");
        kept.retain(|c| !(c.ends_with('s') && c.contains('.')));
        kept
    };
    assert_eq!(
        columns(&lines[1]),
        [
            "default/deployments/app",
            "5",
            "20",
            "5",
            "unchanged",
            "×2",
            "max",
            "20→5"
        ],
        "{table}"
    );
    assert_eq!(
        columns(&lines[2]),
        [
            "default/deployments/app",
            "3",
            "20",
            "5",
            "increased",
            "max",
            "20→5"
        ],
        "{table}"
    );
    assert_eq!(
        columns(&lines[3]),
        ["default/deployments/app", "1", "3", "3", "increased", "-"],
        "{table}"
    );
    // Times as RFC 3339 with milliseconds, newest first.
    assert!(
        lines[1][0] >= lines[3][0] && lines[1][0].ends_with('Z'),
        "{table}"
    );

    let (code, json_lines, err) =
        processor_cli(url.clone(), &["decisions", "plain", "-json", "-limit", "2"]).await;
    assert_eq!(code, Some(0), "{err}");
    let records: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{json_lines}");
    assert_eq!(
        (&records[0]["outcome"], &records[0]["repeated"]),
        (&json!("unchanged"), &json!(2))
    );
    assert_eq!(
        records[1]["rules"],
        json!([{"rule": "max", "before": 20, "after": 5}])
    );
    assert_eq!(records, lab.decisions("plain").await[..2]);

    let (code, _, err) = processor_cli(url.clone(), &["decisions", "nope"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no task exists with id \"nope\""), "{err}");
    let (code, _, err) = processor_cli(url.clone(), &["decisions", "plain", "-limit", "0"]).await;
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("limit"), "{err}");
    let (code, _, err) = processor_cli(
        url.clone(),
        &["--url", "http://127.0.0.1:1", "decisions", "plain"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot reach http://127.0.0.1:1"), "{err}");
    lab.stop().await;
}
