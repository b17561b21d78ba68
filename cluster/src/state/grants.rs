//! Grants in Redis: made by the decision that approves (see [`super::Decision`]), each a
//! key that Redis expires at the grant's end. A read is counted by a script that first
//! checks the key is there, so a revoked or expired grant serves nobody on any node,
//! and that hands each secret of a single-use grant to exactly one reader.

use std::sync::LazyLock;
use std::time::SystemTime;

use redis::Script;

use super::{EVENTS, Reply, Shared, epoch_ms, key, reply};
use crate::ClusterError;

static READ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/read.lua")));
static REVOKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/revoke.lua")));
static EXTEND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/extend.lua")));

/// A grant to make.
#[derive(Debug, Clone, Copy)]
pub struct NewGrant<'a> {
    pub id: &'a str,
    /// The gateway's record of it (never a secret value).
    pub json: &'a str,
    pub ends: SystemTime,
}

/// What a read under a grant may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Served; the grant's reads so far, this one included.
    Served(u64),
    /// No such live grant: never made, revoked, or past its end.
    Gone,
    /// A single-use grant whose secret was read already.
    Taken,
}

impl Shared {
    /// Counts one read of `secret` under grant `id`, if the grant is live (and, for a
    /// single-use grant, the secret not read yet). `node` is kept as the one that took
    /// it.
    pub async fn read(
        &self,
        id: &str,
        secret: &str,
        single_use: bool,
        node: &str,
    ) -> Result<Read, ClusterError> {
        Ok(self
            .read_marked(id, secret, single_use, node, None)
            .await?
            .0)
    }

    /// [`Shared::read`], also answering, in the same step, bytes `start..=end` of the key
    /// `{keygate}:NAME` that `mark` names (empty when that key does not exist or the read
    /// is refused): the sealed secrets' nonce, so a node knows whether the secrets it
    /// holds are current without a second round trip.
    pub async fn read_marked(
        &self,
        id: &str,
        secret: &str,
        single_use: bool,
        node: &str,
        mark: Option<(&str, u32, u32)>,
    ) -> Result<(Read, Vec<u8>), ClusterError> {
        let mut conn = self.conn()?;
        let (mark_key, start, end) = match mark {
            Some((name, start, end)) => (key(name), i64::from(start), i64::from(end)),
            None => (key("-"), 0, -1),
        };
        let answer: redis::Value = READ
            .key(key(&format!("grant:{id}")))
            .key(mark_key)
            .arg(secret)
            .arg(u8::from(single_use))
            .arg(node)
            .arg(start)
            .arg(end)
            .invoke_async(&mut conn)
            .await?;
        let redis::Value::Array(items) = &answer else {
            return Err(ClusterError::Protocol(format!(
                "reading answered {answer:?}"
            )));
        };
        if let [redis::Value::Int(1), redis::Value::Int(n), mark] = items.as_slice() {
            let mark = match mark {
                redis::Value::BulkString(b) => b.clone(),
                _ => Vec::new(),
            };
            return Ok((Read::Served(u64::try_from(*n).unwrap_or(0)), mark));
        }
        let answer = reply(&answer)?;
        Ok((
            match answer.as_slice() {
                [_, Reply::Text(why)] if why == "gone" => Read::Gone,
                [_, Reply::Text(why)] if why == "taken" => Read::Taken,
                other => {
                    return Err(ClusterError::Protocol(format!(
                        "reading answered {other:?}"
                    )));
                }
            },
            Vec::new(),
        ))
    }

    /// Gives a single-use secret back after a read that could not be completed (the
    /// store failed): it may be read again. Nothing if the grant is gone.
    pub async fn give_back(&self, id: &str, secret: &str) -> Result<(), ClusterError> {
        let mut conn = self.conn()?;
        let _: i64 = redis::cmd("HDEL")
            .arg(key(&format!("grant:{id}")))
            .arg(format!("taken:{secret}"))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The grant's record, if it is live.
    pub async fn grant(&self, id: &str) -> Result<Option<String>, ClusterError> {
        let mut conn = self.conn()?;
        Ok(redis::cmd("HGET")
            .arg(key(&format!("grant:{id}")))
            .arg("json")
            .query_async(&mut conn)
            .await?)
    }

    /// The ids of `agent`'s grants (some may have ended since: read each).
    pub async fn grants_of(&self, agent: &str) -> Result<Vec<String>, ClusterError> {
        let mut conn = self.conn()?;
        Ok(redis::cmd("SMEMBERS")
            .arg(key(&format!("grants:agent:{agent}")))
            .query_async(&mut conn)
            .await?)
    }

    /// Ends grant `id` now, on every node: once this returns `Ok`, [`Shared::read`]
    /// answers [`Read::Gone`] for it everywhere. `true` if it was live.
    pub async fn revoke(&self, id: &str, agent: &str) -> Result<bool, ClusterError> {
        let mut conn = self.conn()?;
        let ended: i64 = REVOKE
            .key(key(&format!("grant:{id}")))
            .key(key(&format!("grants:agent:{agent}")))
            .key(key(&format!("revoked:{id}")))
            .key(EVENTS)
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        Ok(ended == 1)
    }

    /// Whether grant `id` was revoked (until the moment it would have ended anyway).
    pub async fn was_revoked(&self, id: &str) -> Result<bool, ClusterError> {
        let mut conn = self.conn()?;
        let n: i64 = redis::cmd("EXISTS")
            .arg(key(&format!("revoked:{id}")))
            .query_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    /// Moves a live grant's end to `ends`, with its new record. `false` if it is gone.
    pub async fn extend(
        &self,
        id: &str,
        json: &str,
        ends: SystemTime,
    ) -> Result<bool, ClusterError> {
        let mut conn = self.conn()?;
        let done: i64 = EXTEND
            .key(key(&format!("grant:{id}")))
            .key(EVENTS)
            .arg(json)
            .arg(epoch_ms(ends))
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }
}
