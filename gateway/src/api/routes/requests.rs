//! `/v1/requests`: agents file and watch requests; the operator decides from the terminal.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use keygate_proto::RequestId;
use keygate_proto::api::{ApproveBody, DenyBody, FileRequest};

use super::Reply;
use crate::api::body::{json, long_poll_wait, reply};
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::gate::{Outcome, Verdict};
use crate::identity::Caller;
use keygate_proto::approval::Decider;

fn id(raw: &str) -> Result<RequestId, ApiError> {
    RequestId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `POST /v1/requests` (agent).
pub async fn file(gate: &Ctx, caller: &Caller, body: Incoming) -> Reply {
    let agent = auth::agent(caller)?;
    let body: FileRequest = json(body).await?;
    let view = gate.file(agent, body).await?;
    Ok(reply(StatusCode::CREATED, &view))
}

/// `GET /v1/requests`: the caller's requests (all of them for the operator).
pub fn list(gate: &Ctx, caller: &Caller) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, &gate.list_requests(caller))
}

/// `GET /v1/requests/{id}?wait=DURATION`: long-polled.
pub async fn get(gate: &Ctx, caller: &Caller, raw: &str, q: Option<&str>) -> Reply {
    let id = id(raw)?;
    let wait = long_poll_wait(q)?;
    let view = gate.wait(&id, caller, wait).await?;
    Ok(reply(StatusCode::OK, &view))
}

/// `DELETE /v1/requests/{id}`: cancel.
pub async fn cancel(gate: &Ctx, caller: &Caller, raw: &str) -> Reply {
    let id = id(raw)?;
    let view = gate.cancel(&id, caller).await?;
    Ok(reply(StatusCode::OK, &view))
}

/// `POST /v1/requests/{id}/approve` (operator).
pub async fn approve(gate: &Ctx, caller: &Caller, raw: &str, body: Incoming) -> Reply {
    auth::operator(caller)?;
    let id = id(raw)?;
    let body: ApproveBody = json(body).await?;
    let ttl = body
        .ttl
        .as_deref()
        .map(keygate_proto::duration::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let outcome = gate
        .decide(&id, Verdict::Approve { ttl }, &Decider::Operator)
        .await?;
    let (Outcome::Progress(view) | Outcome::Decided(view)) = outcome;
    Ok(reply(StatusCode::OK, &view))
}

/// `POST /v1/requests/{id}/deny` (operator).
pub async fn deny(gate: &Ctx, caller: &Caller, raw: &str, body: Incoming) -> Reply {
    auth::operator(caller)?;
    let id = id(raw)?;
    let body: DenyBody = json(body).await?;
    let outcome = gate
        .decide(
            &id,
            Verdict::Deny {
                reason: body.reason,
            },
            &Decider::Operator,
        )
        .await?;
    let (Outcome::Progress(view) | Outcome::Decided(view)) = outcome;
    Ok(reply(StatusCode::OK, &view))
}
