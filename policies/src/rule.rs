//! A compiled rule and the `[defaults]` it falls back on: every value resolved, every
//! pattern compiled, nothing left to interpret when a request arrives.

use std::time::Duration;

use keygate_proto::{AgentName, SecretName};

use crate::evaluate::Decision;
use crate::glob::Glob;

/// What a rule does when it matches, without its approvers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

impl Action {
    /// The word used in the file: `allow`, `ask`, `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Ask => "ask",
            Action::Deny => "deny",
        }
    }
}

/// `[defaults]`, with the built-in values filled in for absent keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// How long a request waits for a decision.
    pub request_timeout: Duration,
    /// Grant TTL when the request asks for none. Never above `max_ttl`.
    pub ttl: Duration,
    /// A longer requested TTL is cut to this.
    pub max_ttl: Duration,
}

impl Defaults {
    /// `request_timeout = "5m"`, `ttl = "15m"`, `max_ttl = "1h"`.
    pub const BUILT_IN: Defaults = Defaults {
        request_timeout: Duration::from_secs(5 * 60),
        ttl: Duration::from_secs(15 * 60),
        max_ttl: Duration::from_secs(60 * 60),
    };
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults::BUILT_IN
    }
}

/// One `[[rule]]`, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) agents: Vec<Glob>,
    pub(crate) secrets: Vec<Glob>,
    pub(crate) decision: Decision,
    pub(crate) ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) reuse: bool,
}

impl Rule {
    /// The rule's `name`, unique in its file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Line of the rule's `[[rule]]` header, for pointing people at it.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Column of the rule's `[[rule]]` header.
    pub fn column(&self) -> usize {
        self.column
    }

    pub fn agents(&self) -> &[Glob] {
        &self.agents
    }

    pub fn secrets(&self) -> &[Glob] {
        &self.secrets
    }

    pub fn action(&self) -> Action {
        match self.decision {
            Decision::Allow => Action::Allow,
            Decision::Ask { .. } => Action::Ask,
            Decision::Deny => Action::Deny,
        }
    }

    /// What the rule decides, with its approvers and quorum when it asks.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Grant TTL when the request names none: the rule's `ttl`, else `[defaults]`, never
    /// above [`Rule::max_ttl`].
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The rule's `max_ttl`, else the one in `[defaults]`.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// The rule's `request_timeout`, else the one in `[defaults]`.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Whether a live grant covers further reads without a new approval.
    pub fn reuse(&self) -> bool {
        self.reuse
    }

    /// Does this rule speak for `agent` reading `secret`? Both an agent pattern and a
    /// secret pattern must match.
    pub fn matches(&self, agent: &AgentName, secret: &SecretName) -> bool {
        self.matches_str(agent.as_str(), secret.as_str())
    }

    pub(crate) fn matches_str(&self, agent: &str, secret: &str) -> bool {
        self.agents.iter().any(|g| g.matches(agent))
            && self.secrets.iter().any(|g| g.matches(secret))
    }
}
