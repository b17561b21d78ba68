//! Joining the cluster: with `KEYGATE_CLUSTER_REDIS_URL` set, keygated becomes one node
//! of the gateway that every keygated on that Redis forms (`docs/cluster.md`). Nothing
//! here waits for Redis: the link connects in the background, and until it answers,
//! whatever needs Redis is refused with `cluster_unavailable`.

use std::sync::Arc;

use keygate_cluster::NodeName;
use secrecy::ExposeSecret as _;

use super::StartError;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::gate::Gate;

/// Makes `gate` a node of the cluster `config` names, if it names one: its agents are
/// the cluster's from then on (kept current by a follower task). Call once, inside the
/// runtime, before the gate serves anything.
pub fn join(config: &Config, gate: &Arc<Gate>) -> Result<(), StartError> {
    let Some(url) = config.cluster_redis_url.as_ref() else {
        return Ok(());
    };
    let node = config
        .cluster_node
        .clone()
        .unwrap_or_else(NodeName::default_for_this_process);
    let cluster = Cluster::open(url.expose_secret(), node)?;
    tracing::info!(
        "node {} of the cluster on Redis {}",
        cluster.node.as_str(),
        cluster.link.shown()
    );
    gate.join_cluster(cluster);
    gate.follow_cluster_agents();
    Ok(())
}
