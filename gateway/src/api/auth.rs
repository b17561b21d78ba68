//! Who is calling: `Authorization: Bearer <token>`. A missing or unknown token is 401; a
//! known token on a route it may not use is 403 (checked by the route).

use hyper::header;
use hyper::http::request::Parts;

use super::error::ApiError;
use keygate_cluster::ClusterError;

use crate::gate::{Gate, GateError};
use crate::identity::{Caller, Remembered, Unconfirmed};

/// Whether the request carries the operator's token (nothing is audited: this only
/// decides whether a reserved connection slot may serve it).
pub fn is_operator(gate: &Gate, headers: &header::HeaderMap) -> bool {
    known(gate, headers).is_some_and(|c| matches!(c, Caller::Operator))
}

/// The caller, if the request carries a well-formed, known token; `None` says nothing
/// about why (nothing is audited: [`caller`] does that).
pub fn known(gate: &Gate, headers: &header::HeaderMap) -> Option<Caller> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(bearer)
        .and_then(|t| gate.authenticate(t))
}

/// [`known`], remembering the token in `memo` (the connection's): a connection that
/// presents the same token again is not hashed again (see
/// [`crate::identity::Identities::authenticate_remembered`]).
pub fn known_remembered(
    gate: &Gate,
    headers: &header::HeaderMap,
    memo: &mut Option<Remembered>,
) -> Option<Caller> {
    let token = headers.get(header::AUTHORIZATION).and_then(bearer)?;
    // Unconfirmed (a clustered node's copy of the agents past its lease): `None`, and
    // [`caller`] confirms it.
    gate.identities.check_remembered(token, memo).ok().flatten()
}

/// The token in an `Authorization: Bearer <token>` value, if well-formed.
fn bearer(value: &header::HeaderValue) -> Option<&str> {
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

/// Authenticates the caller; an unknown token is audited. On a node of a cluster whose
/// copy of the agents is past its lease, the copy is confirmed with Redis first (one
/// round trip, shared by every caller waiting for it); with Redis unreachable, only the
/// operator is known and an agent is answered 503 `cluster_unavailable`.
pub async fn caller(gate: &Gate, parts: &Parts) -> Result<Caller, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "no token: send `Authorization: Bearer <token>` (the CLI reads KEYGATE_TOKEN)",
        ));
    };
    let Some(token) = bearer(value) else {
        gate.auth_failed(parts.uri.path(), "malformed authorization header");
        return Err(ApiError::unauthenticated(
            "malformed Authorization header: expected `Bearer <token>`",
        ));
    };
    let judged = match gate.identities.check(token) {
        Err(Unconfirmed) => {
            gate.confirm_agents(false).await?;
            gate.identities.check(token)
        }
        judged => judged,
    };
    match judged {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) => {
            gate.auth_failed(parts.uri.path(), "unknown token");
            Err(ApiError::unauthenticated("unknown or revoked token"))
        }
        Err(e) => Err(GateError::Cluster(ClusterError::Unreachable(e.to_string())).into()),
    }
}

/// Operator-only routes.
pub fn operator(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Operator => Ok(()),
        Caller::Agent(_) => Err(ApiError::forbidden("this route needs the operator token")),
    }
}

/// Agent-only routes.
pub fn agent(caller: &Caller) -> Result<&crate::identity::Agent, ApiError> {
    match caller {
        Caller::Agent(a) => Ok(a),
        Caller::Operator => Err(ApiError::forbidden(
            "this route is for agents: the operator token cannot file requests or read secrets",
        )),
    }
}
