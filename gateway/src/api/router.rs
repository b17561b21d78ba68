//! One `match` from method and path to the route that handles it.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::error::ApiError;
use super::routes::{agents, audit, grants, health, policy, requests, secrets, status, store};
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

async fn route(gate: Ctx, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let q = parts.uri.query();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let m = &parts.method;

    if segments == ["healthz"] && *m == Method::GET {
        return Ok(health::get());
    }
    if segments.first() != Some(&"v1") {
        return Err(ApiError::not_found(format!("no route {path}")));
    }
    let caller = auth::caller(&gate, &parts)?;
    match (m, &segments[1..]) {
        (&Method::GET, ["secrets"]) => secrets::list(&gate, &caller).await,
        (&Method::GET, ["secrets", rest @ ..]) if !rest.is_empty() => {
            let command = parts
                .headers
                .get(keygate_proto::api::COMMAND_HEADER)
                .and_then(|v| v.to_str().ok());
            secrets::release(&gate, &caller, &rest.join("/"), command).await
        }
        (&Method::PUT, ["secrets", rest @ ..]) if !rest.is_empty() => {
            secrets::set(&gate, &caller, &rest.join("/"), body).await
        }
        (&Method::DELETE, ["secrets", rest @ ..]) if !rest.is_empty() => {
            secrets::remove(&gate, &caller, &rest.join("/")).await
        }
        (&Method::POST, ["requests"]) => requests::file(&gate, &caller, body).await,
        (&Method::GET, ["requests"]) => Ok(requests::list(&gate, &caller)),
        (&Method::GET, ["requests", id]) => requests::get(&gate, &caller, id, q).await,
        (&Method::DELETE, ["requests", id]) => requests::cancel(&gate, &caller, id),
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
        (&Method::POST, ["store", "lock"]) => store::lock(&gate, &caller).await,
        (&Method::POST, ["store", "unlock"]) => store::unlock(&gate, &caller, body).await,
        (&Method::GET, ["audit"]) => audit::list(&gate, &caller, q),
        (&Method::GET, ["audit", "verify"]) => audit::verify(&gate, &caller),
        (&Method::GET, ["status"]) => Ok(status::get(&gate, &caller)),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            keygate_proto::api::ErrorCode::NotFound,
            format!("no route {} {path}", parts.method),
        )),
    }
}
