//! Changes made on other nodes, as they happen: each node subscribes to
//! [`EVENTS`](crate::state::EVENTS), where every script that changes a request or a grant
//! announces it in the same atomic step.
//!
//! Pub/sub is fire-and-forget: a message sent while this node was disconnected is lost.
//! So nothing may rest on a message alone: after every (re)subscription the stream
//! yields [`Event::Resync`], and the node re-reads whatever it holds copies of or waits
//! on. A lost message costs a re-read, never a wrong answer.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use crate::Link;
use crate::state::EVENTS;

/// One change, or the word to re-read everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request changed (filed, approved towards its quorum, settled).
    Request(String),
    /// A grant changed (made, extended, revoked).
    Grant(String),
    /// An agent was added or removed: re-read the agents' set.
    Agents,
    /// The subscription was (re)made: messages may have been missed before it.
    Resync,
}

impl Event {
    fn parse(payload: &str) -> Option<Self> {
        if payload == "agents" {
            return Some(Self::Agents);
        }
        let (kind, id) = payload.split_once(' ')?;
        match kind {
            "req" => Some(Self::Request(id.to_owned())),
            "grant" => Some(Self::Grant(id.to_owned())),
            _ => None,
        }
    }
}

/// Follows the cluster's changes until the receiver is dropped, reconnecting with
/// backoff (100 ms doubling to 2 s) whenever the subscription breaks.
pub fn subscribe(link: &Link) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(1024);
    let client = link.client().clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            if tx.is_closed() {
                return;
            }
            let pubsub = tokio::time::timeout(crate::link::RESPONSE_TIMEOUT, async {
                let mut p = client.get_async_pubsub().await?;
                p.subscribe(EVENTS).await?;
                Ok::<_, redis::RedisError>(p)
            })
            .await;
            let Ok(Ok(pubsub)) = pubsub else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            };
            backoff = Duration::from_millis(100);
            if tx.send(Event::Resync).await.is_err() {
                return;
            }
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if let Some(event) = Event::parse(&payload)
                    && tx.send(event).await.is_err()
                {
                    return;
                }
            }
            tracing::debug!("the cluster's event subscription broke; subscribing again");
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn payloads_are_read_strictly() {
        assert_eq!(Event::parse("req abc"), Some(Event::Request("abc".into())));
        assert_eq!(Event::parse("grant g1"), Some(Event::Grant("g1".into())));
        assert_eq!(Event::parse("agents"), Some(Event::Agents));
        assert_eq!(Event::parse("agents x"), None);
        assert_eq!(Event::parse("req"), None);
        assert_eq!(Event::parse("other x"), None);
    }
}
