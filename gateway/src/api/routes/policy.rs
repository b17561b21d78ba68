//! `GET /v1/policy/check?agent=&secret=` (operator): which rule decides, and what.

use hyper::StatusCode;
use keygate_policies::Decision;
use keygate_proto::api::PolicyCheck;
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
