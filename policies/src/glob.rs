//! The patterns in `agents` and `secrets`: `*` matches any run of characters (`/`
//! included), `?` exactly one, everything else itself.
//!
//! Patterns are compiled once, when the policy is read, into a short token list; matching
//! then allocates nothing and runs the classic two-pointer wildcard algorithm, which
//! backtracks only to the most recent `*` and so takes at most `O(pattern × name)` steps,
//! never exponential time, whatever the pattern.

use std::fmt;

/// One compiled `agents`/`secrets` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Characters that must appear exactly.
    Literal(Box<str>),
    /// `?`
    One,
    /// `*` (several in a row are one).
    Star,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("empty pattern: it would match nothing (write `*` to match everything)")]
    Empty,
    #[error(
        "pattern {pattern} holds {found}, which no {kind} name can contain: {kind} names are {allowed}, and patterns add `*` and `?`"
    )]
    BadChar {
        pattern: String,
        found: String,
        kind: &'static str,
        allowed: &'static str,
    },
}

/// Which names a pattern is for; each has its own alphabet (agent names have no `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Agent,
    Secret,
}

impl NameKind {
    fn allows(self, b: u8) -> bool {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'.' | b'_' | b'-')
            || (b == b'/' && self == NameKind::Secret)
    }

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            NameKind::Agent => ("agent", "a-z 0-9 . _ -"),
            NameKind::Secret => ("secret", "a-z 0-9 . _ - /"),
        }
    }
}

impl Glob {
    /// Compiles `pattern` for names of `kind`, refusing characters those names can never
    /// hold: a pattern like `GitHub/*` would silently match nothing, and a policy that
    /// quietly never fires is worse than one that refuses to load.
    pub fn new(pattern: &str, kind: NameKind) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if let Some(c) = pattern
            .chars()
            .find(|&c| !(matches!(c, '*' | '?') || c.is_ascii() && kind.allows(c as u8)))
        {
            let (kind, allowed) = kind.describe();
            return Err(GlobError::BadChar {
                pattern: crate::error::shown(pattern),
                found: describe_char(c),
                kind,
                allowed,
            });
        }
        let mut tokens = Vec::new();
        let mut literal_start = None;
        for (i, c) in pattern.char_indices() {
            if matches!(c, '*' | '?') {
                if let Some(start) = literal_start.take() {
                    tokens.push(Token::Literal(pattern[start..i].into()));
                }
                if c == '?' {
                    tokens.push(Token::One);
                } else if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            } else if literal_start.is_none() {
                literal_start = Some(i);
            }
        }
        if let Some(start) = literal_start {
            tokens.push(Token::Literal(pattern[start..].into()));
        }
        Ok(Glob {
            pattern: pattern.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Does `name` match? Names are ASCII (keygate's name types guarantee it); on other
    /// text `?` matches one byte, and nothing panics.
    pub fn matches(&self, name: &str) -> bool {
        let text = name.as_bytes();
        let tokens = self.tokens.as_slice();
        let (mut p, mut t) = (0, 0);
        // After a mismatch, resume at the token after the last `*`, with that star having
        // swallowed one more character than before.
        let mut resume: Option<(usize, usize)> = None;
        loop {
            let advanced = match tokens.get(p) {
                Some(Token::Star) => {
                    resume = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                Some(Token::One) if t < text.len() => Some(1),
                Some(Token::Literal(lit))
                    if text
                        .get(t..)
                        .is_some_and(|rest| rest.starts_with(lit.as_bytes())) =>
                {
                    Some(lit.len())
                }
                None if t == text.len() => return true,
                Some(_) | None => None,
            };
            if let Some(n) = advanced {
                p += 1;
                t += n;
                continue;
            }
            match resume {
                Some((after_star, swallowed)) if swallowed < text.len() => {
                    resume = Some((after_star, swallowed + 1));
                    p = after_star;
                    t = swallowed + 1;
                }
                _ => return false,
            }
        }
    }

    /// Does every name this pattern's `other` matches also match `self`? Conservative: a
    /// `true` is always right, a `false` may be wrong. It knows three cases: `*` covers
    /// everything, a pattern covers itself, and `p*` covers any pattern that begins with
    /// the literal text `p`. Used to warn about rules that can never decide, where a false
    /// alarm would teach people to ignore the warnings.
    pub fn covers(&self, other: &Glob) -> bool {
        match self.tokens.as_slice() {
            [Token::Star] => true,
            _ if self.tokens == other.tokens => true,
            [Token::Literal(prefix), Token::Star] => matches!(
                other.tokens.first(),
                Some(Token::Literal(lit)) if lit.starts_with(&**prefix)
            ),
            _ => false,
        }
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

fn describe_char(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("`{c}`")
    } else if c == ' ' {
        "a space".to_owned()
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::new(p, NameKind::Secret).unwrap()
    }

    #[test]
    fn matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "a/b/c", true),
            ("github/*", "github/token", true),
            ("github/*", "github/", true),
            ("github/*", "github", false),
            ("github/*", "gitlab/token", false),
            ("*/token", "a/b/token", true),
            ("?", "a", true),
            ("?", "", false),
            ("?", "ab", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*bc", "abcbc", true),
            ("a*abc", "aabab", false),
            ("**a", "a", true),
            ("ci-*", "ci-runner", true),
            ("ci-*", "cd-runner", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*x*", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ];
        for &(p, name, want) in cases {
            assert_eq!(g(p).matches(name), want, "{p:?} vs {name:?}");
        }
    }

    #[test]
    fn no_exponential_blowup() {
        let p = g(&"*a".repeat(30));
        let name = "a".repeat(29) + "b";
        assert!(!p.matches(&name.repeat(4)));
    }

    #[test]
    fn refuses_bad_patterns() {
        assert_eq!(Glob::new("", NameKind::Agent), Err(GlobError::Empty));
        for bad in ["Ci-*", "ci runner", "a[b]", "é", "a\n"] {
            assert!(Glob::new(bad, NameKind::Secret).is_err(), "{bad:?}");
        }
        assert!(Glob::new("ci/*", NameKind::Agent).is_err());
        assert!(Glob::new("ci/*", NameKind::Secret).is_ok());
        let e = Glob::new("a b", NameKind::Agent).unwrap_err().to_string();
        assert!(e.contains("a space"), "{e}");
    }

    #[test]
    fn coverage() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything/*", true),
            ("**", "x", true),
            ("a/b", "a/b", true),
            ("github/*", "github/token", true),
            ("github/*", "github/t*", true),
            ("github/*", "github/*", true),
            ("github/*", "git*", false),
            ("github/*", "*", false),
            ("a?", "ab", false),
            ("a*b", "axb", false),
            ("x", "*", false),
        ];
        for &(a, b, want) in cases {
            assert_eq!(g(a).covers(&g(b)), want, "{a:?} covers {b:?}");
        }
    }
}
