//! Finding rules that can never decide because earlier rules match everything they match.
//!
//! Rule B is shadowed when, for each pair of B's agent pattern and secret pattern, some
//! earlier rule has an agent pattern covering the one and a secret pattern covering the
//! other; then any request B matches was already decided above it. "Covering" is
//! [`Glob::covers`](crate::Glob::covers), which is conservative, so a warning is always
//! right, and some shadowed rules go unreported.

use crate::rule::Rule;

/// One shadowed rule: its index, and the indices of the earlier rules that cover it.
pub(crate) struct Shadowed {
    pub rule: usize,
    pub by: Vec<usize>,
}

pub(crate) fn shadowed(rules: &[Rule]) -> Vec<Shadowed> {
    let mut found = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let earlier = &rules[..index];
        let mut by: Vec<usize> = Vec::new();
        let all_covered = rule.agents.iter().all(|agent| {
            rule.secrets.iter().all(|secret| {
                let coverer = earlier.iter().position(|e| {
                    e.agents.iter().any(|g| g.covers(agent))
                        && e.secrets.iter().any(|g| g.covers(secret))
                });
                if let Some(i) = coverer
                    && !by.contains(&i)
                {
                    by.push(i);
                }
                coverer.is_some()
            })
        });
        if all_covered {
            by.sort_unstable();
            found.push(Shadowed { rule: index, by });
        }
    }
    found
}
