//! The Discord REST client: signs in (a wrong token stops here, clearly), knows the
//! application, channel and guild the bot works in, and retries what is worth retrying
//! (network trouble, rate limits, Discord's own errors) with backoff.

use std::time::Duration;

use keygate_proto::net::{UrlError, UrlKind};
use secrecy::ExposeSecret as _;
use twilight_http::error::ErrorType;
use twilight_model::channel::message::AllowedMentions;
use twilight_model::id::Id;
use twilight_model::id::marker::{ApplicationMarker, ChannelMarker, GuildMarker};

use crate::config::{BotConfig, rest_proxy};

/// Why the bot could not connect.
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

/// The signed-in REST client and where it works.
pub(crate) struct Client {
    pub(crate) http: twilight_http::Client,
    pub(crate) app_id: Id<ApplicationMarker>,
    /// The approval channel: requests are posted here, and presses elsewhere are refused.
    pub(crate) channel: Id<ChannelMarker>,
    /// The configured guild, if any: interactions from other guilds are refused.
    pub(crate) guild: Option<Id<GuildMarker>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("app_id", &self.app_id)
            .field("channel", &self.channel)
            .field("guild", &self.guild)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks the configuration, the token and learns the application id.
    pub(crate) async fn sign_in(config: &BotConfig) -> Result<Self, BotError> {
        // Nothing goes to a URL that would carry the token in clear off this machine.
        config
            .check_urls()
            .map_err(|(kind, source)| BotError::Url { kind, source })?;
        // Ids come from configuration: refuse 0 (twilight's `Id::new` would panic on it).
        let channel = Id::new_checked(config.channel_id).ok_or(BotError::BadChannel)?;
        let guild = config.guild_id.and_then(Id::new_checked);
        // twilight's TLS needs a process-wide crypto provider; installing twice is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = twilight_http::Client::builder()
            .token(config.token.expose_secret().to_owned())
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
        Ok(Self {
            http,
            app_id: app.id,
            channel,
            guild,
        })
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
