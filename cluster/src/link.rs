//! A node's link to Redis: one reconnecting connection (redis-rs's `ConnectionManager`,
//! which multiplexes every caller's commands over one socket), and a watcher that pings
//! Redis and says at every moment whether it answers. Starting never waits for Redis: a
//! node whose Redis is down starts, answers `cluster_unavailable`, and serves again by
//! itself once Redis is back.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

use crate::ClusterError;

/// Whether Redis answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not known yet: the first ping has not come back.
    Connecting,
    Connected,
    Unreachable,
}

impl Health {
    /// As `keygate status --json` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Connecting | Self::Unreachable => "unreachable",
        }
    }
}

/// How long a command may take before Redis counts as unreachable for it.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the watcher pings.
pub const PING_EVERY: Duration = Duration::from_millis(500);

/// The link to the cluster's Redis.
pub struct Link {
    /// For connections of their own (the event subscription).
    client: redis::Client,
    conn: ConnectionManager,
    health: watch::Receiver<Health>,
    /// Where Redis is, without any password: for logs and errors.
    shown: String,
    watcher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("redis", &self.shown)
            .field("health", &*self.health.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Link {
    /// Opens the link (without waiting for Redis) and starts watching it. Only a URL that
    /// does not parse is an error here; must be called inside a tokio runtime.
    pub fn open(url: &str) -> Result<Arc<Self>, ClusterError> {
        let client = redis::Client::open(url).map_err(|e| ClusterError::BadUrl(e.to_string()))?;
        let info = client.get_connection_info();
        let shown = format!("{} (db {})", info.addr(), info.redis_settings().db());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| ClusterError::BadUrl(e.to_string()))?;
        let (tx, health) = watch::channel(Health::Connecting);
        let watcher = tokio::spawn(watch_health(conn.clone(), tx, shown.clone()));
        Ok(Arc::new(Self {
            client,
            conn,
            health,
            shown,
            watcher,
        }))
    }

    /// A handle for commands, if Redis answered the last ping; otherwise
    /// [`ClusterError::Unreachable`] at once, without waiting for a timeout.
    pub fn conn(&self) -> Result<ConnectionManager, ClusterError> {
        match *self.health.borrow() {
            Health::Connected => Ok(self.conn.clone()),
            Health::Connecting => Err(ClusterError::Unreachable(format!(
                "not connected to {} yet",
                self.shown
            ))),
            Health::Unreachable => Err(ClusterError::Unreachable(format!(
                "{} does not answer",
                self.shown
            ))),
        }
    }

    /// A handle for commands whatever the last ping said (the lease's renewals try
    /// even while the watcher still thinks Redis is down).
    pub fn conn_anyway(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn health(&self) -> Health {
        *self.health.borrow()
    }

    /// Follows the health as it changes.
    pub fn watch_health(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// Where Redis is, with no password.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// Pings every [`PING_EVERY`]; a ping that fails or takes longer than
/// [`RESPONSE_TIMEOUT`] makes Redis unreachable until one succeeds again. The
/// connection manager reconnects with backoff on its own.
async fn watch_health(mut conn: ConnectionManager, tx: watch::Sender<Health>, shown: String) {
    let mut ticker = tokio::time::interval(PING_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let ping = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        let now = match ping {
            Ok(Ok(_)) => Health::Connected,
            Ok(Err(e)) => {
                if *tx.borrow() != Health::Unreachable {
                    tracing::warn!("the cluster's Redis at {shown} does not answer: {e}");
                }
                Health::Unreachable
            }
            Err(_) => {
                if *tx.borrow() != Health::Unreachable {
                    tracing::warn!("the cluster's Redis at {shown} did not answer a ping in time");
                }
                Health::Unreachable
            }
        };
        if now == Health::Connected && *tx.borrow() != Health::Connected {
            tracing::info!("connected to the cluster's Redis at {shown}");
        }
        tx.send_if_modified(|h| {
            let changed = *h != now;
            *h = now;
            changed
        });
    }
}
