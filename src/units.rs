//! Durations (`15m`, `250ms`), byte sizes (`20GB`, `512MiB`) and times (`2026-01-31`) as
//! config files and flags write them.

use std::time::Duration;

/// A duration or size a config file (or flag) wrote that does not read; the key it came
/// from is named by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A number without a unit.
    #[error("'{0}' has no unit; write e.g. 30s, 15m, 6h or 1d")]
    NoUnit(String),
    /// Not a number.
    #[error("'{value}' does not start with a whole number; write e.g. {example}")]
    #[allow(missing_docs)] // the message names them
    NotANumber {
        value: String,
        example: &'static str,
    },
    /// A unit this key does not know.
    #[error("'{value}' has unknown unit '{unit}'; use {known}")]
    #[allow(missing_docs)] // the message names them
    UnknownUnit {
        value: String,
        unit: String,
        known: &'static str,
    },
    /// A value that overflows.
    #[error("'{0}' is too large")]
    TooLarge(String),
    /// Not a date or a time.
    #[error("'{0}' is not a time; write 2026-01-31 or 2026-01-31T00:00:00Z")]
    NotATime(String),
}

/// Parses RFC 3339 or a plain UTC date.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, UnitError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(UnitError::NotATime(s.to_string()))
}

/// Parses a duration such as `15m`, `6h`, `1d`, `30s`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| UnitError::NoUnit(s.to_string()))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| UnitError::NotANumber {
        value: s.to_string(),
        example: "15m",
    })?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(UnitError::UnknownUnit {
                value: s.to_string(),
                unit: unit.to_string(),
                known: "ms, s, m, h or d",
            })
        }
    };
    Ok(Duration::from_secs(secs))
}

/// A duration as a config file would write it (`100ms`, `60s`, `1d`): what
/// [`parse_duration`] reads back.
pub fn format_duration(d: Duration) -> String {
    match d.as_millis() {
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// `812 B`, `3.4 KiB`, `12.0 MiB`: a size as people read it.
pub fn format_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / 1_048_576.0),
    }
}

/// Parses a byte size such as `20GB`, `512MiB`, `1500000` (decimal and binary units).
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| UnitError::NotANumber {
        value: s.to_string(),
        example: "20GB",
    })?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        u => {
            return Err(UnitError::UnknownUnit {
                value: s.to_string(),
                unit: u.to_string(),
                known: "B, KB, MB, GB, TB or KiB, MiB, GiB, TiB",
            })
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| UnitError::TooLarge(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("15"), Err(UnitError::NoUnit("15".into())));
        let e = parse_duration("3w").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'3w' has unknown unit 'w'; use ms, s, m, h or d"
        );
        for d in ["100ms", "45s", "90s", "1m", "15m", "6h", "1d"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("20GB").unwrap(), 20_000_000_000);
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1500").unwrap(), 1500);
        assert!(matches!(
            parse_bytes("GB"),
            Err(UnitError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_bytes("3 parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_bytes("99999999999999TB"),
            Err(UnitError::TooLarge(_))
        ));
    }
}
