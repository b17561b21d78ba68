//! What the bot needs to know: its token, where to post, and (for tests, the demo and
//! proxies) where Discord is.

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

/// Which of the bot's two URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    /// The REST API: `https://`, or `http://` on loopback.
    Api,
    /// The gateway websocket: `wss://`, or `ws://` on loopback.
    Gateway,
}

/// Why a Discord URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("expected {expected} URL with a host and no user info")]
    Malformed { expected: &'static str },
    #[error(
        "refusing plain {scheme}:// to {host}: the bot token would cross the network in clear and anyone on the path could forge button presses; use {secure}://, or a loopback address (127.0.0.1, ::1, localhost) for a simulator or a local proxy"
    )]
    PlainOffLoopback {
        scheme: &'static str,
        secure: &'static str,
        host: String,
    },
}

/// Checks a Discord URL before anything is sent to it: TLS to any host, plain text only
/// to loopback (the rule `http://` listeners follow: [`keygate_proto::net`]).
pub fn check_url(url: &str, kind: UrlKind) -> Result<(), UrlError> {
    let (plain, secure, expected) = match kind {
        UrlKind::Api => ("http", "https", "an https:// (or loopback http://)"),
        UrlKind::Gateway => ("ws", "wss", "a wss:// (or loopback ws://)"),
    };
    let (scheme, host) =
        keygate_proto::net::url_host(url.trim()).ok_or(UrlError::Malformed { expected })?;
    if scheme == secure {
        return Ok(());
    }
    if scheme != plain {
        return Err(UrlError::Malformed { expected });
    }
    if keygate_proto::net::is_loopback_host(host) {
        return Ok(());
    }
    Err(UrlError::PlainOffLoopback {
        scheme: plain,
        secure,
        host: host
            .chars()
            .take(100)
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect(),
    })
}

impl BotConfig {
    /// [`check_url`] on both URLs, naming the one refused.
    pub fn check_urls(&self) -> Result<(), (UrlKind, UrlError)> {
        if let Some(url) = &self.api_url {
            check_url(url, UrlKind::Api).map_err(|e| (UrlKind::Api, e))?;
        }
        if let Some(url) = &self.gateway_url {
            check_url(url, UrlKind::Gateway).map_err(|e| (UrlKind::Gateway, e))?;
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
    use super::{UrlError, UrlKind, check_url, rest_proxy};

    #[test]
    fn plain_text_only_to_loopback() {
        for ok in [
            "https://discord.com",
            "https://10.1.2.3:8443",
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert_eq!(check_url(ok, UrlKind::Api), Ok(()), "{ok}");
        }
        for ok in [
            "wss://gateway.discord.gg",
            "wss://example.invalid",
            "ws://127.0.0.1:9001",
            "ws://localhost:9001",
        ] {
            assert_eq!(check_url(ok, UrlKind::Gateway), Ok(()), "{ok}");
        }
        for bad in [
            "http://10.1.2.3:80",
            "http://discord.com",
            "http://localhost.example.com",
            "HTTP://192.168.1.1",
            "http://0.0.0.0:80",
        ] {
            assert!(
                matches!(
                    check_url(bad, UrlKind::Api),
                    Err(UrlError::PlainOffLoopback { .. })
                ),
                "{bad}"
            );
        }
        for bad in ["ws://example.invalid", "ws://10.0.0.1:443/gateway"] {
            assert!(
                matches!(
                    check_url(bad, UrlKind::Gateway),
                    Err(UrlError::PlainOffLoopback { .. })
                ),
                "{bad}"
            );
        }
        for bad in [
            "ftp://127.0.0.1",
            "127.0.0.1:80",
            "http://127.0.0.1@10.1.2.3/",
            "wss://discord.com",
        ] {
            assert!(
                matches!(
                    check_url(bad, UrlKind::Api),
                    Err(UrlError::Malformed { .. })
                ),
                "{bad}"
            );
        }
        assert!(check_url("https://x", UrlKind::Gateway).is_err());
        let e = check_url("http://10.1.2.3:80", UrlKind::Api)
            .unwrap_err()
            .to_string();
        assert!(e.contains("10.1.2.3") && !e.contains('\n'), "{e}");
    }

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
