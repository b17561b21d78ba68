//! A lease in Redis: a key that names its holder and expires by itself. Taken, renewed
//! and released by Lua scripts (atomic in Redis) that first compare the value with the
//! holder's own, so a node whose lease
//! already expired and went to another node can neither extend nor delete the new
//! holder's lease.
//!
//! The value is `NODE RANDOM`: the node's name, for `keygate status`, and 16 random
//! bytes, so even a node restarted under the same name is a different holder.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::{ClusterError, KEY_PREFIX, NodeName};

/// Takes the lease if nobody holds it, or extends it if we still do (a node that lost
/// Redis for a moment gets its own lease back instead of waiting for it to expire).
const TAKE: &str = r"
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if held then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1";

/// Extends the lease only if we still hold it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Deletes the lease only if we still hold it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// One holder's claim on one lease.
#[derive(Clone)]
pub struct Lease {
    key: String,
    value: String,
    ttl: Duration,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The lease on the cluster's one Discord session.
    pub fn discord(node: &NodeName, ttl: Duration) -> Self {
        Self::named("lease:discord", node, ttl)
    }

    /// A lease called `name` (under [`KEY_PREFIX`]) claimed for `node`.
    pub fn named(name: &str, node: &NodeName, ttl: Duration) -> Self {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        Self {
            key: format!("{KEY_PREFIX}{name}"),
            value: format!("{node} {}", hex::encode(nonce)),
            ttl,
        }
    }

    /// The key in Redis.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Takes the lease if nobody holds it (or we still do). `true` if we hold it now,
    /// for its TTL from now.
    pub async fn acquire(&self, conn: &mut impl ConnectionLike) -> Result<bool, ClusterError> {
        let taken: i64 = redis::Script::new(TAKE)
            .key(&self.key)
            .arg(&self.value)
            .arg(self.ttl_ms())
            .invoke_async(conn)
            .await?;
        Ok(taken == 1)
    }

    /// Extends our lease by its TTL from now. `false` if we no longer hold it.
    pub async fn renew(&self, conn: &mut impl ConnectionLike) -> Result<bool, ClusterError> {
        let renewed: i64 = redis::Script::new(RENEW)
            .key(&self.key)
            .arg(&self.value)
            .arg(self.ttl_ms())
            .invoke_async(conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up, if we hold it. `true` if it was ours.
    pub async fn release(&self, conn: &mut impl ConnectionLike) -> Result<bool, ClusterError> {
        let deleted: i64 = redis::Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.value)
            .invoke_async(conn)
            .await?;
        Ok(deleted == 1)
    }

    /// The name of the node holding this lease now, if any.
    pub async fn holder(
        &self,
        conn: &mut impl ConnectionLike,
    ) -> Result<Option<String>, ClusterError> {
        let value: Option<String> = redis::cmd("GET").arg(&self.key).query_async(conn).await?;
        Ok(value.and_then(|v| v.split(' ').next().map(str::to_owned)))
    }
}
