//! [`Policy`]: a parsed, validated `policies.toml`, and the way in.

use crate::error::{PolicyError, PolicyWarning};
use crate::rule::{Defaults, Rule};

/// A validated policy. Build one with [`Policy::parse`]; ask it with
/// [`Policy::evaluate`] and [`Policy::evaluate_all`].
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub(crate) defaults: Defaults,
    pub(crate) rules: Vec<Rule>,
    pub(crate) warnings: Vec<PolicyWarning>,
}

impl Policy {
    /// Parses and validates a `policies.toml`. `origin` names the file in messages (its
    /// path, usually). Unknown keys, bad values and rules that could never work are
    /// refused; the error returned is the first in the file. See
    /// [`Policy::parse_with_all_errors`] to get every one.
    ///
    /// ```
    /// # use keygate_policies::Policy;
    /// let policy = Policy::parse("[[rule]]\nname = \"ci\"\nagents = [\"ci-*\"]\nsecrets = [\"*\"]\naction = \"allow\"\n", "policies.toml").unwrap();
    /// assert_eq!(policy.rules()[0].name(), "ci");
    /// ```
    pub fn parse(source: &str, origin: &str) -> Result<Policy, PolicyError> {
        Self::parse_with_all_errors(source, origin).map_err(|errors| {
            errors.into_iter().next().unwrap_or_else(|| PolicyError {
                origin: origin.to_owned(),
                line: 1,
                column: 1,
                context: String::new(),
                key: String::new(),
                message: "refused for no reported reason (a bug in keygate)".to_owned(),
            })
        })
    }

    /// Like [`Policy::parse`], but reports every problem it can find, in file order, so
    /// that one edit can fix them all. The list is never empty. (A TOML syntax error or a
    /// wrongly typed value stops the reading early, and is then the only error.)
    pub fn parse_with_all_errors(source: &str, origin: &str) -> Result<Policy, Vec<PolicyError>> {
        crate::compile::compile(source, origin)
    }

    /// The policy with no rules: it denies everything. Defaults are the built-in ones.
    pub fn empty() -> Policy {
        Policy::default()
    }

    /// Valid but surprising things in the file, in file order; worth showing when the
    /// policy is loaded.
    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.warnings
    }

    /// The rules, in file order, which is the order they are tried in.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// `[defaults]`, with built-in values for the keys the file leaves out.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }
}
