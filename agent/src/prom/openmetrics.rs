//! OpenMetrics 1.0 text: the ABNF of the specification, with the checks of the reference parser
//! (Python `prometheus_client.openmetrics.parser`, which decides the conformance suite's
//! verdicts).
//!
//! Lines end with `\n` and none may be blank; the exposition ends with `# EOF` (its newline is
//! optional) and nothing may follow. Metadata: `# HELP|TYPE|UNIT name value`, at most one of
//! each per family and none after the family's first sample; types are counter, gauge,
//! summary, histogram, gaugehistogram, info, stateset, unknown (not `untyped`); a unit must end
//! the family name (`_seconds`) and is not allowed on info and stateset. Samples are
//! `name[{labels}] value [timestamp] [# {labels} value [timestamp]]`, single spaces, no blanks
//! inside the label set, no trailing comma. A family's samples are contiguous and named by its
//! type (`_total`/`_created` for counters, `_bucket`/`_count`/`_sum`/`_created` for histograms,
//! `_gcount`/`_gsum` for gauge histograms, `_info` for info); any other name starts an
//! `unknown` family, and a name used by two families is an error. Label names starting with
//! `__` are reserved. Values: decimal floats, `NaN`, `+Inf`/`-Inf` (any case); timestamps:
//! finite decimal seconds. Checks on values: counter-like samples (`_total`, `_sum`, `_count`,
//! `_bucket`, `_gcount`, `_gsum`) are not NaN and (but `_gsum`) not negative; bucket and count
//! values are integers; quantiles lie in [0, 1] with non-negative values; `le` is a number,
//! `+Inf` written canonically; buckets ascend, their counts do not descend, the last is `+Inf`
//! and equals `_count`; `_sum` needs `_count` and vice versa, and no `_sum` with negative
//! buckets; stateset values are 0 or 1, info values 1; exemplars only on `_total` and
//! `_bucket`, their labels at most 128 characters. Within a family, a label group (labels
//! without `le`/`quantile`/the stateset label) is contiguous, all or none of its samples have
//! timestamps, and timestamps do not go backwards. A sample repeating a series at the same
//! timestamp within its group is dropped (the reference parser keeps the first); a quantile or
//! bucket counts as the same series when its number is (`quantile=".5"` repeats `"0.5"`).
//!
//! Where this parser follows the specification rather than the reference parser's leniency:
//! quoted or `{__name__=...}` metric names and native histograms (OpenMetrics 2.0 drafts) are
//! rejected; blanks inside label sets, a blank between the name and `{`, and a `#x` prefix on a
//! metadata line are errors; `le="nan"` is an error; an exemplar label value may contain `\"`;
//! a histogram with several timestamps for one label group is accepted (the reference drops the
//! later points' repeated buckets and then rejects it); a label group may mix timestamps written
//! with an exponent (`1e3`, `.5`) and without (the reference crashes comparing its two
//! timestamp representations, which rejects the exposition).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_while1};
use nom::character::complete::char;
use nom::combinator::{not, opt, rest};
use nom::sequence::preceded;

use super::lex::{self, Dialect, Fail, Lexed, cut_fail};
use super::model::{
    Bucket, DuplicateNames, Exemplar, Label, Metric, MetricFamily, MetricType, Quantile, Timestamp,
    Value, label_set_hash,
};
use super::{ParseError, line_error};

/// Parses a whole OpenMetrics exposition.
pub(crate) fn parse(input: &str) -> Result<Vec<MetricFamily<'_>>, ParseError> {
    let mut parser = OpenMetricsParser::default();
    let mut rest = input;
    let mut line_number = 0;
    let mut eof = false;
    let mut last_line = "";
    while !rest.is_empty() {
        line_number += 1;
        let (line, next) = match rest.find('\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, ""),
        };
        let located = |fail: Fail<'_>| line_error(line_number, line, &fail);
        if eof {
            return Err(located(Fail::new(line, "text after # EOF")));
        }
        if line.is_empty() {
            return Err(located(Fail::new(line, "blank line")));
        }
        if line == "# EOF" {
            eof = true;
        } else {
            parser.line = (line_number, line);
            parser.line(line)?;
        }
        last_line = line;
        rest = next;
    }
    parser.finish_family()?;
    if !eof {
        return Err(line_error(
            line_number.max(1),
            last_line,
            &Fail::new("", "missing # EOF at the end"),
        ));
    }
    Ok(parser.families)
}

/// One parsed sample line.
struct SampleLine<'a> {
    name: &'a str,
    labels: Vec<Label<'a>>,
    value: f64,
    timestamp: Option<Timestamp>,
    exemplar: Option<Exemplar<'a>>,
}

/// The label group being read: consecutive samples with the same group labels and timestamp.
struct Run<'a> {
    key: u64,
    timestamp: Option<Timestamp>,
    /// Where it started, for errors found when it ends.
    line: (usize, &'a str),
    /// The metric it fills (grouped types) or its first metric (single-value types).
    metric: usize,
    /// Hashes of the series (name and all labels) seen in this run, to drop repeats.
    series: Vec<u64>,
}

struct FamilyState<'a> {
    family: MetricFamily<'a>,
    /// From `# TYPE`; `None` means unknown.
    declared: Option<MetricType>,
    unit_seen: bool,
    has_samples: bool,
    line: (usize, &'a str),
    run: Option<Run<'a>>,
    seen_groups: HashSet<u64>,
}

impl FamilyState<'_> {
    fn metric_type(&self) -> MetricType {
        self.declared.unwrap_or(MetricType::Unknown)
    }
}

#[derive(Default)]
struct OpenMetricsParser<'a> {
    families: Vec<MetricFamily<'a>>,
    current: Option<FamilyState<'a>>,
    /// Every sample name a finished family may use, to find clashes.
    seen_names: HashSet<String>,
    hasher: RandomState,
    /// The line being parsed (number, text).
    line: (usize, &'a str),
}

/// The sample-name suffixes a type allows (`""` is the bare family name).
fn suffixes(metric_type: MetricType) -> &'static [&'static str] {
    match metric_type {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Summary => &["", "_count", "_sum", "_created"],
        MetricType::Histogram => &["_count", "_sum", "_bucket", "_created"],
        MetricType::GaugeHistogram => &["_gcount", "_gsum", "_bucket"],
        MetricType::Info => &["_info"],
        _ => &[""],
    }
}

fn openmetrics_type(word: &str) -> Option<MetricType> {
    Some(match word {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "summary" => MetricType::Summary,
        "histogram" => MetricType::Histogram,
        "gaugehistogram" => MetricType::GaugeHistogram,
        "unknown" => MetricType::Unknown,
        "info" => MetricType::Info,
        "stateset" => MetricType::Stateset,
        _ => return None,
    })
}

fn is_integer(value: f64) -> bool {
    value.is_finite() && value.fract() == 0.0
}

impl<'a> OpenMetricsParser<'a> {
    fn error_here(&self, fail: Fail<'_>) -> ParseError {
        line_error(self.line.0, self.line.1, &fail)
    }

    fn line(&mut self, line: &'a str) -> Result<(), ParseError> {
        if let Some(after_hash) = line.strip_prefix('#') {
            return self.metadata(after_hash, line);
        }
        let sample = sample_line(line).map_err(|fail| self.error_here(fail))?;
        self.sample(sample, line)
    }

    fn metadata(&mut self, after_hash: &'a str, line: &'a str) -> Result<(), ParseError> {
        let (_, (keyword, name, value)) =
            lex::finish(metadata_line(after_hash), line).map_err(|fail| self.error_here(fail))?;

        match &self.current {
            Some(state) if state.family.name == name => {
                if state.has_samples {
                    return Err(self.error_here(Fail::new(line, "metadata after samples")));
                }
            }
            _ => {
                self.finish_family()?;
                self.current = Some(self.new_family(name));
            }
        }
        let line_at = self.line;
        let Some(state) = self.current.as_mut() else {
            return Ok(());
        };
        let fail = |reason: String| line_error(line_at.0, line_at.1, &Fail::new(value, reason));
        match keyword {
            "HELP" => {
                if state.family.help.is_some() {
                    return Err(fail(format!("more than one HELP for {name}")));
                }
                let help = lex::help_text(value, Dialect::OpenMetrics)
                    .map_err(|f| line_error(line_at.0, line_at.1, &f))?;
                state.family.help = Some(help);
            }
            "TYPE" => {
                if state.declared.is_some() {
                    return Err(fail(format!("more than one TYPE for {name}")));
                }
                state.declared = Some(
                    openmetrics_type(value)
                        .ok_or_else(|| fail(format!("invalid TYPE {value:?}")))?,
                );
                state.family.metric_type = state.metric_type();
            }
            _ => {
                if state.unit_seen {
                    return Err(fail(format!("more than one UNIT for {name}")));
                }
                state.unit_seen = true;
                state.family.unit = (!value.is_empty()).then_some(value);
            }
        }
        Ok(())
    }

    fn new_family(&self, name: &'a str) -> FamilyState<'a> {
        FamilyState {
            family: MetricFamily {
                name,
                metric_type: MetricType::Unknown,
                help: None,
                unit: None,
                metrics: Vec::new(),
            },
            declared: None,
            unit_seen: false,
            has_samples: false,
            line: self.line,
            run: None,
            seen_groups: HashSet::default(),
        }
    }

    /// Ends the current family: its last group's checks, name clashes, unit rules.
    fn finish_family(&mut self) -> Result<(), ParseError> {
        let Some(mut state) = self.current.take() else {
            return Ok(());
        };
        if let Some(run) = state.run.take() {
            check_run(&state, &run)?;
        }
        let name = state.family.name;
        let located = |reason: String| {
            line_error(state.line.0, state.line.1, &Fail::new(state.line.1, reason))
        };
        let metric_type = state.metric_type();
        let bare = (!suffixes(metric_type).contains(&"")).then_some(&"");
        for suffix in suffixes(metric_type).iter().chain(bare) {
            let full = format!("{name}{suffix}");
            if self.seen_names.contains(&full) {
                return Err(located(format!("clashing name: {full}")));
            }
            self.seen_names.insert(full);
        }
        if let Some(unit) = state.family.unit {
            if !name.ends_with(unit) || !name[..name.len() - unit.len()].ends_with('_') {
                return Err(located(format!(
                    "unit {unit:?} does not match metric name {name}"
                )));
            }
            if matches!(metric_type, MetricType::Info | MetricType::Stateset) {
                return Err(located(format!("units are not allowed on {name}'s type")));
            }
        }
        state.family.metric_type = metric_type;
        self.families.push(state.family);
        Ok(())
    }

    fn sample(&mut self, sample: SampleLine<'a>, line: &'a str) -> Result<(), ParseError> {
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
fn check_run(state: &FamilyState<'_>, run: &Run<'_>) -> Result<(), ParseError> {
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

/// `# KEYWORD name value` after the `#`: tokens separated by one or more spaces (as the
/// reference's `_split_quoted` reads them), the value being the rest of the line (it may be
/// empty, but the space before it may not be missing).
fn metadata_line(after_hash: &str) -> Lexed<'_, (&str, &str, &str)> {
    let keyword = alt((tag("HELP"), tag("TYPE"), tag("UNIT")));
    (
        expect(char(' '), "invalid metadata line"),
        opt(spaces),
        expect(
            keyword,
            "invalid metadata line: expected HELP, TYPE or UNIT",
        ),
        expect(spaces, "metadata line without a name"),
        metadata_name,
        before_metadata_value,
        rest,
    )
        .map(|(_, _, keyword, _, name, _, value)| (keyword, name, value))
        .parse(after_hash)
}

/// One or more spaces.
fn spaces(input: &str) -> Lexed<'_, &str> {
    take_while1(|c| c == ' ').parse(input)
}

fn metadata_name(input: &str) -> Lexed<'_, &str> {
    match lex::metric_name(input)? {
        (_, "") => cut_fail(input, "invalid metric name in metadata"),
        found => Ok(found),
    }
}

fn before_metadata_value(input: &str) -> Lexed<'_, &str> {
    match spaces(input) {
        Ok(found) => Ok(found),
        Err(_) if input.is_empty() => cut_fail(input, "metadata line without a value"),
        Err(_) => cut_fail(input, "invalid metric name in metadata"),
    }
}

/// `parser`, its plain errors turned into a failure with `reason` at the input it started on.
fn expect<'a, O>(
    mut parser: impl Parser<&'a str, Output = O, Error = Fail<'a>>,
    reason: &'static str,
) -> impl Parser<&'a str, Output = O, Error = Fail<'a>> {
    move |input: &'a str| match parser.parse(input) {
        Err(nom::Err::Error(_)) => cut_fail(input, reason),
        other => other,
    }
}

/// The token up to the next space (or the end).
fn token(input: &str) -> Lexed<'_, &str> {
    take_till(|c| c == ' ').parse(input)
}

/// A sample or exemplar value.
fn value<'a>(reason: &'static str) -> impl Parser<&'a str, Output = f64, Error = Fail<'a>> {
    move |input: &'a str| {
        let (rest, text) = token(input)?;
        match lex::number(text, Dialect::OpenMetrics) {
            Some(number) => Ok((rest, number)),
            None => cut_fail(input, format!("{reason} {text:?}")),
        }
    }
}

/// A timestamp in seconds: the next token, or with `whole_rest` everything left.
fn timestamp<'a>(
    reason: &'static str,
    whole_rest: bool,
) -> impl Parser<&'a str, Output = Timestamp, Error = Fail<'a>> {
    move |input: &'a str| {
        let (rest, text) = if whole_rest {
            ("", input)
        } else {
            token(input)?
        };
        match lex::seconds_to_nanos(text) {
            Some(nanos) => Ok((rest, Timestamp::Nanos(nanos))),
            None => cut_fail(input, format!("{reason} {text:?}")),
        }
    }
}

/// A label set after its `{`.
fn labels(input: &str) -> Lexed<'_, Vec<Label<'_>>> {
    label_set(input).map_err(nom::Err::Failure)
}

/// `name[{labels}] value [timestamp] [# {labels} value [timestamp]]`.
fn sample_line(line: &str) -> Result<SampleLine<'_>, Fail<'_>> {
    let mut sample = (
        sample_name,
        opt(preceded(char('{'), labels)),
        preceded(
            expect(char(' '), "expected a space before the value"),
            value("invalid value"),
        ),
        opt(preceded(
            (char(' '), not(char('#')), not(tag(" #"))),
            timestamp("invalid timestamp", false),
        )),
    );
    let (rest, (name, labels, value, timestamp)) = lex::finish(sample.parse(line), line)?;
    // What is left is empty or starts with a space; an exemplar follows it. The reference also
    // takes two spaces before the `#` when there is no timestamp in between.
    let (rest, exemplar) = match rest.strip_prefix(' ') {
        None => (rest, None),
        Some(after) => {
            let after = match after.strip_prefix(' ') {
                Some(second) if timestamp.is_none() && second.starts_with('#') => second,
                _ => after,
            };
            let (rest, exemplar) = lex::finish(exemplar(after), after)?;
            (rest, Some(exemplar))
        }
    };
    if !rest.is_empty() {
        return Err(Fail::new(rest, "unexpected text after the sample"));
    }
    Ok(SampleLine {
        name,
        labels: labels.unwrap_or_default(),
        value,
        timestamp,
        exemplar,
    })
}

fn sample_name(input: &str) -> Lexed<'_, &str> {
    match lex::metric_name(input)? {
        (_, "") => cut_fail(input, "invalid metric name"),
        found => Ok(found),
    }
}

/// `# {labels} value [timestamp]` (the input starts at `#`), labels at most 128 characters.
fn exemplar(input: &str) -> Lexed<'_, Exemplar<'_>> {
    let (rest, (labels, value, timestamp)) = preceded(
        expect(tag("# {"), "expected '# {' to start an exemplar"),
        (
            labels,
            preceded(
                expect(char(' '), "expected a space before the exemplar value"),
                value("invalid exemplar value"),
            ),
            opt(preceded(
                char(' '),
                timestamp("invalid exemplar timestamp", true),
            )),
        ),
    )
    .parse(input)?;
    let length: usize = labels
        .iter()
        .map(|l| l.name.len() + l.value.chars().count())
        .sum();
    if length > 128 {
        return cut_fail(
            input,
            format!("exemplar labels are {length} characters long, more than 128"),
        );
    }
    Ok((
        rest,
        Exemplar {
            labels,
            value,
            timestamp,
        },
    ))
}

/// `{` was consumed: `[name="value" *(,name="value")]}` with nothing in between.
fn label_set(input: &str) -> Result<(&str, Vec<Label<'_>>), Fail<'_>> {
    let mut labels: Vec<Label<'_>> = Vec::new();
    if let Some(rest) = input.strip_prefix('}') {
        return Ok((rest, labels));
    }
    let mut rest = input;
    let mut duplicates = DuplicateNames::default();
    loop {
        let (after_name, name) = lex::finish(lex::label_name(rest), rest)?;
        if name.is_empty() {
            return Err(Fail::new(rest, "invalid label name"));
        }
        if name.starts_with("__") {
            return Err(Fail::new(
                rest,
                format!("label name {name:?} is reserved (starts with __)"),
            ));
        }
        if duplicates.repeats(&labels, name) {
            return Err(Fail::new(rest, format!("duplicate label name {name:?}")));
        }
        let Some(quoted) = after_name.strip_prefix("=\"") else {
            return Err(Fail::new(after_name, "expected '=\"' after label name"));
        };
        let (after_value, value) =
            lex::finish(lex::label_value(quoted, Dialect::OpenMetrics), quoted)?;
        labels.push(Label { name, value });
        if let Some(after) = after_value.strip_prefix(',') {
            rest = after;
        } else if let Some(after) = after_value.strip_prefix('}') {
            return Ok((after, labels));
        } else {
            return Err(Fail::new(after_value, "expected ',' or '}' after a label"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn ok(input: &str) -> Vec<MetricFamily<'_>> {
        parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn counters_group_total_created_and_exemplar() {
        let families = ok(
            "# TYPE a counter\n# HELP a help\na_total{x=\"1\"} 3 # {trace=\"t\"} 0.5 12.5\na_created{x=\"1\"} 100\n# EOF\n",
        );
        assert_eq!(families.len(), 1);
        let family = &families[0];
        assert_eq!(family.metric_type, MetricType::Counter);
        assert_eq!(family.help.as_deref(), Some("help"));
        assert_eq!(family.metrics.len(), 1);
        let Value::Counter {
            total,
            created,
            exemplar,
        } = &family.metrics[0].value
        else {
            panic!("not a counter: {family:?}")
        };
        assert_eq!((*total, *created), (Some(3.0), Some(100.0)));
        let exemplar = exemplar.as_ref().unwrap();
        assert_eq!(exemplar.value, 0.5);
        assert_eq!(exemplar.timestamp, Some(Timestamp::Nanos(12_500_000_000)));
        assert!(matches!(
            family.metrics[0].labels[0].value,
            Cow::Borrowed("1")
        ));
    }

    #[test]
    fn histogram_buckets_group_without_le() {
        let families = ok(
            "# TYPE h histogram\nh_bucket{a=\"x\",le=\"1\"} 1\nh_bucket{a=\"x\",le=\"+Inf\"} 2\nh_count{a=\"x\"} 2\nh_sum{a=\"x\"} 3\nh_bucket{a=\"y\",le=\"+Inf\"} 0\n# EOF\n",
        );
        let metrics = &families[0].metrics;
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[0].labels.len(), 1);
        let Value::Histogram {
            buckets,
            sum,
            count,
            ..
        } = &metrics[0].value
        else {
            panic!("not a histogram")
        };
        assert_eq!(buckets.len(), 2);
        assert_eq!(
            (buckets[1].upper_bound, *sum, *count),
            (f64::INFINITY, Some(3.0), Some(2.0))
        );
        assert_eq!(families[0].series_count(), 5);
    }

    #[test]
    fn repeated_series_at_one_timestamp_keep_the_first() {
        let families = ok("# TYPE a gauge\na 1 0\na 2 0\na 3 1\n# EOF\n");
        let values: Vec<_> = families[0]
            .metrics
            .iter()
            .map(|m| m.value.clone())
            .collect();
        assert_eq!(values, [Value::Single(1.0), Value::Single(3.0)]);
    }

    #[test]
    fn two_spaces_before_an_exemplar_only_without_a_timestamp() {
        let families = ok("# TYPE a counter\na_total 1  # {} 0.5\n# EOF\n");
        assert!(matches!(
            &families[0].metrics[0].value,
            Value::Counter {
                exemplar: Some(_),
                ..
            }
        ));
        assert!(parse("# TYPE a counter\na_total 1 2  # {} 0.5\n# EOF\n").is_err());
        assert!(parse("a 1  2\n# EOF\n").is_err());
    }

    #[test]
    fn metadata_tokens_may_be_separated_by_several_spaces() {
        let families = ok("#  TYPE  a   gauge\n# HELP a  two  words\na 1\n# EOF\n");
        assert_eq!(families[0].metric_type, MetricType::Gauge);
        assert_eq!(families[0].help.as_deref(), Some("two  words"));
        for bad in [
            "#TYPE a gauge",
            "# TYPE a",
            "# TYPE a\tgauge",
            "# KIND a gauge",
            "# TYPE 0a gauge",
        ] {
            assert!(parse(&format!("{bad}\n# EOF\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_only_families_are_kept() {
        let families = ok("# HELP a \n# UNIT a \n# EOF\n");
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].help.as_deref(), Some(""));
        assert_eq!(families[0].unit, None);
    }

    #[test]
    fn errors_point_at_the_failing_line() {
        let error = parse("a 1\nb 1\nb 2 1\n# EOF\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert_eq!(error.reason, "mix of timestamp presence within a group");
        let error = parse("a 1\n").unwrap_err();
        assert_eq!(error.reason, "missing # EOF at the end");
        let error = parse("# TYPE h histogram\nh_bucket{le=\"1\"} 1\n# EOF\n").unwrap_err();
        assert_eq!(
            (error.line, error.reason.as_ref()),
            (2, "+Inf bucket missing in h")
        );
    }
}
