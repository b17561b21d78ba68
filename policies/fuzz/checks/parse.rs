//! The `parse` fuzz target's checks, as a plain function: the fuzz target calls it on
//! every generated input, and `policies/tests/fuzz_seeds.rs` (stable, in CI) calls it on
//! every input kept in `seeds/parse/`, so the checks build and run without nightly.
//!
//! What must hold for any text: `Policy::parse` does not panic; errors and warnings are
//! one line (no control characters) with a place inside the file; a policy that parsed
//! answers requests within its limits, and several secrets are never granted longer
//! than one of them alone.

use keygate_policies::{Decision, Policy};
use keygate_proto::{AgentName, SecretName};

pub fn parse(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let lines = source.split('\n').count();
    match Policy::parse_with_all_errors(source, "fuzz.toml") {
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(!e.to_string().contains(char::is_control), "{e}");
                assert!((1..=lines).contains(&e.line) && e.column >= 1, "{e}");
            }
        }
        Ok(policy) => {
            for w in policy.warnings() {
                assert!(!w.to_string().contains(char::is_control), "{w}");
            }
            let (Ok(agent), Ok(a), Ok(b)) = (
                AgentName::new("ci-runner"),
                SecretName::new("github/token"),
                SecretName::new("db/main"),
            ) else {
                return;
            };
            for requested in [None, Some(std::time::Duration::from_secs(3600 * 24 * 400))] {
                let one = policy.evaluate(&agent, &a, requested);
                assert!(one.ttl <= keygate_proto::duration::MAX_DURATION);
                let all = policy.evaluate_all(&agent, &[a.clone(), b.clone()], requested);
                assert!(all.decision == Decision::Deny || all.ttl <= one.ttl);
            }
        }
    }
}
