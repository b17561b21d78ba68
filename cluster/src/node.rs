//! A node's name: `KEYGATE_CLUSTER_NODE`, or the host name and process id. It is shown
//! in `keygate status` and held in the Discord lease, so an operator can tell which node
//! runs the bot.

use crate::ClusterError;

/// The longest node name accepted.
pub const MAX_LEN: usize = 64;

/// A node's name: 1–64 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeName(String);

impl NodeName {
    pub fn parse(name: &str) -> Result<Self, ClusterError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(ClusterError::BadNode(format!(
                "KEYGATE_CLUSTER_NODE must be 1–{MAX_LEN} characters of A-Z a-z 0-9 . _ - (got {} bytes)",
                name.len()
            )))
        }
    }

    /// The default: this host's name and this process's id, `HOST-PID`.
    pub fn default_for_this_process() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| {
                h.trim()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    .take(MAX_LEN - 11)
                    .collect::<String>()
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".to_owned());
        Self(format!("{host}-{}", std::process::id()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_LEN, NodeName};

    #[test]
    fn names_are_short_and_plain() {
        assert!(NodeName::parse("node-a").is_ok());
        assert!(NodeName::parse("gw1.eu_west").is_ok());
        assert!(NodeName::parse("").is_err());
        assert!(NodeName::parse("a b").is_err());
        assert!(NodeName::parse("a\nb").is_err());
        assert!(NodeName::parse(&"x".repeat(MAX_LEN + 1)).is_err());
        assert!(NodeName::parse(&"x".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn the_default_is_a_valid_name() {
        let name = NodeName::default_for_this_process();
        assert!(NodeName::parse(name.as_str()).is_ok(), "{name}");
        assert!(name.as_str().ends_with(&format!("-{}", std::process::id())));
    }
}
