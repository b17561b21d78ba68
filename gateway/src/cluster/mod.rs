//! The gate's side of the cluster: several keygated on one Redis act as one gateway
//! (`docs/cluster.md`). [`Cluster`] is this node's membership — its name, its link to
//! Redis, the shared state, and whether it holds the Discord lease. The gate keeps its
//! own tables as it does on one node, and they become this node's copies: every change
//! is made in Redis first, by one atomic script, and then here; changes made on other
//! nodes reach the copies through [`record`]s read back on each announcement (see
//! `gate/mirror.rs`).

pub mod agents;
pub mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keygate_cluster::{Health, Leadership, Lease, Link, NodeName, Shared, Timing};
use keygate_proto::RequestId;
use keygate_proto::api::ClusterStatus;

/// This node's place in the cluster.
#[derive(Debug)]
pub struct Cluster {
    pub node: NodeName,
    pub link: Arc<Link>,
    pub shared: Shared,
    /// This node's copy of the cluster's agents, and where it stands (`agents.rs`).
    pub agents: agents::AgentsCopy,
    leadership: Mutex<Option<Leadership>>,
    /// The version of each request this node's copy is at: an announcement of a change
    /// this node made itself is recognised and not applied twice.
    versions: Mutex<HashMap<RequestId, u64>>,
    /// Whether this node runs the bot when it holds the lease (`[discord]` is set).
    bot: std::sync::atomic::AtomicBool,
}

impl Cluster {
    /// Joins the cluster on `url` as `node`. Nothing waits for Redis here: the link
    /// connects in the background and refuses calls until it answers.
    pub fn open(url: &str, node: NodeName) -> Result<Arc<Self>, keygate_cluster::ClusterError> {
        let link = Link::open(url)?;
        let shared = Shared::new(Arc::clone(&link));
        Ok(Arc::new(Self {
            node,
            link,
            shared,
            agents: agents::AgentsCopy::default(),
            leadership: Mutex::new(None),
            versions: Mutex::default(),
            bot: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Starts competing for the Discord lease, and follows it. Must be
    /// called inside a tokio runtime, at most once.
    /// [`Cluster::is_leader`] follows it.
    pub fn start_leading(self: &Arc<Self>) -> tokio::sync::watch::Receiver<bool> {
        self.bot.store(true, std::sync::atomic::Ordering::Relaxed);
        let leadership = Leadership::spawn(
            Arc::clone(&self.link),
            Lease::discord(&self.node, Timing::DISCORD.ttl),
            Timing::DISCORD,
        );
        let rx = leadership.watch();
        *self
            .leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(leadership);
        rx
    }

    /// Whether this node runs the Discord bot while it holds the lease.
    pub fn runs_bot(&self) -> bool {
        self.bot.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Gives the lease back at once (a clean shutdown), so another node need not wait
    /// for it to expire.
    pub async fn resign(&self) {
        let held = self
            .leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(l) = held {
            l.resign().await;
        }
    }

    /// Whether this node runs the Discord bot now.
    pub fn is_leader(&self) -> bool {
        self.leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(Leadership::is_leader)
    }

    pub fn status(&self) -> ClusterStatus {
        ClusterStatus {
            node: self.node.as_str().to_owned(),
            redis: if self.link.health() == Health::Connected {
                "connected"
            } else {
                "unreachable"
            }
            .to_owned(),
            discord_leader: self.is_leader(),
        }
    }

    /// Notes that this node's copy of `id` is at `version`.
    pub(crate) fn saw(&self, id: &RequestId, version: u64) {
        let mut v = self
            .versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = v.entry(id.clone()).or_default();
        *at = (*at).max(version);
    }

    /// Whether this node's copy of `id` is already at `version` or later.
    pub(crate) fn has_seen(&self, id: &RequestId, version: u64) -> bool {
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .is_some_and(|v| *v >= version)
    }

    /// Forgets the versions of requests no longer kept.
    pub(crate) fn forget(&self, keep: impl Fn(&RequestId) -> bool) {
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|id, _| keep(id));
    }
}
