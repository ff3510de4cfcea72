//! What a parsed exposition is made of: families, their metrics (one per label set and
//! timestamp), and the typed value of each metric.
//!
//! The shape follows the Prometheus client data model (`io.prometheus.client.MetricFamily`), which
//! is what Telegraf's `inputs.prometheus` consumes: counters, gauges and untyped samples are one
//! metric each, while a summary's quantiles and a histogram's buckets are grouped with their
//! `_sum` and `_count` (and OpenMetrics `_created`) under one label set. Names and label values
//! borrow from the input; a label value or help text is owned only when it had escapes.

use std::borrow::Cow;

/// The declared type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A monotonic counter (text: the sample carries the family name; OpenMetrics: `_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Quantiles plus `_sum` and `_count`.
    Summary,
    /// Cumulative `_bucket`s (label `le`) plus `_sum` and `_count`.
    Histogram,
    /// OpenMetrics gauge histogram: `_bucket`s plus `_gsum` and `_gcount`. (Text 0.0.4 accepts
    /// the `gauge_histogram` TYPE the way Go's parser does, see [`crate::prom`].)
    GaugeHistogram,
    /// Text 0.0.4: no TYPE line, or `# TYPE x untyped`.
    Untyped,
    /// OpenMetrics: no TYPE line, or `# TYPE x unknown`.
    Unknown,
    /// OpenMetrics info metric (`_info` samples, value 1).
    Info,
    /// OpenMetrics state set (one label named like the family, values 0 or 1).
    Stateset,
}

impl MetricType {
    /// The spelling in a `# TYPE` line of text format 0.0.4.
    pub fn text_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gauge_histogram",
            MetricType::Untyped | MetricType::Unknown => "untyped",
            // Not expressible in 0.0.4; their samples are plain values.
            MetricType::Info | MetricType::Stateset => "gauge",
        }
    }

    /// The spelling in a `# TYPE` line of OpenMetrics 1.0.
    pub fn openmetrics_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Untyped | MetricType::Unknown => "unknown",
            MetricType::Info => "info",
            MetricType::Stateset => "stateset",
        }
    }
}

/// One label: a name (never escaped, so always borrowed) and its value (owned only if it had
/// escape sequences).
#[derive(Debug, Clone, PartialEq)]
pub struct Label<'a> {
    /// The label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
    pub name: &'a str,
    /// The unescaped label value.
    pub value: Cow<'a, str>,
}

/// Whether two label lists hold the same labels, in any order (both free of duplicate names).
pub(crate) fn same_label_set(a: &[Label<'_>], b: &[Label<'_>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        return a
            .iter()
            .all(|x| b.iter().any(|y| x.name == y.name && x.value == y.value));
    }
    // Long label sets: compare sorted, not pairwise.
    sorted_pairs(a) == sorted_pairs(b)
}

fn sorted_pairs<'l>(labels: &'l [Label<'_>]) -> Vec<(&'l str, &'l str)> {
    let mut pairs: Vec<(&str, &str)> = labels.iter().map(|l| (l.name, l.value.as_ref())).collect();
    pairs.sort_unstable();
    pairs
}

/// Finds repeated label names as a label list grows: a scan while it is short, a set after.
#[derive(Default)]
pub(crate) struct DuplicateNames<'a> {
    seen: Option<std::collections::HashSet<&'a str>>,
}

impl<'a> DuplicateNames<'a> {
    /// Whether `name` is already among `labels` (the list so far, `name` not yet added).
    pub(crate) fn repeats(&mut self, labels: &[Label<'a>], name: &'a str) -> bool {
        if labels.len() < 16 {
            return labels.iter().any(|l| l.name == name);
        }
        let seen = self
            .seen
            .get_or_insert_with(|| labels.iter().map(|l| l.name).collect());
        !seen.insert(name)
    }
}

/// A hash of a label list that does not depend on the labels' order, skipping `except`.
pub(crate) fn label_set_hash(
    state: &std::hash::RandomState,
    labels: &[Label<'_>],
    except: Option<&str>,
) -> u64 {
    use std::hash::BuildHasher;
    labels
        .iter()
        .filter(|label| Some(label.name) != except)
        .map(|label| state.hash_one((label.name, label.value.as_ref())))
        .fold(0u64, u64::wrapping_add)
}

/// A sample timestamp, in the unit its format writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timestamp {
    /// Text 0.0.4: integer milliseconds since the Unix epoch (Go's `int64`).
    Millis(i64),
    /// OpenMetrics: seconds since the epoch, written as a decimal (`1.5`, `000`, `1.5e3`,
    /// `12345678901234567890.123456789`), kept exactly to the nanosecond (digits past the ninth
    /// decimal are truncated, as the reference parser does).
    Nanos(i128),
}

impl Timestamp {
    /// Nanoseconds since the epoch, if that fits an `i64` (years 1677 to 2262).
    pub fn unix_nanos(self) -> Option<i64> {
        match self {
            Timestamp::Millis(ms) => ms.checked_mul(1_000_000),
            Timestamp::Nanos(ns) => i64::try_from(ns).ok(),
        }
    }

    /// Milliseconds since the epoch (OpenMetrics values truncated toward zero), if that fits an
    /// `i64`.
    pub fn unix_millis(self) -> Option<i64> {
        match self {
            Timestamp::Millis(ms) => Some(ms),
            Timestamp::Nanos(ns) => i64::try_from(ns / 1_000_000).ok(),
        }
    }
}

/// An OpenMetrics exemplar: `# {labels} value [timestamp]` after a counter's `_total` or a
/// histogram bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    /// The exemplar's own labels (often a trace id).
    pub labels: Vec<Label<'a>>,
    /// The observed value.
    pub value: f64,
    /// When it was observed, if written.
    pub timestamp: Option<Timestamp>,
}

/// One summary quantile: the `quantile` label and the sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    /// The `quantile` label, parsed (0.5, 0.99, ...).
    pub quantile: f64,
    /// The observed value at that quantile.
    pub value: f64,
}

/// One histogram bucket: the `le` label and the cumulative count.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket<'a> {
    /// The `le` label, parsed (`+Inf` is `f64::INFINITY`).
    pub upper_bound: f64,
    /// How many observations were `<= upper_bound` (a float as written).
    pub cumulative_count: f64,
    /// OpenMetrics exemplar on this bucket line.
    pub exemplar: Option<Exemplar<'a>>,
}

/// The value of one metric, shaped by the family's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Gauge, untyped/unknown, info and stateset samples: the sample's value.
    Single(f64),
    /// A counter. Text 0.0.4 always has `total`; OpenMetrics may write `_total`, `_created`, or
    /// both for one label set.
    Counter {
        /// The counter's value (`_total` in OpenMetrics).
        total: Option<f64>,
        /// OpenMetrics `_created`: when the counter started, in seconds since the epoch.
        created: Option<f64>,
        /// OpenMetrics exemplar on the `_total` line.
        exemplar: Option<Exemplar<'a>>,
    },
    /// A summary's quantiles with its `_sum`, `_count` and (OpenMetrics) `_created`.
    Summary {
        /// In input order.
        quantiles: Vec<Quantile>,
        /// `_sum`.
        sum: Option<f64>,
        /// `_count`.
        count: Option<f64>,
        /// OpenMetrics `_created`, seconds since the epoch.
        created: Option<f64>,
    },
    /// A histogram's (or gauge histogram's) buckets with `_sum`/`_count` (gauge histogram:
    /// `_gsum`/`_gcount`) and (OpenMetrics histogram) `_created`.
    Histogram {
        /// In input order (OpenMetrics requires ascending bounds ending with `+Inf`).
        buckets: Vec<Bucket<'a>>,
        /// `_sum` or `_gsum`.
        sum: Option<f64>,
        /// `_count` or `_gcount`.
        count: Option<f64>,
        /// OpenMetrics `_created`, seconds since the epoch.
        created: Option<f64>,
    },
}

/// One metric of a family: a label set, an optional timestamp and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric<'a> {
    /// The labels in input order, without `quantile` (summaries) and `le` (histogram buckets).
    pub labels: Vec<Label<'a>>,
    /// The sample timestamp. Text 0.0.4 summaries and histograms keep the last one written
    /// among their lines, as Go's parser does.
    pub timestamp: Option<Timestamp>,
    /// The value, shaped by the family type.
    pub value: Value<'a>,
}

impl Metric<'_> {
    /// How many sample lines (series) this metric stands for: each quantile, bucket, `_sum`,
    /// `_count`, `_total` and `_created` counts once.
    pub fn series_count(&self) -> usize {
        let some = |v: &Option<f64>| usize::from(v.is_some());
        match &self.value {
            Value::Single(_) => 1,
            Value::Counter { total, created, .. } => some(total) + some(created),
            Value::Summary {
                quantiles,
                sum,
                count,
                created,
            } => quantiles.len() + some(sum) + some(count) + some(created),
            Value::Histogram {
                buckets,
                sum,
                count,
                created,
            } => buckets.len() + some(sum) + some(count) + some(created),
        }
    }
}

/// A metric family: metadata and the metrics that share its name.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily<'a> {
    /// The family name (without `_total`, `_bucket`, ... suffixes in OpenMetrics).
    pub name: &'a str,
    /// From `# TYPE`; [`MetricType::Untyped`] (text) or [`MetricType::Unknown`] (OpenMetrics)
    /// when absent.
    pub metric_type: MetricType,
    /// From `# HELP`, unescaped.
    pub help: Option<Cow<'a, str>>,
    /// From `# UNIT` (OpenMetrics only).
    pub unit: Option<&'a str>,
    /// In input order.
    pub metrics: Vec<Metric<'a>>,
}

impl MetricFamily<'_> {
    /// The number of sample lines (series) in this family; see [`Metric::series_count`].
    pub fn series_count(&self) -> usize {
        self.metrics.iter().map(Metric::series_count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize, reversed: bool) -> Vec<Label<'static>> {
        let mut labels: Vec<_> = (0..n)
            .map(|i| Label {
                name: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"][i % 10],
                value: Cow::Owned(i.to_string()),
            })
            .collect();
        if reversed {
            labels.reverse();
        }
        labels
    }

    #[test]
    fn label_sets_compare_in_any_order_short_or_long() {
        for n in [0, 3, 16, 40] {
            assert!(same_label_set(&labels(n, false), &labels(n, true)), "{n}");
        }
        let mut other = labels(40, false);
        other[7].value = Cow::Borrowed("x");
        assert!(!same_label_set(&labels(40, true), &other));
        assert!(!same_label_set(&labels(3, false), &labels(4, false)));
    }

    #[test]
    fn duplicate_names_are_found_in_short_and_long_lists() {
        let mut long: Vec<Label<'static>> = Vec::new();
        let mut duplicates = DuplicateNames::default();
        let names: Vec<&'static str> = (0..40)
            .map(|i| &*Box::leak(format!("l{i}").into_boxed_str()))
            .collect();
        for name in &names {
            assert!(!duplicates.repeats(&long, name));
            long.push(Label {
                name,
                value: Cow::Borrowed(""),
            });
        }
        assert!(duplicates.repeats(&long, "l3"));
        assert!(DuplicateNames::default().repeats(&long[..2], "l1"));
    }
}
