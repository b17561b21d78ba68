//! Secret and agent names, validated once where a string becomes a name.
//!
//! Secret names: 1–128 characters of `a-z 0-9 . _ - /`, starting with a letter or digit,
//! no `//`, no `..`. Agent names: 1–64 characters of `a-z 0-9 . _ -`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid name. The offending input is not echoed whole: it may be
/// huge or hold control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} name must start with a lower-case letter or a digit")]
    BadStart { kind: &'static str },
    #[error("{kind} name may only hold {allowed}; found {found}")]
    BadChar {
        kind: &'static str,
        allowed: &'static str,
        found: String,
    },
    #[error("secret name must not contain `//` or `..`")]
    BadSequence,
}

const SECRET_ALLOWED: &str = "a-z 0-9 . _ - /";
const AGENT_ALLOWED: &str = "a-z 0-9 . _ -";

fn describe(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("`{c}`")
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

fn check(
    s: &str,
    kind: &'static str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(u8) -> bool,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii() || !ok(*c as u8)) {
        return Err(NameError::BadChar {
            kind,
            allowed,
            found: describe(c),
        });
    }
    if s.len() > max {
        return Err(NameError::TooLong { kind, max });
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(NameError::BadStart { kind });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $validate:path) => {
        $(#[$doc])*
        ///
        /// Shared, not copied: a clone (one per request on the hot path) is a reference
        /// count, not an allocation.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `s` and makes it a name.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                $validate(&s)?;
                Ok(Self(Arc::from(s)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn validate_secret(s: &str) -> Result<(), NameError> {
    check(s, "secret", 128, SECRET_ALLOWED, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'/')
    })?;
    if s.contains("//") || s.contains("..") {
        return Err(NameError::BadSequence);
    }
    Ok(())
}

fn validate_agent(s: &str) -> Result<(), NameError> {
    check(s, "agent", 64, AGENT_ALLOWED, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
    })
}

name_type!(
    /// A secret's name, such as `github/token`.
    SecretName,
    validate_secret
);
name_type!(
    /// An agent's name, such as `ci-runner`.
    AgentName,
    validate_agent
);

impl SecretName {
    /// The environment variable `keygate exec -s NAME` sets: upper case, every character
    /// outside `[A-Z0-9]` becomes `_` (`openai/api-key` → `OPENAI_API_KEY`).
    pub fn env_var(&self) -> String {
        self.0
            .chars()
            .map(|c| {
                let c = c.to_ascii_uppercase();
                if c.is_ascii_uppercase() || c.is_ascii_digit() {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for ok in ["github/token", "a", "0.x_y-z/w", &"a".repeat(128)] {
            assert!(SecretName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            ".a",
            "-a",
            "a//b",
            "a/../b",
            "a..b",
            "A",
            "a b",
            "a\0b",
            "а", // Cyrillic a
            &"a".repeat(129),
        ] {
            assert!(SecretName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn agent_names() {
        assert!(AgentName::new("ci-runner.1_x").is_ok());
        assert!(AgentName::new("ci/runner").is_err());
        assert!(AgentName::new("a".repeat(65)).is_err());
        assert!(AgentName::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn env_var_mapping() {
        let n = SecretName::new("openai/api-key").unwrap();
        assert_eq!(n.env_var(), "OPENAI_API_KEY");
        assert_eq!(SecretName::new("db.v2/pw").unwrap().env_var(), "DB_V2_PW");
    }

    #[test]
    fn errors_do_not_echo_input() {
        let e = SecretName::new("x".repeat(10_000)).unwrap_err().to_string();
        assert!(e.len() < 100);
        let e = SecretName::new("a\u{7}b").unwrap_err().to_string();
        assert!(e.contains("U+0007"), "{e}");
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<SecretName>("\"ok/name\"").is_ok());
        assert!(serde_json::from_str::<SecretName>("\"../etc\"").is_err());
    }
}
