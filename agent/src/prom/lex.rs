//! The lexer both formats share where they agree: metric and label names, quoted label values,
//! HELP text, numbers and timestamps. Each piece is a nom parser over `&str` returning the rest of
//! the input; where the formats disagree (which escapes are errors, which float spellings are
//! allowed) the caller passes its [`Dialect`].

use std::borrow::Cow;

use nom::IResult;

/// Where and why a line failed: `at` is the rest of the line from the offending byte.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fail<'a> {
    pub(crate) at: &'a str,
    pub(crate) reason: Cow<'static, str>,
}

impl<'a> Fail<'a> {
    pub(crate) fn new(at: &'a str, reason: impl Into<Cow<'static, str>>) -> Self {
        Fail {
            at,
            reason: reason.into(),
        }
    }
}

impl<'a> nom::error::ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(input: &'a str, kind: nom::error::ErrorKind) -> Self {
        Fail::new(input, format!("syntax error ({})", kind.description()))
    }

    fn append(_: &'a str, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result of one lexer step.
pub(crate) type Lexed<'a, T> = IResult<&'a str, T, Fail<'a>>;

/// A failure that stops the line (no alternative is tried).
pub(crate) fn cut_fail<T>(at: &str, reason: impl Into<Cow<'static, str>>) -> Lexed<'_, T> {
    Err(nom::Err::Failure(Fail::new(at, reason)))
}

/// Turns a nom result's error into the plain [`Fail`] the line parsers use.
pub(crate) fn finish<'a, T>(
    result: Lexed<'a, T>,
    whole: &'a str,
) -> Result<(&'a str, T), Fail<'a>> {
    result.map_err(|error| match error {
        nom::Err::Error(fail) | nom::Err::Failure(fail) => fail,
        nom::Err::Incomplete(_) => Fail::new(whole, "incomplete input"),
    })
}

/// Which reference parser's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Text 0.0.4 as Go's `expfmt.TextParser` reads it.
    Text,
    /// OpenMetrics 1.0 as the reference (Python `prometheus_client`) parser reads it.
    OpenMetrics,
}

/// Byte classes for names: bit 1 = label-name character, bit 2 = metric-name character.
const NAME_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            table[b] = 3;
        } else if c == b':' {
            table[b] = 2;
        }
        b += 1;
    }
    table
};

/// The longest prefix of `input` made of bytes in `class`, if its first byte is not a digit.
fn name_of_class(input: &str, class: u8) -> Lexed<'_, &str> {
    let bytes = input.as_bytes();
    if bytes.first().is_none_or(u8::is_ascii_digit) {
        return Ok((input, ""));
    }
    let end = bytes
        .iter()
        .position(|&b| NAME_CLASS[usize::from(b)] & class == 0)
        .unwrap_or(bytes.len());
    // Name bytes are ASCII, so `end` is a character boundary.
    let (name, rest) = input.split_at(end);
    Ok((rest, name))
}

/// A metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`, or `""` when the input does not start with one.
pub(crate) fn metric_name(input: &str) -> Lexed<'_, &str> {
    name_of_class(input, 2)
}

/// A label name `[a-zA-Z_][a-zA-Z0-9_]*`, or `""` when the input does not start with one.
pub(crate) fn label_name(input: &str) -> Lexed<'_, &str> {
    name_of_class(input, 1)
}

/// Blanks and tabs (text format whitespace).
pub(crate) fn blanks(input: &str) -> &str {
    input.trim_start_matches([' ', '\t'])
}

/// A quoted label value; `input` starts just after the opening `"`, the result's rest just after
/// the closing one. Escapes: `\\`, `\"`, `\n`. Any other escape is an error in text 0.0.4 (Go)
/// and kept as written in OpenMetrics (the reference parser). A raw newline cannot occur: lines
/// are split first.
pub(crate) fn label_value(input: &str, dialect: Dialect) -> Lexed<'_, Cow<'_, str>> {
    let bytes = input.as_bytes();
    // Fast path: no escape before the closing quote, borrow.
    let Some(end) = bytes.iter().position(|&b| b == b'"' || b == b'\\') else {
        return cut_fail(input, "label value is missing its closing quote");
    };
    if bytes.get(end) == Some(&b'"') {
        return Ok((&input[end + 1..], Cow::Borrowed(&input[..end])));
    }
    let mut owned = String::with_capacity(input.len().min(64));
    let mut rest = input;
    loop {
        let Some(stop) = rest.find(['"', '\\']) else {
            return cut_fail(input, "label value is missing its closing quote");
        };
        owned.push_str(&rest[..stop]);
        let tail = &rest[stop..];
        if let Some(after) = tail.strip_prefix('"') {
            return Ok((after, Cow::Owned(owned)));
        }
        // A backslash: look at the escaped character.
        let mut chars = tail[1..].chars();
        match chars.next() {
            Some('\\') => owned.push('\\'),
            Some('"') => owned.push('"'),
            Some('n') => owned.push('\n'),
            Some(other) => match dialect {
                Dialect::Text => {
                    return cut_fail(tail, format!("invalid escape sequence '\\{other}'"));
                }
                Dialect::OpenMetrics => {
                    owned.push('\\');
                    owned.push(other);
                }
            },
            None => return cut_fail(input, "label value is missing its closing quote"),
        }
        rest = chars.as_str();
    }
}

/// HELP text with its escapes replaced: `\\` and `\n`, and in OpenMetrics also `\"`. Any
/// other escape (`\"` included: promtool 2.42's expfmt rejects it), or a trailing backslash, is
/// an error in text 0.0.4 and kept as written in OpenMetrics.
pub(crate) fn help_text(input: &str, dialect: Dialect) -> Result<Cow<'_, str>, Fail<'_>> {
    if !input.contains('\\') {
        return Ok(Cow::Borrowed(input));
    }
    let mut owned = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(stop) = rest.find('\\') {
        owned.push_str(&rest[..stop]);
        let tail = &rest[stop..];
        let mut chars = tail[1..].chars();
        match (chars.next(), dialect) {
            (Some('\\'), _) => owned.push('\\'),
            (Some('n'), _) => owned.push('\n'),
            (Some('"'), Dialect::OpenMetrics) => owned.push('"'),
            (Some(other), Dialect::OpenMetrics) => {
                owned.push('\\');
                owned.push(other);
            }
            (None, Dialect::OpenMetrics) => owned.push('\\'),
            (Some(other), Dialect::Text) => {
                return Err(Fail::new(
                    tail,
                    format!("invalid escape sequence '\\{other}' in help"),
                ));
            }
            (None, Dialect::Text) => {
                return Err(Fail::new(tail, "help ends with a lone backslash"));
            }
        }
        rest = chars.as_str();
    }
    owned.push_str(rest);
    Ok(Cow::Owned(owned))
}

/// A sample value. Both formats take decimal floats with an optional exponent, `NaN` and
/// `[+-]Inf`/`[+-]Infinity` in any case; nothing else (no hex, no `_`, no spaces). Go (text) also
/// rejects a signed NaN and values that overflow `f64`; Python (OpenMetrics) accepts both.
pub(crate) fn number(token: &str, dialect: Dialect) -> Option<f64> {
    let value: f64 = token.parse().ok()?;
    if dialect == Dialect::Text {
        let unsigned = token.strip_prefix(['+', '-']);
        if value.is_nan() && unsigned.is_some() {
            return None;
        }
        if value.is_infinite() && !unsigned.unwrap_or(token).starts_with(['i', 'I']) {
            return None; // Go: "value out of range".
        }
    }
    Some(value)
}

/// An OpenMetrics timestamp (seconds, a finite decimal with optional fraction and exponent) in
/// nanoseconds, truncated toward zero past the ninth decimal. `None` when it is not one, or lies
/// beyond ±1.7e29 s.
pub(crate) fn seconds_to_nanos(token: &str) -> Option<i128> {
    let (negative, body) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => {
            let exp = &body[at + 1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&body[..at], exp.parse::<i64>().ok()?)
        }
        None => (body, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // The digits whole‖fraction with the decimal point moved right by exponent + 9 places: the
    // first `point` digits make the integer number of nanoseconds.
    let point = i64::try_from(whole.len())
        .ok()?
        .checked_add(exponent)?
        .checked_add(9)?;
    let digits = whole.bytes().chain(fraction.bytes());
    let mut nanos: i128 = 0;
    let mut taken: i64 = 0;
    for digit in digits.take(usize::try_from(point.max(0)).ok()?) {
        nanos = nanos
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
        taken += 1;
    }
    if nanos != 0 {
        for _ in taken..point {
            nanos = nanos.checked_mul(10)?;
        }
    }
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stop_at_the_first_byte_outside_their_class() {
        assert_eq!(metric_name("a:b_1{x"), Ok(("{x", "a:b_1")));
        assert_eq!(label_name("a:b"), Ok((":b", "a")));
        assert_eq!(metric_name("1a"), Ok(("1a", "")));
        assert_eq!(label_name(":a"), Ok((":a", "")));
        assert_eq!(metric_name(":a"), Ok(("", ":a")));
        assert_eq!(metric_name("é"), Ok(("é", "")));
        assert_eq!(metric_name(""), Ok(("", "")));
    }

    #[test]
    fn label_values_borrow_unless_escaped() {
        let (rest, value) = label_value("abc\"} 1", Dialect::Text).unwrap();
        assert_eq!(rest, "} 1");
        assert!(matches!(value, Cow::Borrowed("abc")));
        let (rest, value) = label_value(r#"a\"b\\c\nd"x"#, Dialect::Text).unwrap();
        assert_eq!(rest, "x");
        assert_eq!(value, "a\"b\\c\nd");
    }

    #[test]
    fn unknown_label_escapes_fail_in_text_and_stay_in_openmetrics() {
        assert!(label_value(r#"\t""#, Dialect::Text).is_err());
        let (_, value) = label_value(r#"b\\a\z""#, Dialect::OpenMetrics).unwrap();
        assert_eq!(value, "b\\a\\z");
    }

    #[test]
    fn unterminated_label_values_fail() {
        assert!(label_value("abc", Dialect::Text).is_err());
        assert!(label_value("abc\\", Dialect::OpenMetrics).is_err());
        assert!(label_value("abc\\\"", Dialect::OpenMetrics).is_err());
    }

    #[test]
    fn help_escapes_follow_the_dialect() {
        assert_eq!(help_text(r"a\\b\nc", Dialect::Text).unwrap(), "a\\b\nc");
        assert!(help_text(r"a\tb", Dialect::Text).is_err());
        assert!(help_text(r#"a\"b"#, Dialect::Text).is_err());
        assert_eq!(help_text(r#"a\"b"#, Dialect::OpenMetrics).unwrap(), "a\"b");
        assert!(help_text(r"ab\", Dialect::Text).is_err());
        assert_eq!(help_text(r"\foo\", Dialect::OpenMetrics).unwrap(), r"\foo\");
    }

    #[test]
    fn go_rejects_signed_nan_and_overflow_python_does_not() {
        assert!(number("+NaN", Dialect::Text).is_none());
        assert!(number("1e309", Dialect::Text).is_none());
        assert_eq!(number("1e309", Dialect::OpenMetrics), Some(f64::INFINITY));
        assert_eq!(number("-inf", Dialect::Text), Some(f64::NEG_INFINITY));
        assert!(number("nan", Dialect::Text).is_some_and(f64::is_nan));
        for bad in ["0x1", "1_2", "0x1p-3", "", " 1", "1 ", "infin", "0b1"] {
            assert!(number(bad, Dialect::Text).is_none(), "{bad}");
            assert!(number(bad, Dialect::OpenMetrics).is_none(), "{bad}");
        }
    }

    #[test]
    fn openmetrics_timestamps_keep_nanoseconds_exactly() {
        assert_eq!(seconds_to_nanos("000"), Some(0));
        assert_eq!(seconds_to_nanos("1.1"), Some(1_100_000_000));
        assert_eq!(seconds_to_nanos("1.5e3"), Some(1_500_000_000_000));
        assert_eq!(seconds_to_nanos("-1.1"), Some(-1_100_000_000));
        assert_eq!(seconds_to_nanos("0.0000000010"), Some(1));
        assert_eq!(seconds_to_nanos("0.0000000001"), Some(0));
        assert_eq!(seconds_to_nanos(".5"), Some(500_000_000));
        assert_eq!(seconds_to_nanos("5."), Some(5_000_000_000));
        assert_eq!(seconds_to_nanos("1e-10"), Some(0));
        assert_eq!(
            seconds_to_nanos("12345678901234567890.1234567890"),
            Some(12_345_678_901_234_567_890_123_456_789)
        );
        assert_eq!(seconds_to_nanos("0e999999999"), Some(0));
        for bad in [
            "", ".", "e1", "1e", "NaN", "Inf", "1.1.1", "1_2", "0x1p-3", "1z", "1e400",
        ] {
            assert_eq!(seconds_to_nanos(bad), None, "{bad}");
        }
    }
}
