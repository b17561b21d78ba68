//! `/v1/store/lock` and `/v1/store/unlock` (operator): the encrypted-file store's key.

use hyper::StatusCode;
use hyper::body::Incoming;
use keygate_proto::api::UnlockBody;

use super::Reply;
use crate::api::body::{json, reply};
use crate::api::{Ctx, auth};
use crate::identity::Caller;

pub async fn lock(gate: &Ctx, caller: &Caller) -> Reply {
    auth::operator(caller)?;
    gate.lock_store().await?;
    Ok(reply(
        StatusCode::OK,
        &serde_json::json!({ "locked": true }),
    ))
}

pub async fn unlock(gate: &Ctx, caller: &Caller, body: Incoming) -> Reply {
    auth::operator(caller)?;
    let body: UnlockBody = json(body).await?;
    let passphrase = secrecy::SecretString::from(body.passphrase.expose().to_owned());
    gate.unlock_store(passphrase).await?;
    Ok(reply(
        StatusCode::OK,
        &serde_json::json!({ "locked": false }),
    ))
}
