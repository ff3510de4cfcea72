//! Line protocol in, a [`Batch`] of points and InfluxDB 1.x's per-line errors out.
//!
//! Pure: the body, the precision and the server time are arguments. For each request:
//! 1. the body is split into lines as 1.x's `scanLine` does (`scan`: a newline inside a quoted
//!    string field does not end the line); blank lines and `#` comments are skipped;
//! 2. a *simple* line (no escapes, no string field, ... as Telegraf writes them) is judged and
//!    stored in one pass by [`simple`], which gives exactly what steps 3 and 4 would;
//! 3. any other line is judged by [`influx1::check`], a port of 1.6.7's scanner, which gives the
//!    verdict and 1.x's reason text, and the lines 1.x accepts are parsed by the
//!    influxdb-line-protocol crate (`general`);
//! 4. points with a `time` tag or a lone `time` field are dropped as 1.x's storage layer does.
//!
//! Values are stored in the batch as spans into the body (no allocation per point).
//!
//! Where the crate and 1.x disagree, the decision is documented on [`parse_body`] and tested.

mod general;
pub mod influx1;
mod scan;
mod simple;

use std::fmt;

use influxdb_line_protocol::EscapedStr;

use crate::point::{Batch, Span};
use general::parse_line;
pub use influx1::Reason;
use scan::{keep_utf8_lines, lines};

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
    parse_body_with(body, db, rp, precision, now_ns, Paths::SimpleFirst, None)
}

/// [`parse_body`], also answering the 1-based line number of each accepted point, in the
/// batch's order (`processor replay` reports a point's file and line; the write path does not
/// pay for it).
pub fn parse_body_numbered(
    body: Vec<u8>,
    db: String,
    rp: String,
    precision: Precision,
    now_ns: i64,
) -> (Parsed, Vec<usize>) {
    let mut numbers = Vec::new();
    let parsed = parse_body_with(
        body,
        db,
        rp,
        precision,
        now_ns,
        Paths::SimpleFirst,
        Some(&mut numbers),
    );
    (parsed, numbers)
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
    mut point_lines: Option<&mut Vec<usize>>,
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
        let before = batch.len();
        if simple_first && simple::store(&mut batch, &context, line, offset) {
            if let Some(numbers) = point_lines.as_deref_mut() {
                numbers.extend(std::iter::repeat_n(line_number, batch.len() - before));
            }
            continue;
        }
        let parsed = parse_line(&mut batch, &context, line);
        if let Some(numbers) = point_lines.as_deref_mut() {
            numbers.extend(std::iter::repeat_n(line_number, batch.len() - before));
        }
        match parsed {
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

#[cfg(test)]
mod tests;
