//! The processor's own `/metrics` (Prometheus text 0.0.4): what the write API records through
//! the `metrics` crate, plus per-task and per-node counters and the k8sAutoscale targets'
//! decision figures (`processor_autoscale_*`), read from the task master at scrape time.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::decisions::metrics::TargetMetrics;
use crate::tasks::TaskMaster;

/// How often the recorder folds the samples its histograms buffered into their summaries.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the recorder's upkeep every [`UPKEEP_EVERY`] on a thread of its own. A recorder built
/// with `build_recorder` has no upkeep of its own: each histogram sample (one per write
/// request) would stay buffered until the next scrape of `/metrics`, so a processor nobody
/// scrapes would grow by every request it answers (the soak found it).
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start the metrics upkeep thread: histogram samples are folded only when /metrics is read");
    }
}

/// The installed recorder's handle.
pub struct Telemetry {
    handle: PrometheusHandle,
}

/// A counter family read from node stats: name, help, value.
type Family = (
    &'static str,
    &'static str,
    fn(&crate::pipeline::NodeStats) -> u64,
);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

impl Telemetry {
    /// Installs the process-wide Prometheus recorder (once; later calls share it). `None` when
    /// another recorder was installed first.
    pub fn install() -> Option<Arc<Telemetry>> {
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let installed = metrics::set_global_recorder(recorder).ok().map(|()| handle);
            describe();
            if let Some(handle) = &installed {
                start_upkeep(handle.clone());
            }
            installed
        });
        handle.clone().map(|handle| Arc::new(Telemetry { handle }))
    }

    /// The exposition text.
    pub fn text(&self, tasks: &TaskMaster) -> String {
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        let stats = tasks.node_stats();
        let families: [Family; 3] = [
            (
                "processor_node_points_collected_total",
                "Points a task's node received.",
                |s| s.collected,
            ),
            (
                "processor_node_points_emitted_total",
                "Points a task's node sent on.",
                |s| s.emitted,
            ),
            (
                "processor_node_errors_total",
                "Points a task's node dropped on an error.",
                |s| s.errors,
            ),
        ];
        for (name, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (task, nodes, _) in &stats {
                for node in nodes {
                    let _ = writeln!(
                        out,
                        "{name}{{task=\"{}\",node=\"{}\"}} {}",
                        label(task),
                        label(&node.name),
                        value(node)
                    );
                }
            }
        }
        let name = "processor_node_events_total";
        let _ = writeln!(
            out,
            "# HELP {name} Node-specific events (late_points, counter_resets, increase_events, ...).\n# TYPE {name} counter"
        );
        for (task, nodes, _) in &stats {
            for node in nodes {
                for (event, count) in &node.specific {
                    let _ = writeln!(
                        out,
                        "{name}{{task=\"{}\",node=\"{}\",event=\"{event}\"}} {count}",
                        label(task),
                        label(&node.name)
                    );
                }
            }
        }
        let name = "processor_node_working_cardinality";
        let _ = writeln!(
            out,
            "# HELP {name} Groups or series a node keeps state for.\n# TYPE {name} gauge"
        );
        for (task, nodes, _) in &stats {
            for node in nodes {
                let _ = writeln!(
                    out,
                    "{name}{{task=\"{}\",node=\"{}\"}} {}",
                    label(task),
                    label(&node.name),
                    node.working_cardinality
                );
            }
        }
        let name = "processor_task_points_dropped_total";
        let _ = writeln!(
            out,
            "# HELP {name} Points dropped because a task's queue was full.\n# TYPE {name} counter"
        );
        for (task, _, dropped) in &stats {
            let _ = writeln!(out, "{name}{{task=\"{}\"}} {dropped}", label(task));
        }
        write_decisions(&mut out, &tasks.decision_metrics());
        if let Some(stats) = crate::allocator::stats() {
            crate::allocator::render(&stats, &mut out);
        }
        let (total, enabled, _) = tasks.counts();
        let _ = writeln!(
            out,
            "# HELP processor_tasks Defined tasks.\n# TYPE processor_tasks gauge\nprocessor_tasks {total}\n# HELP processor_tasks_enabled Running tasks.\n# TYPE processor_tasks_enabled gauge\nprocessor_tasks_enabled {enabled}"
        );
        out
    }

    pub fn render(&self, tasks: &TaskMaster) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.text(tasks))));
        if let Ok(v) = "text/plain; version=0.0.4; charset=utf-8".parse() {
            response.headers_mut().insert("content-type", v);
        }
        response
    }
}

/// The k8sAutoscale nodes' figures per target ([`crate::decisions::metrics`]): replicas
/// gauges, evaluations by outcome, rules by name, the decision delay histogram.
fn write_decisions(out: &mut String, tasks: &[(String, Vec<TargetMetrics>)]) {
    let targets = || {
        tasks.iter().flat_map(|(task, targets)| {
            targets
                .iter()
                .map(move |target| (target_labels(task, target), target))
        })
    };
    for (name, help, value) in [
        (
            "processor_autoscale_desired_replicas",
            "Replicas a k8sAutoscale target was last decided to have, after every rule.",
            (|t: &TargetMetrics| t.desired) as fn(&TargetMetrics) -> Option<i64>,
        ),
        (
            "processor_autoscale_current_replicas",
            "Replicas of a k8sAutoscale target as last read from the Kubernetes API.",
            |t: &TargetMetrics| t.current,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, target) in targets() {
            if let Some(value) = value(target) {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    }
    let name = "processor_autoscale_decisions_total";
    let _ = writeln!(
        out,
        "# HELP {name} Evaluations of a k8sAutoscale target, by outcome (increased, decreased, unchanged, held, dry-run, error, standby).\n# TYPE {name} counter"
    );
    for (labels, target) in targets() {
        for (outcome, count) in target.by_outcome() {
            let _ = writeln!(
                out,
                "{name}{{{labels},outcome=\"{}\"}} {count}",
                outcome.name()
            );
        }
    }
    let name = "processor_autoscale_decision_rules_total";
    let _ = writeln!(
        out,
        "# HELP {name} Evaluations of a k8sAutoscale target in which a rule changed or held the count, by rule.\n# TYPE {name} counter"
    );
    for (labels, target) in targets() {
        for (rule, count) in target.by_rule() {
            let _ = writeln!(out, "{name}{{{labels},rule=\"{}\"}} {count}", rule.name());
        }
    }
    let name = "processor_autoscale_decreases_after_silence_total";
    let _ = writeln!(
        out,
        "# HELP {name} Decreases of a k8sAutoscale target decided while series of its total had just stopped reporting (a total that fell because pods went silent).\n# TYPE {name} counter"
    );
    for (labels, target) in targets() {
        let _ = writeln!(out, "{name}{{{labels}}} {}", target.decreases_after_silence);
    }
    let name = "processor_autoscale_decision_delay_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from the newest sample a k8sAutoscale decision read to its call of the Kubernetes API.\n# TYPE {name} histogram"
    );
    for (labels, target) in targets() {
        let delay = &target.delay;
        for (bound, count) in delay.cumulative() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}\n{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}",
            delay.count, delay.sum, delay.count
        );
    }
}

/// `task="…",node="…",[cluster="…",]namespace="…",kind="…",name="…"`.
fn target_labels(task: &str, target: &TargetMetrics) -> String {
    let t = &target.target;
    let cluster = if t.cluster.is_empty() {
        String::new()
    } else {
        format!("cluster=\"{}\",", label(&t.cluster))
    };
    format!(
        "task=\"{}\",node=\"{}\",{cluster}namespace=\"{}\",kind=\"{}\",name=\"{}\"",
        label(task),
        label(&target.node),
        label(&t.namespace),
        label(&t.kind),
        label(&t.name)
    )
}

/// Help texts for what the write API records (promtool wants HELP on every family).
fn describe() {
    metrics::describe_gauge!(
        "processor_ha_leader",
        "1 while this replica holds the HA Lease and may write to the Kubernetes API, else 0."
    );
    metrics::describe_counter!(
        "processor_ha_transitions_total",
        "Leadership gained or lost by this replica (label change)."
    );
    metrics::describe_counter!(
        "processor_ha_lease_renew_failures_total",
        "Failed attempts of the leader to renew the HA Lease."
    );
    metrics::describe_counter!(
        "processor_write_requests_total",
        "Write requests received (/write, /kapacitor/v1/write, /api/v2/write)."
    );
    metrics::describe_counter!(
        "processor_write_bytes_total",
        metrics::Unit::Bytes,
        "Bytes of write request bodies received."
    );
    metrics::describe_counter!(
        "processor_points_written_total",
        "Points accepted by the write API."
    );
    metrics::describe_counter!(
        "processor_lines_rejected_total",
        "Lines of write requests rejected as invalid."
    );
    metrics::describe_counter!(
        "processor_points_received_total",
        "Points accepted, by write endpoint."
    );
    metrics::describe_counter!(
        "processor_points_rejected_total",
        "Lines rejected, by write endpoint."
    );
    metrics::describe_counter!(
        "processor_http_connections_refused_total",
        "Connections closed at once because [http] max-connection-limit were open."
    );
    metrics::describe_counter!(
        "processor_http_connections_closed_total",
        "Connections closed by the server for being too slow, by timeout \
         (header-read-timeout, idle-timeout)."
    );
    metrics::describe_counter!(
        "processor_http_body_timeouts_total",
        "Request bodies not received within [http] body-read-timeout (answered 408)."
    );
    metrics::describe_histogram!(
        "processor_write_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a write request (parse and route), by endpoint."
    );
}

/// Escapes a label value (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
