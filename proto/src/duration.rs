//! Durations as people write them (`90s`, `15m`, `1h 30m`), parsed with humantime. Moments
//! are [`crate::Timestamp`]s.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("bad duration `{input}`: {reason} (write it like `90s`, `15m` or `1h 30m`)")]
    Malformed { input: String, reason: String },
    #[error("duration must be longer than zero")]
    Zero,
    #[error("duration `{input}` is too long (at most 366 days)")]
    TooLong { input: String },
}

/// The longest duration keygate accepts anywhere; it keeps time arithmetic far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a positive humantime duration of at most [`MAX_DURATION`].
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let shown: String = input.chars().take(40).collect();
    let d = humantime::parse_duration(input.trim()).map_err(|e| DurationError::Malformed {
        input: shown.clone(),
        reason: e.to_string(),
    })?;
    if d.is_zero() {
        return Err(DurationError::Zero);
    }
    if d > MAX_DURATION {
        return Err(DurationError::TooLong { input: shown });
    }
    Ok(d)
}

/// Formats a duration for people: `15m`, `1h 30m`.
pub fn format(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(matches!(parse("0s"), Err(DurationError::Zero)));
        assert!(matches!(parse("ten"), Err(DurationError::Malformed { .. })));
        assert!(matches!(
            parse("400days"),
            Err(DurationError::TooLong { .. })
        ));
        assert!(parse("99999999999999999999999h").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format(Duration::from_secs(5400)), "1h 30m");
    }
}
