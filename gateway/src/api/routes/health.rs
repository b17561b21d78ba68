//! `GET /healthz`: 200 while the daemon serves; tells nothing else.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use crate::api::body::reply;

pub fn get() -> Response<Full<Bytes>> {
    reply(StatusCode::OK, &serde_json::json!({ "ok": true }))
}
