//! The `Retry-After` header of a 429 (or 503) answer: a number of seconds, or an HTTP date
//! (RFC 9110 §10.2.3; all three date forms of §5.6.7 are read). Pure: the clock is an argument.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long `value` asks to wait from `now`; `None` when it is neither form. A date in the past
/// asks for no wait.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to count still means "a long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate), `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850) or
/// `Sun Nov  6 08:49:37 1994` (asctime).
fn http_date(value: &str) -> Option<SystemTime> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let (day, month, year, time) = match tokens.as_slice() {
        [_, day, month, year, time, "GMT"] => (*day, *month, number(year)?, *time),
        [_, date, time, "GMT"] => {
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || year.len() != 2 {
                return None;
            }
            // Two-digit years: RFC 9110 reads far-future ones as the past century.
            let year = number(year)?;
            (
                day,
                month,
                if year < 70 { 2000 + year } else { 1900 + year },
                *time,
            )
        }
        [_, month, day, time, year] => (*day, *month, number(year)?, *time),
        _ => return None,
    };
    let day = number(day)?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let mut clock = time.split(':');
    let (hour, minute, second) = (
        number(clock.next()?)?,
        number(clock.next()?)?,
        number(clock.next()?)?,
    );
    if clock.next().is_some()
        || !(1..=31).contains(&day)
        || !(1970..=9999).contains(&year)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// Days from 1970-01-01 to `year-month-day` (year in 1970..=9999, month in 1..=12).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    const DAYS_BEFORE_MONTH: [u64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let whole_years: u64 = (1970..year)
        .map(|y| if is_leap(y) { 366 } else { 365 })
        .sum();
    let leap_day = u64::from(month > 2 && is_leap(year));
    whole_years + DAYS_BEFORE_MONTH[(month - 1) as usize] + leap_day + day - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06 08:49:37 UTC, the RFC's example.
    const EXAMPLE: u64 = 784_111_777;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn seconds_and_the_three_date_forms_are_read() {
        let now = at(EXAMPLE - 120);
        assert_eq!(parse("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse(date, now), Some(Duration::from_secs(120)), "{date}");
        }
        assert_eq!(
            parse("Thu, 29 Feb 2024 00:00:00 GMT", at(1_709_164_800 - 1)),
            Some(Duration::from_secs(1)),
            "leap day"
        );
    }

    #[test]
    fn a_past_date_asks_for_no_wait_and_garbage_for_nothing() {
        assert_eq!(
            parse("Thu, 01 Jan 1970 00:00:00 GMT", at(EXAMPLE)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("99999999999999999999999", at(0)),
            Some(Duration::from_secs(u64::MAX))
        );
        for value in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(parse(value, at(EXAMPLE)), None, "{value:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_value_makes_it_panic(value in "\\PC{0,40}", now in 0u64..=u64::from(u32::MAX)) {
            let _ = parse(&value, at(now));
        }
    }
}
