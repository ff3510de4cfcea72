//! Parsed Prometheus families to metrics, exactly as Telegraf's `inputs.prometheus` maps them
//! (`metric_version` 1 and 2, text 0.0.4 and OpenMetrics).
//!
//! Version 1: one metric per label set, measurement = family name. Counter -> field `counter`,
//! gauge -> `gauge`, untyped -> `value`; summary -> `count`, `sum` and one field per quantile;
//! histogram -> `count`, `sum` and one field per bucket bound (cumulative). Version 2: the
//! measurement is `prometheus` (`openmetric` for OpenMetrics scrapes) and the field is the metric
//! name; summaries and histograms become one metric for `_count`/`_sum` plus one per quantile
//! (tag `quantile`) or bucket (tag `le`, with a synthetic `+Inf` bucket if none was exposed).
//!
//! Common rules: labels with empty values are not tags; NaN values drop their metric (or their
//! quantile field); a sample's own timestamp wins over the scrape time unless told to ignore it
//! (text: only a positive one, as Telegraf). Quantile and bucket bounds are written as Go's
//! `%g` (`0.5`, `1e-05`, `+Inf`). OpenMetrics adds a `unit` tag when the family has a unit,
//! info metrics carry a `value=1` (unsigned), state sets one boolean field per state.
//! Fields are emitted sorted by key (Telegraf's order is Go map order, i.e. random).
//!
//! One deviation: Telegraf's OpenMetrics histogram `created` field adds the nanoseconds without
//! scaling them to seconds; here `created` is the exact time in seconds for every type.
//!
//! Metrics are handed to a callback one at a time in a reused buffer, so converting a scrape
//! allocates nothing per sample beyond quantile and bucket field names.

use std::borrow::Cow;

use crate::metric::{FieldValue, Metric};
use crate::prom::{self, Format, MetricFamily, MetricType, Streamed, Value};

/// How samples are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Telegraf's `metric_version`: 1 or 2.
    pub metric_version: u8,
    /// Use the scrape time even when a sample has its own timestamp.
    pub ignore_timestamp: bool,
}

/// Converts `families` (parsed from a scrape in `format`) and calls `emit` for every metric.
/// `scrape_time_ns` is the time of metrics whose samples carry none.
pub fn convert<'a>(
    families: &'a [MetricFamily<'a>],
    format: Format,
    mapping: Mapping,
    scrape_time_ns: i64,
    mut emit: impl FnMut(&mut Metric<'a>),
) {
    let mut scratch = Metric::default();
    for family in families {
        convert_metrics(
            family,
            &family.metrics,
            format,
            mapping,
            scrape_time_ns,
            &mut scratch,
            &mut emit,
        );
    }
}

/// Parses a scrape body and converts it in one pass, without holding the page's parsed
/// families ([`prom::parse_streaming`]): `emit` gets the metrics [`convert`] gives for
/// [`prom::parse_bytes`], in the same order, while memory holds one chunk of parsed metrics.
/// On an error or [`Streamed::OutOfOrder`] the metrics `emit` got are to be discarded (the
/// caller then converts the page whole, as [`convert`] does).
pub fn convert_streaming<'a>(
    body: &'a [u8],
    format: Format,
    mapping: Mapping,
    scrape_time_ns: i64,
    mut emit: impl FnMut(&mut Metric<'a>),
) -> prom::Result<Streamed> {
    let mut scratch = Metric::default();
    prom::parse_streaming(body, format, &mut |family, metrics| {
        convert_metrics(
            family,
            metrics,
            format,
            mapping,
            scrape_time_ns,
            &mut scratch,
            &mut emit,
        );
    })
}

/// Converts `metrics` of `family` (its name, type and unit; not its own `metrics`), calling
/// `emit` for every metric, with `scratch` as the metric handed out.
pub fn convert_metrics<'a>(
    family: &MetricFamily<'a>,
    metrics: &[prom::Metric<'a>],
    format: Format,
    mapping: Mapping,
    scrape_time_ns: i64,
    scratch: &mut Metric<'a>,
    emit: &mut impl FnMut(&mut Metric<'a>),
) {
    for metric in metrics {
        let time_ns = match metric.timestamp {
            Some(ts) if !mapping.ignore_timestamp => match format {
                Format::Text => ts.unix_nanos().filter(|&ns| ns > 0),
                Format::OpenMetrics => ts.unix_nanos(),
            },
            _ => None,
        }
        .unwrap_or(scrape_time_ns);
        let mut base = |scratch: &mut Metric<'a>, name: &'a str| {
            scratch.name = Cow::Borrowed(name);
            scratch.tags.clear();
            scratch.fields.clear();
            scratch.time_ns = time_ns;
            for label in &metric.labels {
                if !label.value.is_empty() {
                    scratch.set_tag(label.name, label.value.clone());
                }
            }
            if format == Format::OpenMetrics
                && let Some(unit) = family.unit.filter(|u| !u.is_empty())
            {
                scratch.set_tag("unit", unit);
            }
        };
        let measurement = match (mapping.metric_version, format) {
            (1, _) => family.name,
            (_, Format::Text) => "prometheus",
            (_, Format::OpenMetrics) => "openmetric",
        };
        if mapping.metric_version == 1 {
            base(scratch, measurement);
            if fields_v1(family, &metric.value, format, scratch) {
                scratch.fields.sort_by(|a, b| a.0.cmp(&b.0));
                emit(scratch);
            }
        } else {
            emit_v2(
                family,
                &metric.value,
                format,
                measurement,
                scratch,
                &mut base,
                emit,
            );
        }
    }
}

/// Fills the fields of a version-1 metric; `false` when it has none to emit.
fn fields_v1<'a>(
    family: &MetricFamily<'a>,
    value: &Value<'a>,
    format: Format,
    out: &mut Metric<'a>,
) -> bool {
    let single = |out: &mut Metric<'a>, key: &'static str, v: f64| {
        if v.is_nan() {
            return false;
        }
        out.add_field(key, FieldValue::Float(v));
        true
    };
    match (family.metric_type, value) {
        (MetricType::Counter, Value::Counter { total, .. }) => {
            total.is_some_and(|t| single(out, "counter", t))
        }
        (MetricType::Gauge, Value::Single(v)) => single(out, "gauge", *v),
        (MetricType::Info, Value::Single(_)) => {
            out.add_field("value", FieldValue::UInt(1));
            true
        }
        (MetricType::Stateset, Value::Single(v)) => {
            // One sample per state, labelled with the family name; Telegraf's stateset metric
            // has one boolean field per state.
            let Some(state) = out.tag(family.name).map(str::to_owned) else {
                return false;
            };
            out.tags.retain(|(k, _)| k != family.name);
            out.add_field(state, FieldValue::Bool(*v != 0.0));
            true
        }
        (_, Value::Single(v)) => single(out, "value", *v),
        (_, Value::Counter { total, .. }) => total.is_some_and(|t| single(out, "value", t)),
        (
            _,
            Value::Summary {
                quantiles,
                sum,
                count,
                created,
            },
        ) => {
            for q in quantiles.iter().filter(|q| !q.value.is_nan()) {
                out.add_field(go_format_g(q.quantile), FieldValue::Float(q.value));
            }
            add_aggregates(out, *count, *sum, *created, format);
            true
        }
        (
            _,
            Value::Histogram {
                buckets,
                sum,
                count,
                created,
            },
        ) => {
            for bucket in buckets {
                out.add_field(
                    go_format_g(bucket.upper_bound),
                    FieldValue::Float(bucket.cumulative_count),
                );
            }
            add_aggregates(out, *count, *sum, *created, format);
            true
        }
    }
}

fn add_aggregates<'a>(
    out: &mut Metric<'a>,
    count: Option<f64>,
    sum: Option<f64>,
    created: Option<f64>,
    format: Format,
) {
    // The text parser always has a count and sum (0 when absent); OpenMetrics only what was
    // exposed, with `created` too.
    match format {
        Format::Text => {
            out.add_field("count", FieldValue::Float(count.unwrap_or(0.0)));
            out.add_field("sum", FieldValue::Float(sum.unwrap_or(0.0)));
        }
        Format::OpenMetrics => {
            out.add_field("count", FieldValue::Float(count.unwrap_or(0.0)));
            if let Some(sum) = sum {
                out.add_field("sum", FieldValue::Float(sum));
            }
            if let Some(created) = created {
                out.add_field("created", FieldValue::Float(created));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn emit_v2<'a>(
    family: &MetricFamily<'a>,
    value: &Value<'a>,
    format: Format,
    measurement: &'a str,
    out: &mut Metric<'a>,
    base: &mut impl FnMut(&mut Metric<'a>, &'a str),
    emit: &mut impl FnMut(&mut Metric<'a>),
) {
    let name = family.name;
    let suffixed = |suffix: &str| Cow::Owned(format!("{name}{suffix}"));
    match (family.metric_type, value) {
        (MetricType::Info, Value::Single(_)) => {
            base(out, measurement);
            out.add_field(suffixed("_info"), FieldValue::UInt(1));
            emit(out);
        }
        (MetricType::Stateset, Value::Single(v)) => {
            base(out, measurement);
            let Some(state) = out.tag(name).map(|s| s.replace(' ', "_")) else {
                return;
            };
            out.tags.retain(|(k, _)| k != name);
            out.add_field(format!("{name}_{state}"), FieldValue::Bool(*v != 0.0));
            emit(out);
        }
        (_, Value::Single(v)) | (_, Value::Counter { total: Some(v), .. }) => {
            if !v.is_nan() {
                base(out, measurement);
                out.add_field(name, FieldValue::Float(*v));
                emit(out);
            }
        }
        (_, Value::Counter { total: None, .. }) => {}
        (
            _,
            Value::Summary {
                quantiles,
                sum,
                count,
                created,
            },
        ) => {
            base(out, measurement);
            add_aggregates_v2(out, name, *count, *sum, *created, format);
            emit(out);
            for q in quantiles {
                base(out, measurement);
                out.set_tag("quantile", go_format_g(q.quantile));
                out.add_field(name, FieldValue::Float(q.value));
                emit(out);
            }
        }
        (
            _,
            Value::Histogram {
                buckets,
                sum,
                count,
                created,
            },
        ) => {
            base(out, measurement);
            add_aggregates_v2(out, name, *count, *sum, *created, format);
            emit(out);
            let bucket_field = suffixed("_bucket");
            for bucket in buckets {
                base(out, measurement);
                out.set_tag("le", go_format_g(bucket.upper_bound));
                out.add_field(
                    bucket_field.clone(),
                    FieldValue::Float(bucket.cumulative_count),
                );
                emit(out);
            }
            if !buckets.iter().any(|b| b.upper_bound == f64::INFINITY) {
                base(out, measurement);
                out.set_tag("le", "+Inf");
                out.add_field(bucket_field, FieldValue::Float(count.unwrap_or(0.0)));
                emit(out);
            }
        }
    }
}

fn add_aggregates_v2<'a>(
    out: &mut Metric<'a>,
    name: &str,
    count: Option<f64>,
    sum: Option<f64>,
    created: Option<f64>,
    format: Format,
) {
    out.add_field(
        format!("{name}_count"),
        FieldValue::Float(count.unwrap_or(0.0)),
    );
    match (format, sum) {
        (Format::Text, sum) => {
            out.add_field(format!("{name}_sum"), FieldValue::Float(sum.unwrap_or(0.0)));
        }
        (Format::OpenMetrics, Some(sum)) => {
            out.add_field(format!("{name}_sum"), FieldValue::Float(sum));
        }
        (Format::OpenMetrics, None) => {}
    }
    if let (Format::OpenMetrics, Some(created)) = (format, created) {
        out.add_field(format!("{name}_created"), FieldValue::Float(created));
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` (and `fmt.Sprint`) writes it: the
/// shortest digits that read back exactly, in exponent form when the decimal exponent is below
/// -4 or at least `eprec` (6, lowered to the digit count when all digits are before the point).
pub fn go_format_g(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count() as i32;
    let decimal_point = exponent + 1;
    let mut eprec = 6;
    if eprec > digits && digits >= decimal_point {
        eprec = digits;
    }
    if exponent < -4 || exponent >= eprec {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{self, Options};
    use crate::prom;

    const TIME: i64 = 1_700_000_000_000_000_000;

    fn lines(input: &str, format: Format, metric_version: u8) -> Vec<String> {
        let families = prom::parse(input, format).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        let mapping = Mapping {
            metric_version,
            ignore_timestamp: false,
        };
        convert(&families, format, mapping, TIME, |metric| {
            let mut line = String::new();
            if line_protocol::write_metric(&mut line, metric, Options::default()).is_ok() {
                out.push(line.trim_end().to_owned());
            }
        });
        out
    }

    #[test]
    fn go_g_format_matches_go() {
        let cases = [
            (0.0, "0"),
            (-0.0, "-0"),
            (0.25, "0.25"),
            (0.5, "0.5"),
            (0.99, "0.99"),
            (1.0, "1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (100.0, "100"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456.0, "123456"),
            (2.5e-7, "2.5e-07"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.005, "0.005"),
            (10.0, "10"),
        ];
        for (value, expected) in cases {
            assert_eq!(go_format_g(value), expected, "{value}");
        }
    }

    #[test]
    fn the_tutorial_counter_maps_to_a_counter_field() {
        let input = "# HELP requests Total number of requests served\n# TYPE requests counter\n\
                     requests{deployment=\"app\",host=\"pod-1\"} 42.0\n";
        assert_eq!(
            lines(input, Format::Text, 1),
            ["requests,deployment=app,host=pod-1 counter=42 1700000000000000000"]
        );
        assert_eq!(
            lines(input, Format::Text, 2),
            ["prometheus,deployment=app,host=pod-1 requests=42 1700000000000000000"]
        );
    }

    #[test]
    fn gauges_untyped_empty_labels_and_nan() {
        let input = "# TYPE g gauge\ng{a=\"\",b=\"x\"} 1.5\ng{b=\"nan\"} NaN\nu 7\n";
        assert_eq!(
            lines(input, Format::Text, 1),
            [
                "g,b=x gauge=1.5 1700000000000000000",
                "u value=7 1700000000000000000"
            ]
        );
    }

    #[test]
    fn summaries_become_one_metric_in_v1_and_several_in_v2() {
        let input = "# TYPE rpc summary\nrpc{quantile=\"0.5\"} 0.2\nrpc{quantile=\"0.99\"} NaN\n\
                     rpc_sum 10\nrpc_count 40\n";
        assert_eq!(
            lines(input, Format::Text, 1),
            ["rpc 0.5=0.2,count=40,sum=10 1700000000000000000"]
        );
        assert_eq!(
            lines(input, Format::Text, 2),
            [
                "prometheus rpc_count=40,rpc_sum=10 1700000000000000000",
                "prometheus,quantile=0.5 rpc=0.2 1700000000000000000",
            ],
            "a NaN quantile leaves a metric without fields, which is not written"
        );
    }

    #[test]
    fn histograms_in_v1_and_v2_with_the_synthetic_inf_bucket() {
        let input = "# TYPE lat histogram\nlat_bucket{le=\"0.1\"} 3\nlat_bucket{le=\"1e-05\"} 1\n\
                     lat_sum 0.7\nlat_count 4\n";
        assert_eq!(
            lines(input, Format::Text, 1),
            ["lat 0.1=3,1e-05=1,count=4,sum=0.7 1700000000000000000"]
        );
        assert_eq!(
            lines(input, Format::Text, 2),
            [
                "prometheus lat_count=4,lat_sum=0.7 1700000000000000000",
                "prometheus,le=0.1 lat_bucket=3 1700000000000000000",
                "prometheus,le=1e-05 lat_bucket=1 1700000000000000000",
                "prometheus,le=+Inf lat_bucket=4 1700000000000000000",
            ]
        );
    }

    #[test]
    fn sample_timestamps_win_unless_ignored_or_not_positive() {
        let input = "a 1 1600000000000\nb 2 0\n";
        assert_eq!(
            lines(input, Format::Text, 1),
            [
                "a value=1 1600000000000000000",
                "b value=2 1700000000000000000"
            ]
        );
        let families = prom::parse(input, Format::Text).unwrap();
        let mut times = Vec::new();
        let mapping = Mapping {
            metric_version: 1,
            ignore_timestamp: true,
        };
        convert(&families, Format::Text, mapping, TIME, |m| {
            times.push(m.time_ns)
        });
        assert_eq!(times, [TIME, TIME]);
    }

    #[test]
    fn openmetrics_counters_info_stateset_and_units() {
        let input = "# TYPE requests counter\nrequests_total{host=\"a\"} 3.0\nrequests_created{host=\"a\"} 1.5e9\n\
                     # TYPE build info\nbuild_info{version=\"1.2\"} 1\n\
                     # TYPE mode stateset\nmode{mode=\"on\"} 1\nmode{mode=\"off\"} 0\n\
                     # TYPE temp_celsius gauge\n# UNIT temp_celsius celsius\ntemp_celsius 21.5\n# EOF\n";
        assert_eq!(
            lines(input, Format::OpenMetrics, 1),
            [
                "requests,host=a counter=3 1700000000000000000",
                "build,version=1.2 value=1i 1700000000000000000",
                "mode on=true 1700000000000000000",
                "mode off=false 1700000000000000000",
                "temp_celsius,unit=celsius gauge=21.5 1700000000000000000",
            ]
        );
        assert_eq!(
            lines(input, Format::OpenMetrics, 2)[..2],
            [
                "openmetric,host=a requests=3 1700000000000000000",
                "openmetric,version=1.2 build_info=1i 1700000000000000000",
            ]
        );
    }
}
