//! What is wrong with a policy file ([`PolicyError`]) and what is merely surprising in it
//! ([`PolicyWarning`]). Both print as one line, `file:line:column: where: key `k`: what`,
//! the shape compilers use, so editors and terminals make them clickable.

use std::fmt;

/// A reason the policy file was refused. Nothing of a refused file is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The `origin` given to [`crate::Policy::parse`], usually the file's path.
    pub origin: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Which part of the file, for people: `rule "ci reads"`, `approver group "ops"`,
    /// `[defaults]`; empty at the top level and for TOML syntax errors.
    pub context: String,
    /// The offending key (`approvers`, `ttl`, ...); empty when no key is involved, as in
    /// most TOML syntax errors.
    pub key: String,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(
            f,
            &self.origin,
            self.line,
            self.column,
            &self.context,
            &self.key,
            &self.message,
        )
    }
}

/// Which kind of surprise a [`PolicyWarning`] reports, for programs that act on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// Earlier rules match everything this rule matches, so it never decides.
    ShadowedRule,
    /// A key that has no effect on this rule's action (`reuse` on `allow`, `ttl` on `deny`).
    IneffectiveKey,
    /// An approver group no rule names.
    UnusedGroup,
}

/// Something valid but probably not what the author meant. The policy is still used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning {
    pub kind: WarningKind,
    pub origin: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// As in [`PolicyError::context`].
    pub context: String,
    /// The key concerned, or empty.
    pub key: String,
    pub message: String,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("warning: ")?;
        write_located(
            f,
            &self.origin,
            self.line,
            self.column,
            &self.context,
            &self.key,
            &self.message,
        )
    }
}

fn write_located(
    f: &mut fmt::Formatter<'_>,
    origin: &str,
    line: usize,
    column: usize,
    context: &str,
    key: &str,
    message: &str,
) -> fmt::Result {
    write!(f, "{origin}:{line}:{column}: ")?;
    // One line, whatever the file holds: keys may be quoted TOML strings with newlines in.
    if !context.is_empty() {
        write_one_line(f, context)?;
        f.write_str(": ")?;
    }
    if !key.is_empty() {
        f.write_str("key `")?;
        write_one_line(f, key)?;
        f.write_str("`: ")?;
    }
    for (i, part) in message.lines().enumerate() {
        if i > 0 {
            f.write_str("; ")?;
        }
        write_one_line(f, part)?;
    }
    Ok(())
}

/// Writes `text` with control characters escaped, cut short if it is very long.
fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    const MAX: usize = 200;
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            return f.write_str("…");
        }
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// Shows text taken from the file inside a message: quoted, escaped (so a message stays one
/// line) and cut short (so a pasted blob does not flood the terminal).
pub(crate) fn shown(text: &str) -> String {
    const MAX: usize = 40;
    let mut cut: String = text.chars().take(MAX).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line() {
        let e = PolicyError {
            origin: "policies.toml".into(),
            line: 12,
            column: 9,
            context: "rule \"x\"".into(),
            key: "approvers".into(),
            message: "unknown approver group \"opz\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "policies.toml:12:9: rule \"x\": key `approvers`: unknown approver group \"opz\""
        );
        let e = PolicyError {
            context: String::new(),
            key: String::new(),
            message: "a\nb".into(),
            ..e
        };
        assert_eq!(e.to_string(), "policies.toml:12:9: a; b");
        let e = PolicyError {
            key: "a\nb".into(),
            context: "x\ty".into(),
            message: "m\r".into(),
            ..e
        };
        assert_eq!(
            e.to_string(),
            "policies.toml:12:9: x\\ty: key `a\\nb`: m\\r"
        );
    }

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        assert_eq!(shown(&"x".repeat(100)), format!("\"{}…\"", "x".repeat(40)));
    }
}
