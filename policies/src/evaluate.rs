//! Answering "may this agent read this secret, and on what terms?": the first matching
//! rule decides; no match denies; several secrets in one request get the strictest answer.

use std::time::Duration;

use keygate_proto::{AgentName, SecretName};

use crate::approvers::Approvers;
use crate::policy::Policy;
use crate::rule::{Action, Defaults, Rule};

/// What a rule decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Release without asking anyone.
    Allow,
    /// Ask people: `quorum` distinct approvals from `approvers` are needed.
    Ask { approvers: Approvers, quorum: u32 },
    /// Refuse.
    Deny,
}

/// The full answer for one request: the decision and the terms of the grant it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    /// Name of the deciding rule; `None` when no rule matched.
    pub rule: Option<String>,
    /// One line for people: `rule "x" asks ops`, `no rule matched: denied`.
    pub reason: String,
    /// The grant's TTL: the requested one, else the rule's `ttl`, else `[defaults]`; never
    /// above the rule's `max_ttl` (else `[defaults]`).
    pub ttl: Duration,
    /// The requested TTL was longer than allowed and was cut to `ttl`.
    pub ttl_was_cut: bool,
    /// The longest a grant may live from its approval, extensions included: the
    /// deciding rule's `max_ttl` (the shortest of them when several decide), else
    /// `[defaults]`.
    pub max_ttl: Duration,
    /// How long the request may wait for people to decide.
    pub request_timeout: Duration,
    /// Whether the grant covers further reads while it lives.
    pub reuse: bool,
}

impl Evaluation {
    /// Shorthand for `matches!(self.decision, Decision::Deny)`.
    pub fn is_denied(&self) -> bool {
        matches!(self.decision, Decision::Deny)
    }
}

/// `requested`, else `default`, cut to `max`. A zero request (which validated input never
/// holds) counts as no request rather than making a grant that is dead on arrival.
fn effective_ttl(
    requested: Option<Duration>,
    default: Duration,
    max: Duration,
) -> (Duration, bool) {
    match requested.filter(|d| !d.is_zero()) {
        Some(r) if r > max => (max, true),
        Some(r) => (r, false),
        None => (default.min(max), false),
    }
}

impl Policy {
    /// The first rule whose patterns match both `agent` and `secret`, if any.
    pub fn matching_rule(&self, agent: &AgentName, secret: &SecretName) -> Option<&Rule> {
        self.find_rule(agent.as_str(), secret.as_str())
    }

    fn find_rule(&self, agent: &str, secret: &str) -> Option<&Rule> {
        self.rules().iter().find(|r| r.matches_str(agent, secret))
    }

    /// Decides one secret for one agent: the first matching rule decides, no match denies.
    /// `requested_ttl` is the TTL the request asked for, if any; see [`Evaluation::ttl`].
    pub fn evaluate(
        &self,
        agent: &AgentName,
        secret: &SecretName,
        requested_ttl: Option<Duration>,
    ) -> Evaluation {
        match self.find_rule(agent.as_str(), secret.as_str()) {
            Some(rule) => by_rule(rule, requested_ttl),
            None => no_match(self.defaults(), requested_ttl, String::new()),
        }
    }

    /// Decides several secrets requested together (as `keygate exec` does), strictest
    /// first, because they share one grant:
    ///
    /// - any secret denied (or matched by no rule) denies the whole request, naming it;
    /// - else any `ask` makes it ask. The approvers are those allowed by *every* asking
    ///   rule (user ids in all of them, role ids in all of them), the quorum is the
    ///   largest; if nobody, or too few, remain, the request is denied with that reason;
    /// - else it is allowed.
    ///
    /// The TTL is the shortest any secret's rule gives, the request timeout the shortest
    /// of the deciding rules, and the grant is reusable only if every deciding rule says
    /// so. An empty list is denied.
    pub fn evaluate_all(
        &self,
        agent: &AgentName,
        secrets: &[SecretName],
        requested_ttl: Option<Duration>,
    ) -> Evaluation {
        let agent = agent.as_str();
        if secrets.is_empty() {
            let mut e = no_match(self.defaults(), requested_ttl, String::new());
            "no secrets requested: denied".clone_into(&mut e.reason);
            return e;
        }
        // Deny wins, and names the first secret that is denied.
        for secret in secrets {
            match self.find_rule(agent, secret.as_str()) {
                None => {
                    return no_match(
                        self.defaults(),
                        requested_ttl,
                        format!("secret {:?}: ", secret.as_str()),
                    );
                }
                Some(rule) if rule.action() == Action::Deny => {
                    let mut e = by_rule(rule, requested_ttl);
                    e.reason = format!("secret {:?}: {}", secret.as_str(), e.reason);
                    return e;
                }
                Some(_) => {}
            }
        }
        self.combine(agent, secrets, requested_ttl)
    }

    /// The no-deny half of [`Policy::evaluate_all`]: every secret has an allow or ask rule.
    fn combine(
        &self,
        agent: &str,
        secrets: &[SecretName],
        requested_ttl: Option<Duration>,
    ) -> Evaluation {
        let mut ttl = Duration::MAX;
        let mut max_ttl = Duration::MAX;
        let mut ttl_was_cut = false;
        let mut asking: Vec<&Rule> = Vec::new();
        let mut allowing: Vec<&Rule> = Vec::new();
        let mut approvers: Option<Approvers> = None;
        let mut quorum = 0;
        // The rule that left nobody able to approve, if one did.
        let mut emptied_by: Option<&Rule> = None;
        for secret in secrets {
            let Some(rule) = self.find_rule(agent, secret.as_str()) else {
                continue;
            };
            let (t, cut) = effective_ttl(requested_ttl, rule.ttl, rule.max_ttl);
            ttl = ttl.min(t);
            max_ttl = max_ttl.min(rule.max_ttl);
            ttl_was_cut |= cut;
            let seen = |list: &[&Rule]| list.iter().any(|r| std::ptr::eq(*r, rule));
            match &rule.decision {
                Decision::Ask {
                    approvers: a,
                    quorum: q,
                } => {
                    if seen(&asking) {
                        continue;
                    }
                    asking.push(rule);
                    quorum = quorum.max(*q);
                    let next = match approvers.take() {
                        None => a.clone(),
                        Some(so_far) => so_far.intersection(a),
                    };
                    if next.is_empty() && emptied_by.is_none() {
                        emptied_by = Some(rule);
                    }
                    approvers = Some(next);
                }
                _ => {
                    if !seen(&allowing) {
                        allowing.push(rule);
                    }
                }
            }
        }
        let deciding = if asking.is_empty() {
            &allowing
        } else {
            &asking
        };
        if deciding.is_empty() {
            // Unreachable from `evaluate_all` (every secret matched a rule there), but
            // failing closed costs nothing.
            return no_match(self.defaults(), requested_ttl, String::new());
        }
        let first = deciding.first().map(|r| r.name.clone());
        let request_timeout = deciding
            .iter()
            .map(|r| r.request_timeout)
            .min()
            .unwrap_or(self.defaults().request_timeout);
        let reuse = deciding.iter().all(|r| r.reuse);
        let names = rule_names(deciding);
        let Some(approvers) = approvers else {
            return Evaluation {
                decision: Decision::Allow,
                rule: first,
                reason: format!(
                    "{names} {} it",
                    if deciding.len() == 1 {
                        "allows"
                    } else {
                        "allow"
                    }
                ),
                ttl,
                ttl_was_cut,
                max_ttl,
                request_timeout,
                reuse,
            };
        };
        let denied = |rule: Option<String>, reason: String| Evaluation {
            decision: Decision::Deny,
            rule,
            reason,
            ttl,
            ttl_was_cut,
            max_ttl,
            request_timeout,
            reuse: false,
        };
        if let Some(culprit) = emptied_by {
            return denied(
                Some(culprit.name.clone()),
                format!(
                    "{names} ask different approvers and nobody may approve for all of them: denied (request the secrets separately)"
                ),
            );
        }
        if !approvers.can_reach(quorum) {
            let culprit = asking
                .iter()
                .find(|r| rule_quorum(r) == quorum)
                .map(|r| r.name.clone());
            return denied(
                culprit,
                format!(
                    "{names} ask different approvers and only {} user(s) and no role may approve for all of them, too few for a quorum of {quorum}: denied (request the secrets separately)",
                    approvers.users().len()
                ),
            );
        }
        let verb = if asking.len() == 1 { "asks" } else { "ask" };
        Evaluation {
            reason: ask_reason(&format!("{names} {verb}"), &approvers, quorum),
            decision: Decision::Ask { approvers, quorum },
            rule: first,
            ttl,
            ttl_was_cut,
            max_ttl,
            request_timeout,
            reuse,
        }
    }
}

fn rule_quorum(rule: &Rule) -> u32 {
    match rule.decision {
        Decision::Ask { quorum, .. } => quorum,
        _ => 0,
    }
}

/// `rule "a"` or `rules "a", "b"`.
fn rule_names(rules: &[&Rule]) -> String {
    let quoted: Vec<String> = rules.iter().map(|r| format!("{:?}", r.name)).collect();
    if quoted.len() == 1 {
        format!("rule {}", quoted.join(""))
    } else {
        format!("rules {}", quoted.join(", "))
    }
}

fn ask_reason(subject: &str, approvers: &Approvers, quorum: u32) -> String {
    if quorum > 1 {
        format!("{subject} {approvers} ({quorum} approvals needed)")
    } else {
        format!("{subject} {approvers}")
    }
}

fn by_rule(rule: &Rule, requested_ttl: Option<Duration>) -> Evaluation {
    let (ttl, ttl_was_cut) = effective_ttl(requested_ttl, rule.ttl, rule.max_ttl);
    let name = format!("rule {:?}", rule.name);
    let reason = match &rule.decision {
        Decision::Allow => format!("{name} allows it"),
        Decision::Ask { approvers, quorum } => {
            ask_reason(&format!("{name} asks"), approvers, *quorum)
        }
        Decision::Deny => format!("{name} denies it"),
    };
    Evaluation {
        decision: rule.decision.clone(),
        rule: Some(rule.name.clone()),
        reason,
        ttl,
        ttl_was_cut,
        max_ttl: rule.max_ttl,
        request_timeout: rule.request_timeout,
        reuse: rule.reuse,
    }
}

fn no_match(defaults: &Defaults, requested_ttl: Option<Duration>, prefix: String) -> Evaluation {
    let (ttl, ttl_was_cut) = effective_ttl(requested_ttl, defaults.ttl, defaults.max_ttl);
    Evaluation {
        decision: Decision::Deny,
        rule: None,
        reason: prefix + "no rule matched: denied",
        ttl,
        ttl_was_cut,
        max_ttl: defaults.max_ttl,
        request_timeout: defaults.request_timeout,
        reuse: false,
    }
}
