//! The operator's terminal as an approval channel: requests wait in `keygate requests`,
//! and `keygate approve` / `keygate deny` decide them. Posting only logs where to look.

use keygate_proto::api::RequestView;
use keygate_proto::approval::{ApprovalChannel, BoxFuture, Change, ChannelError, Mentions};

#[derive(Debug, Default)]
pub struct Terminal;

impl ApprovalChannel for Terminal {
    fn name(&self) -> &'static str {
        "terminal"
    }

    fn post<'a>(
        &'a self,
        request: &'a RequestView,
        _mentions: &'a Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
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
