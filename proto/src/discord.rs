//! Where the Discord approval channel posts and how it signs in: one type for the daemon's
//! `[discord]` section and for the bot that reads it, so neither needs the other.

use secrecy::SecretString;

use crate::net::{UrlError, UrlKind, check_url};

/// The Discord settings, present only when a bot token is configured.
#[derive(Clone)]
pub struct DiscordSettings {
    /// The bot token (`token`, `KEYGATE_DISCORD_TOKEN`); never logged.
    pub token: SecretString,
    /// The channel requests are posted to (`channel_id`); presses elsewhere are refused.
    pub channel_id: u64,
    /// The guild of that channel (`guild_id`): presses from other guilds are refused, roles
    /// are read from it, and the slash commands are registered there. Any guild when `None`.
    pub guild_id: Option<u64>,
    /// Base URL of the REST API (`api_url`): `https://`, or `http://` on loopback (a
    /// simulator, a local proxy). Discord's own when `None`.
    pub api_url: Option<String>,
    /// The gateway websocket URL (`gateway_url`): `wss://`, or `ws://` on loopback.
    /// Discord's own when `None`.
    pub gateway_url: Option<String>,
    /// Whether a request's message notifies the rule's approvers (`ping`,
    /// `KEYGATE_DISCORD_PING`; default true).
    pub ping: bool,
}

impl std::fmt::Debug for DiscordSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSettings")
            .field("token", &"<redacted>")
            .field("channel_id", &self.channel_id)
            .field("guild_id", &self.guild_id)
            .field("api_url", &self.api_url)
            .field("gateway_url", &self.gateway_url)
            .field("ping", &self.ping)
            .finish()
    }
}

impl DiscordSettings {
    /// [`check_url`] on both URLs: the REST API's and the gateway's, in that order.
    pub fn check_urls(&self) -> Result<(), (UrlKind, UrlError)> {
        if let Some(url) = &self.api_url {
            check_url(url, UrlKind::Http).map_err(|e| (UrlKind::Http, e))?;
        }
        if let Some(url) = &self.gateway_url {
            check_url(url, UrlKind::WebSocket).map_err(|e| (UrlKind::WebSocket, e))?;
        }
        Ok(())
    }
}
