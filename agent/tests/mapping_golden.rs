//! The Telegraf mapping against recorded truth.
//!
//! `node_exporter_metrics.lp` is one real node_exporter scrape converted Telegraf-style
//! (metric_version 1) by InfluxDB's own point code, and accepted by InfluxDB: the agent must
//! produce the same points (measurement, tags, fields and values), line for line.

use agent::convert::{self, Mapping};
use agent::line_protocol::{self, Options};
use agent::prom::{self, Format};

const TIME_NS: i64 = 1_700_000_000_000_000_000;

fn convert_v1(exposition: &str) -> Vec<String> {
    let families = prom::parse(exposition, Format::Text).expect("the sample parses");
    let mapping = Mapping {
        metric_version: 1,
        ignore_timestamp: false,
    };
    let mut lines = Vec::new();
    convert::convert(&families, Format::Text, mapping, TIME_NS, |metric| {
        let mut line = String::new();
        if line_protocol::write_metric(&mut line, metric, Options::default()).is_ok() {
            lines.push(line.trim_end().to_owned());
        }
    });
    lines
}

#[test]
fn node_exporter_scrape_maps_to_the_recorded_points() {
    let Some(samples) = workspace_bins::samples_dir() else {
        return;
    };
    let exposition = std::fs::read_to_string(samples.join("node_exporter_metrics.txt")).unwrap();
    let expected_text = std::fs::read_to_string(samples.join("node_exporter_metrics.lp")).unwrap();
    let mut expected: Vec<&str> = expected_text.lines().filter(|l| !l.is_empty()).collect();
    let mut actual = convert_v1(&exposition);
    assert_eq!(
        actual.len(),
        501,
        "one point per sample, a summary's 7 samples in one"
    );
    expected.sort_unstable();
    actual.sort_unstable();
    let missing: Vec<_> = expected
        .iter()
        .filter(|l| actual.binary_search_by(|a| a.as_str().cmp(l)).is_err())
        .collect();
    let extra: Vec<_> = actual
        .iter()
        .filter(|a| expected.binary_search(&a.as_str()).is_err())
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {} lines, e.g. {:?}\nextra {} lines, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>()
    );
}

#[test]
fn a_histogram_sample_maps_to_one_point_with_every_bucket() {
    let Some(samples) = workspace_bins::samples_dir() else {
        return;
    };
    let exposition = std::fs::read_to_string(samples.join("prometheus_self_metrics.txt")).unwrap();
    let lines = convert_v1(&exposition);
    // prometheus_http_request_duration_seconds{handler="/-/ready"}: 10 buckets, count, sum.
    let line = lines
        .iter()
        .find(|l| l.starts_with("prometheus_http_request_duration_seconds,handler=/-/ready "))
        .expect("the /-/ready handler histogram");
    let fields = line.split(' ').nth(1).unwrap();
    let keys: Vec<&str> = fields
        .split(',')
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "+Inf", "0.1", "0.2", "0.4", "1", "120", "20", "3", "60", "8", "count", "sum"
        ],
        "{line}"
    );
    // Cumulative counts: the +Inf bucket equals the count.
    let value = |key: &str| -> f64 {
        fields
            .split(',')
            .find_map(|f| f.strip_prefix(&format!("{key}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("+Inf"), value("count"));
    assert!(value("0.1") <= value("0.2") && value("0.2") <= value("+Inf"));
}
