//! Keeping a [`Lease`]: a task that takes it when it falls free, renews it while this
//! node holds it, and says at every moment whether this node leads.
//!
//! The one rule that makes it safe: a node stops leading *before* its lease could have
//! expired in Redis. Each renewal counts from the moment it was sent (not answered), and
//! if none has succeeded for [`Timing::step_down_after`] (four fifths of the TTL) the
//! node steps down on its own clock, whether Redis answered or not. Another node can
//! only take the lease once Redis has expired it, so the two never both lead; the fifth
//! of the TTL left over is the old leader's time to close its Discord connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::link::RESPONSE_TIMEOUT;
use crate::{Lease, Link};

/// How a lease is kept.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long the lease lives in Redis without a renewal.
    pub ttl: Duration,
    /// How often the holder renews it.
    pub renew_every: Duration,
    /// How often a node that does not hold it tries to take it.
    pub retry_every: Duration,
}

impl Timing {
    /// The Discord lease: another node takes over at most `ttl + retry_every` (11 s)
    /// after the holder dies, and connects within the 15 s SPEC allows.
    pub const DISCORD: Self = Self {
        ttl: Duration::from_secs(10),
        renew_every: Duration::from_secs(2),
        retry_every: Duration::from_secs(1),
    };

    /// How long after its last successful renewal was sent a holder gives up leading.
    pub fn step_down_after(&self) -> Duration {
        self.ttl * 4 / 5
    }
}

/// This node's hold on one lease, kept by a background task.
#[derive(Debug)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Starts keeping `lease` over `link`. Must be called inside a tokio runtime.
    pub fn spawn(link: Arc<Link>, lease: Lease, timing: Timing) -> Self {
        let (tx, leading) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(keep(link, lease, timing, tx, stop_rx));
        Self {
            leading,
            stop,
            task,
        }
    }

    /// Whether this node leads now.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Follows leadership as it changes.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops leading and gives the lease back at once, so another node need not wait
    /// for it to expire (a clean shutdown).
    pub async fn resign(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }

    /// Stops keeping the lease *without* giving it back, as a crashed node would: the
    /// others take over once it expires. For tests.
    pub fn vanish(self) {
        self.task.abort();
    }
}

async fn keep(
    link: Arc<Link>,
    lease: Lease,
    timing: Timing,
    leading: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = link.conn_anyway();
    // When the last acquisition or renewal that succeeded was sent.
    let mut held_since: Option<Instant> = None;
    loop {
        let wait = if held_since.is_some() {
            timing.renew_every
        } else {
            timing.retry_every
        };
        let wake = match held_since {
            Some(since) => (Instant::now() + wait).min(since + timing.step_down_after()),
            None => Instant::now() + wait,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = stop.changed() => break,
        }
        if let Some(since) = held_since
            && Instant::now() >= since + timing.step_down_after()
        {
            held_since = None;
            leading.send_replace(false);
            tracing::warn!(
                "could not renew the lease on {} in time: this node stops leading",
                lease.key()
            );
            continue;
        }
        let sent = Instant::now();
        // A call never outlives the moment this node would have to step down anyway.
        let budget = held_since.map_or(RESPONSE_TIMEOUT, |since| {
            RESPONSE_TIMEOUT.min((since + timing.step_down_after()).saturating_duration_since(sent))
        });
        let answer = if held_since.is_some() {
            tokio::time::timeout(budget, lease.renew(&mut conn)).await
        } else {
            tokio::time::timeout(budget, lease.acquire(&mut conn)).await
        };
        match answer {
            Ok(Ok(true)) => {
                if held_since.is_none() {
                    tracing::info!("this node now holds the lease on {}", lease.key());
                    leading.send_replace(true);
                }
                held_since = Some(sent);
            }
            Ok(Ok(false)) => {
                if held_since.take().is_some() {
                    leading.send_replace(false);
                    tracing::warn!(
                        "the lease on {} went to another node: this node stops leading",
                        lease.key()
                    );
                }
            }
            Ok(Err(e)) => tracing::debug!("lease on {}: {e}", lease.key()),
            Err(_) => tracing::debug!("lease on {}: Redis did not answer in time", lease.key()),
        }
    }
    if held_since.is_some() {
        leading.send_replace(false);
        let _ = tokio::time::timeout(RESPONSE_TIMEOUT, lease.release(&mut conn)).await;
    }
}
