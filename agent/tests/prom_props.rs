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

// ---- the long-running mutation fuzzer ------------------------------------------------------

/// Seeds: every corpus and sample exposition the shared folders hold.
fn fuzz_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![b"a 1\n# EOF\n".to_vec()];
    let mut add_dir = |dir: std::path::PathBuf| {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file = if path.is_dir() {
                path.join("metrics")
            } else {
                path
            };
            if let Ok(bytes) = std::fs::read(&file)
                && file.extension().is_none_or(|e| e == "txt")
            {
                seeds.push(bytes);
            }
        }
    };
    if let Some(corpora) = workspace_bins::corpora_dir() {
        add_dir(corpora.join("openmetrics/parsers"));
        add_dir(corpora.join("prometheus-text/expfmt-fuzz-corpus"));
        add_dir(corpora.join("prometheus-text/samples"));
    }
    if let Some(samples) = workspace_bins::samples_dir() {
        add_dir(samples);
    }
    seeds
}

/// xorshift64*: a reproducible stream from `FUZZ_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

const TOKENS: &[&[u8]] = &[
    b"\n",
    b" ",
    b"\t",
    b"{",
    b"}",
    b"=",
    b",",
    b"\"",
    b"\\",
    b"\\n",
    b"\\\"",
    b"#",
    b" # ",
    b"# EOF\n",
    b"# TYPE ",
    b"# HELP ",
    b"# UNIT ",
    b" counter",
    b" gauge",
    b" summary",
    b" histogram",
    b" gaugehistogram",
    b" info",
    b" stateset",
    b" unknown",
    b" untyped",
    b"_total",
    b"_created",
    b"_bucket",
    b"_count",
    b"_sum",
    b"_gcount",
    b"_gsum",
    b"_info",
    b"le=\"+Inf\"",
    b"le=\"1\"",
    b"quantile=\"0.5\"",
    b"__name__",
    b"NaN",
    b"+Inf",
    b"-Inf",
    b"1e309",
    b"0x1p-3",
    b"1_0",
    b"9223372036854775808",
    b"1.5",
    b"-1",
    b"\xff",
    b"\xc3",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            2 if !input.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(200)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
            4 if !input.is_empty() => {
                // Duplicate a line-sized chunk.
                let end = (at + rng.below(80)).min(input.len());
                let chunk = input[at.min(end)..end].to_vec();
                input.splice(end..end, chunk);
            }
            _ => input.truncate(at),
        }
    }
}

/// A mutation fuzzer over the corpora, run on demand:
/// `FUZZ_SECONDS=600 cargo test --release -p agent --test prom_props -- --ignored --nocapture`.
/// Each input is parsed in both formats (no panic allowed) and what parses must re-render to
/// itself. A failing input is written to `$TMPDIR/prom-fuzz-crash` and the seed printed.
#[test]
#[ignore = "long-running fuzzer; run on demand (see its doc comment)"]
fn fuzz_both_parsers_with_corpus_mutations() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    let seeds = fuzz_seeds();
    let mut rng = Rng(seed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let crash_file = std::env::temp_dir().join("prom-fuzz-crash");
    let (mut runs, mut accepted) = (0u64, [0u64; 2]);
    while std::time::Instant::now() < deadline {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &seeds, &mut input);
        let outcome = std::panic::catch_unwind(|| {
            let mut ok = [false; 2];
            for (i, format) in [Format::Text, Format::OpenMetrics].into_iter().enumerate() {
                if let Ok(families) = prom::parse_bytes(&input, format) {
                    reparses_to_itself(&families, format);
                    ok[i] = true;
                }
            }
            ok
        });
        match outcome {
            Ok(ok) => {
                runs += 1;
                for (count, ok) in accepted.iter_mut().zip(ok) {
                    *count += u64::from(ok);
                }
            }
            Err(_) => {
                let _ = std::fs::create_dir_all(crash_file.parent().unwrap_or(&crash_file));
                let _ = std::fs::write(&crash_file, &input);
                panic!(
                    "FUZZ_SEED={seed}: failing input written to {}",
                    crash_file.display()
                );
            }
        }
    }
    println!(
        "FUZZ_SEED={seed}: {runs} inputs in {seconds} s from {} seeds; accepted: text {}, openmetrics {}",
        seeds.len(),
        accepted[0],
        accepted[1]
    );
    assert!(runs > 0);
}
