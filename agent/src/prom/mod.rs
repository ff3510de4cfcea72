//! The Prometheus exposition parser: text format 0.0.4 and OpenMetrics 1.0 text, in, metric
//! families out. Pure: no IO, no clock.
//!
//! The caller picks the format from the scrape's `Content-Type` ([`Format::from_content_type`])
//! and calls [`parse`] (or [`parse_bytes`] for a raw body). Both formats share one lexer
//! (`lex`: names, label values, escapes, numbers, timestamps, as nom parsers over `&str`; the
//! hot ones scan bytes by hand); each has its own line grammar and checks (the OpenMetrics line
//! grammar is written with nom combinators), after its reference parser:
//! - `text`: Prometheus' Go `expfmt.TextParser` (what Telegraf and promtool use);
//! - `openmetrics`: the OpenMetrics 1.0 ABNF with the checks of the reference parser (Python
//!   `prometheus_client.openmetrics.parser`), which decides the conformance suite's verdicts.
//!
//! The result borrows names and label values from the input ([`model`]); [`render()`] writes
//! families back as text in either format. [`parse_streaming`] parses the same way but hands
//! each metric out once it is final instead of keeping the page's families, so a page of
//! millions of series is never held as parsed structures.
//!
//! Errors carry the line number, the byte column, a short excerpt and the reason; a failed
//! parse returns no families (an exposition is accepted or rejected as a whole, as the
//! reference parsers do). No input makes the parser panic (property- and fuzz-tested).

mod lex;
pub mod model;
mod openmetrics;
pub mod render;
mod text;

use std::borrow::Cow;

pub use model::{
    Bucket, Exemplar, Label, Metric, MetricFamily, MetricType, Quantile, Timestamp, Value,
};
pub use render::{render, render_family};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The parser for a scrape's `Content-Type`: `text/plain` with version 0.0.4 or no version
    /// is [`Format::Text`]; `application/openmetrics-text` with version 1.0.0, 0.0.1 or none is
    /// [`Format::OpenMetrics`]. Anything else (protobuf, another version, an unknown type) is
    /// `None`: the caller decides what to do with it.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let mut parts = content_type.split(';');
        let media_type = parts.next().unwrap_or_default().trim();
        let version = parts.find_map(|parameter| {
            let (key, value) = parameter.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("version")
                .then(|| value.trim().trim_matches('"'))
        });
        if media_type.eq_ignore_ascii_case("text/plain") {
            matches!(version, None | Some("0.0.4")).then_some(Format::Text)
        } else if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            matches!(version, None | Some("1.0.0" | "0.0.1")).then_some(Format::OpenMetrics)
        } else {
            None
        }
    }

    /// The `Content-Type` a server sends for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Why an exposition was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason} (at {excerpt:?})")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based byte column in that line.
    pub column: usize,
    /// Up to 40 characters of the line from the failing point.
    pub excerpt: String,
    /// What was wrong, lower-case.
    pub reason: Cow<'static, str>,
}

/// The result of this module's functions.
pub type Result<T, E = ParseError> = std::result::Result<T, E>;

/// Where [`parse_streaming`] hands metrics: a family (its name, type and unit; its `metrics`
/// are not to be read) and metrics of it that are final.
pub type Sink<'s, 'a> = &'s mut dyn FnMut(&MetricFamily<'a>, &[Metric<'a>]);

/// How many final metrics of a family are gathered before they are handed out together.
pub const STREAM_CHUNK: usize = 256;

/// How a streamed parse ended (when the exposition parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed {
    /// Every metric was handed out, in the order and grouping [`parse`] gives.
    Complete,
    /// The page cannot be streamed in [`parse`]'s order (text 0.0.4 only: a family's samples
    /// after those of a family that appeared later, or a summary/histogram group written in
    /// pieces). What was handed out so far is to be discarded and the page parsed whole.
    OutOfOrder,
}

/// Parses a whole exposition in `format` into its metric families, in order of appearance.
pub fn parse(input: &str, format: Format) -> Result<Vec<MetricFamily<'_>>> {
    match format {
        Format::Text => text::parse(input),
        Format::OpenMetrics => openmetrics::parse(input),
    }
}

/// [`parse`] for a raw scrape body; invalid UTF-8 is an error at the line it occurs on.
pub fn parse_bytes(input: &[u8], format: Format) -> Result<Vec<MetricFamily<'_>>> {
    parse(utf8(input)?, format)
}

/// Parses a whole raw scrape body in `format` without keeping it: each metric is handed to
/// `sink` once final, with its family, so memory holds a chunk of metrics
/// ([`STREAM_CHUNK`]), not the page. On `Ok(Streamed::Complete)` the metrics handed out, in
/// order, are exactly those of [`parse_bytes`]; on an error or [`Streamed::OutOfOrder`] what
/// was handed out is to be discarded (an error is the same one [`parse_bytes`] gives).
pub fn parse_streaming<'a>(
    input: &'a [u8],
    format: Format,
    sink: Sink<'_, 'a>,
) -> Result<Streamed> {
    let text = utf8(input)?;
    match format {
        Format::Text => text::stream(text, sink),
        Format::OpenMetrics => openmetrics::stream(text, sink),
    }
}

/// The body as text; invalid UTF-8 is an error at the line it occurs on.
fn utf8(input: &[u8]) -> Result<&str> {
    match std::str::from_utf8(input) {
        Ok(text) => Ok(text),
        Err(error) => {
            let valid = &input[..error.valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = valid.len() - line_start + 1;
            Err(ParseError {
                line,
                column,
                excerpt: String::from_utf8_lossy(&input[line_start..])
                    .chars()
                    .take_while(|&c| c != '\n')
                    .take(40)
                    .collect(),
                reason: Cow::Borrowed("invalid utf-8"),
            })
        }
    }
}

/// The error for a failure in `line` (line number `number`); `fail.at` is a suffix of `line`
/// (an empty or foreign `at` points at the line's end).
pub(crate) fn line_error(number: usize, line: &str, fail: &lex::Fail<'_>) -> ParseError {
    let offset = if line.ends_with(fail.at) {
        line.len() - fail.at.len()
    } else {
        line.len()
    };
    let from = if fail.at.is_empty() {
        // Nothing left to show: show the line's end instead.
        let mut start = line.len().saturating_sub(40);
        while !line.is_char_boundary(start) {
            start += 1;
        }
        &line[start..]
    } else {
        &line[offset..]
    };
    ParseError {
        line: number,
        column: offset + 1,
        excerpt: from.chars().take(40).collect(),
        reason: fail.reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_parser() {
        let cases = [
            (
                "text/plain; version=0.0.4; charset=utf-8",
                Some(Format::Text),
            ),
            ("text/plain", Some(Format::Text)),
            ("Text/Plain;charset=utf-8", Some(Format::Text)),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Some(Format::OpenMetrics),
            ),
            ("application/openmetrics-text", Some(Format::OpenMetrics)),
            (
                "application/openmetrics-text; version=0.0.1",
                Some(Format::OpenMetrics),
            ),
            ("application/openmetrics-text; version=2.0.0", None),
            ("text/plain; version=9.9.9", None),
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                None,
            ),
            ("application/json", None),
            ("", None),
        ];
        for (content_type, format) in cases {
            assert_eq!(
                Format::from_content_type(content_type),
                format,
                "{content_type}"
            );
        }
        for format in [Format::Text, Format::OpenMetrics] {
            assert_eq!(
                Format::from_content_type(format.content_type()),
                Some(format)
            );
        }
    }

    #[test]
    fn errors_name_the_line_column_and_excerpt() {
        let error = parse("a 1\nb{c=\"d\" 2\n", Format::Text).unwrap_err();
        assert_eq!(error.line, 2);
        assert_eq!(error.column, 9);
        assert_eq!(error.excerpt, "2");
        assert_eq!(error.reason, "unexpected end of label value");
        assert_eq!(
            error.to_string(),
            "line 2, column 9: unexpected end of label value (at \"2\")"
        );
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_line() {
        let error = parse_bytes(b"a 1\nb{c=\"\xff\"} 2\n", Format::Text).unwrap_err();
        assert_eq!((error.line, error.column), (2, 6));
        assert_eq!(error.reason, "invalid utf-8");
        let families = parse_bytes(b"a 1\n", Format::Text).unwrap();
        assert_eq!(families.len(), 1);
    }
}
