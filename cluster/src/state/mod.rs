//! The cluster's shared state in Redis: requests ([`requests`]), grants ([`grants`]),
//! agents ([`agents`]) and which message shows a request ([`messages`]), each step that
//! must happen once a Lua script (in `scripts/`), which Redis runs atomically. The
//! records themselves are the gateway's JSON: this crate
//! stores and guards them, and knows only what the scripts need (ids, the agent, the
//! deadline, whether a request is settled, a grant's end).
//!
//! Every script that changes something publishes what it changed on [`EVENTS`], in the
//! same atomic step; [`crate::events`] brings those to the other nodes.

pub mod agents;
pub mod grants;
pub mod messages;
pub mod requests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;

use crate::{ClusterError, KEY_PREFIX, Link};

pub use agents::AgentsSet;
pub use grants::{NewGrant, Read};
pub use requests::{Decided, Decision, Filed, Limits, NewRequest, Stored};

/// The pub/sub channel every change is announced on: `req ID`, `grant ID` or `agents`.
pub const EVENTS: &str = "{keygate}:events";

/// The shared state, over a node's [`Link`].
#[derive(Debug, Clone)]
pub struct Shared {
    link: Arc<Link>,
}

/// `{keygate}:PART`.
pub(crate) fn key(part: &str) -> String {
    format!("{KEY_PREFIX}{part}")
}

/// A moment as Redis's expiry commands take it: milliseconds since the epoch.
pub(crate) fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Shared {
    pub fn new(link: Arc<Link>) -> Self {
        Self { link }
    }

    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// A connection, or `Unreachable` at once while Redis does not answer.
    pub(crate) fn conn(&self) -> Result<ConnectionManager, ClusterError> {
        self.link.conn()
    }
}

/// A script's answer as the list of values the scripts return.
pub(crate) fn reply(value: &redis::Value) -> Result<Vec<Reply>, ClusterError> {
    let redis::Value::Array(items) = value else {
        return Err(ClusterError::Protocol(format!(
            "a script answered {value:?}"
        )));
    };
    items
        .iter()
        .map(|v| match v {
            redis::Value::Int(i) => Ok(Reply::Int(*i)),
            redis::Value::BulkString(b) => Ok(Reply::Text(String::from_utf8_lossy(b).into_owned())),
            redis::Value::SimpleString(s) => Ok(Reply::Text(s.clone())),
            other => Err(ClusterError::Protocol(format!(
                "a script answered {other:?}"
            ))),
        })
        .collect()
}

/// One value of a script's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Int(i64),
    Text(String),
}

impl Reply {
    pub(crate) fn int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Text(t) => t.parse().ok(),
        }
    }
}
