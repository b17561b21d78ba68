//! `/v1/secrets`: the release point for agents, and the operator's management of values.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use keygate_proto::api::{SecretInfo, SetSecretBody};
use keygate_proto::{SecretName, Timestamp};

use super::Reply;
use crate::api::body::{json, json_reply, path_segment, reply};
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::identity::Caller;

fn name(raw: &str) -> Result<SecretName, ApiError> {
    SecretName::new(path_segment(raw)?).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `GET /v1/secrets/{name}` (agent): the value, under a live grant or an `allow` rule.
pub async fn release(gate: &Ctx, caller: &Caller, raw: &str, command: Option<&str>) -> Reply {
    let agent = auth::agent(caller)?;
    let name = name(raw)?;
    let body = gate.release_json(agent, &name, command).await?;
    Ok(json_reply(StatusCode::OK, body))
}

/// `GET /v1/secrets/{name}` answered at once at `now`, if the agent's reusable grant
/// keeps the answer (see [`crate::gate::Gate::release_kept`]); `None` leaves it to
/// [`release`]. The name is matched as it is in the path (`raw`), decoding nothing: one
/// that is not a grant's (a bad one included) goes the whole way, to be refused there.
pub fn release_kept(
    gate: &Ctx,
    caller: &Caller,
    raw: &str,
    command: Option<&str>,
    now: std::time::Instant,
    last: &mut crate::grants::LastGrant,
) -> Option<Response<Full<Bytes>>> {
    let Caller::Agent(agent) = caller else {
        return None;
    };
    let body =
        gate.release_kept_where(agent, |s| is_path_of(raw, s.as_str()), command, now, last)?;
    Some(json_reply(StatusCode::OK, body))
}

/// Whether `raw` (a path segment) decodes, as [`path_segment`] would, to exactly `name`.
fn is_path_of(raw: &str, name: &str) -> bool {
    let (mut raw, mut name) = (raw.as_bytes(), name.as_bytes());
    loop {
        match (raw, name) {
            ([], []) => return true,
            ([b'%', a, b, rest @ ..], [b'/', more @ ..])
                if a == &b'2' && b.eq_ignore_ascii_case(&b'f') =>
            {
                (raw, name) = (rest, more);
            }
            ([b'%', ..], _) => return false,
            ([r, rest @ ..], [n, more @ ..]) if r == n => (raw, name) = (rest, more),
            _ => return false,
        }
    }
}

/// `PUT /v1/secrets/{name}` (operator): `{"value": "..."}`.
pub async fn set(gate: &Ctx, caller: &Caller, raw: &str, body: Incoming) -> Reply {
    auth::operator(caller)?;
    let name = name(raw)?;
    let body: SetSecretBody = json(body).await?;
    let meta = gate.set_secret(name, body.value).await?;
    Ok(reply(StatusCode::OK, &info(&meta)))
}

/// `DELETE /v1/secrets/{name}` (operator).
pub async fn remove(gate: &Ctx, caller: &Caller, raw: &str) -> Reply {
    auth::operator(caller)?;
    let name = name(raw)?;
    if gate.remove_secret(name).await? {
        Ok(reply(
            StatusCode::OK,
            &serde_json::json!({ "removed": true }),
        ))
    } else {
        Err(ApiError::not_found("no secret by that name"))
    }
}

/// `GET /v1/secrets` (operator): names and dates, never values.
pub async fn list(gate: &Ctx, caller: &Caller) -> Reply {
    auth::operator(caller)?;
    let all: Vec<SecretInfo> = gate.list_secrets().await?.iter().map(info).collect();
    Ok(reply(StatusCode::OK, &all))
}

fn info(m: &crate::store::SecretMeta) -> SecretInfo {
    SecretInfo {
        name: m.name.clone(),
        created_at: Timestamp::from(m.created_at),
        updated_at: Timestamp::from(m.updated_at),
        size: m.size,
        backend: m.backend.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_matches_the_name_it_decodes_to_and_only_that() {
        // Agrees with `path_segment` on every case, without decoding.
        for (raw, name) in [
            ("github%2Ftoken", "github/token"),
            ("github%2ftoken", "github/token"),
            ("github/token", "github/token"),
            ("a", "a"),
        ] {
            assert!(is_path_of(raw, name), "{raw} is {name}");
            assert_eq!(path_segment(raw).unwrap(), name);
        }
        for (raw, name) in [
            ("github%2Ftoke", "github/token"),
            ("github%2Ftokens", "github/token"),
            ("github%2Etoken", "github.token"),
            ("github%41", "githubA"),
            ("a%2", "a/"),
            ("a%", "a%"),
            ("", "a"),
            ("A", "a"),
        ] {
            assert!(!is_path_of(raw, name), "{raw} is not {name}");
        }
    }
}
