//! The agent's own metrics, through the `metrics` facade with a recorder of its own, rendered as
//! Prometheus text on `--metrics-listen`.

use metrics::{Counter, Gauge, Key, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Handles of one input's instruments.
#[derive(Clone)]
pub struct InputMetrics {
    /// Metrics produced by gathers (after filters).
    pub gathered: Counter,
    /// Failed scrapes (request, status, content type or parse errors).
    pub errors: Counter,
    /// Duration of the last gather, in seconds.
    pub gather_seconds: Gauge,
}

/// Handles of one output's instruments.
#[derive(Clone)]
pub struct OutputMetrics {
    /// Metrics the receiver accepted.
    pub written: Counter,
    /// Metrics dropped because the buffer was full (the oldest go first).
    pub dropped_overflow: Counter,
    /// Metrics the receiver refused for good (a 4xx with a JSON error).
    pub dropped_rejected: Counter,
    /// Failed write attempts (the batch is kept and retried).
    pub write_errors: Counter,
    /// Metrics waiting in the buffer.
    pub buffer_size: Gauge,
    /// The buffer's capacity.
    pub buffer_limit: Gauge,
}

/// The registry of the agent's instruments.
pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    metadata: Metadata<'static>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, help: &'static str, counter: bool| {
            if counter {
                recorder.describe_counter(name.into(), None, SharedString::const_str(help));
            } else {
                recorder.describe_gauge(name.into(), None, SharedString::const_str(help));
            }
        };
        describe(
            "agent_gathered_metrics_total",
            "Metrics gathered by each input",
            true,
        );
        describe(
            "agent_gather_errors_total",
            "Failed scrapes of each input",
            true,
        );
        describe(
            "agent_gather_duration_seconds",
            "Duration of the last gather",
            false,
        );
        describe(
            "agent_written_metrics_total",
            "Metrics accepted by each output",
            true,
        );
        describe(
            "agent_dropped_metrics_total",
            "Metrics dropped by each output: overflow (buffer full) or rejected (by the receiver)",
            true,
        );
        describe(
            "agent_write_errors_total",
            "Failed write attempts, retried later",
            true,
        );
        describe(
            "agent_buffer_metrics",
            "Metrics waiting in each output's buffer",
            false,
        );
        describe(
            "agent_buffer_limit_metrics",
            "Capacity of each output's buffer",
            false,
        );
        Self {
            recorder,
            handle,
            metadata: Metadata::new(module_path!(), Level::INFO, Some(module_path!())),
        }
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        let key = Key::from_parts(name, to_labels(labels));
        let counter = self.recorder.register_counter(&key, &self.metadata);
        // Exported from the start, so a zero is visible.
        counter.increment(0);
        counter
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        let key = Key::from_parts(name, to_labels(labels));
        let gauge = self.recorder.register_gauge(&key, &self.metadata);
        gauge.set(0.0);
        gauge
    }

    /// The instruments of input `name` (e.g. `prometheus[0]`).
    pub fn input(&self, name: &str) -> InputMetrics {
        let labels = [("input", name)];
        InputMetrics {
            gathered: self.counter("agent_gathered_metrics_total", &labels),
            errors: self.counter("agent_gather_errors_total", &labels),
            gather_seconds: self.gauge("agent_gather_duration_seconds", &labels),
        }
    }

    /// The instruments of output `name` (e.g. `influxdb[0]`).
    pub fn output(&self, name: &str) -> OutputMetrics {
        let labels = [("output", name)];
        OutputMetrics {
            written: self.counter("agent_written_metrics_total", &labels),
            dropped_overflow: self.counter(
                "agent_dropped_metrics_total",
                &[("output", name), ("reason", "overflow")],
            ),
            dropped_rejected: self.counter(
                "agent_dropped_metrics_total",
                &[("output", name), ("reason", "rejected")],
            ),
            write_errors: self.counter("agent_write_errors_total", &labels),
            buffer_size: self.gauge("agent_buffer_metrics", &labels),
            buffer_limit: self.gauge("agent_buffer_limit_metrics", &labels),
        }
    }

    /// The exposition, Prometheus text 0.0.4.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn to_labels(labels: &[(&'static str, &str)]) -> Vec<Label> {
    labels
        .iter()
        .map(|&(k, v)| Label::new(k, v.to_owned()))
        .collect()
}

/// Serves the exposition on every path of `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    telemetry: std::sync::Arc<Telemetry>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use http_body_util::Full;
    use hyper::header::{CONTENT_TYPE, HeaderValue};

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let telemetry = std::sync::Arc::clone(&telemetry);
        let service = hyper::service::service_fn(move |_request| {
            let mut response =
                hyper::Response::new(Full::new(bytes::Bytes::from(telemetry.render())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruments_are_exported_from_the_start() {
        let telemetry = Telemetry::new();
        let input = telemetry.input("prometheus[0]");
        let output = telemetry.output("influxdb[0]");
        input.gathered.increment(5);
        output.dropped_overflow.increment(2);
        output.buffer_limit.set(10_000.0);
        let text = telemetry.render();
        assert!(
            text.contains(r#"agent_gathered_metrics_total{input="prometheus[0]"} 5"#),
            "{text}"
        );
        assert!(text.contains(r#"agent_gather_errors_total{input="prometheus[0]"} 0"#));
        assert!(
            text.contains(
                r#"agent_dropped_metrics_total{output="influxdb[0]",reason="overflow"} 2"#
            )
        );
        assert!(text.contains(r#"agent_buffer_limit_metrics{output="influxdb[0]"} 10000"#));
        assert!(text.contains("# TYPE agent_written_metrics_total counter"));
    }
}
