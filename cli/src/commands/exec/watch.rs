//! Watching a grant while the child runs: `GET /v1/grants/{id}/watch` long-polled, so
//! keygate learns at once when the grant is revoked or expires, or when one of its
//! secrets changes.
//!
//! When the daemon cannot be reached, nothing says whether the grant still stands: the
//! watcher retries with backoff and lets the child run until the grant's own
//! `expires_at` (the latest the daemon told, so an extension counts), then ends it as expired (fail closed, without killing a server for a
//! daemon restart of a few seconds). A daemon that answers but no longer knows the grant
//! (404, or our token is refused) ends it at once.

use std::time::Duration;

use keygate_proto::SecretName;
use keygate_proto::api::{GrantRef, GrantStatus, GrantWatch};
use tokio::sync::mpsc::UnboundedSender;

use crate::client::Client;
use crate::failure::Exit;

/// How long one watch call waits on the daemon.
const WAIT: Duration = Duration::from_secs(25);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a watcher reports.
#[derive(Debug)]
pub enum Event {
    /// A grant cannot release anything any more; `why` is for people.
    Ended { why: String },
    /// These secrets changed.
    Changed(Vec<SecretName>),
    /// Something may have changed that the daemon's answer does not name: compare the
    /// values. Sent once the watcher sees every change (one made between the release
    /// and the first watch call is not reported), and whenever the daemon's epoch moved
    /// without naming a change (a grant ended somewhere, or a change slipped by).
    Check,
}

/// Watches `grant` until it ends, reporting to `tx`.
pub fn spawn(client: Client, grant: GrantRef, tx: UnboundedSender<Event>) {
    tokio::spawn(async move {
        let event = watch(&client, &grant, &tx).await;
        let _ = tx.send(event);
    });
}

async fn watch(client: &Client, grant: &GrantRef, tx: &UnboundedSender<Event>) -> Event {
    let id = &grant.id;
    let ended = |why: String| Event::Ended { why };
    // The first call learns the current epoch; changes are those after it.
    let mut since = 0u64;
    let mut first = true;
    let mut backoff = Duration::from_secs(1);
    // The end to hold out for while the daemon cannot be asked: later once extended.
    let mut expires_at = grant.expires_at;
    loop {
        let wait = if first { Duration::ZERO } else { WAIT };
        let path = format!(
            "/v1/grants/{id}/watch?since={since}&wait={}s",
            wait.as_secs()
        );
        match client.get::<GrantWatch>(&path).await {
            Ok(w) => {
                backoff = Duration::from_secs(1);
                if let Some(end) = w.expires_at {
                    expires_at = end;
                }
                match w.status {
                    GrantStatus::Live => {}
                    GrantStatus::Revoked => return ended(format!("grant {id} revoked")),
                    GrantStatus::Expired => return ended(format!("grant {id} expired")),
                }
                if !w.changed.is_empty() {
                    let _ = tx.send(Event::Changed(w.changed));
                } else if first || w.epoch != since {
                    let _ = tx.send(Event::Check);
                }
                since = w.epoch;
                first = false;
            }
            Err(e) if matches!(e.status, 401 | 403 | 404) => {
                return ended(format!(
                    "the daemon no longer serves grant {id} ({})",
                    e.failure
                ));
            }
            Err(e) => {
                // Unreachable, restarting, overloaded: wait and ask again, but never past
                // the grant's own end.
                let left = expires_at.remaining();
                if left.is_zero() {
                    return ended(format!(
                        "grant {id} expired while the daemon could not be asked ({})",
                        e.failure
                    ));
                }
                if e.failure.exit == Exit::Unreachable && backoff == Duration::from_secs(1) {
                    eprintln!(
                        "keygate: cannot watch grant {id}: {}; retrying until it expires",
                        e.failure
                    );
                }
                tokio::time::sleep(backoff.min(left)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
