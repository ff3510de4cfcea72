//! Sizes as Telegraf's config reads them (its `config.Size`): a bare integer of bytes, or a
//! string of digits with a unit, decimal (`B`, `kB`/`KB`, `MB`, `GB`, `TB`: powers of 1000) or
//! binary (`KiB`, `MiB`, `GiB`, `TiB`: powers of 1024), as `"32MiB"` or `"500 kB"`.

/// Why a size string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("invalid size {0:?} (write bytes, or a number with a unit such as \"32MiB\")")]
    Invalid(String),
    #[error("unknown unit {unit:?} in size {input:?} (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")]
    UnknownUnit { unit: String, input: String },
    #[error("size {0:?} is too large")]
    Overflow(String),
}

/// Parses a size string into bytes.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let text = input.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(SizeError::Invalid(input.to_owned()));
    }
    let number: u64 = text[..digits]
        .parse()
        .map_err(|_| SizeError::Overflow(input.to_owned()))?;
    let unit = text[digits..].trim_start();
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "kB" | "KB" | "K" | "k" => 1000,
        "MB" | "M" => 1000_u64.pow(2),
        "GB" | "G" => 1000_u64.pow(3),
        "TB" | "T" => 1000_u64.pow(4),
        "KiB" | "Ki" => 1 << 10,
        "MiB" | "Mi" => 1 << 20,
        "GiB" | "Gi" => 1 << 30,
        "TiB" | "Ti" => 1 << 40,
        _ => {
            return Err(SizeError::UnknownUnit {
                unit: unit.to_owned(),
                input: input.to_owned(),
            });
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| SizeError::Overflow(input.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_telegraf_reads_them() {
        let cases = [
            ("0", 0),
            ("1024", 1024),
            ("10B", 10),
            ("1kB", 1000),
            ("1KB", 1000),
            ("2MB", 2_000_000),
            ("32MiB", 32 << 20),
            ("1 GiB", 1 << 30),
            ("3KiB", 3072),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn sizes_without_digits_with_unknown_units_or_too_large_are_refused() {
        assert!(matches!(parse_size("MiB"), Err(SizeError::Invalid(_))));
        assert!(matches!(parse_size("-1MB"), Err(SizeError::Invalid(_))));
        assert!(matches!(
            parse_size("5 parsecs"),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("99999999999TiB"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(
            parse_size("99999999999999999999999"),
            Err(SizeError::Overflow(_))
        ));
    }
}
