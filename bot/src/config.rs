//! What the bot needs to know: its token, where to post, and (for tests, the demo and
//! proxies) where Discord is.

/// The bot's configuration: the daemon's `[discord]` settings, as they are.
pub use keygate_proto::discord::DiscordSettings as BotConfig;

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
