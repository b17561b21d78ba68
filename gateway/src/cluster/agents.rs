//! This node's copy of the cluster's agents, kept in step with Redis (`{keygate}:agents`,
//! see `keygate_cluster::state::agents`).
//!
//! - **Confirming** ([`AgentsCopy::confirm`]): ask Redis for the set's version; if it is
//!   not the copy's, read the set and install it (the agents file too); if Redis has no
//!   set yet, seed it with this node's agents. Each confirmation renews the copy's
//!   [`Lease`](crate::identity::Lease), from the moment its question was sent. A
//!   follower does it every [`REFRESH`](crate::identity::lease::REFRESH), and on every
//!   `agents` announcement and resubscription (`Gate::agents_changed`).
//! - **Changing** ([`AgentsCopy::change`]): read the set, apply the change to it, and
//!   write it back only if nobody changed it meanwhile (else read again); then install
//!   it here. The gate then waits [`SETTLE`](crate::identity::lease::SETTLE) before it
//!   answers, so every node's answers include the change once `agents add` or `remove`
//!   returns.
//!
//! Both hold one lock (this node's), so what they install lands in the order the
//! questions were asked: an older answer never replaces a newer one.

use std::time::Instant;

use keygate_cluster::state::agents::new_version;
use keygate_cluster::{ClusterError, Health, Shared};
use tokio::sync::Mutex;

use crate::identity::{Agent, Identities, IdentityError, Table};

/// Where the set lives, for messages.
pub const KEY: &str = "{keygate}:agents";

/// How many times a change is tried again after another node's change beat it.
const TRIES: usize = 50;

/// The copy's place against the cluster's set.
#[derive(Debug, Default)]
pub struct AgentsCopy {
    /// The version of the cluster's set the copy holds; `None` before the first read.
    at: Mutex<Option<String>>,
}

/// Why the copy could not be confirmed or changed.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    #[error("{0}")]
    Identity(#[from] IdentityError),
}

impl AgentsCopy {
    /// Brings the copy in step with Redis and renews its lease; returns the
    /// registrations that are gone from it. Unless `always`, a lease that holds already
    /// (another caller confirmed while this one waited) is enough.
    pub async fn confirm(
        &self,
        shared: &Shared,
        ids: &Identities,
        always: bool,
    ) -> Result<Vec<Agent>, AgentsError> {
        let mut at = self.at.lock().await;
        let Some(lease) = ids.lease() else {
            return Ok(Vec::new());
        };
        if !always && lease.holds() {
            return Ok(Vec::new());
        }
        connected(shared).await;
        for _ in 0..TRIES {
            let sent = Instant::now();
            let version = shared.agents_version().await?;
            if version.is_some() && *at == version {
                lease.confirm(sent);
                return Ok(Vec::new());
            }
            if version.is_none() {
                let mine = ids.table();
                let v = new_version()?;
                if shared.replace_agents(None, &v, &mine.to_json()).await? {
                    if at.is_some() {
                        tracing::warn!(
                            "the cluster's Redis lost its agents: seeded them again with this node's {} (from {})",
                            mine.len(),
                            ids.agents_path().display()
                        );
                    } else {
                        tracing::info!(
                            "the cluster's Redis held no agents yet: seeded {KEY} with this node's {} from {}",
                            mine.len(),
                            ids.agents_path().display()
                        );
                    }
                    *at = Some(v);
                    lease.confirm(sent);
                    return Ok(Vec::new());
                }
                continue;
            }
            let Some(set) = shared.agents().await? else {
                continue;
            };
            let table = Table::parse(&set.json, KEY)?;
            if at.is_none() {
                tracing::info!(
                    "this node follows the cluster's {} agents ({KEY}); {} keeps a copy",
                    table.len(),
                    ids.agents_path().display()
                );
            }
            let gone = ids.install(table);
            *at = Some(set.version);
            lease.confirm(sent);
            return Ok(gone);
        }
        Err(busy().into())
    }

    /// Applies `op` to the cluster's set (as Redis holds it now) and installs the
    /// result here; returns what `op` returned and the registrations gone from this
    /// node's copy. An error from `op` (the agent exists, or does not) changes nothing
    /// anywhere; so does Redis being unreachable.
    pub async fn change<T>(
        &self,
        shared: &Shared,
        ids: &Identities,
        mut op: impl FnMut(&mut Table) -> Result<T, IdentityError>,
    ) -> Result<(T, Vec<Agent>), AgentsError> {
        let mut at = self.at.lock().await;
        for _ in 0..TRIES {
            let sent = Instant::now();
            let (expected, mut table) = match shared.agents().await? {
                Some(set) => (Some(set.version), Table::parse(&set.json, KEY)?),
                // No set yet: this node's agents are the cluster's to begin with.
                None => (None, ids.table()),
            };
            let out = op(&mut table)?;
            let v = new_version()?;
            if shared
                .replace_agents(expected.as_deref(), &v, &table.to_json())
                .await?
            {
                let gone = ids.install(table);
                *at = Some(v);
                if let Some(lease) = ids.lease() {
                    lease.confirm(sent);
                }
                return Ok((out, gone));
            }
        }
        Err(busy().into())
    }
}

/// Waits (up to the link's response timeout) while the link is still making its first
/// connection, so that a node that has just started answers its first agents rather
/// than refusing them for the moment its first ping takes.
async fn connected(shared: &Shared) {
    let mut health = shared.link().watch_health();
    let _ = tokio::time::timeout(
        keygate_cluster::link::RESPONSE_TIMEOUT,
        health.wait_for(|h| *h != Health::Connecting),
    )
    .await;
}

fn busy() -> ClusterError {
    ClusterError::Protocol(format!(
        "{KEY} changed under this node {TRIES} times in a row: nothing was changed, try again"
    ))
}
