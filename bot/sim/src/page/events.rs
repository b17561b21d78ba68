//! `GET /events`: the page's live feed, as server-sent events. Each event is a whole
//! snapshot of what the page shows (the channel's messages, the open modals, the
//! people to press as, whether the bot is connected), sent on connect and again after
//! every change that alters it.
//!
//! Whole snapshots rather than deltas: a channel in a demo or a test holds tens of
//! messages, so a snapshot is a few kilobytes, and a page that reconnects (the browser's
//! `EventSource` does so by itself) or misses an event is right again at the next one,
//! with no ordering or replay to get wrong. Changes that leave the snapshot as it was
//! (heartbeats, REST calls that only read) send nothing; a comment line every
//! [`KEEPALIVE`] keeps idle connections from being cut and lets the server notice a
//! closed page.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{Body, SimPerson};
use crate::control::render;
use crate::modals::SimModal;
use crate::payloads::BOT_USERNAME;
use crate::state::Shared;

/// How often an idle stream sends a comment line.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What the page shows, as one JSON object.
pub(crate) fn snapshot(shared: &Shared) -> Value {
    let s = &shared.settings;
    shared.read(|st| {
        json!({
            "connected": st.connected(),
            "guild_id": s.guild_id.to_string(),
            "channel_id": s.channel_id.to_string(),
            "bot": { "id": s.bot_user_id().to_string(), "name": BOT_USERNAME },
            "people": s.people.iter().map(SimPerson::json).collect::<Vec<_>>(),
            // Called with the state locked: `render` must not lock it again.
            "messages": st.messages.values().map(|m| render(m, s, st)).collect::<Vec<_>>(),
            "modals": st.modals.iter().filter(|m| m.open).map(SimModal::json).collect::<Vec<_>>(),
        })
    })
}

/// Where one page's stream stands.
struct Feed {
    shared: Arc<Shared>,
    changes: watch::Receiver<u64>,
    /// The snapshot last sent; `None` before the first.
    last: Option<String>,
}

impl Feed {
    /// The next thing to send: a snapshot that differs from the last one, or a
    /// keep-alive comment after a quiet [`KEEPALIVE`]. `None` once the simulator is gone.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.last.is_some() {
                match tokio::time::timeout(KEEPALIVE, self.changes.changed()).await {
                    Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                    Ok(Err(_)) => return None,
                    Ok(Ok(())) => {}
                }
            }
            // Marked seen before looking, so a change made while the snapshot is built
            // wakes the next round.
            self.changes.borrow_and_update();
            let snap = snapshot(&self.shared).to_string();
            if self.last.as_deref() == Some(snap.as_str()) {
                continue;
            }
            // The browser retries a lost stream after `retry` ms; JSON from serde_json
            // has no newline, so it fits one `data:` line.
            let first = if self.last.is_none() {
                "retry: 1000\n"
            } else {
                ""
            };
            let event = format!("{first}event: snapshot\ndata: {snap}\n\n");
            self.last = Some(snap);
            return Some(Bytes::from(event));
        }
    }
}

/// The event stream for one page.
pub(crate) fn stream(shared: Arc<Shared>) -> Body {
    let changes = shared.subscribe();
    let feed = Feed {
        shared,
        changes,
        last: None,
    };
    let frames = futures_util::stream::unfold(feed, |mut feed| async move {
        let bytes = feed.next().await?;
        Some((Ok::<_, Infallible>(Frame::data(bytes)), feed))
    });
    StreamBody::new(frames).boxed_unsync()
}
