//! Approval channels: where a request is shown to the people who may decide it. The core
//! knows nothing of Discord; it posts each request to every channel and tells them when
//! something changes. Decisions come back through [`crate::gate::Gate::decide`], from any
//! channel; the first one wins.

use std::future::Future;
use std::pin::Pin;

use keygate_proto::api::{GrantView, RequestView};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something an approval message may need to show.
#[derive(Debug, Clone)]
pub enum Change {
    /// A request changed: an approval towards a quorum, a decision, an expiry, a cancel.
    Request(RequestView),
    /// A grant ended: `cause` is `expired` or `revoked`.
    GrantEnded { grant: GrantView, cause: String },
}

/// Why a channel could not post a request.
#[derive(Debug, thiserror::Error)]
#[error("{channel}: {message}")]
pub struct ChannelError {
    pub channel: &'static str,
    pub message: String,
}

/// Where requests are shown and decided.
pub trait ApprovalChannel: Send + Sync + std::fmt::Debug {
    /// `terminal`, `discord`.
    fn name(&self) -> &'static str;
    /// Shows a new request to its approvers. An error fails the request closed.
    fn post<'a>(&'a self, request: &'a RequestView) -> BoxFuture<'a, Result<(), ChannelError>>;
    /// Something changed; update what the approvers see. Must not block.
    fn notify(&self, change: &Change);
    /// For `keygate status`: `connected`, `disconnected`, ...
    fn state(&self) -> String {
        "ready".into()
    }
}

/// The operator's terminal: requests wait in `keygate requests`, and `keygate approve` /
/// `keygate deny` decide them. Posting only logs where to look.
#[derive(Debug, Default)]
pub struct Terminal;

impl ApprovalChannel for Terminal {
    fn name(&self) -> &'static str {
        "terminal"
    }

    fn post<'a>(&'a self, request: &'a RequestView) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            tracing::info!(
                request = %request.id,
                agent = %request.agent,
                "request awaits a decision: keygate approve {} (or deny)",
                request.id
            );
            Ok(())
        })
    }

    fn notify(&self, _change: &Change) {}
}
