//! A sample joining its family: which family and label group it belongs to, where its value
//! goes, and the checks on values (counter-like samples, buckets, quantiles, states, info),
//! on label groups (contiguous, timestamps all or none and not going backwards, repeats
//! dropped) and on each finished histogram.

use std::hash::BuildHasher;

use super::line::SampleLine;
use super::{FamilyState, OpenMetricsParser, Run, suffixes};
use crate::prom::lex::{self, Dialect, Fail};
use crate::prom::model::{Bucket, Metric, MetricType, Quantile, Value, label_set_hash};
use crate::prom::{ParseError, line_error};

impl<'a> OpenMetricsParser<'a> {
    pub(super) fn sample(
        &mut self,
        sample: SampleLine<'a>,
        line: &'a str,
    ) -> Result<(), ParseError> {
        let here = self.line;
        let fail = |reason: String| line_error(here.0, here.1, &Fail::new(line, reason));
        // The sample's place in the current family, or a new unknown family.
        let suffix = self.current.as_ref().and_then(|state| {
            let suffix = sample.name.strip_prefix(state.family.name)?;
            suffixes(state.metric_type())
                .contains(&suffix)
                .then_some(suffix)
        });
        let suffix = match suffix {
            Some(suffix) => suffix,
            None => {
                self.finish_family()?;
                self.current = Some(self.new_family(sample.name));
                ""
            }
        };
        let hasher = self.hasher.clone();
        let Some(state) = self.current.as_mut() else {
            return Ok(());
        };
        let name = state.family.name;
        let metric_type = state.metric_type();
        let label = |wanted: &str| {
            sample
                .labels
                .iter()
                .find(|l| l.name == wanted)
                .map(|l| l.value.as_ref())
        };
        let value = sample.value;

        // Per-sample checks, in the reference parser's order.
        if metric_type == MetricType::Stateset && label(name).is_none() {
            return Err(fail(format!("stateset sample without the {name} label")));
        }
        let mut bound = None;
        if suffix == "_bucket" {
            let le = label("le").ok_or_else(|| fail("bucket without an le label".into()))?;
            let parsed = lex::number(le, Dialect::OpenMetrics)
                .filter(|b| !b.is_nan())
                .ok_or_else(|| fail(format!("invalid le label {le:?}")))?;
            if parsed == f64::INFINITY && le != "+Inf" {
                return Err(fail(format!("le label {le:?} is not written as +Inf")));
            }
            if !is_integer(value) {
                return Err(fail("bucket value must be an integer".into()));
            }
            bound = Some(parsed);
        }
        if matches!(suffix, "_count" | "_gcount") && !is_integer(value) {
            return Err(fail("count value must be an integer".into()));
        }
        let mut quantile = None;
        if metric_type == MetricType::Summary && suffix.is_empty() {
            let text = label("quantile").unwrap_or("-1");
            quantile = lex::number(text, Dialect::OpenMetrics)
                .filter(|q| (0.0..=1.0).contains(q))
                .map(Some)
                .ok_or_else(|| fail(format!("invalid quantile label {text:?}")))?;
        }

        // Grouping: which labels make the group, and where the group is.
        let except = match (metric_type, suffix) {
            (MetricType::Summary, "") => Some("quantile"),
            (MetricType::Stateset, _) => Some(name),
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => Some("le"),
            _ => None,
        };
        let key = if metric_type == MetricType::Info {
            0
        } else {
            label_set_hash(&hasher, &sample.labels, except)
        };
        let timestamp = sample.timestamp;
        let mut same_run = false;
        if let Some(run) = &state.run {
            if run.key != key && state.seen_groups.contains(&key) {
                return Err(fail(
                    "invalid metric grouping: this label group appeared before".into(),
                ));
            }
            if run.key == key {
                if timestamp.is_some() != run.timestamp.is_some() {
                    return Err(fail("mix of timestamp presence within a group".into()));
                }
                if run.timestamp > timestamp && metric_type != MetricType::Info {
                    return Err(fail("timestamps went backwards within a group".into()));
                }
                same_run = run.timestamp == timestamp;
            }
        }
        state.seen_groups.insert(key);

        // Value checks.
        if metric_type == MetricType::Stateset && value != 0.0 && value != 1.0 {
            return Err(fail(
                "stateset samples can only have values zero and one".into(),
            ));
        }
        if metric_type == MetricType::Info && value != 1.0 {
            return Err(fail("info samples can only have value one".into()));
        }
        if metric_type == MetricType::Summary && suffix.is_empty() && value < 0.0 {
            return Err(fail("quantile values cannot be negative".into()));
        }
        let counter_like = matches!(
            suffix,
            "_total" | "_sum" | "_count" | "_bucket" | "_gcount" | "_gsum"
        );
        if counter_like && value.is_nan() {
            return Err(fail("counter-like samples cannot be NaN".into()));
        }
        if counter_like && suffix != "_gsum" && value < 0.0 {
            return Err(fail("counter-like samples cannot be negative".into()));
        }
        let exemplar_allowed = matches!(
            (metric_type, suffix),
            (
                MetricType::Histogram | MetricType::GaugeHistogram,
                "_bucket"
            ) | (MetricType::Counter, "_total")
        );
        if sample.exemplar.is_some() && !exemplar_allowed {
            return Err(fail(
                "only histogram buckets and counter totals can have exemplars".into(),
            ));
        }

        // Store: drop a repeated series at the same timestamp, else add to the group's metric.
        // A quantile or bucket is identified by its number, not its spelling (`.5` is `0.5`).
        let number = quantile.or(bound).map(f64::to_bits);
        let series = hasher.hash_one((
            sample.name,
            label_set_hash(&hasher, &sample.labels, number.and(except)),
            number,
        ));
        if same_run
            && state
                .run
                .as_ref()
                .is_some_and(|run| run.series.contains(&series))
        {
            return Ok(());
        }
        state.has_samples = true;
        let grouped = matches!(
            metric_type,
            MetricType::Counter
                | MetricType::Summary
                | MetricType::Histogram
                | MetricType::GaugeHistogram
        );
        if !same_run {
            if let Some(run) = state.run.take() {
                check_run(state, &run)?;
            }
            // Every metric so far belongs to an ended group: none changes again.
            state.final_metrics = state.family.metrics.len();
            let metric = state.family.metrics.len();
            if grouped {
                let special = match suffix {
                    "_bucket" => Some("le"),
                    "" => Some("quantile"),
                    _ => None,
                };
                let labels = match special {
                    Some(special) => sample
                        .labels
                        .iter()
                        .filter(|l| l.name != special)
                        .cloned()
                        .collect(),
                    None => sample.labels.clone(),
                };
                state.family.metrics.push(Metric {
                    labels,
                    timestamp,
                    value: empty_value(metric_type),
                });
            }
            state.run = Some(Run {
                key,
                timestamp,
                line: here,
                metric,
                series: Vec::new(),
            });
        }
        let Some(run) = state.run.as_mut() else {
            return Ok(());
        };
        run.series.push(series);
        if !grouped {
            state.family.metrics.push(Metric {
                labels: sample.labels,
                timestamp,
                value: Value::Single(value),
            });
            return Ok(());
        }
        let Some(metric) = state.family.metrics.get_mut(run.metric) else {
            return Ok(());
        };
        match (&mut metric.value, suffix) {
            (
                Value::Counter {
                    total, exemplar, ..
                },
                "_total",
            ) => {
                *total = Some(value);
                *exemplar = sample.exemplar;
            }
            (
                Value::Counter { created, .. }
                | Value::Summary { created, .. }
                | Value::Histogram { created, .. },
                "_created",
            ) => *created = Some(value),
            (Value::Summary { quantiles, .. }, "") => {
                if let Some(quantile) = quantile {
                    quantiles.push(Quantile { quantile, value });
                }
            }
            (Value::Summary { sum, .. } | Value::Histogram { sum, .. }, "_sum" | "_gsum") => {
                *sum = Some(value);
            }
            (
                Value::Summary { count, .. } | Value::Histogram { count, .. },
                "_count" | "_gcount",
            ) => *count = Some(value),
            (Value::Histogram { buckets, .. }, "_bucket") => {
                let upper_bound = bound.unwrap_or(f64::NAN);
                if let Some(previous) = buckets.last() {
                    if upper_bound <= previous.upper_bound {
                        return Err(fail(format!("buckets out of order in {name}")));
                    }
                    if value < previous.cumulative_count {
                        return Err(fail(format!("bucket values out of order in {name}")));
                    }
                }
                buckets.push(Bucket {
                    upper_bound,
                    cumulative_count: value,
                    exemplar: sample.exemplar,
                });
            }
            _ => {}
        }
        Ok(())
    }
}

fn is_integer(value: f64) -> bool {
    value.is_finite() && value.fract() == 0.0
}

fn empty_value<'a>(metric_type: MetricType) -> Value<'a> {
    match metric_type {
        MetricType::Counter => Value::Counter {
            total: None,
            created: None,
            exemplar: None,
        },
        MetricType::Summary => Value::Summary {
            quantiles: Vec::new(),
            sum: None,
            count: None,
            created: None,
        },
        _ => Value::Histogram {
            buckets: Vec::new(),
            sum: None,
            count: None,
            created: None,
        },
    }
}

/// The checks on one finished histogram or gauge-histogram group.
pub(super) fn check_run(state: &FamilyState<'_>, run: &Run<'_>) -> Result<(), ParseError> {
    let metric_type = state.metric_type();
    if !matches!(
        metric_type,
        MetricType::Histogram | MetricType::GaugeHistogram
    ) {
        return Ok(());
    }
    let Some(Metric {
        value:
            Value::Histogram {
                buckets,
                sum,
                count,
                ..
            },
        ..
    }) = state.family.metrics.get(run.metric)
    else {
        return Ok(());
    };
    let name = state.family.name;
    let fail = |reason: String| line_error(run.line.0, run.line.1, &Fail::new(run.line.1, reason));
    let Some(last) = buckets.last().filter(|b| b.upper_bound == f64::INFINITY) else {
        return Err(fail(format!("+Inf bucket missing in {name}")));
    };
    if count.is_some_and(|count| count != last.cumulative_count) {
        return Err(fail(format!("count does not match +Inf value in {name}")));
    }
    let gauge = metric_type == MetricType::GaugeHistogram;
    if sum.is_some() != count.is_some() {
        let (sum, count) = if gauge {
            ("_gsum", "_gcount")
        } else {
            ("_sum", "_count")
        };
        return Err(fail(format!("{count} and {sum} go together in {name}")));
    }
    let negative_buckets = buckets.iter().any(|b| b.upper_bound < 0.0);
    if !gauge && negative_buckets && sum.is_some() {
        return Err(fail(format!(
            "cannot have _sum with negative buckets in {name}"
        )));
    }
    if gauge && !negative_buckets && sum.is_some_and(|s| s < 0.0) {
        return Err(fail(format!(
            "cannot have negative _gsum with non-negative buckets in {name}"
        )));
    }
    Ok(())
}
