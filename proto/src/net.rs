//! Where a URL or a listen address points, as far as keygate's security rules care:
//! loopback or not. One rule for every plain-text exception (an `http://` listener, an
//! `http://` or `ws://` Discord URL), and it never looks a name up: a name other than
//! `localhost` is not loopback, whatever DNS would say.

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
}
