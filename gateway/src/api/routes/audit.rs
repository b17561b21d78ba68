//! `/v1/audit` (operator): read the log, verify its chain.

use std::time::SystemTime;

use hyper::StatusCode;

use super::Reply;
use crate::api::body::{query_duration, reply};
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::identity::Caller;

fn failed(e: &crate::audit::AuditError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        keygate_proto::api::ErrorCode::AuditFailed,
        e.to_string(),
    )
}

/// `GET /v1/audit?since=DURATION`.
pub fn list(gate: &Ctx, caller: &Caller, q: Option<&str>) -> Reply {
    auth::operator(caller)?;
    let since = query_duration(q, "since")?.and_then(|d| SystemTime::now().checked_sub(d));
    let lines = gate.audit.read_since(since).map_err(|e| failed(&e))?;
    Ok(reply(StatusCode::OK, &lines))
}

/// `GET /v1/audit/verify`.
pub fn verify(gate: &Ctx, caller: &Caller) -> Reply {
    auth::operator(caller)?;
    let result = gate.audit.verify().map_err(|e| failed(&e))?;
    Ok(reply(StatusCode::OK, &result))
}
