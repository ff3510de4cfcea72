//! Text format 0.0.4, read the way Prometheus' Go parser (`expfmt.TextParser`) reads it.
//!
//! Its rules, in the order the Go state machine applies them:
//! - Every line ends with `\n`; a last line without one is an error unless it is only blanks.
//!   Leading blanks and tabs are skipped; empty lines are ignored.
//! - `#` starts a comment. Only `# HELP name text` and `# TYPE name type` mean something; a
//!   keyword or name alone on the line is ignored. A second HELP, or a TYPE after the family
//!   already has one or has samples, is an error. Types: counter, gauge, summary, histogram,
//!   untyped, gauge_histogram, in any case. HELP escapes: `\\` and `\n` only.
//! - A sample is `name [{labels}] value [timestamp]`, blanks and tabs allowed between tokens
//!   and inside the label set (around `=`, `,`, and a trailing comma). Label values escape `\\`,
//!   `\"`, `\n` only; `__name__` is reserved. The value is a Go float (no hex, no `_`, no
//!   overflow), the timestamp an `int64` of milliseconds; nothing may follow it, not even a blank.
//! - Families are keyed by name across the whole input (samples of one family may be spread
//!   out). `x_sum`/`x_count` belong to summary or histogram `x`, `x_bucket` to histogram `x`,
//!   unless a family named exactly `x_sum` exists. Summary lines are grouped by their labels
//!   without `quantile`, histogram lines by their labels without `le`, in any label order; the
//!   last timestamp written in a group wins. Families without samples are dropped.
//!
//! The reference is the expfmt of promtool 2.42 (installed here; the differential test
//! `prom_promtool` compares verdicts with it). Newer expfmt versions also accept `\"` in HELP
//! and quoted UTF-8 names (`{"my.metric"}`); this parser, like 2.42, does not. Where this parser
//! is stricter than Go: a duplicate `le` label in a histogram or `quantile` label in a summary is
//! an error (Go keeps the last one silently). Like Go, it reads `a+1` as sample `a` with value
//! `+1`. A `gauge_histogram` TYPE is accepted as Go accepts it: its `_bucket`, `_sum` and
//! `_count` lines become untyped families of their own, and its bare samples are kept as plain
//! values (Go records them without a value).

use std::collections::HashMap;
use std::hash::RandomState;

use super::lex::{self, Dialect, Fail};
use super::model::{
    Bucket, DuplicateNames, Label, Metric, MetricFamily, MetricType, Quantile, Timestamp, Value,
    label_set_hash, same_label_set,
};
use super::{ParseError, STREAM_CHUNK, Sink, Streamed, line_error};

/// Parses a whole text 0.0.4 exposition.
pub(crate) fn parse(input: &str) -> Result<Vec<MetricFamily<'_>>, ParseError> {
    let mut parser = TextParser::default();
    run(&mut parser, input, None)?;
    Ok(parser.finish())
}

/// Parses a whole text 0.0.4 exposition, handing metrics to `sink` as they become final (see
/// [`super::parse_streaming`]): a family's metrics in chunks of [`STREAM_CHUNK`], a summary or
/// histogram group once the next group starts. Stops with [`Streamed::OutOfOrder`] when the
/// page needs the whole-page parse: a family's samples after another's that appeared later in
/// the page (families are keyed by name across the input), or a group's samples split.
pub(crate) fn stream<'a>(input: &'a str, sink: Sink<'_, 'a>) -> Result<Streamed, ParseError> {
    let mut parser = TextParser {
        streaming: true,
        ..TextParser::default()
    };
    if !run(&mut parser, input, Some(&mut *sink))? {
        return Ok(Streamed::OutOfOrder);
    }
    if let Some(high) = parser.high
        && let Some(state) = parser.families.get(high)
    {
        sink(&state.family, &state.family.metrics);
    }
    Ok(Streamed::Complete)
}

/// The parse loop; with a sink, emits what is final after each line and returns `false` as soon
/// as the page is found out of order.
fn run<'a>(
    parser: &mut TextParser<'a>,
    input: &'a str,
    mut sink: Option<Sink<'_, 'a>>,
) -> Result<bool, ParseError> {
    // node_exporter writes about one family per 200 bytes.
    parser.by_name.reserve((input.len() / 200).min(1 << 16));
    parser.families.reserve((input.len() / 200).min(1 << 16));
    let mut rest = input;
    let mut line_number = 0;
    while !rest.is_empty() {
        line_number += 1;
        let (line, next) = match rest.find('\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => {
                if lex::blanks(rest).is_empty() {
                    break;
                }
                return Err(line_error(
                    line_number,
                    rest,
                    &Fail::new(
                        "",
                        "unexpected end of input stream (the last line has no newline)",
                    ),
                ));
            }
        };
        parser
            .line(line)
            .map_err(|fail| line_error(line_number, line, &fail))?;
        if let Some(sink) = sink.as_deref_mut() {
            if parser.out_of_order {
                return Ok(false);
            }
            parser.emit_final(sink);
        }
        rest = next;
    }
    Ok(true)
}

/// Which part of its family a sample line is (Go's `currentIs...Count/Sum` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    Sum,
    Count,
}

struct FamilyState<'a> {
    family: MetricFamily<'a>,
    /// Go's `Type != nil`: set by TYPE or by the first sample.
    typed: bool,
    /// Summary/histogram metrics by their label-set hash (any label order).
    groups: HashMap<u64, Vec<usize>>,
    /// For a summary or histogram: whether families named `<name>_sum`, `<name>_count`,
    /// `<name>_bucket` existed when it got its type. Those keep their lines (Go looks a name up
    /// exactly first); no such family can appear later, as those names then map to this one.
    shadowed: [bool; 3],
}

const GROUP_SUFFIXES: [(&str, Role); 3] = [
    ("_sum", Role::Sum),
    ("_count", Role::Count),
    ("_bucket", Role::Plain),
];

#[derive(Default)]
struct TextParser<'a> {
    families: Vec<FamilyState<'a>>,
    by_name: HashMap<&'a str, usize>,
    /// The family of the last `family_for` call.
    last: Option<usize>,
    hasher: RandomState,
    /// Streaming: metrics are handed out as they become final instead of kept (see [`stream`]).
    streaming: bool,
    /// Streaming: the family that took the last sample. Families are emitted in the order they
    /// first appeared, so a sample of an earlier family means the page is out of order.
    high: Option<usize>,
    /// Streaming: a family left for a later one, whose metrics are all final.
    sealed: Option<usize>,
    /// Streaming: the page cannot be streamed (see [`stream`]).
    out_of_order: bool,
}

impl<'a> TextParser<'a> {
    fn finish(self) -> Vec<MetricFamily<'a>> {
        self.families
            .into_iter()
            .map(|state| state.family)
            .filter(|family| !family.metrics.is_empty())
            .collect()
    }

    /// Streaming: hands `sink` the metrics that are final after the last line, and forgets them.
    fn emit_final(&mut self, sink: Sink<'_, 'a>) {
        if let Some(sealed) = self.sealed.take()
            && let Some(state) = self.families.get_mut(sealed)
        {
            sink(&state.family, &state.family.metrics);
            state.family.metrics = Vec::new();
        }
        let Some(state) = self.high.and_then(|high| self.families.get_mut(high)) else {
            return;
        };
        let pending = state.family.metrics.len();
        if pending < STREAM_CHUNK {
            return;
        }
        // The last summary or histogram group may still take samples.
        let grouped = matches!(
            state.family.metric_type,
            MetricType::Summary | MetricType::Histogram
        );
        let done = if grouped { pending - 1 } else { pending };
        sink(&state.family, &state.family.metrics[..done]);
        state.family.metrics.drain(..done);
    }

    fn line(&mut self, line: &'a str) -> Result<(), Fail<'a>> {
        let body = lex::blanks(line);
        match body.as_bytes().first() {
            None => Ok(()),
            Some(b'#') => self.comment(&body[1..]),
            Some(_) => self.sample(body),
        }
    }

    /// Go's `setOrCreateCurrentMF`: the family a name belongs to, created if needed.
    fn family_for(&mut self, name: &'a str) -> (usize, Role) {
        // Most lines continue the family of the line before.
        if let Some(index) = self.last
            && self
                .families
                .get(index)
                .is_some_and(|s| s.family.name == name)
        {
            return (index, Role::Plain);
        }
        // Or its `_sum`/`_count`/`_bucket` line, without hashing.
        if let Some(index) = self.last
            && let Some(state) = self.families.get(index)
            && let Some(suffix) = name.strip_prefix(state.family.name)
        {
            let histogram = state.family.metric_type == MetricType::Histogram;
            if histogram || state.family.metric_type == MetricType::Summary {
                for (i, (candidate, role)) in GROUP_SUFFIXES.iter().enumerate() {
                    if suffix == *candidate && !state.shadowed[i] && (histogram || i < 2) {
                        return (index, *role);
                    }
                }
            }
        }
        let (index, role) = self.lookup_or_create(name);
        self.last = Some(index);
        (index, role)
    }

    fn lookup_or_create(&mut self, name: &'a str) -> (usize, Role) {
        if let Some(&index) = self.by_name.get(name) {
            return (index, Role::Plain);
        }
        let suffixed = |suffix: &str, role: Role| name.strip_suffix(suffix).map(|b| (b, role));
        let base = suffixed("_count", Role::Count).or_else(|| suffixed("_sum", Role::Sum));
        if let Some((base, role)) = base
            && let Some(&index) = self.by_name.get(base)
            && self.families[index].family.metric_type == MetricType::Summary
        {
            return (index, role);
        }
        let base = base.or_else(|| suffixed("_bucket", Role::Plain));
        if let Some((base, role)) = base
            && let Some(&index) = self.by_name.get(base)
            && self.families[index].family.metric_type == MetricType::Histogram
        {
            return (index, role);
        }
        let index = self.families.len();
        self.families.push(FamilyState {
            family: MetricFamily {
                name,
                metric_type: MetricType::Untyped,
                help: None,
                unit: None,
                metrics: Vec::new(),
            },
            typed: false,
            groups: HashMap::default(),
            shadowed: [false; 3],
        });
        self.by_name.insert(name, index);
        (index, Role::Plain)
    }

    fn comment(&mut self, after_hash: &'a str) -> Result<(), Fail<'a>> {
        let text = lex::blanks(after_hash);
        let keyword_end = text.find([' ', '\t']).unwrap_or(text.len());
        let (keyword, rest) = text.split_at(keyword_end);
        if rest.is_empty() || (keyword != "HELP" && keyword != "TYPE") {
            return Ok(()); // A plain comment, or a keyword alone on its line.
        }
        let (after_name, name) = lex::finish(lex::metric_name(lex::blanks(rest)), rest)?;
        if after_name.is_empty() {
            return Ok(());
        }
        if !after_name.starts_with([' ', '\t']) {
            return Err(Fail::new(after_name, "invalid metric name in comment"));
        }
        let (index, _) = self.family_for(name);
        let text = lex::blanks(after_name);
        if text.is_empty() {
            return Ok(());
        }
        let state = &mut self.families[index];
        if keyword == "HELP" {
            if state.family.help.is_some() {
                return Err(Fail::new(
                    text,
                    format!("second HELP line for metric name {name:?}"),
                ));
            }
            state.family.help = Some(lex::help_text(text, Dialect::Text)?);
        } else {
            if state.typed {
                return Err(Fail::new(
                    text,
                    format!(
                        "second TYPE line for metric name {:?}, or TYPE reported after samples",
                        state.family.name
                    ),
                ));
            }
            state.family.metric_type = text_type(text)
                .ok_or_else(|| Fail::new(text, format!("unknown metric type {text:?}")))?;
            state.typed = true;
            let family = state.family.name;
            if matches!(
                state.family.metric_type,
                MetricType::Summary | MetricType::Histogram
            ) {
                let shadowed = GROUP_SUFFIXES.map(|(suffix, _)| {
                    self.by_name
                        .contains_key(format!("{family}{suffix}").as_str())
                });
                self.families[index].shadowed = shadowed;
            }
        }
        Ok(())
    }

    fn sample(&mut self, body: &'a str) -> Result<(), Fail<'a>> {
        let (rest, name) = lex::finish(lex::metric_name(body), body)?;
        if name.is_empty() {
            return Err(Fail::new(body, "invalid metric name"));
        }
        let (index, role) = self.family_for(name);
        if self.streaming {
            match self.high {
                Some(high) if index < high => {
                    self.out_of_order = true;
                    return Ok(());
                }
                Some(high) if index > high => self.sealed = Some(high),
                _ => {}
            }
            self.high = Some(index);
        }
        let state = &mut self.families[index];
        if !state.typed {
            state.family.metric_type = MetricType::Untyped;
            state.typed = true;
        }
        let metric_type = state.family.metric_type;
        let special = match metric_type {
            MetricType::Summary => Some("quantile"),
            MetricType::Histogram => Some("le"),
            _ => None,
        };
        let rest = lex::blanks(rest);
        let (rest, labels, special_value) = if let Some(after_brace) = rest.strip_prefix('{') {
            label_set(after_brace, name, special)?
        } else {
            (rest, Vec::new(), None)
        };

        // The value, then an optional timestamp and nothing else.
        let value_end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let (token, after_value) = rest.split_at(value_end);
        let value = lex::number(token, Dialect::Text)
            .ok_or_else(|| Fail::new(rest, format!("expected float as value, got {token:?}")))?;
        let timestamp = if after_value.is_empty() {
            None
        } else {
            let text = lex::blanks(after_value);
            let end = text.find([' ', '\t']).unwrap_or(text.len());
            let (token, spurious) = text.split_at(end);
            let millis = token.parse::<i64>().map_err(|_| {
                Fail::new(
                    text,
                    format!("expected integer as timestamp, got {token:?}"),
                )
            })?;
            if !spurious.is_empty() {
                return Err(Fail::new(
                    spurious,
                    format!("spurious string after timestamp: {spurious:?}"),
                ));
            }
            Some(Timestamp::Millis(millis))
        };

        let family = &mut state.family;
        let value = match metric_type {
            MetricType::Counter => Value::Counter {
                total: Some(value),
                created: None,
                exemplar: None,
            },
            MetricType::Summary | MetricType::Histogram => {
                let metric = if self.streaming {
                    match stream_group(family, &mut state.groups, &self.hasher, labels, metric_type)
                    {
                        Some(metric) => metric,
                        None => {
                            self.out_of_order = true;
                            return Ok(());
                        }
                    }
                } else {
                    group(family, &mut state.groups, &self.hasher, labels, metric_type)
                };
                if timestamp.is_some() {
                    metric.timestamp = timestamp;
                }
                add_to_group(&mut metric.value, role, special_value, value);
                return Ok(());
            }
            _ => Value::Single(value),
        };
        family.metrics.push(Metric {
            labels,
            timestamp,
            value,
        });
        Ok(())
    }
}

/// Streaming: the metric of the summary/histogram group this label set continues (the last
/// one kept), or a new one; `None` when the label set belongs to an earlier group, already
/// emitted (or only shares its hash with one: the whole-page parse then decides).
fn stream_group<'f, 'a>(
    family: &'f mut MetricFamily<'a>,
    groups: &mut HashMap<u64, Vec<usize>>,
    hasher: &RandomState,
    labels: Vec<Label<'a>>,
    metric_type: MetricType,
) -> Option<&'f mut Metric<'a>> {
    let continues = family
        .metrics
        .last()
        .is_some_and(|last| same_label_set(&last.labels, &labels));
    if !continues {
        let hash = label_set_hash(hasher, &labels, None);
        if groups.insert(hash, Vec::new()).is_some() {
            return None;
        }
        family.metrics.push(Metric {
            labels,
            timestamp: None,
            value: empty_group(metric_type),
        });
    }
    family.metrics.last_mut()
}

fn empty_group<'a>(metric_type: MetricType) -> Value<'a> {
    if metric_type == MetricType::Summary {
        Value::Summary {
            quantiles: Vec::new(),
            sum: None,
            count: None,
            created: None,
        }
    } else {
        Value::Histogram {
            buckets: Vec::new(),
            sum: None,
            count: None,
            created: None,
        }
    }
}

/// The metric of a summary/histogram family with this label set, created if new.
fn group<'f, 'a>(
    family: &'f mut MetricFamily<'a>,
    groups: &mut HashMap<u64, Vec<usize>>,
    hasher: &RandomState,
    labels: Vec<Label<'a>>,
    metric_type: MetricType,
) -> &'f mut Metric<'a> {
    // Most groups are written contiguously: try the last one before hashing.
    let last = family.metrics.len().checked_sub(1);
    if let Some(last) = last
        && same_label_set(&family.metrics[last].labels, &labels)
    {
        return &mut family.metrics[last];
    }
    let hash = label_set_hash(hasher, &labels, None);
    let found = groups.get(&hash).and_then(|candidates| {
        candidates
            .iter()
            .copied()
            .find(|&i| same_label_set(&family.metrics[i].labels, &labels))
    });
    let index = found.unwrap_or_else(|| {
        let index = family.metrics.len();
        groups.entry(hash).or_default().push(index);
        family.metrics.push(Metric {
            labels,
            timestamp: None,
            value: empty_group(metric_type),
        });
        index
    });
    &mut family.metrics[index]
}

/// Go's readingValue for summaries and histograms: `_count`, `_sum`, or a quantile/bucket when
/// the line has the special label; a line with none of these adds nothing.
fn add_to_group(value: &mut Value<'_>, role: Role, special: Option<f64>, sample: f64) {
    match (value, role) {
        (Value::Summary { count, .. } | Value::Histogram { count, .. }, Role::Count) => {
            *count = Some(sample);
        }
        (Value::Summary { sum, .. } | Value::Histogram { sum, .. }, Role::Sum) => {
            *sum = Some(sample);
        }
        // Go records a quantile or bucket only when its label parsed to a number, not NaN.
        (Value::Summary { quantiles, .. }, Role::Plain) => {
            if let Some(quantile) = special.filter(|q| !q.is_nan()) {
                quantiles.push(Quantile {
                    quantile,
                    value: sample,
                });
            }
        }
        (Value::Histogram { buckets, .. }, Role::Plain) => {
            if let Some(upper_bound) = special.filter(|b| !b.is_nan()) {
                buckets.push(Bucket {
                    upper_bound,
                    cumulative_count: sample,
                    exemplar: None,
                });
            }
        }
        _ => {}
    }
}

/// The label set after `{`, Go style: blanks allowed around everything, a trailing comma allowed.
/// The `special` label (`quantile` or `le`) is parsed as a float and kept out of the labels.
#[allow(clippy::type_complexity)]
fn label_set<'a>(
    mut rest: &'a str,
    metric: &str,
    special: Option<&str>,
) -> Result<(&'a str, Vec<Label<'a>>, Option<f64>), Fail<'a>> {
    let mut labels: Vec<Label<'a>> = Vec::new();
    let mut special_value = None;
    let mut special_seen = false;
    let mut duplicates = DuplicateNames::default();
    loop {
        rest = lex::blanks(rest);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((lex::blanks(after), labels, special_value));
        }
        let (after_name, name) = lex::finish(lex::label_name(rest), rest)?;
        if name.is_empty() {
            return Err(Fail::new(
                rest,
                format!("invalid label name for metric {metric:?}"),
            ));
        }
        let after_name = lex::blanks(after_name);
        let Some(after_equals) = after_name.strip_prefix('=') else {
            return Err(Fail::new(after_name, "expected '=' after label name"));
        };
        if name == "__name__" {
            return Err(Fail::new(rest, "label name \"__name__\" is reserved"));
        }
        let is_special = Some(name) == special;
        if (is_special && special_seen) || (!is_special && duplicates.repeats(&labels, name)) {
            return Err(Fail::new(
                rest,
                format!("duplicate label names for metric {metric:?}"),
            ));
        }
        let after_equals = lex::blanks(after_equals);
        let Some(quoted) = after_equals.strip_prefix('"') else {
            return Err(Fail::new(
                after_equals,
                "expected '\"' at start of label value",
            ));
        };
        let (after_value, value) = lex::finish(lex::label_value(quoted, Dialect::Text), quoted)?;
        if is_special {
            special_seen = true;
            special_value = Some(lex::number(&value, Dialect::Text).ok_or_else(|| {
                Fail::new(
                    after_equals,
                    format!("expected float as value for {name:?} label, got {value:?}"),
                )
            })?);
        } else {
            labels.push(Label { name, value });
        }
        rest = lex::blanks(after_value);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(Fail::new(rest, "unexpected end of label value"));
        }
    }
}

fn text_type(word: &str) -> Option<MetricType> {
    let types = [
        ("counter", MetricType::Counter),
        ("gauge", MetricType::Gauge),
        ("summary", MetricType::Summary),
        ("histogram", MetricType::Histogram),
        ("untyped", MetricType::Untyped),
        ("gauge_histogram", MetricType::GaugeHistogram),
    ];
    types
        .iter()
        .find(|(spelling, _)| word.eq_ignore_ascii_case(spelling))
        .map(|&(_, metric_type)| metric_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families(input: &str) -> Vec<MetricFamily<'_>> {
        parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn reason(input: &str) -> String {
        parse(input).map_or_else(|e| e.reason.into_owned(), |f| panic!("accepted: {f:?}"))
    }

    #[test]
    fn counters_gauges_and_untyped_samples_are_one_metric_each() {
        let parsed = families(
            "# HELP c Requests.\n# TYPE c counter\nc{a=\"1\"} 3 1000\nc{a=\"1\"} 4\ng 1.5\n",
        );
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].help.as_deref(), Some("Requests."));
        assert_eq!(parsed[0].metrics.len(), 2);
        assert_eq!(
            parsed[0].metrics[0].timestamp,
            Some(Timestamp::Millis(1000))
        );
        assert_eq!(
            parsed[0].metrics[1].value,
            Value::Counter {
                total: Some(4.0),
                created: None,
                exemplar: None
            }
        );
        assert_eq!(parsed[1].metric_type, MetricType::Untyped);
        assert_eq!(parsed[1].metrics[0].value, Value::Single(1.5));
    }

    #[test]
    fn histogram_lines_group_by_labels_without_le_in_any_order() {
        let parsed = families(concat!(
            "# TYPE h histogram\n",
            "h_bucket{a=\"1\",b=\"2\",le=\"0.5\"} 1\n",
            "h_bucket{le=\"+Inf\",b=\"2\",a=\"1\"} 2 7\n",
            "h_sum{b=\"2\",a=\"1\"} 0.75\n",
            "other 1\n",
            "h_count{a=\"1\",b=\"2\"} 2\n",
        ));
        let h = &parsed[0];
        assert_eq!(h.metrics.len(), 1);
        let metric = &h.metrics[0];
        assert_eq!(metric.labels.len(), 2);
        assert_eq!(metric.timestamp, Some(Timestamp::Millis(7)));
        let Value::Histogram {
            buckets,
            sum,
            count,
            ..
        } = &metric.value
        else {
            panic!("not a histogram: {metric:?}");
        };
        let bounds: Vec<_> = buckets.iter().map(|b| b.upper_bound).collect();
        assert_eq!(bounds, [0.5, f64::INFINITY]);
        assert_eq!((*sum, *count), (Some(0.75), Some(2.0)));
        assert_eq!(h.series_count(), 4);
    }

    #[test]
    fn a_family_named_like_a_suffix_keeps_its_samples() {
        let parsed = families("x_sum 1\n# TYPE x summary\nx_sum 2\nx_count 3\n");
        let names: Vec<_> = parsed.iter().map(|f| (f.name, f.series_count())).collect();
        assert_eq!(names, [("x_sum", 2), ("x", 1)]);
    }

    #[test]
    fn go_quirks_are_kept() {
        // A sign ends the name: `a+1` is sample `a` with value +1.
        assert_eq!(families("a+1\n")[0].metrics[0].value, Value::Single(1.0));
        // Blanks everywhere in a label set, a trailing comma, no blank before the value.
        let parsed = families("n { l = \"v\" , }-Inf\n");
        assert_eq!(parsed[0].metrics[0].labels[0].value, "v");
        // `#TYPE` without a space is still a TYPE line; a keyword alone is a comment.
        assert_eq!(
            families("#TYPE t gauge\nt 1\n")[0].metric_type,
            MetricType::Gauge
        );
        assert_eq!(
            families("# HELP\n# TYPE t\nt 1\n")[0].metric_type,
            MetricType::Untyped
        );
        // Trailing blanks without a newline end the input quietly.
        assert_eq!(families("a 1\n  ").len(), 1);
        // Families with metadata but no samples are dropped.
        assert!(families("# HELP lonely text\n# TYPE lonely gauge\n").is_empty());
    }

    #[test]
    fn go_rejections_carry_its_reasons() {
        assert!(reason("a 1").contains("unexpected end of input stream"));
        assert_eq!(reason("a 1 \n"), "expected integer as timestamp, got \"\"");
        assert_eq!(reason("a 1 2 \n"), "spurious string after timestamp: \" \"");
        assert_eq!(
            reason("a 1e309\n"),
            "expected float as value, got \"1e309\""
        );
        assert_eq!(reason("a +NaN\n"), "expected float as value, got \"+NaN\"");
        assert_eq!(
            reason("a 1.5 2.5\n"),
            "expected integer as timestamp, got \"2.5\""
        );
        assert_eq!(
            reason("a{__name__=\"b\"} 1\n"),
            "label name \"__name__\" is reserved"
        );
        assert_eq!(reason("a{l=\"\\t\"} 1\n"), "invalid escape sequence '\\t'");
        assert_eq!(
            reason("a{l=\"1\",l=\"2\"} 1\n"),
            "duplicate label names for metric \"a\""
        );
        assert_eq!(
            reason("a 1\n# TYPE a gauge\n").split(',').next(),
            Some("second TYPE line for metric name \"a\"")
        );
        assert_eq!(
            reason("# HELP a x\\\"y\n"),
            "invalid escape sequence '\\\"' in help"
        );
        assert_eq!(
            reason("# TYPE a histogram\na_bucket{le=\"x\"} 1\n"),
            "expected float as value for \"le\" label, got \"x\""
        );
        assert_eq!(reason("{a=\"b\"} 1\n"), "invalid metric name");
    }

    #[test]
    fn a_line_with_thousands_of_labels_parses() {
        let labels: Vec<String> = (0..5000).map(|i| format!("l{i}=\"{i}\"")).collect();
        let input = format!("# TYPE s summary\ns{{{}}} 1\n", labels.join(","));
        let parsed = families(&input);
        assert_eq!(parsed[0].metrics[0].labels.len(), 5000);
        let duplicate = format!("a{{{},l7=\"x\"}} 1\n", labels.join(","));
        assert!(parse(&duplicate).is_err());
    }
}
