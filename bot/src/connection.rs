//! The gateway connection: one persistent shard with no intents (interactions need
//! none). twilight reconnects and resumes on its own; this loop hands each interaction to
//! its handler and keeps the connection state that `keygate status` shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keygate_proto::approval::ChannelState;
use tokio::sync::watch;
use twilight_gateway::queue::InMemoryQueue;
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
};

use crate::interactions::Handler;

/// A gateway on this machine (a simulator) needs no pause between identifies.
fn is_loopback(url: &str) -> bool {
    keygate_proto::net::url_host(url)
        .is_some_and(|(_, host)| keygate_proto::net::is_loopback_host(host))
}

/// Starts the shard's loop: it runs until `stop` changes or the gateway refuses the bot
/// for good, says how it stands through `state`, and counts in `reconnects` each time
/// the connection came back after the first (resumed or identified afresh).
pub(crate) fn spawn(
    handler: Handler,
    token: String,
    gateway_url: Option<&str>,
    state: watch::Sender<ChannelState>,
    reconnects: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut config = ConfigBuilder::new(token, Intents::empty());
    if let Some(url) = gateway_url {
        config = config.proxy_url(url.trim_end_matches('/').to_owned());
    }
    let local = gateway_url.is_some_and(is_loopback);
    let shard_config = if local {
        config
            .queue(InMemoryQueue::new(0, 0, Duration::ZERO, 0))
            .build()
    } else {
        config.queue(InMemoryQueue::default()).build()
    };
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        let mut shard = Shard::with_config(ShardId::ONE, shard_config);
        let wanted = EventTypeFlags::READY
            | EventTypeFlags::RESUMED
            | EventTypeFlags::INTERACTION_CREATE
            | EventTypeFlags::GATEWAY_RECONNECT
            | EventTypeFlags::GATEWAY_INVALIDATE_SESSION;
        loop {
            let item = tokio::select! {
                item = shard.next_event(wanted) => item,
                _ = stop.changed() => break,
            };
            match item {
                None => {
                    state.send_replace(ChannelState::Stopped(
                        "the gateway refused the bot (check the token)".into(),
                    ));
                    tracing::error!("Discord: the gateway connection ended for good");
                    break;
                }
                Some(Err(e)) => tracing::warn!("Discord gateway: {e}"),
                Some(Ok(event)) => match event {
                    Event::Ready(_) | Event::Resumed => {
                        tracing::info!("Discord: connected");
                        // Anything but the first connection is a reconnect (twilight
                        // may resume a dropped one without a close event first).
                        let was = state.send_replace(ChannelState::Connected);
                        if was != ChannelState::Connecting {
                            reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Event::GatewayClose(_) | Event::GatewayReconnect => {
                        tracing::warn!("Discord: connection lost; reconnecting");
                        state.send_replace(ChannelState::Reconnecting);
                    }
                    Event::InteractionCreate(interaction) => {
                        let handler = Arc::clone(&handler);
                        tokio::spawn(async move { handler.handle(interaction.0).await });
                    }
                    _ => {}
                },
            }
        }
    });
}
