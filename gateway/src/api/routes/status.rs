//! `GET /v1/status`: the daemon's state, for any authenticated caller; an agent sees only
//! what is its own.

use hyper::StatusCode;

use crate::api::Ctx;
use crate::api::body::reply;

pub fn get(
    gate: &Ctx,
    caller: &crate::identity::Caller,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    reply(StatusCode::OK, &gate.status(caller))
}
