//! Where a URL or a listen address points, as far as keygate's security rules care:
//! loopback or not. One rule for every plain-text exception (an `http://` listener, an
//! `http://` or `ws://` Discord URL), and it never looks a name up: a name other than
//! `localhost` is not loopback, whatever DNS would say. [`check_url`] applies it to the
//! URLs keygate sends a token to; the daemon's configuration checks them when it is read,
//! and the bot again before it dials.

use std::net::IpAddr;

/// 127.0.0.0/8, `::1` (bracketed or not) or the name `localhost` (any case).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A URL's scheme (lower case) and host (brackets removed), or `None` when it has no
/// `scheme://`, no host, or user info (`user@host`: never needed here, and a way to
/// make a URL look like it points somewhere it does not).
pub fn url_host(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') || authority.contains('\\') {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host))
}

/// The two kinds of URL a token is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    /// HTTP (Discord's REST API): `https://`, or `http://` on loopback.
    Http,
    /// A websocket (Discord's gateway): `wss://`, or `ws://` on loopback.
    WebSocket,
}

/// Why a URL is refused.
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

/// Checks a URL before a token is sent to it: TLS to any host, plain text only to
/// loopback ([`is_loopback_host`], the rule `http://` listeners follow too).
pub fn check_url(url: &str, kind: UrlKind) -> Result<(), UrlError> {
    let (plain, secure, expected) = match kind {
        UrlKind::Http => ("http", "https", "an https:// (or loopback http://)"),
        UrlKind::WebSocket => ("ws", "wss", "a wss:// (or loopback ws://)"),
    };
    let (scheme, host) = url_host(url.trim()).ok_or(UrlError::Malformed { expected })?;
    if scheme == secure {
        return Ok(());
    }
    if scheme != plain {
        return Err(UrlError::Malformed { expected });
    }
    if is_loopback_host(host) {
        return Ok(());
    }
    Err(UrlError::PlainOffLoopback {
        scheme: plain,
        secure,
        // Printed back to a person: short, and nothing that moves their terminal.
        host: host
            .chars()
            .take(100)
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_by_address_alone() {
        for yes in [
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "[::1]",
            "localhost",
            "LocalHost",
        ] {
            assert!(is_loopback_host(yes), "{yes}");
        }
        for no in [
            "10.1.2.3",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
            "localhost.example.com",
            "127.0.0.1.example.com",
            "example.invalid",
            "0x7f.1",
            "",
        ] {
            assert!(!is_loopback_host(no), "{no}");
        }
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("http://127.0.0.1:9000/"),
            Some(("http".into(), "127.0.0.1"))
        );
        assert_eq!(url_host("WS://[::1]:80"), Some(("ws".into(), "::1")));
        assert_eq!(
            url_host("https://discord.com"),
            Some(("https".into(), "discord.com"))
        );
        assert_eq!(
            url_host("ws://example.invalid?x=1"),
            Some(("ws".into(), "example.invalid"))
        );
        assert_eq!(url_host("http://127.0.0.1@10.1.2.3:80/"), None);
        assert_eq!(url_host("http://:80"), None);
        assert_eq!(url_host("127.0.0.1:80"), None);
    }

    #[test]
    fn plain_text_only_to_loopback() {
        for ok in [
            "https://discord.com",
            "https://10.1.2.3:8443",
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert_eq!(check_url(ok, UrlKind::Http), Ok(()), "{ok}");
        }
        for ok in [
            "wss://gateway.discord.gg",
            "wss://example.invalid",
            "ws://127.0.0.1:9001",
            "ws://localhost:9001",
        ] {
            assert_eq!(check_url(ok, UrlKind::WebSocket), Ok(()), "{ok}");
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
                    check_url(bad, UrlKind::Http),
                    Err(UrlError::PlainOffLoopback { .. })
                ),
                "{bad}"
            );
        }
        for bad in ["ws://example.invalid", "ws://10.0.0.1:443/gateway"] {
            assert!(
                matches!(
                    check_url(bad, UrlKind::WebSocket),
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
                    check_url(bad, UrlKind::Http),
                    Err(UrlError::Malformed { .. })
                ),
                "{bad}"
            );
        }
        assert!(check_url("https://x", UrlKind::WebSocket).is_err());
        let e = check_url("http://10.1.2.3:80", UrlKind::Http)
            .unwrap_err()
            .to_string();
        assert!(e.contains("10.1.2.3") && !e.contains('\n'), "{e}");
    }
}
