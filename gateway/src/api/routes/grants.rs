//! `/v1/grants`: list live grants; revoke and extend them (operator).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use keygate_proto::GrantId;
use keygate_proto::api::{ExtendBody, RevokeBody, Revoked};

use super::Reply;
use crate::api::body::{json, long_poll_wait, query, reply};
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::audit::Actor;
use crate::gate::Selector;
use crate::identity::Caller;

/// `GET /v1/grants`: the caller's live grants (all of them for the operator).
pub fn list(gate: &Ctx, caller: &Caller) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, &gate.list_grants(caller))
}

/// `GET /v1/grants/{id}/watch?since=EPOCH&wait=DURATION`: for `keygate exec`, which
/// ends its child when the grant ends and restarts it when a secret changes.
pub async fn watch(gate: &Ctx, caller: &Caller, raw: &str, q: Option<&str>) -> Reply {
    let id = GrantId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let since = match query(q, "since")? {
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::bad_request("`since` must be a whole number"))?,
        None => 0,
    };
    let wait = long_poll_wait(q)?;
    let watch = gate.watch_grant(&id, caller, since, wait).await?;
    Ok(reply(StatusCode::OK, &watch))
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

/// `POST /v1/grants/{id}/extend` (operator): `{"by"?: DURATION}`, the grant's own TTL by
/// default; the grant with its new end.
pub async fn extend(gate: &Ctx, caller: &Caller, raw: &str, body: Incoming) -> Reply {
    auth::operator(caller)?;
    let id = GrantId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body: ExtendBody = json(body).await?;
    let by = body
        .by
        .as_deref()
        .map(keygate_proto::duration::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let who = Actor {
        who: "operator".into(),
        via: "terminal",
    };
    let grant = gate.extend(&id, by, &who).await?;
    Ok(reply(StatusCode::OK, &grant))
}
