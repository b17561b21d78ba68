//! Which secret goes into which environment variable: `-e VAR=SECRET`, `-s SECRET`
//! (SPEC.md's mapping), and variables whose value is `keygate://SECRET`.

use std::collections::BTreeSet;
use std::ffi::OsString;

use keygate_proto::SecretName;

use crate::failure::{Exit, Failure, Outcome};

/// The prefix of a reference in the environment, as `op run` resolves `op://`.
pub const REFERENCE: &str = "keygate://";

/// One variable of the child's environment that holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub var: String,
    pub secret: SecretName,
    /// Where it was asked for, for error messages.
    pub from: &'static str,
}

/// Every binding, checked: at least one, every name valid, no variable set twice.
pub fn collect(
    env_flags: &[String],
    secret_flags: &[SecretName],
    environment: impl IntoIterator<Item = (OsString, OsString)>,
) -> Outcome<Vec<Binding>> {
    let usage = |m: String| Failure::new(Exit::Usage, m);
    let mut out: Vec<Binding> = Vec::new();
    for spec in env_flags {
        let Some((var, secret)) = spec.split_once('=') else {
            return Err(usage(format!(
                "-e {spec}: write it as VAR=SECRET, such as -e GH_TOKEN=github/token"
            )));
        };
        if !is_var_name(var) {
            return Err(usage(format!(
                "-e {spec}: `{var}` is not a variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        let secret = SecretName::new(secret).map_err(|e| usage(format!("-e {spec}: {e}")))?;
        out.push(Binding {
            var: var.to_owned(),
            secret,
            from: "-e",
        });
    }
    for secret in secret_flags {
        out.push(Binding {
            var: secret.env_var(),
            secret: secret.clone(),
            from: "-s",
        });
    }
    let mut refs: Vec<(String, String)> = environment
        .into_iter()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(_, v)| v.starts_with(REFERENCE))
        .collect();
    refs.sort();
    for (var, value) in refs {
        let name = &value[REFERENCE.len()..];
        let secret = SecretName::new(name).map_err(|e| {
            usage(format!(
                "the environment variable {var} refers to `{value}`, which is not a secret name: {e}"
            ))
        })?;
        out.push(Binding {
            var,
            secret,
            from: "a keygate:// reference in the environment",
        });
    }
    if out.is_empty() {
        return Err(usage(
            "name at least one secret: -e VAR=SECRET, -s SECRET, or a variable set to keygate://SECRET"
                .into(),
        ));
    }
    for (i, b) in out.iter().enumerate() {
        if let Some(other) = out[..i].iter().find(|o| o.var == b.var) {
            let how = if other.from == b.from {
                format!("twice by {}", b.from)
            } else {
                format!("by {} and by {}", other.from, b.from)
            };
            return Err(usage(format!(
                "{} is set {how}: give each variable one secret",
                b.var
            )));
        }
    }
    Ok(out)
}

/// Bindings named as `(VAR, SECRET)` pairs (`keygate mcp`'s `secrets` object), checked
/// as [`collect`] checks flags: at least one, every variable and name valid.
pub fn from_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Outcome<Vec<Binding>> {
    let usage = |m: String| Failure::new(Exit::Usage, m);
    let mut out = Vec::new();
    for (var, secret) in pairs {
        if !is_var_name(var) {
            return Err(usage(format!(
                "`{var}` is not an environment variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        let secret = SecretName::new(secret)
            .map_err(|e| usage(format!("{var}: `{secret}` is not a secret name: {e}")))?;
        out.push(Binding {
            var: var.to_owned(),
            secret,
            from: "secrets",
        });
    }
    if out.is_empty() {
        return Err(usage(
            "name at least one secret: {\"VAR\": \"secret/name\"}".into(),
        ));
    }
    Ok(out)
}

/// The distinct secrets, sorted.
pub fn secrets(bindings: &[Binding]) -> BTreeSet<SecretName> {
    bindings.iter().map(|b| b.secret.clone()).collect()
}

fn is_var_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn name(s: &str) -> SecretName {
        SecretName::new(s).expect("name")
    }

    #[test]
    fn flags_mapping_and_references() {
        let b = collect(
            &["GH=github/token".into()],
            &[name("openai/api-key")],
            env(&[
                ("DB_URL", "keygate://db/url"),
                ("HOME", "/root"),
                ("X", "keygate:/nope"),
            ]),
        )
        .expect("bindings");
        let got: Vec<(&str, &str)> = b
            .iter()
            .map(|b| (b.var.as_str(), b.secret.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("GH", "github/token"),
                ("OPENAI_API_KEY", "openai/api-key"),
                ("DB_URL", "db/url")
            ]
        );
        assert_eq!(secrets(&b).len(), 3);
    }

    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

    #[test]
    fn usage_errors() {
        let cases: [Case<'_>; 7] = [
            (&[], &[]),
            (&["GH"], &[]),
            (&["1GH=github/token"], &[]),
            (&["GH=Github/Token"], &[]),
            (&["A=github/a", "A=github/b"], &[]),
            (&["A=github/a"], &[("A", "keygate://github/a")]),
            (&[], &[("A", "keygate://../etc")]),
        ];
        for (flags, environment) in cases {
            let flags: Vec<String> = flags.iter().map(|s| (*s).to_owned()).collect();
            let e = collect(&flags, &[], env(environment)).expect_err("usage error");
            assert_eq!(e.exit, Exit::Usage, "{flags:?} {environment:?}: {e}");
        }
        let e = collect(&[], &[name("a/b"), name("a-b")], env(&[])).expect_err("same var");
        assert!(e.message.contains("A_B is set twice by -s"), "{e}");
    }

    #[test]
    fn one_secret_in_two_variables_is_fine() {
        let b = collect(&["A=github/t".into(), "B=github/t".into()], &[], env(&[])).expect("ok");
        assert_eq!(b.len(), 2);
        assert_eq!(secrets(&b).len(), 1);
    }

    #[test]
    fn pairs_are_checked_like_flags() {
        let b = from_pairs([("GH", "github/token"), ("DB", "db/url")]).expect("bindings");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].var, "GH");
        assert_eq!(b[0].secret.as_str(), "github/token");
        for bad in [
            &[][..],
            &[("1GH", "github/token")],
            &[("GH", "Github/Token")],
            &[("GH", "../etc")],
            &[("", "github/token")],
        ] {
            let e = from_pairs(bad.iter().copied()).expect_err("refused");
            assert_eq!(e.exit, Exit::Usage, "{bad:?}: {e}");
        }
    }
}
