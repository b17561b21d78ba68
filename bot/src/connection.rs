//! The gateway connection: one persistent shard with no intents (interactions need
//! none). twilight reconnects and resumes on its own; this loop hands each interaction to
//! its handler and keeps the connection state that `keygate status` shows.

use std::sync::Arc;
use std::time::Duration;

use keygate_proto::approval::Gatekeeper;
use tokio::sync::watch;
use twilight_gateway::queue::InMemoryQueue;
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
};

use crate::channel::Discord;

/// A gateway on this machine (a simulator) needs no pause between identifies.
fn is_loopback(url: &str) -> bool {
    keygate_proto::net::url_host(url)
        .is_some_and(|(_, host)| keygate_proto::net::is_loopback_host(host))
}

pub(crate) fn spawn(
    discord: Arc<Discord>,
    gatekeeper: Arc<dyn Gatekeeper>,
    token: String,
    gateway_url: Option<&str>,
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
                    discord.state.send_replace(
                        "stopped: the gateway refused the bot (check the token)".into(),
                    );
                    tracing::error!("Discord: the gateway connection ended for good");
                    break;
                }
                Some(Err(e)) => tracing::warn!("Discord gateway: {e}"),
                Some(Ok(event)) => match event {
                    Event::Ready(_) | Event::Resumed => {
                        tracing::info!("Discord: connected");
                        discord.state.send_replace("connected".into());
                    }
                    Event::GatewayClose(_) | Event::GatewayReconnect => {
                        tracing::warn!("Discord: connection lost; reconnecting");
                        discord.state.send_replace("reconnecting".into());
                    }
                    Event::InteractionCreate(interaction) => {
                        let d = Arc::clone(&discord);
                        let g = Arc::clone(&gatekeeper);
                        tokio::spawn(crate::interactions::handle(d, g, interaction.0));
                    }
                    _ => {}
                },
            }
        }
    });
}
