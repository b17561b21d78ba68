//! Times in the store's files: RFC 3339 in UTC with nanoseconds, so that an update a moment
//! after a create still sorts after it. For `#[serde(with = "timestamp")]`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize as _, Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    // humantime refuses times before 1970; a clock that far off is clamped, not fatal.
    let t = (*t).max(UNIX_EPOCH);
    s.collect_str(&humantime::format_rfc3339_nanos(t))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_rfc3339_weak(&s)
        .map_err(|e| serde::de::Error::custom(format!("bad time `{s}`: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T(#[serde(with = "super")] std::time::SystemTime);

    #[test]
    fn round_trips_with_nanoseconds() {
        let t = T(std::time::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2023-11-14T22:13:20.123456789Z\"");
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
    }

    #[test]
    fn refuses_garbage() {
        assert!(serde_json::from_str::<T>("\"yesterday\"").is_err());
    }
}
