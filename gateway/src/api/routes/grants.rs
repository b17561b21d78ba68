//! `/v1/grants`: list live grants; revoke them (operator).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use keygate_proto::api::{RevokeBody, Revoked};

use super::Reply;
use crate::api::body::{json, reply};
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::audit::Actor;
use crate::gate::Selector;
use crate::identity::Caller;

/// `GET /v1/grants`: the caller's live grants (all of them for the operator).
pub fn list(gate: &Ctx, caller: &Caller) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, &gate.list_grants(caller))
}

/// `POST /v1/grants/revoke` (operator): exactly one of `grant`, `agent`, `secret`, `all`.
pub async fn revoke(gate: &Ctx, caller: &Caller, body: Incoming) -> Reply {
    auth::operator(caller)?;
    let body: RevokeBody = json(body).await?;
    let selector = match (body.grant, body.agent, body.secret, body.all) {
        (Some(g), None, None, false) => Selector::Grant(g),
        (None, Some(a), None, false) => Selector::Agent(a),
        (None, None, Some(s), false) => Selector::Secret(s),
        (None, None, None, true) => Selector::All,
        _ => {
            return Err(ApiError::bad_request(
                "name exactly one of `grant`, `agent`, `secret` or `all`",
            ));
        }
    };
    let by = Actor {
        who: "operator".into(),
        via: "terminal",
    };
    let revoked = gate.revoke(&selector, &by).await?;
    Ok(reply(StatusCode::OK, &Revoked { revoked }))
}
