//! keygate's cluster: several keygated sharing one Redis act as one gateway.
//!
//! Read it in this order: [`node`] names a node; [`link`] is its one connection to
//! Redis, which knows at every moment whether Redis answers (and reconnects by itself,
//! with backoff, when it does not); [`lease`] is the lock in Redis that picks the one
//! node that runs the Discord bot, and [`leadership`] keeps it: renews it while this
//! node holds it, takes it when it falls free, and steps down *before* it could have
//! expired in Redis when renewing fails, so two nodes never both believe they lead.
//!
//! The design of the whole cluster (where requests and grants live in Redis, what is
//! atomic, how a revocation reaches every node) is in `docs/cluster.md`.

pub mod blob;
pub mod events;
pub mod leadership;
pub mod lease;
pub mod link;
pub mod node;
pub mod state;

pub use leadership::{Leadership, Timing};
pub use lease::Lease;
pub use link::{Health, Link};
pub use node::NodeName;
pub use state::Shared;

/// Every key keygate writes starts with this; the braces are a Redis Cluster hash tag,
/// so the scripts that touch several keys at once keep working on a sharded Redis.
pub const KEY_PREFIX: &str = "{keygate}:";

/// What can go wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The URL does not parse as a Redis URL (the URL itself is never repeated: it may
    /// hold a password).
    #[error(
        "KEYGATE_CLUSTER_REDIS_URL is not a Redis URL (redis://HOST:PORT/DB or rediss://…): {0}"
    )]
    BadUrl(String),
    #[error("{0}")]
    BadNode(String),
    /// Redis does not answer now; nothing that needs it may be decided or released.
    #[error("the cluster's Redis is unreachable: {0}")]
    Unreachable(String),
    /// Refused before reaching Redis: nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// Redis answered, but not as keygate's scripts expect.
    #[error("Redis answered unexpectedly: {0}")]
    Protocol(String),
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            Self::Unreachable(e.to_string())
        } else {
            Self::Protocol(e.to_string())
        }
    }
}
