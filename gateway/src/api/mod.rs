//! The HTTP API: hyper 1, HTTP/1.1 and HTTP/2, over the Unix socket and, for remote
//! agents, TLS on TCP ([`tls`]). This layer authenticates callers and translates between
//! HTTP and the [`Gate`]; it makes no decisions of its own. Every route is documented in
//! `docs/api.md`.

mod auth;
pub mod body;
mod error;
pub mod metrics_listener;
mod router;
mod routes;
pub mod server;
pub mod tls;

pub use error::ApiError;
pub use router::{Memo, answer_at_once, handle};

use crate::gate::Gate;

/// What a handler needs besides the request.
pub type Ctx = std::sync::Arc<Gate>;
