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
        let shared_end = match self.cluster() {
            Some(c) => Some(self.extend_shared(c, id, by, who).await?),
            None => None,
        };
        let grant = self
            .grants
            .extend(
                id,
                |g| match shared_end {
                    Some(end) => end.duration_since(g.expires_at()).unwrap_or_default(),
                    None => by.unwrap_or(g.ttl),
                },
                |g, end| {
                    if shared_end.is_some() {
                        // Audited before Redis was changed.
                        return Ok(());
                    }
                    self.audit.record(&Event::GrantExtended {
                        grant: &g.id,
                        agent: &g.agent.name,
                        by: who,
                        expires_at: Timestamp::from(end),
                    })
                },
            )
            .await;
        let grant = match grant {
            Ok(g) => g,
            // Made in Redis already, and this node's copy followed it first (the
            // announcement of this very extension).
            Err(ExtendError::AtCap(_)) if shared_end.is_some() => self
                .grants
                .get(id)
                .await
                .ok_or(GateError::NotFound("live grant"))?,
            Err(ExtendError::NotFound) => return Err(GateError::NotFound("live grant")),
            Err(ExtendError::AtCap(cap)) => return Err(at_cap(id, cap)),
            Err(ExtendError::Commit(e)) => return Err(GateError::Audit(e)),
        };
        let view = grant.view();
        self.requests.set_grant_end(&grant.request, view.expires_at);
        self.notify(&Change::GrantExtended(view.clone()));
        Ok(view)
    }

    /// On a cluster: the new end, audited and made in Redis (where every node's copy
    /// follows it); this node's copy is moved by the caller.
    async fn extend_shared(
        &self,
        c: &crate::cluster::Cluster,
        id: &GrantId,
        by: Option<Duration>,
        who: &Actor,
    ) -> Result<std::time::SystemTime, GateError> {
        let g = self
            .grants
            .get(id)
            .await
            .ok_or(GateError::NotFound("live grant"))?;
        let end = g
            .extended_end(by.unwrap_or(g.ttl))
            .ok_or_else(|| at_cap(id, g.cap()))?;
        self.audit.record(&Event::GrantExtended {
            grant: &g.id,
            agent: &g.agent.name,
            by: who,
            expires_at: Timestamp::from(end),
        })?;
        let json = crate::cluster::record::grant_json_ending(&g, end)?;
        if c.shared.extend(id.as_str(), &json, end).await? {
            Ok(end)
        } else {
            Err(GateError::NotFound("live grant"))
        }
    }
}

fn at_cap(id: &GrantId, cap: std::time::SystemTime) -> GateError {
    GateError::AtMaxTtl(format!(
        "grant {id} already ends at {}, its approval time + the rule's max_ttl: it cannot be extended",
        Timestamp::from(cap)
    ))
}
