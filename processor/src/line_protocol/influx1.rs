//! InfluxDB 1.x's verdict on one line: a port of the scanning half of 1.6.7's `models/points.go`
//! (`scanKey`, `scanTags`, `scanFields`, `scanNumber`, `scanBoolean`, `scanTime`), which decides
//! whether a line is valid and, if not, the reason text 1.x puts in `unable to parse '<line>': ...`.
//!
//! It only judges: values are produced by the influxdb-line-protocol crate (see the parent
//! module). Running both is what lets the processor answer with 1.x's reasons while parsing with
//! the crate. Simple lines skip both (the `simple` module judges and stores them in one pass);
//! every line it does not take, and so every rejected line, comes here. Bytes, not `&str`: 1.x works on bytes, and so do the indices below. Every index is
//! checked (`get`), so no input can panic, including the ones that panic 1.6.7 (100 tags).

use std::fmt;

/// Why InfluxDB 1.x rejects a line; `Display` is 1.x's text, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    MissingMeasurement,
    MissingFields,
    MissingTagKey,
    MissingTagValue,
    InvalidTagFormat,
    DuplicateTags,
    MissingFieldKey,
    MissingFieldValue,
    InvalidFieldFormat,
    UnbalancedQuotes,
    InvalidNumber,
    InvalidFloat,
    InvalidBoolean,
    /// An `i` integer outside i64; holds the digits.
    IntegerOutOfRange(String),
    BadTimestamp,
    /// A timestamp `strconv.ParseInt` rejects; holds the text and whether it was a range error.
    TimestampParse {
        text: String,
        out_of_range: bool,
    },
    /// Timestamp times precision outside 1.x's range.
    TimeOutOfRange,
    /// Something after the timestamp.
    PointIsInvalid,
    /// Measurement plus tags longer than 65,535 bytes.
    MaxKeyLength(usize),
    /// The line is not UTF-8 (1.x accepts it; the processor does not, see the parent module).
    InvalidUtf8,
    /// 1.x accepts the line but the crate cannot represent it; the text says what.
    Unsupported(&'static str),
}

/// 1.x's `MaxKeyLength`.
pub(super) const MAX_KEY_LENGTH: usize = 65_535;
/// 1.x's `MinNanoTime` and `MaxNanoTime`.
pub const MIN_NANO_TIME: i64 = i64::MIN + 2;
pub const MAX_NANO_TIME: i64 = i64::MAX - 1;

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingMeasurement => f.write_str("missing measurement"),
            Self::MissingFields => f.write_str("missing fields"),
            Self::MissingTagKey => f.write_str("missing tag key"),
            Self::MissingTagValue => f.write_str("missing tag value"),
            Self::InvalidTagFormat => f.write_str("invalid tag format"),
            Self::DuplicateTags => f.write_str("duplicate tags"),
            Self::MissingFieldKey => f.write_str("missing field key"),
            Self::MissingFieldValue => f.write_str("missing field value"),
            Self::InvalidFieldFormat => f.write_str("invalid field format"),
            Self::UnbalancedQuotes => f.write_str("unbalanced quotes"),
            Self::InvalidNumber => f.write_str("invalid number"),
            Self::InvalidFloat => f.write_str("invalid float"),
            Self::InvalidBoolean => f.write_str("invalid boolean"),
            Self::IntegerOutOfRange(digits) => write!(
                f,
                "unable to parse integer {digits}: strconv.ParseInt: parsing {digits:?}: value out of range"
            ),
            Self::BadTimestamp => f.write_str("bad timestamp"),
            Self::TimestampParse { text, out_of_range } => write!(
                f,
                "strconv.ParseInt: parsing {text:?}: {}",
                if *out_of_range {
                    "value out of range"
                } else {
                    "invalid syntax"
                }
            ),
            Self::TimeOutOfRange => {
                write!(f, "time outside range {MIN_NANO_TIME} - {MAX_NANO_TIME}")
            }
            Self::PointIsInvalid => f.write_str("point is invalid"),
            Self::MaxKeyLength(size) => {
                write!(f, "max key length exceeded: {size} > {MAX_KEY_LENGTH}")
            }
            Self::InvalidUtf8 => f.write_str("invalid UTF-8"),
            Self::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Reason {}

/// What 1.x learned about a valid line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The timestamp as written (before precision scaling), when the line has one.
    pub timestamp: Option<i64>,
}

/// Judges one line (no newline, leading whitespace already skipped) as InfluxDB 1.6.7 does.
pub fn check(buf: &[u8]) -> Result<Verdict, Reason> {
    let pos = scan_key(buf)?;
    let pos = scan_fields(buf, pos)?;
    let (pos, ts) = scan_time(buf, pos)?;
    let Some(ts) = ts else {
        return Ok(Verdict { timestamp: None });
    };
    let text = String::from_utf8_lossy(ts);
    let timestamp = text.parse::<i64>().map_err(|_| Reason::TimestampParse {
        out_of_range: is_decimal_integer(ts),
        text: text.into_owned(),
    })?;
    if buf
        .get(pos..)
        .unwrap_or_default()
        .iter()
        .any(|&b| b != b' ')
    {
        return Err(Reason::PointIsInvalid);
    }
    Ok(Verdict {
        timestamp: Some(timestamp),
    })
}

fn at(buf: &[u8], i: usize) -> Option<u8> {
    buf.get(i).copied()
}

fn is_decimal_integer(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// `scanKey`: measurement and tags, duplicate-tag detection, key length. Returns the end.
fn scan_key(buf: &[u8]) -> Result<usize, Reason> {
    let (has_tags, mut i) = scan_measurement(buf)?;
    if has_tags {
        let first_tag = i;
        let mut sorted = true;
        let mut previous: Option<&[u8]> = None;
        loop {
            let start = i;
            i = scan_tag_key(buf, i)?;
            // The key without its `=` (1.x compares keys as written, escapes included).
            let key = buf.get(start..i.saturating_sub(1)).unwrap_or_default();
            if let Some(previous) = previous {
                match previous.cmp(key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => return Err(Reason::DuplicateTags),
                    std::cmp::Ordering::Greater => sorted = false,
                }
            }
            previous = Some(key);
            let (more, next) = scan_tag_value(buf, i)?;
            i = next;
            if !more {
                break;
            }
        }
        if !sorted && has_duplicate_tag_keys(buf, first_tag, i) {
            return Err(Reason::DuplicateTags);
        }
    }
    if i > MAX_KEY_LENGTH {
        return Err(Reason::MaxKeyLength(i));
    }
    Ok(i)
}

/// The slow path for unsorted tags: sorts the keys of `buf[start..end]` and looks for equals.
fn has_duplicate_tag_keys(buf: &[u8], start: usize, end: usize) -> bool {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut i = start;
    while i < end {
        let rest = buf.get(i..end).unwrap_or_default();
        let key_end = position_unescaped(rest, b'=').unwrap_or(rest.len());
        keys.push(rest.get(..key_end).unwrap_or_default());
        // The next tag starts after the next unescaped comma.
        match position_unescaped(rest, b',') {
            Some(comma) => i += comma + 1,
            None => break,
        }
    }
    keys.sort_unstable();
    keys.windows(2).any(|pair| pair[0] == pair[1])
}

/// 1.x's `scanTo`: position of the first `stop` not preceded by a backslash.
fn position_unescaped(buf: &[u8], stop: u8) -> Option<usize> {
    let mut i = 0;
    while let Some(b) = at(buf, i) {
        if b == stop && (i == 0 || at(buf, i - 1) != Some(b'\\')) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `scanMeasurement`: returns (tags follow, position after the measurement's terminator).
fn scan_measurement(buf: &[u8]) -> Result<(bool, usize), Reason> {
    match at(buf, 0) {
        None | Some(b',') => return Err(Reason::MissingMeasurement),
        Some(_) => {}
    }
    let mut i = 0;
    loop {
        i += 1;
        let Some(b) = at(buf, i) else {
            return Err(Reason::MissingFields);
        };
        if at(buf, i - 1) == Some(b'\\') {
            continue;
        }
        if b == b',' {
            return Ok((true, i + 1));
        }
        if b == b' ' {
            return Ok((false, i));
        }
    }
}

fn scan_tag_key(buf: &[u8], mut i: usize) -> Result<usize, Reason> {
    match at(buf, i) {
        None | Some(b' ' | b',' | b'=') => return Err(Reason::MissingTagKey),
        Some(_) => {}
    }
    loop {
        i += 1;
        let escaped = at(buf, i - 1) == Some(b'\\');
        match at(buf, i) {
            None => return Err(Reason::MissingTagValue),
            Some(b' ' | b',') if !escaped => return Err(Reason::MissingTagValue),
            Some(b'=') if !escaped => return Ok(i + 1),
            Some(_) => {}
        }
    }
}

/// Returns (another tag follows, position).
fn scan_tag_value(buf: &[u8], mut i: usize) -> Result<(bool, usize), Reason> {
    match at(buf, i) {
        None | Some(b',' | b' ') => return Err(Reason::MissingTagValue),
        Some(_) => {}
    }
    loop {
        i += 1;
        let escaped = at(buf, i - 1) == Some(b'\\');
        match at(buf, i) {
            None => return Err(Reason::MissingFields),
            Some(b'=') if !escaped => return Err(Reason::InvalidTagFormat),
            Some(b',') if !escaped => return Ok((true, i + 1)),
            Some(b' ') if !escaped => return Ok((false, i)),
            Some(_) => {}
        }
    }
}

fn skip_whitespace(buf: &[u8], mut i: usize) -> usize {
    while matches!(at(buf, i), Some(b' ' | b'\t' | 0)) {
        i += 1;
    }
    i
}

fn is_numeric(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

/// `scanFields`: returns the position after the field set.
fn scan_fields(buf: &[u8], start: usize) -> Result<usize, Reason> {
    let start = skip_whitespace(buf, start);
    let mut i = start;
    let mut quoted = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    while let Some(b) = at(buf, i) {
        if b == b'\\' && i + 1 < buf.len() {
            i += 2;
            continue;
        }
        if b == b'"' && equals > commas {
            quoted = !quoted;
            i += 1;
            continue;
        }
        if b == b'=' && !quoted {
            equals += 1;
            let before = i.checked_sub(1).and_then(|j| at(buf, j));
            let before2 = i.checked_sub(2).and_then(|j| at(buf, j));
            if matches!(before, Some(b' ' | b',')) && before2 != Some(b'\\') {
                return Err(Reason::MissingFieldKey);
            }
            match at(buf, i + 1) {
                None | Some(b',' | b' ') => return Err(Reason::MissingFieldValue),
                Some(next) if is_numeric(next) || matches!(next, b'-' | b'N' | b'n') => {
                    i = scan_number(buf, i + 1)?;
                    continue;
                }
                Some(b'"') => {}
                Some(_) => {
                    i = scan_boolean(buf, i + 1)?;
                    continue;
                }
            }
        }
        if b == b',' && !quoted {
            commas += 1;
        }
        if b == b' ' && !quoted {
            break;
        }
        i += 1;
    }
    if quoted {
        return Err(Reason::UnbalancedQuotes);
    }
    if equals == 0 || commas + 1 != equals {
        return Err(Reason::InvalidFieldFormat);
    }
    Ok(i)
}

/// 1.x's `maxInt64Digits`, `minInt64Digits`, `maxFloat64Digits`, `minFloat64Digits`.
const MAX_INT64_DIGITS: usize = 19;
const MAX_FLOAT64_DIGITS: usize = 25;

fn scan_number(buf: &[u8], start: usize) -> Result<usize, Reason> {
    let mut i = start;
    if at(buf, i) == Some(b'-') {
        i += 1;
        if i == buf.len() {
            return Err(Reason::InvalidNumber);
        }
    }
    let (mut is_int, mut is_unsigned, mut decimal, mut scientific) = (false, false, false, false);
    while let Some(b) = at(buf, i) {
        if b == b',' || b == b' ' {
            break;
        }
        if b == b'i' && i > start && !(is_int || is_unsigned) {
            is_int = true;
            i += 1;
            continue;
        }
        if b == b'u' && i > start && !(is_int || is_unsigned) {
            is_unsigned = true;
            i += 1;
            continue;
        }
        if b == b'.' {
            if decimal {
                return Err(Reason::InvalidNumber);
            }
            decimal = true;
        }
        if i > start && (b == b'e' || b == b'E') {
            scientific = true;
            i += 1;
            continue;
        }
        if (b == b'+' || b == b'-')
            && matches!(i.checked_sub(1).and_then(|j| at(buf, j)), Some(b'e' | b'E'))
        {
            i += 1;
            continue;
        }
        if i + 2 < buf.len() && (b == b'N' || b == b'n') {
            return Err(Reason::InvalidNumber);
        }
        if !is_numeric(b) {
            return Err(Reason::InvalidNumber);
        }
        i += 1;
    }
    if (is_int || is_unsigned) && (decimal || scientific) {
        return Err(Reason::InvalidNumber);
    }
    let mut digits = i - start;
    if is_int {
        digits -= 1;
    }
    if decimal {
        digits = digits.saturating_sub(1);
    }
    if at(buf, start) == Some(b'-') {
        digits = digits.saturating_sub(1);
    }
    if digits == 0 {
        return Err(Reason::InvalidNumber);
    }
    let text = buf.get(start..i).unwrap_or_default();
    if is_int {
        // `9i10` is not an integer: the `i` must come last.
        let Some(number) = text.strip_suffix(b"i") else {
            return Err(Reason::InvalidNumber);
        };
        if number.len() >= MAX_INT64_DIGITS {
            let number = String::from_utf8_lossy(number);
            if number.parse::<i64>().is_err() {
                return Err(Reason::IntegerOutOfRange(number.into_owned()));
            }
        }
    } else if is_unsigned {
        // 1.6 OSS does not enable unsigned integers.
        return Err(Reason::InvalidNumber);
    } else if scientific || text.len() >= MAX_FLOAT64_DIGITS {
        let valid = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(f64::is_finite);
        if !valid {
            return Err(Reason::InvalidFloat);
        }
    }
    Ok(i)
}

fn scan_boolean(buf: &[u8], start: usize) -> Result<usize, Reason> {
    let start = skip_whitespace(buf, start);
    let first = at(buf, start);
    if matches!(first, Some(b) if !matches!(b, b't' | b'f' | b'T' | b'F')) {
        return Err(Reason::InvalidBoolean);
    }
    let mut i = start + 1;
    while let Some(b) = at(buf, i) {
        if b == b',' || b == b' ' {
            break;
        }
        i += 1;
    }
    let word = buf.get(start..i).unwrap_or_default();
    if word.len() == 1 {
        return Ok(i);
    }
    let valid = matches!(
        word,
        b"true" | b"True" | b"TRUE" | b"false" | b"False" | b"FALSE"
    );
    if valid {
        Ok(i)
    } else {
        Err(Reason::InvalidBoolean)
    }
}

/// `scanTime`: returns the end and the timestamp text, if any.
fn scan_time(buf: &[u8], start: usize) -> Result<(usize, Option<&[u8]>), Reason> {
    let start = skip_whitespace(buf, start);
    let mut i = start;
    while let Some(b) = at(buf, i) {
        if b == b'\n' || b == b' ' {
            break;
        }
        if i == start && b == b'-' {
            i += 1;
            continue;
        }
        if !b.is_ascii_digit() {
            return Err(Reason::BadTimestamp);
        }
        i += 1;
    }
    let ts = buf.get(start..i).unwrap_or_default();
    Ok((i, (!ts.is_empty()).then_some(ts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(line: &str) -> String {
        match check(line.as_bytes()) {
            Ok(verdict) => panic!("{line:?} should be rejected, got {verdict:?}"),
            Err(reason) => reason.to_string(),
        }
    }

    fn accepted(line: &str) -> Verdict {
        match check(line.as_bytes()) {
            Ok(verdict) => verdict,
            Err(reason) => panic!("{line:?} should be accepted, got {reason}"),
        }
    }

    #[test]
    fn reasons_match_influxdb_1_6_texts() {
        // Every pair below was answered by a real influxd 1.6.7 (write-api.md, and probes).
        let cases = [
            ("bad value=abc 1700000000000000000", "invalid boolean"),
            ("bad,host=a", "missing fields"),
            ("bad", "missing fields"),
            ("bad value=", "missing field value"),
            ("bad value=1 notatime", "bad timestamp"),
            ("bad value=1 1.5e9", "bad timestamp"),
            (
                "bad value=1 99999999999999999999",
                "strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
            ),
            (
                "bad value=9223372036854775808i",
                "unable to parse integer 9223372036854775808: strconv.ParseInt: parsing \"9223372036854775808\": value out of range",
            ),
            ("bad value=1u", "invalid number"),
            ("x x=0x10", "invalid number"),
            ("x x=1.5i", "invalid number"),
            ("x x=1_000", "invalid number"),
            ("x value=NaN", "invalid number"),
            ("x value=+Inf", "invalid boolean"),
            ("x x=inf", "invalid boolean"),
            ("x x=+1", "invalid boolean"),
            ("bad,host= value=1", "missing tag value"),
            ("bad,host value=1", "missing tag value"),
            ("bad value=\"unterminated", "unbalanced quotes"),
            ("dup,host=a,host=b value=1", "duplicate tags"),
            ("a,b=1,a=2,b=3 v=1", "duplicate tags"),
            (",host=a value=1", "missing measurement"),
            ("extra value=1 1700000000000000000 junk", "point is invalid"),
            ("a v=1\t", "invalid number"),
            ("a v=1 -", "strconv.ParseInt: parsing \"-\": invalid syntax"),
            ("a,t=a=b v=1", "invalid tag format"),
            ("a =1", "missing field key"),
            ("a v=1,=2", "missing field key"),
            ("a v=1,b", "invalid field format"),
            ("a v", "invalid field format"),
            ("a v=1e", "invalid float"),
            ("a v=-", "invalid number"),
            ("a v=9i10", "invalid number"),
            ("crlf value=1 1700000000000000000\r", "bad timestamp"),
        ];
        for (line, expected) in cases {
            assert_eq!(reason(line), expected, "line {line:?}");
        }
    }

    #[test]
    fn forms_influxdb_1_6_accepts_are_accepted() {
        for line in [
            "cpu,host=a,region=eu value=1,count=2i,ok=true,msg=\"hi there\" 1700000000000000000",
            "a v=1  ",
            "a v=1 5  ",
            "a v=.5",
            "a v=1.",
            "a v=-.5",
            "a v=1e10,w=1e+10,x=1.e5,y=0005,z=-0,q=-0i,r=-9223372036854775808i",
            "a b=t,c=T,d=true,e=True,f=TRUE,g=f,h=F,i=false,j=False,k=FALSE",
            "a time=1,v=2",
            "a s=\"line\nbreak\"",
            "esc\\ m\\,x,t\\ k\\=y=v\\,a\\ l f\\=k=\"str \\\"q\\\" \\\\ back\"",
            "m \0=\",\"=3,\"=\"",
        ] {
            accepted(line);
        }
    }

    #[test]
    fn timestamp_is_returned_unscaled() {
        assert_eq!(accepted("a v=1 -12").timestamp, Some(-12));
        assert_eq!(accepted("a v=1").timestamp, None);
    }

    #[test]
    fn a_hundred_tags_do_not_panic() {
        let tags: String = (0..100).map(|i| format!(",t{i:03}=v")).collect();
        accepted(&format!("m{tags} v=1"));
    }

    #[test]
    fn time_range_message_matches_influxdb() {
        assert_eq!(
            Reason::TimeOutOfRange.to_string(),
            "time outside range -9223372036854775806 - 9223372036854775806"
        );
    }
}
