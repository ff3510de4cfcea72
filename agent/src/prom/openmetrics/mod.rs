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

//!
//! # Layout
//! - this file: the exposition line by line, metadata and the families it opens and closes
//!   (`# HELP|TYPE|UNIT`, type names, the sample-name suffixes each type allows);
//! - [`samples`]: a sample joining its family and label group, with the checks on values,
//!   label groups and finished histograms;
//! - [`line`]: the grammar of one line (nom): metadata, sample, labels, exemplar.

mod line;
mod samples;

use std::collections::HashSet;
use std::hash::RandomState;

use super::lex::{self, Dialect, Fail};
use super::model::{MetricFamily, MetricType, Timestamp};
use super::{ParseError, STREAM_CHUNK, Sink, Streamed, line_error};
use line::{metadata_line, sample_line};
use samples::check_run;

/// Parses a whole OpenMetrics exposition.
pub(crate) fn parse(input: &str) -> Result<Vec<MetricFamily<'_>>, ParseError> {
    let mut parser = OpenMetricsParser::default();
    run(&mut parser, input, None)?;
    Ok(parser.families)
}

/// Parses a whole OpenMetrics exposition, handing metrics to `sink` as they become final (see
/// [`crate::prom::parse_streaming`]): a family's metrics in chunks of at least
/// [`STREAM_CHUNK`] once their label group has ended, the rest when the family ends. Families
/// are contiguous in OpenMetrics, so every valid page streams.
pub(crate) fn stream<'a>(input: &'a str, sink: Sink<'_, 'a>) -> Result<Streamed, ParseError> {
    let mut parser = OpenMetricsParser::default();
    run(&mut parser, input, Some(sink))?;
    Ok(Streamed::Complete)
}

fn run<'a>(
    parser: &mut OpenMetricsParser<'a>,
    input: &'a str,
    mut sink: Option<Sink<'_, 'a>>,
) -> Result<(), ParseError> {
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
            if let Some(sink) = sink.as_deref_mut() {
                parser.emit_final(sink);
            }
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
    if let Some(sink) = sink {
        parser.emit_final(sink);
    }
    Ok(())
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
    /// How many of `family.metrics` are final (their label group has ended).
    final_metrics: usize,
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

impl<'a> OpenMetricsParser<'a> {
    fn error_here(&self, fail: Fail<'_>) -> ParseError {
        line_error(self.line.0, self.line.1, &fail)
    }

    /// Streaming: hands `sink` the finished families and the current family's final metrics
    /// once there are [`STREAM_CHUNK`] of them, and forgets them.
    fn emit_final(&mut self, sink: Sink<'_, 'a>) {
        for family in self.families.drain(..) {
            sink(&family, &family.metrics);
        }
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let done = state.final_metrics.min(state.family.metrics.len());
        if done < STREAM_CHUNK {
            return;
        }
        sink(&state.family, &state.family.metrics[..done]);
        state.family.metrics.drain(..done);
        state.final_metrics = 0;
        if let Some(run) = state.run.as_mut() {
            run.metric = run.metric.saturating_sub(done);
        }
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
            final_metrics: 0,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::model::Value;
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
