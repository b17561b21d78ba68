//! Requests in Redis: filed within the agent's limits (cluster-wide: the per-agent
//! pending count and the requests-per-minute window are counted in Redis, by Redis's
//! clock), read, and changed only by a script that checks the request's `version` is
//! still the one its planner read — so two nodes deciding at once cannot both decide.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use redis::Script;

use super::{EVENTS, Reply, Shared, epoch_ms, key, millis, reply};
use crate::ClusterError;

static FILE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/file.lua")));
static DECIDE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/decide.lua")));

/// How long a settled request stays readable (as on one node: an hour).
pub const KEEP_SETTLED: Duration = Duration::from_secs(3600);

/// A request to file.
#[derive(Debug, Clone, Copy)]
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub agent: &'a str,
    /// The gateway's record of it (never a secret value).
    pub json: &'a str,
    pub deadline: SystemTime,
}

/// An agent's limits, as `[limits]` sets them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub pending_per_agent: u32,
    pub requests_per_minute: u32,
}

/// What filing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filed {
    Filed,
    /// The agent has `pending_per_agent` requests pending already.
    TooManyPending,
    /// The agent filed `requests_per_minute` in the last minute; it may again after this.
    RateLimited(Duration),
    /// A request with this id exists (ids are random: a bug, refused).
    Exists,
}

/// A request as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub json: String,
    /// Moves by one with every change; a decision names the one it was planned on.
    pub version: u64,
    pub settled: bool,
}

/// A change planned on [`Stored`] `version`.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub id: &'a str,
    pub agent: &'a str,
    pub version: u64,
    pub json: &'a str,
    /// The request leaves `pending` (approved, denied, expired, cancelled).
    pub settles: bool,
    /// The grant an approval makes, created in the same step.
    pub grant: Option<super::NewGrant<'a>>,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Applied; the request is at this version now.
    Applied(u64),
    /// Someone changed (or settled) it first; read it again.
    Stale(u64),
    Missing,
}

impl Shared {
    /// Files a request, if its agent is within `limits` across the whole cluster.
    pub async fn file(&self, r: &NewRequest<'_>, limits: Limits) -> Result<Filed, ClusterError> {
        let mut conn = self.conn()?;
        let answer: redis::Value = FILE
            .key(key(&format!("req:{}", r.id)))
            .key(key("req:pending"))
            .key(key(&format!("req:agent:{}", r.agent)))
            .key(key(&format!("rate:{}", r.agent)))
            .key(EVENTS)
            .arg(r.json)
            .arg(epoch_ms(r.deadline))
            .arg(limits.pending_per_agent)
            .arg(limits.requests_per_minute)
            .arg(r.id)
            .invoke_async(&mut conn)
            .await?;
        let answer = reply(&answer)?;
        Ok(match answer.as_slice() {
            [ok] if ok.int() == Some(1) => Filed::Filed,
            [_, Reply::Text(why)] if why == "pending" => Filed::TooManyPending,
            [_, Reply::Text(why)] if why == "exists" => Filed::Exists,
            [_, Reply::Text(why), retry] if why == "rate" => {
                Filed::RateLimited(Duration::from_millis(
                    retry
                        .int()
                        .and_then(|r| u64::try_from(r).ok())
                        .unwrap_or(60_000),
                ))
            }
            other => return Err(ClusterError::Protocol(format!("filing answered {other:?}"))),
        })
    }

    /// The request as it stands, or `None` (never filed, or settled over an hour ago).
    pub async fn request(&self, id: &str) -> Result<Option<Stored>, ClusterError> {
        let mut conn = self.conn()?;
        let (json, version, settled): (Option<String>, Option<u64>, Option<String>) =
            redis::cmd("HMGET")
                .arg(key(&format!("req:{id}")))
                .arg("json")
                .arg("version")
                .arg("settled")
                .query_async(&mut conn)
                .await?;
        Ok(match (json, version) {
            (Some(json), Some(version)) => Some(Stored {
                json,
                version,
                settled: settled.as_deref() == Some("1"),
            }),
            _ => None,
        })
    }

    /// Applies a change planned on `d.version`, only if the request is still there, at
    /// that version and pending; an approval's grant is made in the same step.
    pub async fn decide(&self, d: &Decision<'_>) -> Result<Decided, ClusterError> {
        let mut conn = self.conn()?;
        let (grant_key, grant_json, grant_end, grant_id) = match &d.grant {
            Some(g) => (
                key(&format!("grant:{}", g.id)),
                g.json,
                epoch_ms(g.ends),
                g.id,
            ),
            None => (key("grant:-"), "", 0, ""),
        };
        let answer: redis::Value = DECIDE
            .key(key(&format!("req:{}", d.id)))
            .key(key("req:pending"))
            .key(key(&format!("req:agent:{}", d.agent)))
            .key(EVENTS)
            .key(grant_key)
            .key(key(&format!("grants:agent:{}", d.agent)))
            .arg(d.version)
            .arg(d.json)
            .arg(u8::from(d.settles))
            .arg(millis(KEEP_SETTLED))
            .arg(d.id)
            .arg(grant_json)
            .arg(grant_end)
            .arg(grant_id)
            .invoke_async(&mut conn)
            .await?;
        let answer = reply(&answer)?;
        let version = |r: &Reply| r.int().and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        Ok(match answer.as_slice() {
            [ok, v] if ok.int() == Some(1) => Decided::Applied(version(v)),
            [ok, v] if ok.int() == Some(0) => Decided::Stale(version(v)),
            [ok] if ok.int() == Some(-1) => Decided::Missing,
            other => {
                return Err(ClusterError::Protocol(format!(
                    "deciding answered {other:?}"
                )));
            }
        })
    }

    /// The ids of every pending request, soonest deadline first.
    pub async fn pending(&self) -> Result<Vec<String>, ClusterError> {
        let mut conn = self.conn()?;
        Ok(redis::cmd("ZRANGE")
            .arg(key("req:pending"))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?)
    }
}
