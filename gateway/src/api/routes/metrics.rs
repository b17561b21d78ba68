//! `GET /metrics`: every metric in the Prometheus text format, for the operator's token
//! (the loopback listener `[metrics] listen` serves the same answer without one).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};

use super::Reply;
use crate::api::error::ApiError;
use crate::api::{Ctx, auth};
use crate::gate::Gate;

pub fn get(gate: &Ctx, caller: &crate::identity::Caller) -> Reply {
    auth::operator(caller)?;
    Ok(exposition(gate))
}

/// The Prometheus text answer, as both listeners send it.
pub fn exposition(gate: &Gate) -> Response<Full<Bytes>> {
    match gate.metrics_text() {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            response
        }
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            keygate_proto::api::ErrorCode::Internal,
            "cannot encode the metrics",
        )
        .into_response(),
    }
}
