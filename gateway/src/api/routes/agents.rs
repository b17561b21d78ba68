//! `/v1/agents` (operator): add (the token is shown once), list, remove.

use hyper::StatusCode;
use hyper::body::Incoming;
use keygate_proto::AgentName;
use keygate_proto::api::{AddAgentBody, AgentInfo, NewAgent};
use secrecy::ExposeSecret as _;

use super::Reply;
use crate::api::body::{json, reply};
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::identity::Caller;

pub async fn add(gate: &Ctx, caller: &Caller, body: Incoming) -> Reply {
    auth::operator(caller)?;
    let body: AddAgentBody = json(body).await?;
    let token = gate.add_agent(&body.name).await?;
    Ok(reply(
        StatusCode::CREATED,
        &NewAgent {
            name: body.name,
            token: token.expose_secret().to_owned(),
        },
    ))
}

pub fn list(gate: &Ctx, caller: &Caller) -> Reply {
    auth::operator(caller)?;
    let all: Vec<AgentInfo> = gate
        .identities
        .list()
        .into_iter()
        .map(|(name, created_at)| AgentInfo { name, created_at })
        .collect();
    Ok(reply(StatusCode::OK, &all))
}

pub async fn remove(gate: &Ctx, caller: &Caller, raw: &str) -> Reply {
    auth::operator(caller)?;
    let name = AgentName::new(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    gate.remove_agent(&name).await?;
    Ok(reply(
        StatusCode::OK,
        &serde_json::json!({ "removed": name }),
    ))
}
