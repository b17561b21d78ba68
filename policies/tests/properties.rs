//! Properties that must hold for every input, checked on generated ones.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::time::Duration;

use keygate_policies::{Decision, Glob, NameKind, Policy};
use keygate_proto::{AgentName, SecretName};
use proptest::prelude::*;

/// The obvious recursive wildcard matcher: slow, and clearly right.
fn reference(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            reference(rest, text) || (!text.is_empty() && reference(pattern, &text[1..]))
        }
        Some((b'?', rest)) => !text.is_empty() && reference(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
    }
}

fn reference_str(pattern: &str, text: &str) -> bool {
    reference(pattern.as_bytes(), text.as_bytes())
}

/// TOML-ish fragments, so that random documents get past the first byte of the parser
/// more often than random strings do.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[defaults]\n".to_owned()),
        Just("[approvers.ops]\n".to_owned()),
        Just("[[rule]]\n".to_owned()),
        Just("name = \"r\"\n".to_owned()),
        Just("agents = [\"*\"]\n".to_owned()),
        Just("secrets = [\"a/*\"]\n".to_owned()),
        Just("action = \"ask\"\n".to_owned()),
        Just("action = \"allow\"\n".to_owned()),
        Just("approvers = [\"ops\"]\n".to_owned()),
        Just("users = [\"1\"]\n".to_owned()),
        Just("roles = [\"2\"]\n".to_owned()),
        Just("quorum = 2\n".to_owned()),
        Just("ttl = \"20m\"\n".to_owned()),
        Just("max_ttl = \"10m\"\n".to_owned()),
        Just("reuse = true\n".to_owned()),
        "[a-z_]{1,8} = \"[^\"\\\\]{0,8}\"\n",
        "\\PC{0,12}",
        ".{0,12}",
    ]
}

#[derive(Debug, Clone)]
struct GenRule {
    agents: Vec<String>,
    secrets: Vec<String>,
    action: &'static str,
}

fn gen_rule() -> impl Strategy<Value = GenRule> {
    (
        prop::collection::vec("[ab*?]{1,4}", 1..3),
        prop::collection::vec("[ab/*?]{1,5}", 1..3),
        prop_oneof![Just("allow"), Just("deny"), Just("ask")],
    )
        .prop_map(|(agents, secrets, action)| GenRule {
            agents,
            secrets,
            action,
        })
}

fn quoted(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", q.join(", "))
}

fn policy_source(rules: &[GenRule]) -> String {
    let mut s = String::from("[approvers.ops]\nusers = [\"1\"]\n");
    for (i, r) in rules.iter().enumerate() {
        let _ = write!(
            s,
            "\n[[rule]]\nname = \"r{i}\"\nagents = {}\nsecrets = {}\naction = \"{}\"\n",
            quoted(&r.agents),
            quoted(&r.secrets),
            r.action
        );
        if r.action == "ask" {
            s += "approvers = [\"ops\"]\n";
        }
    }
    s
}

fn agent_name() -> impl Strategy<Value = String> {
    "[ab][ab]{0,3}"
}

fn secret_name() -> impl Strategy<Value = String> {
    "[ab]{1,3}(/[ab]{1,3})?"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn glob_agrees_with_reference(pattern in "[ab/*?]{1,8}", text in "[ab/]{0,10}") {
        let glob = Glob::new(&pattern, NameKind::Secret).unwrap();
        prop_assert_eq!(glob.matches(&text), reference_str(&pattern, &text));
    }

    #[test]
    fn covers_is_never_wrong(a in "[ab*?]{1,5}", b in "[ab*?]{1,5}", texts in prop::collection::vec("[ab]{0,7}", 40)) {
        let ga = Glob::new(&a, NameKind::Agent).unwrap();
        let gb = Glob::new(&b, NameKind::Agent).unwrap();
        if ga.covers(&gb) {
            for t in &texts {
                prop_assert!(!gb.matches(t) || ga.matches(t), "{} covers {} but {} differs", a, b, t);
            }
        }
    }

    #[test]
    fn parse_never_panics(parts in prop::collection::vec(fragment(), 0..16)) {
        let source = parts.concat();
        match Policy::parse_with_all_errors(&source, "p.toml") {
            Ok(policy) => {
                for w in policy.warnings() {
                    prop_assert!(!w.to_string().contains(char::is_control));
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                let lines = source.split('\n').count();
                for e in errors {
                    prop_assert!(!e.to_string().contains(char::is_control), "{}", e);
                    prop_assert!(e.line >= 1 && e.line <= lines, "{} in {:?}", e, source);
                    prop_assert!(e.column >= 1);
                }
            }
        }
    }

    #[test]
    fn parse_never_panics_on_any_string(source in "\\PC*") {
        let _ = Policy::parse(&source, "p.toml");
    }

    #[test]
    fn first_match_wins(
        rules in prop::collection::vec(gen_rule(), 0..6),
        agent in agent_name(),
        secret in secret_name(),
    ) {
        let policy = Policy::parse(&policy_source(&rules), "p.toml").unwrap();
        let expected = rules.iter().position(|r| {
            r.agents.iter().any(|p| reference_str(p, &agent))
                && r.secrets.iter().any(|p| reference_str(p, &secret))
        });
        let e = policy.evaluate(&AgentName::new(agent).unwrap(), &SecretName::new(secret).unwrap(), None);
        prop_assert_eq!(e.rule.clone(), expected.map(|i| format!("r{i}")));
        let want_kind = expected.map_or("deny", |i| rules[i].action);
        let got_kind = match e.decision {
            Decision::Allow => "allow",
            Decision::Ask { .. } => "ask",
            Decision::Deny => "deny",
        };
        prop_assert_eq!(got_kind, want_kind);
    }

    #[test]
    fn several_secrets_are_never_looser_than_one(
        rules in prop::collection::vec(gen_rule(), 0..6),
        agent in agent_name(),
        secrets in prop::collection::vec(secret_name(), 1..4),
    ) {
        let policy = Policy::parse(&policy_source(&rules), "p.toml").unwrap();
        let agent = AgentName::new(agent).unwrap();
        let secrets: Vec<SecretName> = secrets.into_iter().map(|s| SecretName::new(s).unwrap()).collect();
        let each: Vec<_> = secrets.iter().map(|s| policy.evaluate(&agent, s, None)).collect();
        let all = policy.evaluate_all(&agent, &secrets, None);
        if each.iter().any(|e| e.decision == Decision::Deny) {
            prop_assert_eq!(all.decision, Decision::Deny);
        } else if each.iter().all(|e| e.decision == Decision::Allow) {
            prop_assert_eq!(all.decision, Decision::Allow);
        } else {
            prop_assert!(all.decision != Decision::Allow);
        }
        prop_assert!(each.iter().all(|e| all.ttl <= e.ttl));
    }

    #[test]
    fn effective_ttl_never_exceeds_max_ttl(
        default_max in 1u64..600,
        default_ttl_frac in 0.0f64..=1.0,
        rule_max in proptest::option::of(1u64..600),
        rule_ttl_frac in proptest::option::of(0.0f64..=1.0),
        has_rule in any::<bool>(),
        requested in proptest::option::of(0u64..100_000),
    ) {
        // Keep ttl <= max so the file is valid; scale a fraction of the max.
        let scaled = |max: u64, frac: f64| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let v = ((max as f64) * frac).ceil() as u64;
            v.clamp(1, max)
        };
        let default_ttl = scaled(default_max, default_ttl_frac);
        let mut source = format!("[defaults]\nttl = \"{default_ttl}m\"\nmax_ttl = \"{default_max}m\"\n");
        let mut max = default_max;
        if has_rule {
            source += "[[rule]]\nname = \"r\"\nagents = [\"*\"]\nsecrets = [\"*\"]\naction = \"allow\"\n";
            if let Some(m) = rule_max {
                let _ = writeln!(source, "max_ttl = \"{m}m\"");
                max = m;
            }
            if let Some(frac) = rule_ttl_frac {
                let _ = writeln!(source, "ttl = \"{}m\"", scaled(max, frac));
            }
        }
        let policy = Policy::parse(&source, "p.toml").unwrap();
        let requested = requested.map(Duration::from_secs);
        let e = policy.evaluate(&AgentName::new("a").unwrap(), &SecretName::new("s").unwrap(), requested);
        let max = Duration::from_secs(max * 60);
        prop_assert!(e.ttl <= max, "{:?} > {:?}", e.ttl, max);
        prop_assert!(!e.ttl.is_zero());
        match requested.filter(|r| !r.is_zero()) {
            Some(r) => {
                prop_assert_eq!(e.ttl, r.min(max));
                prop_assert_eq!(e.ttl_was_cut, r > max);
            }
            None => prop_assert!(!e.ttl_was_cut),
        }
    }
}
