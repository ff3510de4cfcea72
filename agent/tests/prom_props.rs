//! Property tests of the exposition parser: no input makes it panic, whatever it accepts it
//! renders to text that parses back to the same families, and generated families survive
//! render -> parse unchanged in both formats.
//!
//! Families are compared through their `Debug` text, which spells every `f64` exactly and treats
//! NaN as equal to NaN (derived `PartialEq` would not).

use std::borrow::Cow;

use agent::prom::{
    self, Bucket, Exemplar, Format, Label, Metric, MetricFamily, MetricType, Quantile, Timestamp,
    Value,
};
use proptest::prelude::*;

/// Text that looks like expositions: the grammar's punctuation, names, numbers, escapes.
const NOISE: &str = "[a-z_:{}=\",# \n\t\\\\0-9.eE+\\-IinfNaTYPEHLOUMl]{0,300}";

fn both_formats(input: &str) {
    for format in [Format::Text, Format::OpenMetrics] {
        if let Ok(families) = prom::parse(input, format) {
            reparses_to_itself(&families, format);
        }
    }
}

/// Whatever was accepted renders to text that parses to the same families. (A text-format
/// summary or histogram line that adds nothing, as Go reads it, leaves an empty group that has
/// no text form; such parses are skipped.)
fn reparses_to_itself(families: &[MetricFamily<'_>], format: Format) {
    let empty_group = families
        .iter()
        .flat_map(|f| &f.metrics)
        .any(|m| m.series_count() == 0);
    if empty_group {
        return;
    }
    let text = prom::render(families, format);
    let again = prom::parse(&text, format)
        .unwrap_or_else(|e| panic!("rendered {format:?} does not parse: {e}\n{text}"));
    assert_eq!(
        format!("{again:?}"),
        format!("{families:?}"),
        "re-parse differs for\n{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for format in [Format::Text, Format::OpenMetrics] {
            let _ = prom::parse_bytes(&bytes, format);
        }
    }

    #[test]
    fn exposition_noise_never_panics_and_what_parses_reparses(input in NOISE) {
        both_formats(&input);
    }

    #[test]
    fn text_families_round_trip(families in families(Format::Text)) {
        round_trip(&families, Format::Text)?;
    }

    #[test]
    fn openmetrics_families_round_trip(families in families(Format::OpenMetrics)) {
        round_trip(&families, Format::OpenMetrics)?;
    }
}

fn round_trip(families: &[MetricFamily<'_>], format: Format) -> Result<(), TestCaseError> {
    let text = prom::render(families, format);
    let parsed = prom::parse(&text, format);
    prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, text);
    let parsed = parsed.unwrap_or_default();
    prop_assert_eq!(format!("{parsed:?}"), format!("{families:?}"), "{}", text);
    Ok(())
}

// ---- generators ----------------------------------------------------------------------------

/// Names are leaked so that generated families can borrow them like parsed ones do.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        2 => (-1000i32..1000).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
    ]
}

fn non_negative() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..100_000).prop_map(f64::from),
        (0.0f64..1e12),
        Just(f64::INFINITY)
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{0,8}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
        Just("a\\b\"c\nd{}#, ".to_owned()),
    ]
}

/// Unique labels, always with `id` = the metric's index so label sets differ.
fn labels(index: usize) -> impl Strategy<Value = Vec<Label<'static>>> {
    proptest::collection::btree_map(
        proptest::sample::select(&["a", "b", "job", "instance", "x_y"][..]),
        label_value(),
        0..3,
    )
    .prop_map(move |map| {
        let mut labels: Vec<_> = map
            .into_iter()
            .map(|(name, value)| Label {
                name,
                value: Cow::Owned(value),
            })
            .collect();
        labels.push(Label {
            name: "id",
            value: Cow::Owned(index.to_string()),
        });
        labels
    })
}

fn help(format: Format) -> impl Strategy<Value = Option<Cow<'static, str>>> {
    proptest::option::of(any::<String>()).prop_map(move |help| {
        let help = help?.trim_start_matches([' ', '\t']).to_owned();
        // Text 0.0.4 ignores an empty HELP.
        (format == Format::OpenMetrics || !help.is_empty()).then_some(Cow::Owned(help))
    })
}

fn timestamp(format: Format) -> impl Strategy<Value = Option<Timestamp>> {
    proptest::option::of(any::<i64>()).prop_map(move |t| {
        t.map(|t| match format {
            Format::Text => Timestamp::Millis(t),
            Format::OpenMetrics => Timestamp::Nanos(i128::from(t) * 7),
        })
    })
}

fn exemplar() -> impl Strategy<Value = Option<Exemplar<'static>>> {
    proptest::option::of((
        proptest::option::of("[a-f0-9]{1,32}"),
        any_value(),
        timestamp(Format::OpenMetrics),
    ))
    .prop_map(|exemplar| {
        let (trace, value, timestamp) = exemplar?;
        Some(Exemplar {
            labels: trace
                .map(|t| Label {
                    name: "trace_id",
                    value: Cow::Owned(t),
                })
                .into_iter()
                .collect(),
            value,
            timestamp,
        })
    })
}

fn metric_type(format: Format) -> impl Strategy<Value = MetricType> {
    let types: &'static [MetricType] = match format {
        Format::Text => &[
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Untyped,
            MetricType::Summary,
            MetricType::Histogram,
        ],
        Format::OpenMetrics => &[
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Unknown,
            MetricType::Summary,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
            MetricType::Info,
            MetricType::Stateset,
        ],
    };
    proptest::sample::select(types)
}

/// Ascending bucket bounds ending with +Inf, counts non-decreasing integers.
fn buckets(format: Format) -> impl Strategy<Value = Vec<Bucket<'static>>> {
    proptest::collection::vec((0.0f64..1e6, 0u32..1000, exemplar()), 0..5).prop_map(
        move |mut raw| {
            raw.sort_by(|a, b| a.0.total_cmp(&b.0));
            raw.dedup_by(|a, b| a.0 == b.0);
            let mut count = 0.0;
            let mut buckets: Vec<_> = raw
                .into_iter()
                .map(|(bound, step, exemplar)| {
                    count += f64::from(step);
                    Bucket {
                        upper_bound: bound,
                        cumulative_count: count,
                        exemplar: exemplar.filter(|_| format == Format::OpenMetrics),
                    }
                })
                .collect();
            buckets.push(Bucket {
                upper_bound: f64::INFINITY,
                cumulative_count: count + 1.0,
                exemplar: None,
            });
            buckets
        },
    )
}

fn value(format: Format, metric_type: MetricType) -> BoxedStrategy<Value<'static>> {
    let openmetrics = format == Format::OpenMetrics;
    match metric_type {
        MetricType::Counter if openmetrics => (
            proptest::option::of(non_negative()),
            proptest::option::of(any_value()),
            exemplar(),
        )
            .prop_map(|(total, created, exemplar)| {
                let total = total.or(created.is_none().then_some(1.0));
                Value::Counter {
                    exemplar: exemplar.filter(|_| total.is_some()),
                    total,
                    created,
                }
            })
            .boxed(),
        MetricType::Counter => any_value()
            .prop_map(|total| Value::Counter {
                total: Some(total),
                created: None,
                exemplar: None,
            })
            .boxed(),
        MetricType::Summary => (
            proptest::collection::btree_set(0u32..=100, 0..4),
            proptest::collection::vec(non_negative(), 4),
            non_negative(),
            0u32..1000,
            proptest::option::of(any_value()),
        )
            .prop_map(
                move |(quantiles, values, sum, count, created)| Value::Summary {
                    quantiles: quantiles
                        .into_iter()
                        .zip(values)
                        .map(|(q, value)| Quantile {
                            quantile: f64::from(q) / 100.0,
                            value,
                        })
                        .collect(),
                    sum: Some(sum).filter(|s| !openmetrics || s.is_finite()),
                    count: Some(f64::from(count)),
                    created: created.filter(|_| openmetrics),
                },
            )
            .boxed(),
        MetricType::Histogram | MetricType::GaugeHistogram => (
            buckets(format),
            0.0f64..1e9,
            any::<bool>(),
            proptest::option::of(any_value()),
        )
            .prop_map(move |(buckets, sum, with_totals, created)| {
                let last = buckets.last().map(|b| b.cumulative_count);
                let gauge = metric_type == MetricType::GaugeHistogram;
                Value::Histogram {
                    buckets,
                    sum: Some(sum).filter(|_| with_totals),
                    count: last.filter(|_| with_totals),
                    created: created.filter(|_| openmetrics && !gauge),
                }
            })
            .boxed(),
        MetricType::Info => Just(Value::Single(1.0)).boxed(),
        MetricType::Stateset => any::<bool>()
            .prop_map(|on| Value::Single(if on { 1.0 } else { 0.0 }))
            .boxed(),
        _ => any_value().prop_map(Value::Single).boxed(),
    }
}

fn family(format: Format, index: usize) -> impl Strategy<Value = MetricFamily<'static>> {
    (
        metric_type(format),
        "[a-z]{1,6}",
        help(format),
        any::<bool>(),
    )
        .prop_flat_map(move |(metric_type, word, help, with_unit)| {
            let name = leak(format!("f{index}_{word}"));
            let unit = (format == Format::OpenMetrics
                && with_unit
                && !matches!(metric_type, MetricType::Info | MetricType::Stateset))
            .then(|| leak(word.clone()));
            // Info and stateset samples share one group: all or none have timestamps.
            let shared_timestamps = matches!(metric_type, MetricType::Info | MetricType::Stateset);
            let metrics =
                proptest::collection::vec((value(format, metric_type), timestamp(format)), 1..4);
            (metrics, any::<bool>()).prop_flat_map(move |(metrics, stamped)| {
                let label_sets: Vec<_> = (0..metrics.len()).map(labels).collect();
                let help = help.clone();
                (Just(metrics), label_sets).prop_map(move |(metrics, label_sets)| {
                    let metrics = metrics
                        .into_iter()
                        .zip(label_sets)
                        .enumerate()
                        .map(|(i, ((value, timestamp), mut labels))| {
                            if metric_type == MetricType::Stateset {
                                // The state label is named like the family; states differ.
                                labels = vec![Label {
                                    name,
                                    value: Cow::Owned(format!("s{i}")),
                                }];
                            }
                            let timestamp = match (shared_timestamps, stamped) {
                                (false, _) => timestamp,
                                (true, false) => None,
                                (true, true) => Some(Timestamp::Nanos(1_000_000_000)),
                            };
                            Metric {
                                labels,
                                timestamp,
                                value,
                            }
                        })
                        .collect();
                    MetricFamily {
                        name,
                        metric_type,
                        help: help.clone(),
                        unit,
                        metrics,
                    }
                })
            })
        })
}

fn families(format: Format) -> impl Strategy<Value = Vec<MetricFamily<'static>>> {
    (1usize..5).prop_flat_map(move |n| (0..n).map(|i| family(format, i)).collect::<Vec<_>>())
}
