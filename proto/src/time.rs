//! [`Timestamp`]: a moment as the API carries it, in whole seconds, written as RFC 3339 in
//! UTC (`2026-01-01T00:05:00Z`).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The last second RFC 3339 (and humantime) can write: 9999-12-31T23:59:59Z.
const LAST_SECOND: u64 = 253_402_300_800 - 1;

/// A moment in whole seconds between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
///
/// On the wire and in [`Display`](fmt::Display) it is RFC 3339 in UTC with seconds
/// precision, as `humantime::format_rfc3339_seconds` writes it; [`Timestamp::parse`] (and
/// deserializing) accepts that form, with `Z` or `+00:00` and any fractional seconds
/// (dropped), and refuses anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

/// A string that is not an RFC 3339 UTC time.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("bad time `{shown}`: {reason} (write it like `2026-01-01T00:05:00Z`)")]
pub struct TimestampError {
    shown: String,
    /// Shown in the message, so not also a source.
    reason: humantime::TimestampError,
}

impl Timestamp {
    /// Now, to the second.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Parses an RFC 3339 UTC time.
    pub fn parse(input: &str) -> Result<Self, TimestampError> {
        humantime::parse_rfc3339(input)
            .map(Self::from)
            .map_err(|reason| TimestampError {
                shown: input.chars().take(40).collect(),
                reason,
            })
    }

    /// The moment as a [`SystemTime`].
    pub fn system_time(self) -> SystemTime {
        self.0
    }

    /// How long from now until this moment; zero once it has passed.
    pub fn remaining(self) -> Duration {
        self.0.duration_since(SystemTime::now()).unwrap_or_default()
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(self) -> u64 {
        self.0.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

impl From<SystemTime> for Timestamp {
    /// Drops the fraction of a second; a time before 1970 or after 9999 is moved to the
    /// nearest end of that range (RFC 3339 cannot write it).
    fn from(t: SystemTime) -> Self {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(LAST_SECOND);
        Self(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&humantime::format_rfc3339_seconds(self.0), f)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time such as `2026-01-01T00:05:00Z`")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_rfc3339_in_whole_seconds() {
        let t = Timestamp::from(UNIX_EPOCH + Duration::new(1_767_225_900, 999_999_999));
        assert_eq!(t.to_string(), "2026-01-01T00:05:00Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#""2026-01-01T00:05:00Z""#
        );
        assert_eq!(t.unix_seconds(), 1_767_225_900);
        // The same string as the formatter everything used before this type.
        let now = SystemTime::now();
        assert_eq!(
            Timestamp::from(now).to_string(),
            humantime::format_rfc3339_seconds(now).to_string()
        );
    }

    #[test]
    fn round_trips() {
        let t = Timestamp::now();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        assert_eq!(
            Timestamp::parse("2026-01-01T00:05:00.75+00:00").unwrap(),
            Timestamp::parse("2026-01-01T00:05:00Z").unwrap()
        );
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "soon",
            "2026-01-01",
            "2026-01-01 00:05:00",
            "2026-01-01T00:05:00",
            "2026-01-01T00:05:00+02:00",
            "2026-13-01T00:05:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
            assert!(
                serde_json::from_str::<Timestamp>(&format!("{bad:?}")).is_err(),
                "{bad}"
            );
        }
        let err = serde_json::from_str::<Timestamp>(r#""soon""#).unwrap_err();
        assert!(err.to_string().contains("bad time `soon`"), "{err}");
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }

    #[test]
    fn times_out_of_range_are_clamped_not_a_panic() {
        assert_eq!(
            Timestamp::from(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00Z"
        );
        let far = UNIX_EPOCH + Duration::from_secs(LAST_SECOND + 1000);
        assert_eq!(Timestamp::from(far).to_string(), "9999-12-31T23:59:59Z");
    }
}
