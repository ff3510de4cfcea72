//! Every line that is not simple: judged by [`super::influx1::check`] (1.6.7's verdict and
//! reason), then parsed by the influxdb-line-protocol crate and stored as spans into the body.
//! Where the crate reads a line differently from 1.x, the line is rewritten first (escaped
//! backslashes, number forms) so that the stored values are 1.x's.

use influxdb_line_protocol::{EscapedStr, FieldValue as CrateValue, ParsedLine};

use crate::point::{Batch, StoredPoint, StoredValue};

use super::{LineContext, Reason, influx1};

/// Parses one line into `batch`. `Ok(Some(reason))` means parsed but dropped as 1.x's storage
/// layer drops it.
pub(super) fn parse_line(
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
pub(super) fn store(
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
