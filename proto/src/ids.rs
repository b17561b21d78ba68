//! Request and grant ids: 128 random bits, URL-safe base64 without padding (22 characters),
//! behind a short prefix that says which kind of id it is (`req_`, `gnt_`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a {kind} id: expected `{prefix}` followed by 22 URL-safe characters")]
    Malformed {
        kind: &'static str,
        prefix: &'static str,
    },
}

const RANDOM_BYTES: usize = 16;
const ENCODED_LEN: usize = 22;

fn random_token() -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    // The OS random source failing is not something a daemon can recover from sensibly;
    // handing out a predictable id would be worse than stopping.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn well_formed(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == ENCODED_LEN
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            const PREFIX: &'static str = $prefix;

            /// A fresh id with 128 bits from the operating system's random source.
            pub fn random() -> Self {
                Self(format!("{}{}", Self::PREFIX, random_token()))
            }

            /// Parses an id a client sent.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if well_formed(s, Self::PREFIX) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::Malformed { kind: $kind, prefix: Self::PREFIX })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// The id of an approval request.
    RequestId,
    "request",
    "req_"
);
id_type!(
    /// The id of a grant.
    GrantId,
    "grant",
    "gnt_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse_and_differ() {
        let a = RequestId::random();
        let b = RequestId::random();
        assert_ne!(a, b);
        assert_eq!(RequestId::parse(a.as_str()).unwrap(), a);
        assert!(GrantId::parse(a.as_str()).is_err());
        assert_eq!(a.as_str().len(), 4 + 22);
    }

    #[test]
    fn malformed_ids() {
        for bad in [
            "",
            "req_",
            "req_short",
            "req_aaaaaaaaaaaaaaaaaaaaa/",
            "gnt_aaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(RequestId::parse(bad).is_err(), "{bad}");
        }
    }
}

/// An account on an approval channel (a Discord user id). Kept apart from [`RoleId`] by
/// type, so one can never be checked as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u64);

/// A role that accounts hold in the approval channel's guild (a Discord role id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleId(pub u64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
