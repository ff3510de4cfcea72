//! The grammar of one OpenMetrics line, with nom, borrowing from the input: `# HELP|TYPE|UNIT`
//! metadata, and `name[{labels}] value [timestamp] [# {labels} value [timestamp]]` samples with
//! their label sets, values, timestamps and exemplars. Single spaces, no blanks inside a label
//! set, no trailing comma; an exemplar's labels are at most 128 characters.

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_while1};
use nom::character::complete::char;
use nom::combinator::{not, opt, rest};
use nom::sequence::preceded;

use crate::prom::lex::{self, Dialect, Fail, Lexed, cut_fail};
use crate::prom::model::{DuplicateNames, Exemplar, Label, Timestamp};

/// One parsed sample line.
pub(super) struct SampleLine<'a> {
    pub(super) name: &'a str,
    pub(super) labels: Vec<Label<'a>>,
    pub(super) value: f64,
    pub(super) timestamp: Option<Timestamp>,
    pub(super) exemplar: Option<Exemplar<'a>>,
}

/// `# KEYWORD name value` after the `#`: tokens separated by one or more spaces (as the
/// reference's `_split_quoted` reads them), the value being the rest of the line (it may be
/// empty, but the space before it may not be missing).
pub(super) fn metadata_line(after_hash: &str) -> Lexed<'_, (&str, &str, &str)> {
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
pub(super) fn sample_line(line: &str) -> Result<SampleLine<'_>, Fail<'_>> {
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
