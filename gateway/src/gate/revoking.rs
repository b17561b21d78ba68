//! Step 4: grants go live, are listed, and end — revoked by a person or the operator, or
//! on their own when their TTL runs out (noticed by maintenance, which also forgets what
//! is old).

use std::sync::Arc;
use std::time::Duration;

use keygate_proto::GrantId;
use keygate_proto::api::GrantView;
use keygate_proto::approval::{Change, GrantEnd};
use tokio::sync::mpsc;

use super::{Gate, GateError, Selector, actor};
use crate::audit::{Actor, Event};
use crate::grants::{Ended, Grant};
use crate::identity::Caller;

impl Gate {
    /// Makes a grant live (and known to watchers).
    pub(super) async fn issue(&self, grant: Arc<Grant>) {
        let agent = grant.agent.clone();
        let id = grant.id.clone();
        self.grants.insert(grant).await;
        // Checked after the insert: an agent removed meanwhile either sees this grant in
        // its revocation or is seen gone here. Its grants never outlive it.
        if !self.identities.is_current(&agent) {
            let _ = self
                .revoke(&Selector::Grant(id), &actor("daemon", "daemon"))
                .await;
        }
    }

    pub fn list_grants(&self, caller: &Caller) -> Vec<GrantView> {
        self.grants
            .list()
            .iter()
            .filter(|g| caller.sees(&g.agent))
            .map(|g| g.view())
            .collect()
    }

    /// Revokes grants; each is closed (its reads in flight finished), audited and gone
    /// before this returns.
    pub async fn revoke(&self, selector: &Selector, by: &Actor) -> Result<Vec<GrantId>, GateError> {
        let live = || self.grants.list().into_iter();
        let chosen: Vec<Arc<Grant>> = match selector {
            Selector::Grant(id) => match self.grants.get(id).await {
                Some(g) => vec![g],
                None => return Err(GateError::NotFound("live grant")),
            },
            Selector::Agent(a) => live().filter(|g| &g.agent.name == a).collect(),
            Selector::Registration(a) => live().filter(|g| &g.agent == a).collect(),
            Selector::Secret(s) => live().filter(|g| g.secrets.contains(s)).collect(),
            Selector::All => live().collect(),
        };
        let mut revoked = Vec::new();
        for g in chosen {
            // On a cluster, gone from Redis first: from then on Redis refuses every
            // read under it, on every node (each read asks Redis). Redis down: not
            // revoked, and the caller is told.
            let in_redis = match self.cluster() {
                Some(c) => {
                    c.shared
                        .revoke(g.id.as_str(), g.agent.name.as_str())
                        .await?
                }
                None => false,
            };
            // No read starts after this, and those in flight have finished: the count
            // below is final, and once this returns nothing is released under the grant.
            g.close().await;
            // Revocation reduces access: a full or failing disk must not stop it.
            self.audit.record_or_hold(&Event::GrantEnded {
                grant: &g.id,
                agent: &g.agent.name,
                cause: GrantEnd::Revoked.as_str(),
                reads: g.reads(),
                by: Some(by),
            });
            // On a cluster this node's copy may have gone already, at the announcement
            // of this very revocation (which told the channels then).
            let here = self.grants.revoke(&g.id).await.is_some();
            if here {
                self.notify(&Change::GrantEnded {
                    grant: g.view(),
                    cause: GrantEnd::Revoked,
                });
            }
            if here || in_redis {
                revoked.push(g.id.clone());
            }
        }
        Ok(revoked)
    }

    /// Runs until shutdown: notices expiries promptly, records grants that ended, and
    /// forgets old requests and grants.
    pub async fn run_maintenance(self: Arc<Self>, mut ended: mpsc::UnboundedReceiver<Ended>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut purge = tokio::time::interval(Duration::from_secs(60));
        let mut stop = self.shutting_down.subscribe();
        // A shutdown before this task first ran (a standalone run that ends at once) is
        // already the current value, which `changed` would never report.
        if *stop.borrow_and_update() {
            return;
        }
        loop {
            tokio::select! {
                _ = tick.tick() => self.grants.tick().await,
                _ = purge.tick() => {
                    self.auth_failures.flush(&self.audit, false);
                    self.requests.purge();
                    self.grants.purge();
                }
                Some(Ended { grant }) = ended.recv() => {
                    self.audit.record_or_hold(&Event::GrantEnded {
                        grant: &grant.id,
                        agent: &grant.agent.name,
                        cause: GrantEnd::Expired.as_str(),
                        reads: grant.reads(),
                        by: None,
                    });
                    self.notify(&Change::GrantEnded { grant: grant.view(), cause: GrantEnd::Expired });
                }
                _ = stop.changed() => break,
            }
        }
    }
}
