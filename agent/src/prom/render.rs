//! Families back to exposition text, in either format: what the app serves, and the other half
//! of the parser's round-trip tests.
//!
//! Numbers are written Go style (`+Inf`, `-Inf`, `NaN`, shortest exact decimal, exponent for
//! very large or small magnitudes) so that parsing them gives back the same `f64`. Text 0.0.4
//! cannot say everything OpenMetrics can: exemplars, `_created` and units are left out there,
//! and info/stateset families are written as gauges, unknown ones as untyped.

use std::fmt::Write as _;

use super::Format;
use super::model::{Exemplar, Label, Metric, MetricFamily, MetricType, Timestamp, Value};

/// A whole exposition: every family, and `# EOF` for OpenMetrics.
pub fn render(families: &[MetricFamily<'_>], format: Format) -> String {
    let mut out = String::new();
    for family in families {
        render_family(family, format, &mut out);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// Appends one family (metadata lines, then its samples) to `out`.
pub fn render_family(family: &MetricFamily<'_>, format: Format, out: &mut String) {
    let name = family.name;
    match format {
        Format::Text => {
            if let Some(help) = &family.help {
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                escape_help(help, format, out);
                out.push('\n');
            }
            let _ = writeln!(out, "# TYPE {name} {}", family.metric_type.text_name());
        }
        Format::OpenMetrics => {
            let _ = writeln!(
                out,
                "# TYPE {name} {}",
                family.metric_type.openmetrics_name()
            );
            if let Some(unit) = family.unit {
                let _ = writeln!(out, "# UNIT {name} {unit}");
            }
            if let Some(help) = &family.help {
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                escape_help(help, format, out);
                out.push('\n');
            }
        }
    }
    for metric in &family.metrics {
        render_metric(family, metric, format, out);
    }
}

fn render_metric(family: &MetricFamily<'_>, metric: &Metric<'_>, format: Format, out: &mut String) {
    let name = family.name;
    let openmetrics = format == Format::OpenMetrics;
    let line = |out: &mut String, suffix: &str, extra: Option<(&str, f64)>, value: f64| {
        sample(
            out,
            name,
            suffix,
            &metric.labels,
            extra,
            value,
            metric.timestamp,
        );
    };
    match &metric.value {
        Value::Single(value) => {
            let suffix = if openmetrics && family.metric_type == MetricType::Info {
                "_info"
            } else {
                ""
            };
            line(out, suffix, None, *value);
            out.push('\n');
        }
        Value::Counter {
            total,
            created,
            exemplar,
        } => {
            if let Some(total) = total {
                line(out, if openmetrics { "_total" } else { "" }, None, *total);
                if openmetrics && let Some(exemplar) = exemplar {
                    render_exemplar(exemplar, out);
                }
                out.push('\n');
            }
            if let (Some(created), true) = (created, openmetrics) {
                line(out, "_created", None, *created);
                out.push('\n');
            }
        }
        Value::Summary {
            quantiles,
            sum,
            count,
            created,
        } => {
            for quantile in quantiles {
                line(
                    out,
                    "",
                    Some(("quantile", quantile.quantile)),
                    quantile.value,
                );
                out.push('\n');
            }
            let created = created.filter(|_| openmetrics);
            for (suffix, value) in [("_sum", sum), ("_count", count), ("_created", &created)] {
                if let Some(value) = value {
                    line(out, suffix, None, *value);
                    out.push('\n');
                }
            }
        }
        Value::Histogram {
            buckets,
            sum,
            count,
            created,
        } => {
            for bucket in buckets {
                line(
                    out,
                    "_bucket",
                    Some(("le", bucket.upper_bound)),
                    bucket.cumulative_count,
                );
                if openmetrics && let Some(exemplar) = &bucket.exemplar {
                    render_exemplar(exemplar, out);
                }
                out.push('\n');
            }
            let gauge = family.metric_type == MetricType::GaugeHistogram;
            let (sum_suffix, count_suffix) = if gauge && openmetrics {
                ("_gsum", "_gcount")
            } else {
                ("_sum", "_count")
            };
            let created = created.filter(|_| openmetrics && !gauge);
            for (suffix, value) in [
                (count_suffix, count),
                (sum_suffix, sum),
                ("_created", &created),
            ] {
                if let Some(value) = value {
                    line(out, suffix, None, *value);
                    out.push('\n');
                }
            }
        }
    }
}

/// `name suffix {labels,extra} value [timestamp]` without the newline.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[Label<'_>],
    extra: Option<(&str, f64)>,
    value: f64,
    timestamp: Option<Timestamp>,
) {
    out.push_str(name);
    out.push_str(suffix);
    let extra_value = extra.map(|(label, bound)| (label, number(bound)));
    label_set(
        labels,
        extra_value.as_ref().map(|(l, v)| (*l, v.as_str())),
        out,
    );
    out.push(' ');
    out.push_str(&number(value));
    if let Some(timestamp) = timestamp {
        out.push(' ');
        write_timestamp(timestamp, out);
    }
}

fn label_set(labels: &[Label<'_>], extra: Option<(&str, &str)>, out: &mut String) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let all = labels
        .iter()
        .map(|l| (l.name, l.value.as_ref()))
        .chain(extra);
    for (i, (name, value)) in all.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn render_exemplar(exemplar: &Exemplar<'_>, out: &mut String) {
    out.push_str(" # ");
    if exemplar.labels.is_empty() {
        out.push_str("{}");
    } else {
        label_set(&exemplar.labels, None, out);
    }
    out.push(' ');
    out.push_str(&number(exemplar.value));
    if let Some(timestamp) = exemplar.timestamp {
        out.push(' ');
        write_timestamp(timestamp, out);
    }
}

fn escape_help(help: &str, format: Format, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` would spell it closely enough to parse
/// back bit for bit: `+Inf`, `-Inf`, `NaN`, or the shortest exact decimal.
pub(crate) fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if value != 0.0 && (value.abs() >= 1e21 || value.abs() < 1e-7) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

fn write_timestamp(timestamp: Timestamp, out: &mut String) {
    match timestamp {
        Timestamp::Millis(ms) => {
            let _ = write!(out, "{ms}");
        }
        Timestamp::Nanos(ns) => {
            let sign = if ns < 0 { "-" } else { "" };
            let abs = ns.unsigned_abs();
            let (seconds, nanos) = (abs / 1_000_000_000, abs % 1_000_000_000);
            if nanos == 0 {
                let _ = write!(out, "{sign}{seconds}");
            } else {
                let fraction = format!("{nanos:09}");
                let _ = write!(out, "{sign}{seconds}.{}", fraction.trim_end_matches('0'));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_back_to_the_same_bits() {
        for value in [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e21,
            1.7560473e6,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            -123.456,
            1e-7,
            9.999999e-8,
        ] {
            let text = number(value);
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), value.to_bits(), "{value} as {text}");
        }
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(42.0), "42");
    }

    #[test]
    fn openmetrics_timestamps_are_written_as_decimal_seconds() {
        let mut out = String::new();
        write_timestamp(Timestamp::Nanos(-1_100_000_000), &mut out);
        out.push(' ');
        write_timestamp(Timestamp::Nanos(5), &mut out);
        out.push(' ');
        write_timestamp(Timestamp::Nanos(7_000_000_000), &mut out);
        assert_eq!(out, "-1.1 0.000000005 7");
    }
}
