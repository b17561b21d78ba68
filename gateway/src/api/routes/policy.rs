//! `GET /v1/policy/check?agent=&secret=` (operator): which rule decides, and what.
//! `GET /v1/policy/secrets` (agent): the stored secrets it may ask for, and how.

use hyper::StatusCode;
use keygate_policies::Decision;
use keygate_proto::api::{AskableSecret, PolicyCheck};
use keygate_proto::{AgentName, SecretName};

use super::Reply;
use crate::api::body::{query, reply};
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::identity::Caller;

pub fn check(gate: &Ctx, caller: &Caller, q: Option<&str>) -> Reply {
    auth::operator(caller)?;
    let agent = query(q, "agent")?.ok_or_else(|| ApiError::bad_request("name an `agent`"))?;
    let secret = query(q, "secret")?.ok_or_else(|| ApiError::bad_request("name a `secret`"))?;
    let agent = AgentName::new(agent).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let secret = SecretName::new(secret).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let eval = gate.policy().evaluate(&agent, &secret, None);
    let (decision, quorum, groups) = match &eval.decision {
        Decision::Allow => ("allow", None, Vec::new()),
        Decision::Deny => ("deny", None, Vec::new()),
        Decision::Ask { approvers, quorum } => ("ask", Some(*quorum), approvers.groups().to_vec()),
    };
    Ok(reply(
        StatusCode::OK,
        &PolicyCheck {
            agent,
            secret,
            decision: decision.into(),
            rule: eval.rule.clone(),
            reason: eval.reason.clone(),
            ttl_seconds: eval.ttl.as_secs(),
            request_timeout_seconds: eval.request_timeout.as_secs(),
            reuse: eval.reuse,
            quorum,
            approver_groups: groups,
        },
    ))
}

/// `GET /v1/policy/secrets` (agent): the stored secrets whose rule for this agent is
/// `allow` or `ask`, with that decision; names only. A secret the policy denies it is
/// left out: an agent learns no name it could never use.
pub async fn askable(gate: &Ctx, caller: &Caller) -> Reply {
    let agent = auth::agent(caller)?;
    let policy = gate.policy();
    let mut out = Vec::new();
    for meta in gate.list_secrets().await? {
        let eval = policy.evaluate(&agent.name, &meta.name, None);
        let decision = match eval.decision {
            Decision::Allow => "allow",
            Decision::Ask { .. } => "ask",
            Decision::Deny => continue,
        };
        out.push(AskableSecret {
            name: meta.name,
            decision: decision.into(),
            rule: eval.rule,
        });
    }
    Ok(reply(StatusCode::OK, &out))
}
