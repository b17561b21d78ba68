//! Step 4, continued: a live grant ends later — by the operator (`keygate extend`) or by
//! one of its approvers (Discord's Extend). Never past approval time + the rule's
//! `max_ttl`; more access, so its audit line is on disk before the end moves.

use std::time::Duration;

use keygate_proto::api::GrantView;
use keygate_proto::approval::Change;
use keygate_proto::{GrantId, Timestamp};

use super::{Gate, GateError};
use crate::audit::{Actor, Event};
use crate::grants::ExtendError;

impl Gate {
    /// Extends a live grant by `by` (its own TTL when `None`), up to its cap; the grant
    /// as it now stands. Channels are told, and the request shows the new end.
    pub async fn extend(
        &self,
        id: &GrantId,
        by: Option<Duration>,
        who: &Actor,
    ) -> Result<GrantView, GateError> {
        if by.is_some_and(|d| d.is_zero()) {
            return Err(GateError::BadRequest(
                "an extension must be longer than zero".into(),
            ));
        }
        let grant = self
            .grants
            .extend(
                id,
                |g| by.unwrap_or(g.ttl),
                |g, end| {
                    self.audit.record(&Event::GrantExtended {
                        grant: &g.id,
                        agent: &g.agent.name,
                        by: who,
                        expires_at: Timestamp::from(end),
                    })
                },
            )
            .await
            .map_err(|e| match e {
                ExtendError::NotFound => GateError::NotFound("live grant"),
                ExtendError::AtCap(cap) => GateError::AtMaxTtl(format!(
                    "grant {id} already ends at {}, its approval time + the rule's max_ttl: it cannot be extended",
                    Timestamp::from(cap)
                )),
                ExtendError::Commit(e) => GateError::Audit(e),
            })?;
        let view = grant.view();
        self.requests.set_grant_end(&grant.request, view.expires_at);
        self.notify(&Change::GrantExtended(view.clone()));
        Ok(view)
    }
}
