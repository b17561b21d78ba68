//! What the bot needs to know: its token, where to post, and (for tests, the demo and
//! proxies) where Discord is.

use keygate_proto::net::{UrlError, UrlKind, check_url};
use secrecy::SecretString;

/// The bot's configuration.
#[derive(Clone)]
pub struct BotConfig {
    /// The bot token; never logged.
    pub token: SecretString,
    /// The channel requests are posted to; presses elsewhere are refused.
    pub channel_id: u64,
    /// The guild of that channel: presses from other guilds are refused, roles are read
    /// from it, and slash commands are registered in it.
    pub guild_id: Option<u64>,
    /// Base URL of the REST API (`http://127.0.0.1:PORT` for a simulator); Discord's own
    /// when `None`.
    pub api_url: Option<String>,
    /// The gateway websocket URL (`ws://127.0.0.1:PORT`); Discord's own when `None`.
    pub gateway_url: Option<String>,
}

impl std::fmt::Debug for BotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotConfig")
            .field("token", &"<redacted>")
            .field("channel_id", &self.channel_id)
            .field("guild_id", &self.guild_id)
            .field("api_url", &self.api_url)
            .field("gateway_url", &self.gateway_url)
            .finish()
    }
}

impl BotConfig {
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

/// `http://host:port` → (`host:port`, plain http?) as twilight-http's proxy wants it.
pub fn rest_proxy(api_url: &str) -> Option<(String, bool)> {
    let (rest, http) = if let Some(r) = api_url.strip_prefix("http://") {
        (r, true)
    } else if let Some(r) = api_url.strip_prefix("https://") {
        (r, false)
    } else {
        return None;
    };
    let host = rest.trim_end_matches('/');
    // Discord itself needs no proxy.
    if host == "discord.com" || host.is_empty() || host.contains('/') {
        return None;
    }
    Some((host.to_owned(), http))
}

#[cfg(test)]
mod tests {
    use super::rest_proxy;

    #[test]
    fn proxies() {
        assert_eq!(
            rest_proxy("http://127.0.0.1:9000/"),
            Some(("127.0.0.1:9000".into(), true))
        );
        assert_eq!(rest_proxy("https://discord.com"), None);
        assert_eq!(rest_proxy("ftp://x"), None);
    }
}
