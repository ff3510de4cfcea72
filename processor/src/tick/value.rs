//! Typed values of `var`s and node arguments, task-level `vars` overrides, and durations.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::lambda::Lambda;

/// Nanoseconds per duration unit, as accepted after a whole number (`10s`, `1µs`).
pub fn unit_nanos(unit: &str) -> Option<i64> {
    Some(match unit {
        "ns" => 1,
        "u" | "us" | "µ" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => return None,
    })
}

/// Parses a duration literal such as `10s` or `100ms` into nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "invalid duration `{text}`: expected digits then a unit"
        ));
    }
    let per_unit = unit_nanos(unit).ok_or_else(|| {
        format!("invalid duration `{text}`: units are ns, u (or µs), ms, s, m, h, d, w")
    })?;
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

/// Formats nanoseconds like Go's `time.Duration.String()`: `0s`, `1.5µs`, `100ms`, `1m30s`.
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let negative = nanos < 0;
    let abs = nanos.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    if abs < 1_000_000_000 {
        let (unit, scale) = if abs < 1_000 {
            ("ns", 1)
        } else if abs < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", fraction(abs, scale));
    }
    let hours = abs / 3_600_000_000_000;
    let minutes = (abs / 60_000_000_000) % 60;
    let secs = fraction(abs % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

/// `value / scale` with the fraction's trailing zeros removed (`1500, 1000` -> `1.5`).
fn fraction(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Formats nanoseconds the way TICKscript writes durations: the largest unit that divides it.
pub fn format_tick_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    for (unit, per) in [
        ("w", 604_800_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("u", 1_000),
    ] {
        if nanos % per == 0 {
            return format!("{}{unit}", nanos / per);
        }
    }
    format!("{nanos}ns")
}

/// Removes the backslash before an escaped `quote` (`\'` in strings, `\"` in references,
/// `\/` in regexes); other backslashes stay, as in Kapacitor.
pub fn unescape(body: &str, quote: char) -> Cow<'_, str> {
    let escaped = format!("\\{quote}");
    if body.contains(&escaped) {
        Cow::Owned(body.replace(&escaped, &quote.to_string()))
    } else {
        Cow::Borrowed(body)
    }
}

/// The type of a `var` (and of a task vars override), named as in Kapacitor's vars JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    Bool,
    Int,
    Float,
    String,
    Duration,
    Regex,
    Lambda,
    Star,
    List,
}

impl VarType {
    pub fn name(self) -> &'static str {
        match self {
            VarType::Bool => "bool",
            VarType::Int => "int",
            VarType::Float => "float",
            VarType::String => "string",
            VarType::Duration => "duration",
            VarType::Regex => "regex",
            VarType::Lambda => "lambda",
            VarType::Star => "star",
            VarType::List => "list",
        }
    }

    /// The type named in a `var name type` declaration.
    pub fn from_name(name: &str) -> Option<VarType> {
        Some(match name {
            "bool" => VarType::Bool,
            "int" => VarType::Int,
            "float" => VarType::Float,
            "string" => VarType::String,
            "duration" => VarType::Duration,
            "regex" => VarType::Regex,
            "lambda" => VarType::Lambda,
            "star" => VarType::Star,
            "list" => VarType::List,
            _ => return None,
        })
    }
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compiled regular expression, shown as its TICKscript source `/.../`.
#[derive(Debug, Clone)]
pub struct Regex(pub regex::Regex);

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// A bound value: what a `var` holds and what node arguments are.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// Nanoseconds (may be negative).
    Duration(i64),
    Regex(Regex),
    Lambda(Lambda),
    Star,
    List(Vec<Value>),
}

impl Value {
    pub fn var_type(&self) -> VarType {
        match self {
            Value::Bool(_) => VarType::Bool,
            Value::Int(_) => VarType::Int,
            Value::Float(_) => VarType::Float,
            Value::String(_) => VarType::String,
            Value::Duration(_) => VarType::Duration,
            Value::Regex(_) => VarType::Regex,
            Value::Lambda(_) => VarType::Lambda,
            Value::Star => VarType::Star,
            Value::List(_) => VarType::List,
        }
    }
}

impl fmt::Display for Value {
    /// TICKscript syntax for the value (`'s'`, `10s`, `/re/`, `lambda: ...`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(true) => f.write_str("TRUE"),
            Value::Bool(false) => f.write_str("FALSE"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) if x.is_finite() && x.fract() == 0.0 => write!(f, "{x:.1}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => write!(f, "'{}'", s.replace('\'', "\\'")),
            Value::Duration(d) => f.write_str(&format_tick_duration(*d)),
            Value::Regex(r) => write!(f, "/{}/", r.0.as_str().replace('/', "\\/")),
            Value::Lambda(l) => write!(f, "lambda: {}", l.source()),
            Value::Star => f.write_str("*"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One task-level var override, as in `kapacitor define -vars FILE`:
/// `{"type": "int", "value": 10}`. Durations are a string (`"10s"`) or integer nanoseconds;
/// lambdas are the expression text after `lambda:`; regexes the pattern without slashes;
/// lists an array of `{"type", "value"}` objects; star has no value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskVar {
    #[serde(rename = "type")]
    pub kind: VarType,
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// Task vars by name; they replace the script's `var` values before binding.
pub type VarOverrides = BTreeMap<String, TaskVar>;

/// Parses a vars file (`kapacitor define -vars FILE`).
pub fn parse_vars_json(text: &str) -> Result<VarOverrides, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_literals_convert_to_nanoseconds() {
        assert_eq!(parse_duration("1m"), Ok(60_000_000_000));
        assert_eq!(parse_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_duration("1µs"), Ok(1_000));
        assert_eq!(parse_duration("1u"), Ok(1_000));
        assert_eq!(parse_duration("7ns"), Ok(7));
        assert_eq!(parse_duration("1w"), Ok(604_800_000_000_000));
    }

    #[test]
    fn oversized_or_unitless_durations_are_rejected() {
        assert!(parse_duration("99999999999w").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn go_duration_format_matches_kapacitor_stats() {
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(1_500), "1.5µs");
        assert_eq!(format_go_duration(999), "999ns");
        assert_eq!(format_go_duration(2_000_000), "2ms");
        assert_eq!(format_go_duration(90_000_000_000), "1m30s");
        assert_eq!(format_go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go_duration(1_250_000_000), "1.25s");
        assert_eq!(format_go_duration(-1_500), "-1.5µs");
    }

    #[test]
    fn tick_duration_format_uses_the_largest_exact_unit() {
        assert_eq!(format_tick_duration(120_000_000_000), "2m");
        assert_eq!(format_tick_duration(1_500_000_000), "1500ms");
        assert_eq!(format_tick_duration(7), "7ns");
    }

    #[test]
    fn vars_json_reads_kapacitor_shape() {
        let vars = parse_vars_json(r#"{"n": {"type": "int", "value": 10}, "s": {"type": "star"}}"#)
            .unwrap();
        assert_eq!(vars["n"].kind, VarType::Int);
        assert_eq!(vars["n"].value, serde_json::json!(10));
        assert_eq!(vars["s"].kind, VarType::Star);
    }

    #[test]
    fn unescape_only_touches_the_quote() {
        assert_eq!(unescape(r"it\'s \d", '\''), r"it's \d");
        assert!(matches!(unescape("plain", '\''), Cow::Borrowed(_)));
    }
}
