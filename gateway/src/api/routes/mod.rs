//! One file per resource; each function is one route.

pub mod agents;
pub mod audit;
pub mod grants;
pub mod health;
pub mod metrics;
pub mod policy;
pub mod requests;
pub mod secrets;
pub mod status;
pub mod store;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use super::error::ApiError;

pub type Reply = Result<Response<Full<Bytes>>, ApiError>;
