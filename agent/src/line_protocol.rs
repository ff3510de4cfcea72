//! Line protocol exactly as Telegraf's `influx` serializer writes it.
//!
//! Why not the `influxdb-line-protocol` crate's builder: it cannot be made exact. It does not
//! escape tab, newline, form feed or carriage return (so a label value holding a newline yields
//! a broken line), does not trim trailing backslashes of tags or drop empty tags, and does not
//! skip NaN/Inf fields or metrics left without fields; Telegraf does all of these. This module is
//! small and writes into a caller's buffer with no allocation of its own.
//!
//! The rules: measurement escapes `\t \n \f \r , space`; tag keys, tag values and field keys
//! also escape `=`; tag keys and values lose trailing backslashes and are omitted when empty;
//! tags are written sorted by key; fields in their order, a field that cannot be encoded (NaN,
//! Inf, empty key) is left out; floats are the shortest decimal that reads back exactly, never
//! in exponent form (`42`, not `42.0`); integers end in `i` (unsigned in `u` with uint support,
//! else `i` clamped to i64::MAX); strings are quoted with `\t \n \f \r " \` escaped; the time is
//! in nanoseconds.

use std::fmt::Write as _;

use crate::metric::{FieldValue, Metric};

/// Serializer settings (`[[outputs.*]]` keys).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `influx_uint_support`: write unsigned integers with the `u` suffix.
    pub uint_support: bool,
}

/// Why a metric was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("empty measurement name")]
    EmptyName,
    #[error("no field can be encoded")]
    NoFields,
}

/// Appends `metric` as one line (with its `\n`) to `out`. On `Err`, `out` is left unchanged.
pub fn write_metric(out: &mut String, metric: &Metric, options: Options) -> Result<(), SkipReason> {
    if metric.name.is_empty() {
        return Err(SkipReason::EmptyName);
    }
    let start = out.len();
    escape_into(out, &metric.name, Escapes::Name);
    let tags = metric.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
    if metric.tags.is_sorted_by(|a, b| a.0 <= b.0) {
        write_tags(out, tags);
    } else {
        // The metric keeps its tags sorted, but a hand-built one may not.
        let mut sorted: Vec<(&str, &str)> = tags.collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        write_tags(out, sorted.into_iter());
    }
    let mut separator = ' ';
    for (key, value) in &metric.fields {
        if key.is_empty() || !encodable(value) {
            continue;
        }
        out.push(separator);
        separator = ',';
        escape_into(out, key, Escapes::Key);
        out.push('=');
        write_value(out, value, options);
    }
    if separator == ' ' {
        out.truncate(start);
        return Err(SkipReason::NoFields);
    }
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(metric.time_ns));
    out.push('\n');
    Ok(())
}

fn write_tags<'t>(out: &mut String, tags: impl Iterator<Item = (&'t str, &'t str)>) {
    for (key, value) in tags {
        let key = key.trim_end_matches('\\');
        let value = value.trim_end_matches('\\');
        if key.is_empty() || value.is_empty() {
            continue;
        }
        out.push(',');
        escape_into(out, key, Escapes::Key);
        out.push('=');
        escape_into(out, value, Escapes::Key);
    }
}

/// A finite float as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that reads
/// back exactly, never in exponent form. Whole numbers below 2^53 (most counters and gauges)
/// take the integer path; the rest go through Rust's `Display`, which has the same contract.
fn write_float(out: &mut String, value: f64) {
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT_INTEGERS {
        if value == 0.0 && value.is_sign_negative() {
            out.push_str("-0");
        } else {
            out.push_str(itoa::Buffer::new().format(value as i64));
        }
    } else {
        let _ = write!(out, "{value}");
    }
}

fn encodable(value: &FieldValue) -> bool {
    match value {
        FieldValue::Float(f) => f.is_finite(),
        _ => true,
    }
}

fn write_value(out: &mut String, value: &FieldValue, options: Options) {
    let mut digits = itoa::Buffer::new();
    let _ = match value {
        FieldValue::Float(f) => {
            write_float(out, *f);
            Ok(())
        }
        FieldValue::Int(i) => {
            out.push_str(digits.format(*i));
            out.push('i');
            Ok(())
        }
        FieldValue::UInt(u) if options.uint_support => {
            out.push_str(digits.format(*u));
            out.push('u');
            Ok(())
        }
        FieldValue::UInt(u) => {
            out.push_str(digits.format((*u).min(i64::MAX as u64)));
            out.push('i');
            Ok(())
        }
        FieldValue::Bool(b) => write!(out, "{b}"),
        FieldValue::Str(s) => {
            out.push('"');
            escape_into(out, s, Escapes::StringField);
            out.push('"');
            Ok(())
        }
    };
}

#[derive(Clone, Copy)]
enum Escapes {
    Name,
    Key,
    StringField,
}

/// Which bytes each position escapes, as 256-entry lookup tables (names are scanned per metric,
/// so this is the serializer's hot loop).
const fn table(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}
const NAME_ESCAPES: [bool; 256] = table(b"\t\n\x0c\r, ");
const KEY_ESCAPES: [bool; 256] = table(b"\t\n\x0c\r, =");
const STRING_ESCAPES: [bool; 256] = table(b"\t\n\x0c\r\"\\");

fn escape_into(out: &mut String, text: &str, escapes: Escapes) {
    let table = match escapes {
        Escapes::Name => &NAME_ESCAPES,
        Escapes::Key => &KEY_ESCAPES,
        Escapes::StringField => &STRING_ESCAPES,
    };
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|&b| table[b as usize]) else {
        out.push_str(text);
        return;
    };
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate().skip(first) {
        if !table[byte as usize] {
            continue;
        }
        // Every escaped byte is ASCII, so these are character boundaries.
        out.push_str(&text[start..index]);
        out.push_str(match byte {
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            b',' => "\\,",
            b' ' => "\\ ",
            b'=' => "\\=",
            b'"' => "\\\"",
            _ => "\\\\",
        });
        start = index + 1;
    }
    out.push_str(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn line(metric: &Metric) -> String {
        let mut out = String::new();
        write_metric(&mut out, metric, Options::default()).expect("written");
        out
    }

    fn metric<'a>(
        name: &'a str,
        tags: &[(&'a str, &'a str)],
        fields: Vec<(&'a str, FieldValue<'a>)>,
    ) -> Metric<'a> {
        Metric {
            name: Cow::Borrowed(name),
            tags: tags
                .iter()
                .map(|&(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
                .collect(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect(),
            time_ns: 1_484_687_749_000_000_000,
        }
    }

    #[test]
    fn the_tutorial_line_is_written_as_telegraf_writes_it() {
        let m = metric(
            "requests",
            &[
                ("deployment", "app"),
                ("host", "app-3850222329-gmxln"),
                ("url", "http://localhost:8000/metrics"),
            ],
            vec![("counter", FieldValue::Float(42.0))],
        );
        assert_eq!(
            line(&m),
            "requests,deployment=app,host=app-3850222329-gmxln,url=http://localhost:8000/metrics counter=42 1484687749000000000\n"
        );
    }

    #[test]
    fn numbers_are_formatted_like_go_strconv() {
        let cases = [
            (FieldValue::Float(42.0), "42"),
            (FieldValue::Float(0.1), "0.1"),
            (FieldValue::Float(-0.0), "-0"),
            (FieldValue::Float(1e21), "1000000000000000000000"),
            (FieldValue::Float(1.5e-7), "0.00000015"),
            (FieldValue::Float(181_784_576.0), "181784576"),
            (FieldValue::Float(1_484_687_749.21), "1484687749.21"),
            (FieldValue::Int(-3), "-3i"),
            (FieldValue::UInt(u64::MAX), "9223372036854775807i"),
            (FieldValue::UInt(7), "7i"),
            (FieldValue::Bool(true), "true"),
        ];
        for (value, text) in cases {
            let m = metric("m", &[], vec![("v", value)]);
            assert_eq!(line(&m), format!("m v={text} 1484687749000000000\n"));
        }
        let mut out = String::new();
        let m = metric("m", &[], vec![("v", FieldValue::UInt(7))]);
        write_metric(&mut out, &m, Options { uint_support: true }).unwrap();
        assert_eq!(out, "m v=7u 1484687749000000000\n");
    }

    #[test]
    fn special_characters_are_escaped_per_position() {
        let m = metric(
            "cpu load,x=y",
            &[("ta g=", "v,a l\tue")],
            vec![("f ie=ld", FieldValue::Str("say \"hi\"\\ \n".into()))],
        );
        assert_eq!(
            line(&m),
            "cpu\\ load\\,x=y,ta\\ g\\==v\\,a\\ l\\tue f\\ ie\\=ld=\"say \\\"hi\\\"\\\\ \\n\" 1484687749000000000\n"
        );
    }

    #[test]
    fn tags_are_sorted_and_empty_or_backslash_ended_ones_fixed() {
        let m = metric(
            "m",
            &[
                ("z", "1"),
                ("a", "2"),
                ("empty", ""),
                ("slash", "x\\\\"),
                ("only", "\\"),
            ],
            vec![("v", FieldValue::Int(1))],
        );
        assert_eq!(line(&m), "m,a=2,slash=x,z=1 v=1i 1484687749000000000\n");
    }

    #[test]
    fn unencodable_fields_are_dropped_and_fieldless_metrics_skipped() {
        let m = metric(
            "m",
            &[],
            vec![
                ("nan", FieldValue::Float(f64::NAN)),
                ("ok", FieldValue::Float(1.0)),
                ("inf", FieldValue::Float(f64::INFINITY)),
                ("", FieldValue::Float(2.0)),
            ],
        );
        assert_eq!(line(&m), "m ok=1 1484687749000000000\n");

        let mut out = String::from("previous\n");
        let only_nan = metric("m", &[("t", "v")], vec![("v", FieldValue::Float(f64::NAN))]);
        assert_eq!(
            write_metric(&mut out, &only_nan, Options::default()),
            Err(SkipReason::NoFields)
        );
        assert_eq!(
            out, "previous\n",
            "nothing of a skipped metric is left behind"
        );
        let nameless = metric("", &[], vec![("v", FieldValue::Int(1))]);
        assert_eq!(
            write_metric(&mut out, &nameless, Options::default()),
            Err(SkipReason::EmptyName)
        );
    }

    #[test]
    fn output_parses_back_with_the_influxdb_rules() {
        // Every written line must be one line: escapes keep newlines out of it.
        let m = metric(
            "a\nb",
            &[("k\n", "v\r\n")],
            vec![("f\n", FieldValue::Str("x\ny".into()))],
        );
        let text = line(&m);
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
    }

    proptest::proptest! {
        #[test]
        fn the_integer_fast_path_writes_what_display_writes(value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL, whole in -1e16f64..1e16) {
            for v in [value, whole.trunc()] {
                let mut out = String::new();
                write_float(&mut out, v);
                proptest::prop_assert_eq!(out, format!("{v}"));
            }
        }

        #[test]
        fn any_metric_is_one_line_or_skipped(
            name in "\\PC{0,8}",
            key in "\\PC{0,6}",
            value in "\\PC{0,6}",
            field in "\\PC{0,6}",
            number in proptest::num::f64::ANY,
        ) {
            let m = metric(&name, &[(&key, &value)], vec![(&field, FieldValue::Float(number))]);
            let mut out = String::new();
            if write_metric(&mut out, &m, Options::default()).is_ok() {
                proptest::prop_assert!(out.ends_with('\n'));
                proptest::prop_assert_eq!(out.matches('\n').count(), 1);
            } else {
                proptest::prop_assert!(out.is_empty());
            }
        }
    }
}
