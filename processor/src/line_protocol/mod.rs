//! Line protocol in, a [`Batch`] of points and InfluxDB 1.x's per-line errors out.
//!
//! Pure: the body, the precision and the server time are arguments. For each request:
//! 1. the body is split into lines as 1.x's `scanLine` does (a newline inside a quoted string
//!    field does not end the line); blank lines and `#` comments are skipped;
//! 2. a *simple* line (no escapes, no string field, ... as Telegraf writes them) is judged and
//!    stored in one pass by [`simple`], which gives exactly what steps 3 and 4 would;
//! 3. any other line is judged by [`influx1::check`], a port of 1.6.7's scanner, which gives the
//!    verdict and 1.x's reason text, and the lines 1.x accepts are parsed by the
//!    influxdb-line-protocol crate;
//! 4. points with a `time` tag or a lone `time` field are dropped as 1.x's storage layer does.
//!
//! Values are stored in the batch as spans into the body (no allocation per point).
//!
//! Where the crate and 1.x disagree, the decision is documented on [`parse_body`] and tested.

pub mod influx1;
mod simple;

use std::fmt;

use influxdb_line_protocol::{EscapedStr, FieldValue as CrateValue, ParsedLine};

use crate::point::{Batch, Span, StoredPoint, StoredValue};
pub use influx1::Reason;

/// Unit of the timestamps in a request (`precision` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

/// A `precision` value that is none of the known units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid precision {0:?}: expected one of n, ns, u, us, µs, ms, s, m, h (omit it for nanoseconds)"
)]
pub struct UnknownPrecision(pub String);

impl Precision {
    /// Parses a v1 `precision` parameter; empty means nanoseconds.
    ///
    /// Deliberate deviation: 1.x treats `us`, `µs` and unknown values as nanoseconds; here
    /// `us`/`µs` are microseconds and anything unknown is an error (compat.md 5.2).
    pub fn from_v1_param(text: &str) -> Result<Self, UnknownPrecision> {
        Ok(match text {
            "" | "n" | "ns" => Self::Nanoseconds,
            "u" | "us" | "µs" | "µ" => Self::Microseconds,
            "ms" => Self::Milliseconds,
            "s" => Self::Seconds,
            "m" => Self::Minutes,
            "h" => Self::Hours,
            other => return Err(UnknownPrecision(other.to_owned())),
        })
    }

    /// The v1 `precision` parameter that makes 1.x read timestamps in this unit: empty for
    /// nanoseconds (the default), `u` for microseconds (1.x reads `us` as nanoseconds).
    pub fn v1_param(self) -> &'static str {
        match self {
            Self::Nanoseconds => "",
            Self::Microseconds => "u",
            Self::Milliseconds => "ms",
            Self::Seconds => "s",
            Self::Minutes => "m",
            Self::Hours => "h",
        }
    }

    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Self::Nanoseconds => 1,
            Self::Microseconds => 1_000,
            Self::Milliseconds => 1_000_000,
            Self::Seconds => 1_000_000_000,
            Self::Minutes => 60_000_000_000,
            Self::Hours => 3_600_000_000_000,
        }
    }

    /// `now_ns` floored to a whole unit (the time given to lines without a timestamp).
    pub fn truncate(self, now_ns: i64) -> i64 {
        now_ns - now_ns.rem_euclid(self.nanos())
    }

    /// A timestamp in this unit as nanoseconds, if 1.x's time range holds it.
    pub fn scale(self, timestamp: i64) -> Option<i64> {
        timestamp
            .checked_mul(self.nanos())
            .filter(|ns| (influx1::MIN_NANO_TIME..=influx1::MAX_NANO_TIME).contains(ns))
    }
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// 1-based line number in the body (for logs; 1.x's message does not carry it).
    pub line_number: usize,
    /// The line as 1.x echoes it: leading whitespace removed, invalid UTF-8 replaced.
    pub line: String,
    pub reason: Reason,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unable to parse '{}': {}", self.line, self.reason)
    }
}

/// Points dropped after parsing, as 1.x's storage layer drops them (a `partial write`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// How many points.
    pub count: usize,
    /// 1.x's reason for the first one.
    pub reason: String,
}

/// The outcome of one body.
#[derive(Debug)]
pub struct Parsed {
    /// The accepted points.
    pub batch: Batch,
    /// The lines that failed to parse, in order.
    pub errors: Vec<LineError>,
    /// Points that parsed but are invalid to store (`time` tag, only a `time` field).
    pub dropped: Option<Dropped>,
}

/// Parses a write body into `db`/`rp`'s batch.
///
/// `now_ns` is the server time, used (truncated to `precision`) for lines without a timestamp.
///
/// Not every line goes through the crate (a deliberate decision, issue 5 says "parse with the
/// influxdb-line-protocol crate"): running 1.x's scanner and then the crate parses each line
/// twice, and the crate's parser took about 70% of the server's CPU. Simple lines (no byte below
/// 0x20, no backslash, no `"`, no `time` key, no repeated key, the number and boolean forms
/// both parsers share, see [`simple`]) are judged and stored in one pass that gives the points
/// the crate path gives (floats by Rust's `f64` parse, as the crate). Every other line, and so
/// every rejected line, takes the full path below. A differential property test checks that
/// both paths give the same points, errors and drops.
///
/// Decisions where the crate and InfluxDB 1.6.7 differ (each tested below):
/// - Lines that are not UTF-8 are rejected alone with `invalid UTF-8` (the crate takes `&str`;
///   1.x stores the bytes). The rest of the batch is kept.
/// - `u` integers: rejected with `invalid number`, as 1.6 OSS (the crate accepts them).
/// - Duplicate tags, `=` in a tag value: rejected with 1.x's reasons (the crate accepts them).
/// - `.5`, `-.5`, `1.`, `1.e5`: accepted as 1.x does; the crate cannot parse them, so such a
///   line is rewritten (`0.5`, `1.0`, ...) and parsed again (a copy, for these lines only).
/// - Backslashes in names and keys: 1.x keeps `\\` as two backslashes and treats `\\ ` as a
///   backslash then an escaped space; the crate reads `\\` as one backslash. Lines containing
///   `\\` are rewritten for the crate so the values are 1.x's (a copy, for these lines only).
/// - Lines 1.x accepts but the crate cannot represent (a name ending in a backslash, a raw tab
///   or NUL inside a name, the input that crashes influxd 1.6.7) are rejected with a reason
///   saying so.
/// - A line with 100 tags is accepted (1.6.7's parser panics and answers 500).
pub fn parse_body(
    body: Vec<u8>,
    db: String,
    rp: String,
    precision: Precision,
    now_ns: i64,
) -> Parsed {
    parse_body_with(body, db, rp, precision, now_ns, Paths::SimpleFirst)
}

/// Which paths [`parse_body_with`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paths {
    /// Simple lines by [`simple`], the others by the full path (what [`parse_body`] does).
    SimpleFirst,
    /// Every line by the full path: 1.x's scanner, then the crate (the differential tests'
    /// reference).
    #[cfg_attr(not(test), allow(dead_code))]
    FullOnly,
}

fn parse_body_with(
    body: Vec<u8>,
    db: String,
    rp: String,
    precision: Precision,
    now_ns: i64,
    paths: Paths,
) -> Parsed {
    let mut batch = Batch::new(db, rp);
    let mut errors = Vec::new();
    let mut dropped: Option<Dropped> = None;
    let default_time = precision.truncate(now_ns);
    let body = match String::from_utf8(body) {
        Ok(text) => text,
        Err(not_utf8) => keep_utf8_lines(not_utf8.into_bytes(), &mut errors),
    };
    let context = LineContext {
        base: body.as_ptr() as usize,
        body_len: body.len(),
        precision,
        default_time,
    };
    let simple_first = paths == Paths::SimpleFirst;
    let mut reserved = false;
    for (line_number, offset, line) in lines(&body) {
        if !reserved && batch.len() == LINES_BEFORE_RESERVING {
            reserved = true;
            batch.reserve_for_rest(offset, body.len());
        }
        if simple_first && simple::store(&mut batch, &context, line, offset) {
            continue;
        }
        match parse_line(&mut batch, &context, line) {
            Ok(None) => {}
            Ok(Some(reason)) => {
                let dropped = dropped.get_or_insert(Dropped { count: 0, reason });
                dropped.count += 1;
            }
            Err(reason) => errors.push(LineError {
                line_number,
                line: line.to_owned(),
                reason,
            }),
        }
    }
    batch.set_body(body);
    errors.sort_by_key(|error| error.line_number);
    Parsed {
        batch,
        errors,
        dropped,
    }
}

/// Points parsed before the batch reserves room for the rest of the body, by extrapolation.
const LINES_BEFORE_RESERVING: usize = 64;

struct LineContext {
    /// Address of the body's first byte: a slice the crate returns lies in the body when its
    /// address falls in `base..base + body_len`, and its span is then the address difference.
    base: usize,
    body_len: usize,
    precision: Precision,
    default_time: i64,
}

impl LineContext {
    fn span(&self, batch: &mut Batch, text: &EscapedStr<'_>) -> Span {
        if let EscapedStr::SingleSlice(slice) = text {
            let start = (slice.as_ptr() as usize).wrapping_sub(self.base);
            let end = start.wrapping_add(slice.len());
            if start <= end && end <= self.body_len {
                return Span::Body { start, end };
            }
        }
        batch.push_unescaped(text)
    }
}

/// The lines of `body` as 1.x's `scanLine` splits it: (1-based line number, offset of the line
/// in `body`, line), with leading whitespace removed and blank and comment lines skipped.
fn lines(body: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut rest = body;
    let mut rest_offset = 0;
    let mut next_number = 1;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (end, inner_newlines) = line_end(rest.as_bytes());
            let block = rest.get(..end).unwrap_or_default();
            let block_offset = rest_offset;
            rest = rest.get(end + 1..).unwrap_or_default();
            rest_offset += end + 1;
            let number = next_number;
            next_number += 1 + inner_newlines;
            let line = block.trim_start_matches([' ', '\t', '\0']);
            if !line.is_empty() && !line.starts_with('#') {
                return Some((number, block_offset + (block.len() - line.len()), line));
            }
        }
        None
    })
}

/// 1.x's `scanLine` on bytes: the index of the newline that ends the first line, and how many
/// newlines (inside quoted strings) the line holds.
fn line_end(buf: &[u8]) -> (usize, usize) {
    // Fast path: up to the first newline there is no quote (so nothing is quoted) and the newline
    // is not escaped (no backslash just before it): that newline ends the line.
    let first_newline = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let block = buf.get(..first_newline).unwrap_or_default();
    if !block.contains(&b'"') && block.last() != Some(&b'\\') {
        return (first_newline, 0);
    }
    let mut inner_newlines = 0;
    let (mut quoted, mut fields) = (false, false);
    let (mut equals, mut commas) = (0usize, 0usize);
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        if b == b'\\' && i + 2 < buf.len() {
            i += 2;
            continue;
        }
        if b == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && b == b'=' {
                i += 1;
                equals += 1;
                continue;
            } else if !quoted && b == b',' {
                i += 1;
                commas += 1;
                continue;
            } else if b == b'"' && equals > commas {
                i += 1;
                quoted = !quoted;
                continue;
            }
        }
        if b == b'\n' {
            if !quoted {
                break;
            }
            inner_newlines += 1;
        }
        i += 1;
    }
    (i, inner_newlines)
}

/// The slow path for a body that is not UTF-8: every line that is not UTF-8 becomes an error,
/// the others are kept (copied into a new body).
fn keep_utf8_lines(body: Vec<u8>, errors: &mut Vec<LineError>) -> String {
    let mut kept = String::with_capacity(body.len());
    let mut rest = body.as_slice();
    let mut next_number = 1;
    while !rest.is_empty() {
        let (end, inner_newlines) = line_end(rest);
        let block = rest.get(..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
        let number = next_number;
        next_number += 1 + inner_newlines;
        if let Ok(text) = std::str::from_utf8(block) {
            kept.push_str(text);
            kept.push('\n');
            continue;
        }
        // Keep the line numbering of the lines after this one.
        kept.extend(std::iter::repeat_n('\n', 1 + inner_newlines));
        let start = block
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | 0))
            .unwrap_or(block.len());
        let line = block.get(start..).unwrap_or_default();
        if !line.is_empty() && !line.starts_with(b"#") {
            errors.push(LineError {
                line_number: number,
                line: String::from_utf8_lossy(line).into_owned(),
                reason: influx1::check(line).err().unwrap_or(Reason::InvalidUtf8),
            });
        }
    }
    kept
}

/// Parses one line into `batch`. `Ok(Some(reason))` means parsed but dropped as 1.x's storage
/// layer drops it.
fn parse_line(
    batch: &mut Batch,
    context: &LineContext,
    line: &str,
) -> Result<Option<String>, Reason> {
    let verdict = influx1::check(line.as_bytes())?;
    let time = match verdict.timestamp {
        None => context.default_time,
        Some(timestamp) => context
            .precision
            .scale(timestamp)
            .ok_or(Reason::TimeOutOfRange)?,
    };
    let trimmed = line.trim_end_matches([' ', '\t']);
    // Rare: a doubled backslash in a name is rewritten for the crate first.
    let rewritten = if trimmed.as_bytes().contains(&b'\\') && trimmed.contains("\\\\") {
        rewrite_backslashes(trimmed)
    } else {
        None
    };
    let text = rewritten.as_deref().unwrap_or(trimmed);
    match with_crate_parse(text, |parsed| store(batch, context, parsed, time)) {
        Ok(stored) => stored,
        Err(first_error) => {
            // Number forms only 1.x reads (`.5`, `1.`): rewritten and parsed again.
            let Some(again) = rewrite_numbers(text) else {
                return Err(first_error);
            };
            with_crate_parse(&again, |parsed| store(batch, context, parsed, time))
                .map_err(|_| first_error)?
        }
    }
}

/// Parses `line` with the crate and hands the result to `use_it` where it lies (a parsed line
/// is about a kilobyte; moving it around costs more than it seems).
fn with_crate_parse<R>(line: &str, use_it: impl FnOnce(&ParsedLine<'_>) -> R) -> Result<R, Reason> {
    let mut parsed = influxdb_line_protocol::parse_lines(line);
    match parsed.next() {
        Some(Ok(ref line)) if parsed.next().is_none() => Ok(use_it(line)),
        Some(Ok(_)) => Err(Reason::Unsupported(
            "line splits differently in InfluxDB 1.x and this parser",
        )),
        Some(Err(error)) => Err(crate_reason(&error)),
        None => Err(Reason::Unsupported("line is blank for this parser")),
    }
}

/// Reasons for lines 1.x accepts and the crate rejects (1.x has no text for these).
fn crate_reason(error: &influxdb_line_protocol::Error) -> Reason {
    use influxdb_line_protocol::Error as E;
    Reason::Unsupported(match error {
        E::MeasurementValueInvalid => "unsupported character in measurement",
        E::TagSetMalformed => "unsupported character in tags",
        E::FieldSetMissing | E::GenericParsingError { .. } => "unsupported character in fields",
        E::IntegerValueInvalid { .. } | E::UIntegerValueInvalid { .. } => "invalid number",
        E::FloatValueInvalid { .. } => "invalid float",
        E::TimestampValueInvalid { .. } => "bad timestamp",
        E::EndsWithBackslash => "name ends with a backslash",
        E::CannotParseEntireLine { .. } => "unsupported text after the fields",
        E::DuplicateTag { .. } => "duplicate tags",
        _ => "unsupported line",
    })
}

/// Rewrites backslashes outside string values so the crate reads names as 1.x does.
///
/// 1.x unescapes only `\,`, `\ ` and `\=` in names and keys and keeps every other backslash,
/// including both of `\\`; the crate reads `\\` as one escaped backslash. In the measurement
/// and tags, 1.x treats a delimiter as escaped when the byte before it is a backslash; in field
/// keys a backslash escapes the next byte whatever it is. Each literal backslash becomes `\\`
/// for the crate. `None` when there is nothing to rewrite.
fn rewrite_backslashes(line: &str) -> Option<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len() + 8);
    let at = |i: usize| chars.get(i).copied();
    let mut i = 0;
    // Measurement and tags: up to the first space not preceded by a backslash.
    while let Some(c) = at(i) {
        if c == ' ' && (i == 0 || at(i - 1) != Some('\\')) {
            break;
        }
        if c == '\\' {
            match at(i + 1) {
                Some(next @ (',' | ' ' | '=')) => {
                    out.push('\\');
                    out.push(next);
                    i += 2;
                }
                _ => {
                    out.push_str("\\\\");
                    i += 1;
                }
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    // Fields: keys rewritten, values copied (strings as they are: both read `\\` and `\"` alike).
    let (mut quoted, mut in_value, mut equals, mut commas) = (false, false, 0usize, 0usize);
    let mut started = false;
    while let Some(c) = at(i) {
        if !started {
            // The separating spaces.
            if c == ' ' {
                out.push(c);
                i += 1;
                continue;
            }
            started = true;
        }
        if c == '\\' && at(i + 1).is_some() {
            let next = at(i + 1).unwrap_or_default();
            if in_value || quoted {
                out.push(c);
                out.push(next);
            } else if matches!(next, ',' | ' ' | '=') {
                out.push('\\');
                out.push(next);
            } else {
                out.push_str("\\\\");
                if next == '\\' {
                    out.push_str("\\\\");
                } else {
                    out.push(next);
                }
            }
            i += 2;
            continue;
        }
        if c == '"' && equals > commas {
            quoted = !quoted;
        } else if !quoted && c == '=' {
            equals += 1;
            in_value = true;
        } else if !quoted && c == ',' {
            commas += 1;
            in_value = false;
        } else if !quoted && c == ' ' {
            // The timestamp follows; copy the rest.
            out.extend(chars.get(i..).unwrap_or_default());
            break;
        }
        out.push(c);
        i += 1;
    }
    (out != line).then_some(out)
}

/// Rewrites the number forms 1.x accepts and the crate does not (`.5`, `-.5`, `1.`, `1.e5`) into
/// ones it does, for a line 1.x has already judged valid. `None` when there is nothing to rewrite.
fn rewrite_numbers(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len() + 8);
    let mut changed = false;
    let mut copied = 0;
    // Find the field section: after the first unescaped space.
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == b' ' {
            break;
        }
        i += 1;
    }
    i += 1;
    let (mut quoted, mut equals, mut commas) = (false, 0usize, 0usize);
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == b'"' && equals > commas {
            quoted = !quoted;
        } else if !quoted && b == b',' {
            commas += 1;
        } else if !quoted && b == b'=' {
            equals += 1;
            let start = i + 1;
            let end = bytes
                .get(start..)
                .unwrap_or_default()
                .iter()
                .position(|&c| c == b',' || c == b' ')
                .map_or(bytes.len(), |n| start + n);
            let value = line.get(start..end).unwrap_or_default();
            if let Some(fixed) = normalize_float(value) {
                out.push_str(line.get(copied..start).unwrap_or_default());
                out.push_str(&fixed);
                copied = end;
                changed = true;
            }
            i = end;
            continue;
        } else if !quoted && b == b' ' {
            break;
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.push_str(line.get(copied..).unwrap_or_default());
    Some(out)
}

/// `.5` → `0.5`, `-.5` → `-0.5`, `1.` → `1.0`, `1.e5` → `1.0e5`; `None` for anything else.
fn normalize_float(value: &str) -> Option<String> {
    let (sign, unsigned) = match value.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", value),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => unsigned.split_at(at),
        None => (unsigned, ""),
    };
    let (whole, fraction) = mantissa.split_once('.')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    if !whole.is_empty() && !fraction.is_empty() {
        return None;
    }
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = if fraction.is_empty() { "0" } else { fraction };
    Some(format!("{sign}{whole}.{fraction}{exponent}"))
}

/// Stores a parsed line; `Ok(Some(reason))` when 1.x's storage layer would drop it.
fn store(
    batch: &mut Batch,
    context: &LineContext,
    parsed: &ParsedLine<'_>,
    time: i64,
) -> Result<Option<String>, Reason> {
    let measurement = parsed.series.measurement.as_str();
    if let Some(tags) = &parsed.series.tag_set
        && tags.iter().any(|(key, _)| key.as_str() == "time")
    {
        return Ok(Some(format!(
            "invalid tag key: input tag \"time\" on measurement \"{measurement}\" is invalid"
        )));
    }
    if parsed
        .field_set
        .iter()
        .all(|(key, _)| key.as_str() == "time")
    {
        return Ok(Some(format!(
            "invalid field name: input field \"time\" on measurement \"{measurement}\" is invalid"
        )));
    }
    let (tag_mark, field_mark) = (batch.tag_count(), batch.field_count());
    let measurement = context.span(batch, &parsed.series.measurement);
    if let Some(tags) = &parsed.series.tag_set {
        for (key, value) in tags {
            let key = context.span(batch, key);
            let value = context.span(batch, value);
            batch.push_tag(key, value);
        }
    }
    let tags = tag_mark..batch.tag_count();
    let push = |batch: &mut Batch, key: &EscapedStr<'_>, value: &CrateValue<'_>| {
        let stored = match value {
            CrateValue::F64(v) => StoredValue::Float(*v),
            CrateValue::I64(v) => StoredValue::Integer(*v),
            CrateValue::Boolean(v) => StoredValue::Boolean(*v),
            CrateValue::String(text) => StoredValue::String(context.span(batch, text)),
            // 1.6 OSS rejects unsigned integers; influx1::check has already said so.
            CrateValue::U64(_) => return Err(Reason::InvalidNumber),
        };
        let key = context.span(batch, key);
        batch.push_field(key, stored);
        Ok(())
    };
    // 1.x skips fields named `time` and keeps the others; a repeated key keeps its last value.
    let kept = parsed
        .field_set
        .iter()
        .filter(|(key, _)| key.as_str() != "time");
    let outcome = if has_duplicate_keys(&parsed.field_set) {
        let mut last: Vec<(&EscapedStr<'_>, &CrateValue<'_>)> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (key, value) in kept {
            match index.get(key.as_str()).and_then(|&i| last.get_mut(i)) {
                Some(slot) => slot.1 = value,
                None => {
                    index.insert(key.as_str(), last.len());
                    last.push((key, value));
                }
            }
        }
        last.into_iter()
            .try_for_each(|(key, value)| push(batch, key, value))
    } else {
        kept.into_iter()
            .try_for_each(|(key, value)| push(batch, key, value))
    };
    if let Err(reason) = outcome {
        batch.truncate_to(tag_mark, field_mark);
        return Err(reason);
    }
    let fields = field_mark..batch.field_count();
    batch.push_point(StoredPoint {
        measurement,
        tags,
        fields,
        time,
    });
    Ok(None)
}

fn has_duplicate_keys(fields: &[(EscapedStr<'_>, CrateValue<'_>)]) -> bool {
    if fields.len() <= 16 {
        // Compare (length, first byte, last byte) first; bytes only when those agree.
        let signature = |key: &str| {
            let bytes = key.as_bytes();
            (bytes.len(), bytes.first().copied(), bytes.last().copied())
        };
        let mut signatures = [(0usize, None, None); 16];
        for (slot, (key, _)) in signatures.iter_mut().zip(fields) {
            *slot = signature(key);
        }
        fields.iter().enumerate().any(|(i, (key, _))| {
            let mine = signatures.get(i).copied();
            (0..i).any(|j| {
                signatures.get(j).copied() == mine
                    && fields.get(j).is_some_and(|(other, _)| other == key)
            })
        })
    } else {
        let mut seen = std::collections::HashSet::with_capacity(fields.len());
        !fields.iter().all(|(key, _)| seen.insert(key.as_str()))
    }
}

#[cfg(test)]
mod tests;
