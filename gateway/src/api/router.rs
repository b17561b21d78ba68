//! One `match` from method and path to the route that handles it.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::error::ApiError;
use super::routes::{
    agents, audit, grants, health, metrics, policy, requests, secrets, status, store,
};
use super::{Ctx, auth};

/// Answers one HTTP request.
pub async fn handle(
    gate: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(route(gate, req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

/// The grant hit answered at once, with no await, when nothing about it needs more:
/// `GET /v1/secrets/{name}` by an agent whose reusable grant keeps the answer its first
/// read gave, as of `now`, with what the connection remembers (`memo`). `None` leaves the request to [`handle`] untouched: nothing was taken,
/// counted or audited. Answering here lets the request go before hyper reads on (its
/// read buffer is then reused rather than allocated afresh for every request).
pub fn answer_at_once(
    gate: &Ctx,
    req: &Request<Incoming>,
    now: std::time::Instant,
    memo: &mut Memo,
) -> Option<Response<Full<Bytes>>> {
    if req.method() != Method::GET {
        return None;
    }
    let name = secret_in_path(req.uri().path().trim_end_matches('/'))?;
    let caller = auth::known_remembered(gate, req.headers(), &mut memo.token)?;
    secrets::release_kept(
        gate,
        &caller,
        name,
        command(req.headers()),
        now,
        &mut memo.grant,
    )
}

/// What one connection remembers from one grant hit to the next, so the next costs
/// less: the token it presented, and the grant that served it. Dropped (the token
/// zeroized) with the connection.
#[derive(Debug, Default)]
pub struct Memo {
    token: Option<crate::identity::Remembered>,
    grant: crate::grants::LastGrant,
}

/// The name in `/v1/secrets/{name}` (the path without its trailing `/`s): what follows,
/// `/`s and all, never empty.
fn secret_in_path(trimmed: &str) -> Option<&str> {
    trimmed.strip_prefix("/v1/secrets/")
}

/// The header `keygate exec` presents its command's hash in, parsed once.
static COMMAND: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static(keygate_proto::api::COMMAND_HEADER);

/// The command hash `keygate exec` presents.
fn command(headers: &hyper::HeaderMap) -> Option<&str> {
    headers.get(&COMMAND).and_then(|v| v.to_str().ok())
}

/// The most segments any route but the secrets' has (`/v1/requests/{id}/approve`).
const MAX_SEGMENTS: usize = 4;

async fn route(gate: Ctx, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let q = parts.uri.query();
    let trimmed = path.trim_end_matches('/');
    // The segments, without allocating: a path with more than `MAX_SEGMENTS` can only be
    // a secret's, whose name (any number of `/`) is the rest of the path as it came.
    let mut buf = [""; MAX_SEGMENTS];
    let mut n = 0;
    let mut long = false;
    for s in trimmed.split('/').skip(1) {
        if n == MAX_SEGMENTS {
            long = true;
            break;
        }
        buf[n] = s;
        n += 1;
    }
    let segments = &buf[..n];
    let m = &parts.method;

    if !long && segments == ["healthz"] && *m == Method::GET {
        return Ok(health::get());
    }
    if !long && segments == ["metrics"] && *m == Method::GET {
        return metrics::get(&gate, &auth::caller(&gate, &parts).await?);
    }
    if segments.first() != Some(&"v1") {
        return Err(ApiError::not_found(format!("no route {path}")));
    }
    let caller = auth::caller(&gate, &parts).await?;
    let no_route = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            keygate_proto::api::ErrorCode::NotFound,
            format!("no route {} {path}", parts.method),
        )
    };
    if let Some(name) = secret_in_path(trimmed) {
        return match *m {
            Method::GET => secrets::release(&gate, &caller, name, command(&parts.headers)).await,
            Method::PUT => secrets::set(&gate, &caller, name, body).await,
            Method::DELETE => secrets::remove(&gate, &caller, name).await,
            _ => Err(no_route()),
        };
    }
    if long {
        return Err(no_route());
    }
    match (m, &segments[1..]) {
        (&Method::GET, ["secrets"]) => secrets::list(&gate, &caller).await,
        (&Method::POST, ["requests"]) => requests::file(&gate, &caller, body).await,
        (&Method::GET, ["requests"]) => Ok(requests::list(&gate, &caller)),
        (&Method::GET, ["requests", id]) => requests::get(&gate, &caller, id, q).await,
        (&Method::DELETE, ["requests", id]) => requests::cancel(&gate, &caller, id).await,
        (&Method::POST, ["requests", id, "approve"]) => {
            requests::approve(&gate, &caller, id, body).await
        }
        (&Method::POST, ["requests", id, "deny"]) => requests::deny(&gate, &caller, id, body).await,
        (&Method::GET, ["grants"]) => Ok(grants::list(&gate, &caller)),
        (&Method::POST, ["grants", "revoke"]) => grants::revoke(&gate, &caller, body).await,
        (&Method::GET, ["grants", id, "watch"]) => grants::watch(&gate, &caller, id, q).await,
        (&Method::POST, ["grants", id, "extend"]) => grants::extend(&gate, &caller, id, body).await,
        (&Method::GET, ["agents"]) => agents::list(&gate, &caller),
        (&Method::POST, ["agents"]) => agents::add(&gate, &caller, body).await,
        (&Method::DELETE, ["agents", name]) => agents::remove(&gate, &caller, name).await,
        (&Method::GET, ["policy", "check"]) => policy::check(&gate, &caller, q),
        (&Method::GET, ["policy", "secrets"]) => policy::askable(&gate, &caller).await,
        (&Method::POST, ["store", "lock"]) => store::lock(&gate, &caller).await,
        (&Method::POST, ["store", "unlock"]) => store::unlock(&gate, &caller, body).await,
        (&Method::GET, ["audit"]) => audit::list(&gate, &caller, q),
        (&Method::GET, ["audit", "verify"]) => audit::verify(&gate, &caller),
        (&Method::GET, ["status"]) => Ok(status::get(&gate, &caller)),
        _ => Err(no_route()),
    }
}
