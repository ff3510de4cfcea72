//! The fast path: one pass over a *simple* line that judges it as InfluxDB 1.x does and stores
//! the point the influxdb-line-protocol crate would have produced, without running either.
//!
//! A line is simple when it has none of the things on which 1.x and the crate differ or which
//! need unescaping: no byte below 0x20 (tab, NUL, CR, ...), no backslash, no double quote (so no
//! string field), no field or tag named `time`, no repeated tag or field key, numbers only in
//! the forms `-?D+i`, `-?D+(.D+)?([eE][+-]?D+)?` (finite), booleans spelled as both accept
//! (`t T true True TRUE f F false False FALSE`), a timestamp `-?D+` that fits after precision
//! scaling, and nothing but spaces after it. Telegraf's lines are simple.
//!
//! Anything else makes [`store`] return `false` with the batch untouched, and the caller takes
//! the full path (1.x's scanner, then the crate). So the fast path never decides that a line is
//! bad: it only ever stores lines that both 1.x and the crate accept, with the crate's values
//! (floats by Rust's `f64` parse, which the crate calls; integers exactly; the same spans).
//! `tests.rs` checks this against the full path with a differential property test.

use super::LineContext;
use super::influx1::MAX_KEY_LENGTH;
use crate::point::{Batch, Span, StoredPoint, StoredValue};

/// Stores `line` (found at `offset` in the body) when it is simple. `false`: nothing was
/// stored, the line needs the full path.
pub(super) fn store(batch: &mut Batch, context: &LineContext, line: &str, offset: usize) -> bool {
    let (tag_mark, field_mark) = (batch.tag_count(), batch.field_count());
    match scan(batch, context, line, offset, tag_mark, field_mark) {
        Some(point) => {
            batch.push_point(point);
            true
        }
        None => {
            batch.truncate_to(tag_mark, field_mark);
            false
        }
    }
}

/// Bytes where a simple scan stops to look: separators, and everything that is not simple.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b' ' as usize] = true;
    table[b',' as usize] = true;
    table[b'=' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'"' as usize] = true;
    table
};

/// `u64` with every byte set to 1, and to 0x80.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Marks (the high bit of) the bytes of `word` below `bound` (at most 0x80). Only the lowest
/// mark is sure to be right (a borrow can mark a byte above it), which is the one used.
fn below(word: u64, bound: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(bound)) & !word & HIGHS
}

/// Marks the bytes of `word` equal to `byte`; the lowest mark is right, as for [`below`].
fn equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Position of the first special byte at or after `from`, or the line's length. Eight bytes at
/// a time (names and values are often longer than that), then byte by byte.
fn next_special(line: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = line.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let marks = below(word, 0x21)
            | equal(word, b',')
            | equal(word, b'=')
            | equal(word, b'\\')
            | equal(word, b'"');
        if marks != 0 {
            return i + (marks.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    line.get(i..)
        .and_then(|rest| rest.iter().position(|&b| SPECIAL[usize::from(b)]))
        .map_or(line.len(), |n| i + n)
}

fn at(line: &[u8], i: usize) -> Option<u8> {
    line.get(i).copied()
}

fn skip_spaces(line: &[u8], mut i: usize) -> usize {
    while at(line, i) == Some(b' ') {
        i += 1;
    }
    i
}

fn scan(
    batch: &mut Batch,
    context: &LineContext,
    text: &str,
    offset: usize,
    tag_mark: usize,
    field_mark: usize,
) -> Option<StoredPoint> {
    let line = text.as_bytes();
    let span = |start: usize, end: usize| Span::Body {
        start: offset + start,
        end: offset + end,
    };

    // Measurement: up to the first comma or space (`=` is an ordinary byte in both parsers).
    let mut end = next_special(line, 0);
    while at(line, end) == Some(b'=') {
        end = next_special(line, end + 1);
    }
    let mut stop = at(line, end)?;
    if end == 0 || !matches!(stop, b',' | b' ') {
        return None;
    }
    let measurement = span(0, end);

    // Tags: key=value pairs; 1.x rejects a repeated key, so any repeat goes the full path.
    let mut pos = end;
    if stop == b',' {
        let mut previous: &[u8] = &[];
        let mut sorted = true;
        while stop == b',' {
            let key_start = pos + 1;
            let key_end = next_special(line, key_start);
            let key = line.get(key_start..key_end)?;
            if key.is_empty() || at(line, key_end)? != b'=' || key == b"time" {
                return None;
            }
            sorted &= comes_before(previous, key);
            previous = key;
            let value_start = key_end + 1;
            let value_end = next_special(line, value_start);
            stop = at(line, value_end)?;
            if value_end == value_start || !matches!(stop, b',' | b' ') {
                return None;
            }
            batch.push_tag(span(key_start, key_end), span(value_start, value_end));
            pos = value_end;
        }
        if !sorted
            && repeats(
                batch.tags_from(tag_mark).iter().map(|(key, _)| *key),
                line,
                offset,
            )
        {
            return None;
        }
    }
    if pos > MAX_KEY_LENGTH {
        return None;
    }
    let tags = tag_mark..batch.tag_count();

    // Fields: key=value pairs up to a space or the end.
    pos = skip_spaces(line, pos);
    let mut fingerprints = [0u32; FINGERPRINTED_KEYS];
    let mut keys = 0;
    loop {
        let key_start = pos;
        let key_end = next_special(line, key_start);
        let key = line.get(key_start..key_end)?;
        if key.is_empty() || at(line, key_end)? != b'=' || key == b"time" {
            return None;
        }
        if let Some(slot) = fingerprints.get_mut(keys) {
            *slot = fingerprint(key);
        }
        keys += 1;
        let value_start = key_end + 1;
        let value_end = next_special(line, value_start);
        let value = field_value(text.get(value_start..value_end)?)?;
        batch.push_field(span(key_start, key_end), value);
        pos = value_end;
        match at(line, pos) {
            Some(b',') => pos += 1,
            None | Some(b' ') => break,
            Some(_) => return None,
        }
    }
    let maybe_repeated = fingerprints.get(..keys).is_none_or(|prints| {
        prints
            .iter()
            .enumerate()
            .any(|(i, print)| prints.get(..i).is_some_and(|before| before.contains(print)))
    });
    if maybe_repeated
        && repeats(
            batch.fields_from(field_mark).iter().map(|(key, _)| *key),
            line,
            offset,
        )
    {
        return None;
    }
    let fields = field_mark..batch.field_count();

    // Timestamp: optional, then only spaces.
    pos = skip_spaces(line, pos);
    let time = if pos == line.len() {
        context.default_time
    } else {
        let digits_end = next_special(line, pos);
        let timestamp = parse_i64(line.get(pos..digits_end)?)?;
        if line.get(digits_end..)?.iter().any(|&b| b != b' ') {
            return None;
        }
        context.precision.scale(timestamp)?
    };

    Some(StoredPoint {
        measurement,
        tags,
        fields,
        time,
    })
}

/// Field keys per line whose fingerprints are kept; a line with more is checked the slow way.
const FINGERPRINTED_KEYS: usize = 64;

/// Length, first and last byte: two keys with different fingerprints differ.
fn fingerprint(key: &[u8]) -> u32 {
    let (first, last) = (key.first().copied(), key.last().copied());
    ((key.len() as u32) << 16) | (u32::from(first.unwrap_or(0)) << 8) | u32::from(last.unwrap_or(0))
}

/// `previous < key`, looking at the first bytes before comparing the rest (tag keys mostly
/// differ there).
fn comes_before(previous: &[u8], key: &[u8]) -> bool {
    match previous.first().cmp(&key.first()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => previous < key,
    }
}

/// True when two of `keys` (body spans of this line) have the same text.
fn repeats(keys: impl Iterator<Item = Span> + Clone, line: &[u8], offset: usize) -> bool {
    let text = |key: Span| match key {
        Span::Body { start, end } => line.get(start.wrapping_sub(offset)..end.wrapping_sub(offset)),
        Span::Unescaped { .. } => None,
    };
    keys.clone()
        .enumerate()
        .any(|(i, key)| keys.clone().take(i).any(|other| text(other) == text(key)))
}

fn field_value(text: &str) -> Option<StoredValue> {
    match text.as_bytes().first()? {
        b'0'..=b'9' | b'-' => number(text),
        _ => boolean(text.as_bytes()).map(StoredValue::Boolean),
    }
}

fn boolean(text: &[u8]) -> Option<bool> {
    match text {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Some(true),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Some(false),
        _ => None,
    }
}

/// Powers of ten that an f64 holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `-?D+i` as an integer; `-?D+(.D+)?([eE][+-]?D+)?` as a finite float, the value Rust's `f64`
/// parse (which the crate calls) gives.
fn number(text: &str) -> Option<StoredValue> {
    let bytes = text.as_bytes();
    if let Some(digits) = bytes.strip_suffix(b"i") {
        return parse_i64(digits).map(StoredValue::Integer);
    }
    let negative = at(bytes, 0) == Some(b'-');
    let mut i = usize::from(negative);
    // The digits, as an integer while they fit (for the exact path below).
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut fraction_digits = 0usize;
    while let Some(b) = at(bytes, i).filter(u8::is_ascii_digit) {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        digits += 1;
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if at(bytes, i) == Some(b'.') {
        i += 1;
        while let Some(b) = at(bytes, i).filter(u8::is_ascii_digit) {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            fraction_digits += 1;
            i += 1;
        }
        if fraction_digits == 0 {
            return None;
        }
        digits += fraction_digits;
    }
    let mut exponent = false;
    if matches!(at(bytes, i), Some(b'e' | b'E')) {
        exponent = true;
        i += 1;
        if matches!(at(bytes, i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while at(bytes, i).is_some_and(|b| b.is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    // Exact path (Clinger's): a mantissa below 2^53 and a power of ten up to 1e22 are both
    // exact in an f64, so one division rounds once, correctly: the value any correct parser
    // gives. Everything else is left to Rust's parser.
    let value = match EXACT_POWERS_OF_TEN.get(fraction_digits) {
        Some(&power) if !exponent && digits <= 19 && mantissa < (1 << 53) => {
            let magnitude = mantissa as f64 / power;
            if negative { -magnitude } else { magnitude }
        }
        _ => text.parse().ok()?,
    };
    value.is_finite().then_some(StoredValue::Float(value))
}

/// `-?D+` as an i64, `None` when it is not that or does not fit.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let magnitude = if digits.len() <= 19 {
        // Up to 19 digits fit a u64: eight at a time, then one by one.
        let mut value = 0u64;
        let mut rest = digits;
        while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
            let word = u64::from_le_bytes(*chunk);
            if !eight_digits(word) {
                return None;
            }
            value = value * 100_000_000 + eight_digits_value(word);
            rest = tail;
        }
        for &b in rest {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u64::from(b - b'0');
        }
        value
    } else {
        // Longer (leading zeros): checked.
        digits.iter().try_fold(0u64, |value, &b| {
            let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
            value.checked_mul(10)?.checked_add(digit)
        })?
    };
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// True when the eight bytes of `word` are ASCII digits (as Rust's float parser checks).
fn eight_digits(word: u64) -> bool {
    let a = word.wrapping_add(0x4646_4646_4646_4646);
    let b = word.wrapping_sub(0x3030_3030_3030_3030);
    (a | b) & HIGHS == 0
}

/// The value of eight ASCII digits, the first in the lowest byte (as Rust's float parser).
fn eight_digits_value(word: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064;
    const MUL2: u64 = 0x0000_2710_0000_0001;
    let mut v = word.wrapping_sub(0x3030_3030_3030_3030);
    v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v1 = (v & MASK).wrapping_mul(MUL1);
    let v2 = ((v >> 16) & MASK).wrapping_mul(MUL2);
    u64::from((v1.wrapping_add(v2) >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_exactly_at_the_edges_of_i64() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        assert_eq!(parse_i64(b"0000000000000000000000042"), Some(42));
        assert_eq!(parse_i64(b"-0"), Some(0));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"1-"), None);
    }

    #[test]
    fn only_the_number_forms_both_parsers_share_are_taken() {
        for (text, expected) in [
            ("1", Some(1.0)),
            ("-1.25", Some(-1.25)),
            ("1e5", Some(1e5)),
            ("1.5E-3", Some(1.5e-3)),
            ("2e+2", Some(200.0)),
            ("-0", Some(-0.0)),
            (".5", None),
            ("1.", None),
            ("1.e5", None),
            ("1e", None),
            ("1e400", None),
            ("+1", None),
            ("1u", None),
            ("0x10", None),
            ("1.5i", None),
        ] {
            let got = number(text).map(|value| match value {
                StoredValue::Float(v) => v,
                other => panic!("{text}: {other:?}"),
            });
            assert_eq!(got.map(f64::to_bits), expected.map(f64::to_bits), "{text}");
        }
        assert_eq!(number("-12i"), Some(StoredValue::Integer(-12)));
        assert_eq!(
            number("99999999999999999999"),
            Some(StoredValue::Float(1e20))
        );
    }

    proptest::proptest! {
        #[test]
        fn eight_at_a_time_finds_the_first_special_byte(
            line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            from in 0usize..40,
        ) {
            let expected = line
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, b)| SPECIAL[usize::from(**b)])
                .map_or(line.len(), |(i, _)| i);
            proptest::prop_assert_eq!(next_special(&line, from), expected);
        }

        #[test]
        fn floats_equal_rusts_parse_to_the_bit(text in "-?[0-9]{1,21}(\\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?") {
            let expected = text.parse::<f64>().ok().filter(|v| v.is_finite());
            let got = number(&text).map(|value| match value {
                StoredValue::Float(v) => v.to_bits(),
                other => panic!("{text}: {other:?}"),
            });
            proptest::prop_assert_eq!(got, expected.map(f64::to_bits), "{}", text);
        }

        #[test]
        fn integers_equal_rusts_parse(text in "-?[0-9]{1,22}") {
            proptest::prop_assert_eq!(parse_i64(text.as_bytes()), text.parse::<i64>().ok());
        }
    }

    #[test]
    fn only_the_boolean_spellings_both_parsers_share_are_taken() {
        for word in ["t", "T", "true", "True", "TRUE"] {
            assert_eq!(boolean(word.as_bytes()), Some(true), "{word}");
        }
        for word in ["f", "F", "false", "False", "FALSE"] {
            assert_eq!(boolean(word.as_bytes()), Some(false), "{word}");
        }
        for word in ["tRUE", "yes", "tr", "", "FALSe"] {
            assert_eq!(boolean(word.as_bytes()), None, "{word}");
        }
    }
}
