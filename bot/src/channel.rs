//! Discord as an approval channel: connects (a wrong token stops here, clearly), posts
//! each request as a message, and edits that message whenever the request or its grant
//! changes. REST failures and rate limits are retried with backoff; a request whose
//! message cannot be posted fails closed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keygate_proto::RequestId;
use keygate_proto::api::{RequestStatus, RequestView};
use keygate_proto::approval::{ApprovalChannel, BoxFuture, Change, ChannelError, Gatekeeper};
use keygate_proto::net::{UrlError, UrlKind};
use secrecy::ExposeSecret as _;
use tokio::sync::watch;
use twilight_http::Client;
use twilight_http::error::ErrorType;
use twilight_model::channel::message::AllowedMentions;
use twilight_model::id::Id;
use twilight_model::id::marker::{ApplicationMarker, ChannelMarker, GuildMarker, MessageMarker};

use crate::config::{BotConfig, rest_proxy};
use crate::render::{self, Rendered};

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("Discord refused the bot token (401): check KEYGATE_DISCORD_TOKEN")]
    BadToken,
    #[error("KEYGATE_DISCORD_API_URL must be an http:// or https:// URL")]
    BadApiUrl,
    #[error("cannot reach Discord: {0}")]
    Unreachable(String),
    #[error("the Discord channel id must be a snowflake, not 0: check KEYGATE_DISCORD_CHANNEL_ID")]
    BadChannel,
    #[error("cannot register the /keygate commands: {0}")]
    Commands(String),
    #[error("KEYGATE_DISCORD_{}: {source}", if *kind == UrlKind::Http { "API_URL" } else { "GATEWAY_URL" })]
    Url { kind: UrlKind, source: UrlError },
}

/// A request's message and what it last showed.
#[derive(Debug, Clone)]
struct Posted {
    message: Id<MessageMarker>,
    view: RequestView,
}

/// The Discord approval channel.
pub struct Discord {
    pub(crate) http: Client,
    pub(crate) app_id: Id<ApplicationMarker>,
    pub(crate) channel: Id<ChannelMarker>,
    pub(crate) guild: Option<Id<GuildMarker>>,
    posted: Mutex<HashMap<RequestId, Posted>>,
    /// Requests whose message an interaction is updating right now: their change
    /// notifications need no separate edit.
    in_flight: Mutex<HashSet<RequestId>>,
    pub(crate) state: watch::Sender<String>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("channel", &self.channel)
            .field("guild", &self.guild)
            .finish_non_exhaustive()
    }
}

fn status_of(e: &twilight_http::Error) -> Option<u16> {
    match e.kind() {
        ErrorType::Response { status, .. } => Some(status.get()),
        _ => None,
    }
}

/// Worth another try: network trouble, rate limits, Discord's own errors.
fn transient(e: &twilight_http::Error) -> bool {
    status_of(e).is_none_or(|s| s == 429 || s >= 500)
}

/// Runs `attempt` until it succeeds, fails for good, or four tries have failed.
pub(crate) async fn with_retry<T, F, Fut>(
    what: &str,
    mut attempt: F,
) -> Result<T, twilight_http::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, twilight_http::Error>>,
{
    let mut delay = Duration::from_millis(250);
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < 4 && transient(&e) => {
                tracing::warn!("Discord: {what} failed ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// No mentions, ever: a reason cannot ping anyone.
pub(crate) fn no_mentions() -> AllowedMentions {
    AllowedMentions::default()
}

impl Discord {
    /// Connects: checks the token, learns the application id, registers the slash
    /// commands in the guild, and starts the gateway shard that brings presses back.
    pub async fn connect(
        config: BotConfig,
        gatekeeper: Arc<dyn Gatekeeper>,
    ) -> Result<Arc<Self>, BotError> {
        // Nothing goes to a URL that would carry the token in clear off this machine.
        config
            .check_urls()
            .map_err(|(kind, source)| BotError::Url { kind, source })?;
        // Ids come from configuration: refuse 0 (twilight's `Id::new` would panic on it).
        let channel = Id::new_checked(config.channel_id).ok_or(BotError::BadChannel)?;
        let guild = config.guild_id.and_then(Id::new_checked);
        // twilight's TLS needs a process-wide crypto provider; installing twice is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token = config.token.expose_secret().to_owned();
        let mut builder = Client::builder()
            .token(token.clone())
            .default_allowed_mentions(no_mentions())
            .timeout(Duration::from_secs(10));
        if let Some(url) = &config.api_url {
            let is_discord = url.trim_end_matches('/') == "https://discord.com";
            if !is_discord {
                let (proxy, http) = rest_proxy(url).ok_or(BotError::BadApiUrl)?;
                builder = builder.proxy(proxy, http);
            }
        }
        let http = builder.build();
        let me = with_retry("checking the token", || async { http.current_user().await })
            .await
            .map_err(|e| {
                if status_of(&e) == Some(401) {
                    BotError::BadToken
                } else {
                    BotError::Unreachable(e.to_string())
                }
            })?;
        let me = me
            .model()
            .await
            .map_err(|e| BotError::Unreachable(e.to_string()))?;
        let app = with_retry("reading the application", || async {
            http.current_user_application().await
        })
        .await
        .map_err(|e| BotError::Unreachable(e.to_string()))?
        .model()
        .await
        .map_err(|e| BotError::Unreachable(e.to_string()))?;
        tracing::info!("Discord: signed in as {} (application {})", me.name, app.id);

        let (state, _) = watch::channel("connecting".to_owned());
        let (stop, stop_rx) = watch::channel(false);
        let discord = Arc::new(Self {
            http,
            app_id: app.id,
            channel,
            guild,
            posted: Mutex::default(),
            in_flight: Mutex::default(),
            state,
            stop,
        });
        if let Some(guild) = discord.guild {
            crate::commands::register(&discord, guild)
                .await
                .map_err(|e| BotError::Commands(e.to_string()))?;
        }
        crate::connection::spawn(
            Arc::clone(&discord),
            gatekeeper,
            token,
            config.gateway_url.as_deref(),
            stop_rx,
        );
        Ok(discord)
    }

    /// Closes the gateway connection.
    pub fn shut_down(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the gateway connection is up (for the demo and tests).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.state.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| s == "connected"))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn begin_update(&self, id: &RequestId) {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone());
    }

    /// An interaction rendered `view` into its message.
    pub(crate) fn end_update(&self, view: &RequestView) {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&view.id);
        self.remember(view);
    }

    fn remember(&self, view: &RequestView) {
        if let Some(p) = self
            .posted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&view.id)
        {
            p.view = view.clone();
        }
    }

    fn edit_later(self: &Arc<Self>, message: Id<MessageMarker>, rendered: Rendered) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let result = with_retry("editing a request message", || async {
                me.http
                    .update_message(me.channel, message)
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

    /// What `notify` does, with the `Arc` it needs to spawn.
    pub fn apply(self: &Arc<Self>, change: &Change) {
        match change {
            Change::Request(view) => {
                let busy = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .contains(&view.id);
                let message = {
                    let mut posted = self
                        .posted
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let Some(p) = posted.get_mut(&view.id) else {
                        return;
                    };
                    p.view = (**view).clone();
                    p.message
                };
                if !busy {
                    self.edit_later(message, render::request(view, None));
                }
                if view.status.is_final() && view.status != RequestStatus::Approved {
                    self.forget(&view.id);
                }
            }
            Change::GrantEnded { grant, cause } => {
                let Some(p) = self
                    .posted
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&grant.request)
                else {
                    return;
                };
                self.edit_later(p.message, render::request(&p.view, Some(cause)));
            }
        }
    }

    fn forget(&self, id: &RequestId) {
        self.posted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// The channel as the gateway core sees it.
#[derive(Debug, Clone)]
pub struct DiscordChannel(pub Arc<Discord>);

impl ApprovalChannel for DiscordChannel {
    fn name(&self) -> &'static str {
        crate::CHANNEL
    }

    fn post<'a>(&'a self, request: &'a RequestView) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let d = &self.0;
            let rendered = render::request(request, None);
            let mentions = no_mentions();
            let message = with_retry("posting a request", || async {
                d.http
                    .create_message(d.channel)
                    .embeds(&rendered.embeds)
                    .components(&rendered.components)
                    .allowed_mentions(Some(&mentions))
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
            d.posted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(
                    request.id.clone(),
                    Posted {
                        message: message.id,
                        view: request.clone(),
                    },
                );
            Ok(())
        })
    }

    fn notify(&self, change: &Change) {
        self.0.apply(change);
    }

    fn state(&self) -> String {
        self.0.state.borrow().clone()
    }
}

impl Discord {
    /// An interaction ended without a view to remember.
    pub(crate) fn end_update_missing(&self, id: &RequestId) {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}
