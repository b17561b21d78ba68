//! Secret values: held in zeroizing memory, never printed.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A secret's value. It has no `Display`, its `Debug` prints a placeholder, and its memory
/// is zeroized on drop. Reading it takes an explicit [`SecretValue::expose`].
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Wraps a value. Values are UTF-8 text: they travel in JSON and in environment variables.
    pub fn new(value: String) -> Self {
        Self(SecretString::from(value))
    }

    /// The value itself. Every call site is a place a secret leaves its box; keep them few.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length in bytes (metadata that is safe to record).
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl PartialEq for SecretValue {
    /// Constant-time enough for tests and for change detection; never used to authenticate.
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl<'de> serde::Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let v = SecretValue::new("hunter2".into());
        assert!(!format!("{v:?}").contains("hunter2"));
        assert_eq!(v.expose(), "hunter2");
    }
}
