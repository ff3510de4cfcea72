//! The app's own instruments, through the `metrics` facade, rendered in Prometheus text format.
//!
//! Each [`Telemetry`] owns its own recorder instead of installing a global one, so several app
//! instances in one process (the local lab runs replicas in-process) keep separate counters.

use std::time::Duration;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::process::ProcessStats;

/// The counter the tutorial's Telegraf filter and TICKscript match on. No `_total`: the name is
/// part of the contract with `namepass = ["requests"]` and `|from().measurement('requests')`.
pub const REQUESTS: &str = "requests";
/// Latency of `GET /`, including any wait for capacity.
pub const REQUEST_DURATION: &str = "request_duration_seconds";
/// Upper bounds of the latency histogram's buckets, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The Content-Type of Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Instruments for one app instance, and the handle that renders them.
#[derive(Clone)]
pub struct Telemetry {
    handle: PrometheusHandle,
    /// `requests{host, deployment}`: counted when a `GET /` arrives.
    pub requests: Counter,
    /// `request_duration_seconds{host, deployment}`: from arrival to response.
    pub request_duration: Histogram,
}

impl Telemetry {
    /// Registers the instruments with the labels every series of this instance carries.
    pub fn new(host: &str, deployment: &str) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), DURATION_BUCKETS)
            .expect("the bucket list is a non-empty constant")
            .build_recorder();
        let handle = recorder.handle();
        let labels = vec![
            Label::new("host", host.to_owned()),
            Label::new("deployment", deployment.to_owned()),
        ];
        let metadata = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

        recorder.describe_counter(
            REQUESTS.into(),
            None,
            SharedString::const_str("Total number of requests served"),
        );
        let requests =
            recorder.register_counter(&Key::from_parts(REQUESTS, labels.clone()), &metadata);
        // Exported as 0 from the start, so an idle instance is visible to the agent.
        requests.absolute(0);

        recorder.describe_histogram(
            REQUEST_DURATION.into(),
            Some(Unit::Seconds),
            SharedString::const_str("Time from the arrival of GET / to its response"),
        );
        let request_duration =
            recorder.register_histogram(&Key::from_parts(REQUEST_DURATION, labels), &metadata);

        Self {
            handle,
            requests,
            request_duration,
        }
    }

    /// Records one served `GET /` that took `elapsed`.
    pub fn record_duration(&self, elapsed: Duration) {
        self.request_duration.record(elapsed.as_secs_f64());
    }

    /// The whole exposition: the app's instruments, then the `process_*` families.
    pub fn render(&self) -> String {
        let mut text = self.handle.render();
        if let Some(stats) = ProcessStats::read() {
            stats.render(&mut text);
        }
        text
    }

    /// Folds recorded histogram samples into their buckets. Without it, samples accumulate
    /// between scrapes, so the server calls it every few seconds.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_instance_exports_its_counter_as_zero() {
        let text = Telemetry::new("pod-1", "app").render();
        assert!(
            text.contains("# HELP requests Total number of requests served\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE requests counter\n"), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("requests{"))
            .expect("requests series");
        assert!(line.contains(r#"host="pod-1""#) && line.contains(r#"deployment="app""#));
        assert!(line.ends_with(" 0"), "{line}");
    }

    #[test]
    fn instances_in_one_process_count_separately() {
        let a = Telemetry::new("a", "app");
        let b = Telemetry::new("b", "app");
        a.requests.increment(3);
        assert!(
            a.render()
                .contains(r#"requests{host="a",deployment="app"} 3"#)
        );
        assert!(
            b.render()
                .contains(r#"requests{host="b",deployment="app"} 0"#)
        );
    }

    #[test]
    fn latency_histogram_has_the_explicit_buckets() {
        let telemetry = Telemetry::new("a", "app");
        telemetry.record_duration(Duration::from_millis(3));
        let text = telemetry.render();
        assert!(text.contains("# TYPE request_duration_seconds histogram\n"));
        assert!(text.contains(
            r#"request_duration_seconds_bucket{host="a",deployment="app",le="0.0025"} 0"#
        ));
        assert!(text.contains(
            r#"request_duration_seconds_bucket{host="a",deployment="app",le="0.005"} 1"#
        ));
        assert!(text.contains(r#"request_duration_seconds_count{host="a",deployment="app"} 1"#));
    }
}
