//! Discord as an approval channel: connects (a wrong token stops here, clearly), posts
//! each request as a message, and edits that message whenever the request or its grant
//! changes. REST failures and rate limits are retried with backoff; a request whose
//! message cannot be posted fails closed.

use std::sync::Arc;
use std::time::Duration;

use keygate_proto::api::RequestView;
use keygate_proto::approval::{
    ApprovalChannel, BoxFuture, Change, ChannelError, ChannelState, Gatekeeper, Mentions,
};
use secrecy::ExposeSecret as _;
use tokio::sync::watch;
use twilight_model::id::Id;
use twilight_model::id::marker::MessageMarker;

use crate::client::{BotError, Client, no_mentions, with_retry};
use crate::config::BotConfig;
use crate::interactions::Handler;
use crate::messages::Messages;
use crate::render::{self, Rendered};

/// The Discord approval channel.
pub struct Discord {
    client: Arc<Client>,
    messages: Arc<Messages>,
    /// Whether request messages notify their approvers (`KEYGATE_DISCORD_PING`).
    ping: bool,
    /// How the gateway connection stands; the connection loop holds the sender.
    state: watch::Receiver<ChannelState>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("channel", &self.client.channel)
            .field("guild", &self.client.guild)
            .finish_non_exhaustive()
    }
}

impl Discord {
    /// Connects: checks the token, learns the application id, registers the slash
    /// commands in the guild, and starts the gateway shard that brings presses back.
    pub async fn connect(
        config: BotConfig,
        gatekeeper: Arc<dyn Gatekeeper>,
    ) -> Result<Arc<Self>, BotError> {
        let client = Arc::new(Client::sign_in(&config).await?);
        if let Some(guild) = client.guild {
            crate::commands::register(&client, guild)
                .await
                .map_err(|e| BotError::Commands(e.to_string()))?;
        }
        let messages = Arc::new(Messages::default());
        let ping = config.ping;
        let (state_tx, state) = watch::channel(ChannelState::Connecting);
        let (stop, stop_rx) = watch::channel(false);
        crate::connection::spawn(
            Handler {
                client: Arc::clone(&client),
                messages: Arc::clone(&messages),
                gatekeeper,
            },
            config.token.expose_secret().to_owned(),
            config.gateway_url.as_deref(),
            state_tx,
            stop_rx,
        );
        Ok(Arc::new(Self {
            client,
            messages,
            ping,
            state,
            stop,
        }))
    }

    /// Closes the gateway connection.
    pub fn shut_down(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the gateway connection is up (for the demo and tests).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.state.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s == ChannelState::Connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Edits a message in the background: `notify` must not block.
    fn edit_later(&self, message: Id<MessageMarker>, rendered: Rendered) {
        let c = Arc::clone(&self.client);
        tokio::spawn(async move {
            let result = with_retry("editing a request message", || async {
                c.http
                    .update_message(c.channel, message)
                    .embeds(Some(&rendered.embeds))
                    .components(Some(&rendered.components))
                    .await
            })
            .await;
            if let Err(e) = result {
                tracing::error!("Discord: cannot edit message {message}: {e}");
            }
        });
    }
}

impl ApprovalChannel for Discord {
    fn name(&self) -> &'static str {
        crate::CHANNEL
    }

    fn post<'a>(
        &'a self,
        request: &'a RequestView,
        mentions: &'a Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let c = &self.client;
            let rendered = render::request(request, None);
            let nobody = no_mentions();
            let message = with_retry("posting a request", || async {
                c.http
                    .create_message(c.channel)
                    .embeds(&rendered.embeds)
                    .components(&rendered.components)
                    .allowed_mentions(Some(&nobody))
                    .await
            })
            .await
            .map_err(|e| ChannelError {
                channel: crate::CHANNEL,
                message: format!("cannot post the approval message: {e}"),
            })?
            .model()
            .await
            .map_err(|e| ChannelError {
                channel: crate::CHANNEL,
                message: format!("Discord's answer was unreadable: {e}"),
            })?;
            // Kept for rendering (not rendered yet: the message pings nobody).
            let mentions = if self.ping {
                mentions.clone()
            } else {
                Mentions::default()
            };
            self.messages.posted(message.id, request, mentions);
            Ok(())
        })
    }

    fn notify(&self, change: &Change) {
        if let Some((message, rendered)) = self.messages.edit_for(change) {
            self.edit_later(message, rendered);
        }
    }

    fn state(&self) -> ChannelState {
        self.state.borrow().clone()
    }
}
