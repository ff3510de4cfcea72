//! Durations as Telegraf's config reads them: Go's `time.ParseDuration` strings (`"10s"`,
//! `"1m30s"`, `"250ms"`), or a bare number of seconds.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("invalid duration {0:?}")]
    Invalid(String),
    #[error("missing unit in duration {0:?} (use ns, us, ms, s, m or h)")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    #[error("negative duration {0:?}")]
    Negative(String),
    #[error("duration {0:?} is too long")]
    Overflow(String),
}

/// Parses a Go duration: a sequence of decimal numbers, each with an optional fraction and a
/// unit (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), such as `"1h15m"`, `"1.5s"` or `"0"`.
/// Negative durations are refused: no setting of the agent can use one.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(input.to_owned());
    let mut rest = input;
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    } else if rest.starts_with('-') {
        return Err(DurationError::Negative(input.to_owned()));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(DurationError::MissingUnit(input.to_owned())),
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_owned(),
                    input: input.to_owned(),
                });
            }
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| DurationError::Overflow(input.to_owned()))?
        };
        let mut nanos = whole
            .checked_mul(unit_nanos)
            .ok_or_else(|| DurationError::Overflow(input.to_owned()))?;
        // The fraction, exactly: digits beyond nanosecond resolution are truncated, as Go does.
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .filter(|&n| n <= i64::MAX as u128)
            .ok_or_else(|| DurationError::Overflow(input.to_owned()))?;
        rest = after;
    }
    let secs = (total_nanos / 1_000_000_000) as u64;
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_forms_are_read() {
        let cases = [
            ("0", Duration::ZERO),
            ("1s", Duration::from_secs(1)),
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
            (".5m", Duration::from_secs(30)),
            ("250ms", Duration::from_millis(250)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("7ns", Duration::from_nanos(7)),
            ("2h", Duration::from_secs(7200)),
            ("+5s", Duration::from_secs(5)),
            ("1h0m0.000000001s", Duration::new(3600, 1)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_go_duration(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn malformed_durations_are_refused_with_the_reason() {
        assert_eq!(
            parse_go_duration("s"),
            Err(DurationError::Invalid("s".into()))
        );
        assert_eq!(
            parse_go_duration("10"),
            Err(DurationError::MissingUnit("10".into()))
        );
        assert!(matches!(
            parse_go_duration("10d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_go_duration("-1s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_go_duration("1.2.3s"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_go_duration("99999999999h"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_go_duration(""),
            Err(DurationError::Invalid(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn no_string_makes_it_panic(input in "\\PC{0,24}") {
            let _ = parse_go_duration(&input);
        }
    }
}
