//! Step 5, the operator's side: agents. On one node, the agents file is the truth. In a
//! cluster, Redis is (`cluster/agents.rs`): a change is made there first, this node's
//! copy follows, and the change waits [`SETTLE`] before it returns, so that once
//! `keygate agents add` returns the new token works on every node, and once `remove`
//! returns the old one works on none. Adding is audited before it is made; removing
//! (it reduces access) never waits on the audit log.

use std::sync::{Arc, Weak};
use std::time::Instant;

use keygate_proto::AgentName;
use secrecy::SecretString;

use super::{Gate, GateError, Selector, actor};
use crate::audit::Event;
use crate::cluster::agents::AgentsError;
use crate::identity::Agent;
use crate::identity::lease::{REFRESH, SETTLE};

impl From<AgentsError> for GateError {
    fn from(e: AgentsError) -> Self {
        match e {
            AgentsError::Cluster(e) => Self::Cluster(e),
            AgentsError::Identity(e) => Self::Identity(e),
        }
    }
}

impl Gate {
    pub async fn add_agent(&self, name: &AgentName) -> Result<SecretString, GateError> {
        let Some(cluster) = self.cluster() else {
            self.audit.record(&Event::AgentAdded { name })?;
            return Ok(self.identities.add(name)?);
        };
        // Refused at once, with no audit line, while Redis is unreachable.
        cluster.link.conn()?;
        self.audit.record(&Event::AgentAdded { name })?;
        let (token, gone) = cluster
            .agents
            .change(&cluster.shared, &self.identities, |t| t.add(name))
            .await?;
        let settled = Instant::now() + SETTLE;
        self.agents_gone(gone).await;
        tokio::time::sleep_until(settled.into()).await;
        Ok(token)
    }

    /// Removes an agent: its token stops working, its pending requests are cancelled and
    /// its grants revoked. None of it waits on the audit log (it reduces access).
    pub async fn remove_agent(&self, name: &AgentName) -> Result<(), GateError> {
        let (gone, settled) = match self.cluster() {
            None => (self.identities.remove(name)?, None),
            Some(cluster) => {
                let (gone, mut others) = cluster
                    .agents
                    .change(&cluster.shared, &self.identities, |t| t.remove(name))
                    .await?;
                let settled = Instant::now() + SETTLE;
                // The one removed here ends below, audited as the operator's.
                others.retain(|a| *a != gone);
                self.agents_gone(others).await;
                (gone, Some(settled))
            }
        };
        self.audit.record_or_hold(&Event::AgentRemoved { name });
        self.registration_ended(gone, "terminal").await?;
        if let Some(settled) = settled {
            tokio::time::sleep_until(settled.into()).await;
        }
        Ok(())
    }

    /// The cluster's agents may have changed (an `agents` announcement, or a
    /// resubscription after which announcements may have been missed): brings this
    /// node's copy in step with Redis now, and ends what removed agents held here. Also
    /// run every [`REFRESH`] by [`Gate::follow_cluster_agents`]. Nothing on one node.
    pub async fn agents_changed(&self) -> Result<(), GateError> {
        self.confirm_agents(true).await
    }

    /// Confirms this node's copy of the cluster's agents if its lease has run out (an
    /// agent's token is then judged only after this). Nothing on one node.
    pub async fn confirm_agents(&self, always: bool) -> Result<(), GateError> {
        let Some(cluster) = self.cluster() else {
            return Ok(());
        };
        let gone = cluster
            .agents
            .confirm(&cluster.shared, &self.identities, always)
            .await?;
        self.agents_gone(gone).await;
        Ok(())
    }

    /// Makes the identities a copy of the cluster's agents and keeps it current: every
    /// [`REFRESH`] until the gate shuts down (or is dropped). Call once, after
    /// [`Gate::join_cluster`] and before serving.
    pub fn follow_cluster_agents(self: &Arc<Self>) {
        if self.cluster().is_none() {
            return;
        }
        self.identities.follow_cluster();
        let weak: Weak<Self> = Arc::downgrade(self);
        let mut stop = self.shutting_down.subscribe();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(REFRESH);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_error = String::new();
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.changed() => return,
                }
                let Some(gate) = weak.upgrade() else { return };
                match gate.agents_changed().await {
                    Ok(()) => last_error.clear(),
                    // Redis down is logged by the link; anything else once per cause.
                    Err(GateError::Cluster(keygate_cluster::ClusterError::Unreachable(_))) => {}
                    Err(e) => {
                        let e = e.to_string();
                        if e != last_error {
                            tracing::warn!("cannot follow the cluster's agents: {e}");
                            last_error = e;
                        }
                    }
                }
            }
        });
    }

    /// Registrations removed on another node: what they held here ends.
    async fn agents_gone(&self, gone: Vec<Agent>) {
        for agent in gone {
            let _ = self.registration_ended(agent, "cluster").await;
        }
    }

    /// Cancels the registration's pending requests and revokes its grants.
    async fn registration_ended(&self, gone: Agent, via: &'static str) -> Result<(), GateError> {
        for id in self.requests.pending_ids_of(&gone) {
            self.cancel_for_removal(&id);
        }
        self.revoke(&Selector::Registration(gone), &actor("operator", via))
            .await?;
        Ok(())
    }
}
