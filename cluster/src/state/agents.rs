//! The cluster's agents in Redis: the gateway's agents file (names, token hashes,
//! serials, when each was added — never a token) as one value, `{keygate}:agents`, a
//! hash of `set` (the JSON) and `version` (random, new on every write). A change is a
//! compare-and-set: the writer reads the set and its version, applies its change, and
//! [`Shared::replace_agents`] writes only if the version is still the one it read —
//! otherwise someone else changed the set first, and the writer reads again. No lock is
//! held, so a writer that stalls or dies holds up nobody. Every write is announced as
//! `agents` on [`EVENTS`] in the same step.
//!
//! The version is random rather than a counter, so a Redis that lost its data and was
//! seeded again can never show an old number with new contents.

use std::sync::LazyLock;

use redis::Script;

use super::{EVENTS, Shared, key};
use crate::ClusterError;

static PUT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/agents_put.lua")));

/// The most bytes the agents' set may hold (about 4 million agents' worth of file): a
/// larger value is refused rather than read.
pub const MAX_AGENTS_BYTES: u64 = 1 << 30;

/// The agents as Redis holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentsSet {
    pub version: String,
    /// The gateway's JSON.
    pub json: Vec<u8>,
}

/// A fresh random version.
pub fn new_version() -> Result<String, ClusterError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ClusterError::Protocol(e.to_string()))?;
    Ok(hex::encode(bytes))
}

impl Shared {
    /// The version of the agents' set, or `None` if Redis has none yet. One small read:
    /// what a node asks to know whether its copy is current.
    pub async fn agents_version(&self) -> Result<Option<String>, ClusterError> {
        let mut conn = self.conn()?;
        Ok(redis::cmd("HGET")
            .arg(key("agents"))
            .arg("version")
            .query_async(&mut conn)
            .await?)
    }

    /// The agents' set and its version (read together, atomically), or `None` if Redis
    /// has none yet.
    pub async fn agents(&self) -> Result<Option<AgentsSet>, ClusterError> {
        let mut conn = self.conn()?;
        let len: u64 = redis::cmd("HSTRLEN")
            .arg(key("agents"))
            .arg("set")
            .query_async(&mut conn)
            .await?;
        if len > MAX_AGENTS_BYTES {
            return Err(ClusterError::Protocol(format!(
                "{} holds {len} bytes of agents, more than the {MAX_AGENTS_BYTES} allowed",
                key("agents")
            )));
        }
        let (version, json): (Option<String>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(key("agents"))
            .arg("version")
            .arg("set")
            .query_async(&mut conn)
            .await?;
        match (version, json) {
            (Some(version), Some(json)) => Ok(Some(AgentsSet { version, json })),
            (None, None) => Ok(None),
            _ => Err(ClusterError::Protocol(format!(
                "{} holds a version or a set without the other",
                key("agents")
            ))),
        }
    }

    /// Writes `json` as the agents' set, with `version`, if the set is still at
    /// `expected` (`None`: if there is no set yet, to seed it). `false`: someone else
    /// changed it first, and nothing was written.
    pub async fn replace_agents(
        &self,
        expected: Option<&str>,
        version: &str,
        json: &[u8],
    ) -> Result<bool, ClusterError> {
        let mut conn = self.conn()?;
        let written: i64 = PUT
            .key(key("agents"))
            .key(EVENTS)
            .arg(expected.unwrap_or(""))
            .arg(version)
            .arg(json)
            .invoke_async(&mut conn)
            .await?;
        Ok(written == 1)
    }
}
