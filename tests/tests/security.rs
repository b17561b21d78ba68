//! Attacks, and after each one: a normal request still succeeds, nothing leaked, and the
//! audit chain verifies.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;

use keygate_tests::{Daemon, finish};

const VALUE: &str = "ghp_TOPSECRET_value_42";

/// A normal agent gets its secret approved and released, and the audit log verifies.
fn still_healthy(d: &Daemon, token: &str) {
    d.keygate(&["revoke", "--all"]).ok();
    let child = d
        .keygate_as(token, &["get", "github/token", "--reason", "health check"])
        .spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), VALUE);
    d.keygate(&["revoke", "--all"]).ok();
    d.keygate(&["audit", "--verify"]).ok();
    assert!(!d.audit().contains(VALUE));
    assert!(!d.log().contains(VALUE));
    // Nor a token, even at trace level.
    assert!(!d.log().contains(token), "an agent token is in the log");
    assert!(
        !d.log().contains(&d.operator_token()),
        "the operator token is in the log"
    );
}

/// A daemon logging everything (`trace`), so a value logged at any level is caught by the
/// leak checks.
fn setup(extra: &[(&str, &str)]) -> (Daemon, String) {
    let mut env = vec![("RUST_LOG", "trace")];
    env.extend_from_slice(extra);
    let d = Daemon::start_with(keygate_tests::POLICY, &env);
    d.secret("github/token", VALUE);
    let t = d.agent("ci-good");
    (d, t)
}

#[test]
fn tokens_absent_malformed_and_revoked() {
    let (d, good) = setup(&[]);
    // No token, an empty one, another scheme: 401. A NUL in a header is not HTTP at all,
    // and hyper refuses the request (400) before any route sees it.
    for (header, expected) in [
        ("", 401),
        ("Authorization: Bearer \r\n", 401),
        ("Authorization: Basic Zm9vOmJhcg==\r\n", 401),
        ("Authorization: Bearer kga_\u{0}\r\n", 400),
    ] {
        let req =
            format!("GET /v1/grants HTTP/1.1\r\nHost: k\r\nConnection: close\r\n{header}\r\n");
        let (status, body) = d.raw(req.as_bytes());
        assert_eq!(status, expected, "{header:?}: {body}");
    }
    let bad = d.agent("ci-bad");
    d.keygate(&["agents", "rm", "ci-bad"]).ok();
    let (status, _) = d.http("GET", "/v1/grants", &bad, b"");
    assert_eq!(status, 401, "a removed agent's token");
    still_healthy(&d, &good);
}

#[test]
fn agent_tokens_on_operator_routes_and_the_reverse() {
    let (d, good) = setup(&[]);
    for (method, path, body) in [
        ("GET", "/v1/secrets", &b""[..]),
        ("PUT", "/v1/secrets/github%2Ftoken", br#"{"value":"x"}"#),
        ("DELETE", "/v1/secrets/github%2Ftoken", b""),
        ("POST", "/v1/agents", br#"{"name":"ci-evil"}"#),
        ("POST", "/v1/grants/revoke", br#"{"all":true}"#),
        ("GET", "/v1/audit", b""),
        ("POST", "/v1/store/lock", b""),
    ] {
        let (status, text) = d.http(method, path, &good, body);
        assert_eq!(status, 403, "{method} {path}: {text}");
    }
    let (status, _) = d.http(
        "POST",
        "/v1/requests",
        &d.operator_token(),
        br#"{"secrets":["github/token"]}"#,
    );
    assert_eq!(status, 403, "the operator cannot file requests as an agent");
    still_healthy(&d, &good);
}

#[test]
fn bodies_names_and_reasons_from_hell() {
    let (d, good) = setup(&[]);
    // Truncated body: Content-Length promises more than arrives.
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.write_all(format!("POST /v1/requests HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {good}\r\nContent-Length: 100\r\n\r\n{{\"secr").as_bytes()).unwrap();
    drop(s);
    for name in [
        "a%00b",
        "..%2Fx",
        "a%2F%2Fb",
        "%D0%B0pi",
        "github%2Ftoken%2F..",
        "A",
    ] {
        let (status, _) = d.http("GET", &format!("/v1/secrets/{name}"), &good, b"");
        assert_eq!(status, 400, "{name}");
    }
    for name in ["\u{0430}pi/key", "github/token\u{0}", "github／token"] {
        let body = serde_json::json!({ "secrets": [name] }).to_string();
        let (status, _) = d.http("POST", "/v1/requests", &good, body.as_bytes());
        assert_eq!(status, 400, "{name:?}");
    }
    let reason = "@everyone ".repeat(5_000);
    let body = serde_json::json!({ "secrets": ["prod/x"], "reason": reason }).to_string();
    let (status, text) = d.http("POST", "/v1/requests", &good, body.as_bytes());
    assert_eq!(status, 201, "{text}");
    let view: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        view["reason"].as_str().unwrap().len() <= 1010,
        "a huge reason is cut"
    );
    assert!(d.requests().iter().all(|r| r["status"] != "pending"));
    still_healthy(&d, &good);
}

#[test]
fn a_flooding_agent_is_limited_and_others_are_not() {
    let (d, good) = setup(&[("KEYGATE_LIMITS_REQUESTS_PER_MINUTE", "5")]);
    let flood = d.agent("ci-flood");
    let mut limited = None;
    for _ in 0..8 {
        let (status, text) = d.http("POST", "/v1/requests", &flood, br#"{"secrets":["prod/x"]}"#);
        if status == 429 {
            limited = Some(text);
            break;
        }
        assert_eq!(status, 201, "{text}");
    }
    let text = limited.expect("the flood was never limited");
    assert!(text.contains("rate_limited"), "{text}");
    let r = d.keygate_as(&flood, &["get", "prod/x"]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("retry in"), "{}", r.stderr);
    still_healthy(&d, &good);
}

#[test]
fn pending_requests_per_agent_are_capped() {
    let (d, good) = setup(&[("KEYGATE_LIMITS_PENDING_PER_AGENT", "2")]);
    let greedy = d.agent("ci-greedy");
    for _ in 0..2 {
        let (status, _) = d.http(
            "POST",
            "/v1/requests",
            &greedy,
            br#"{"secrets":["github/token"]}"#,
        );
        assert_eq!(status, 201);
    }
    let (status, text) = d.http(
        "POST",
        "/v1/requests",
        &greedy,
        br#"{"secrets":["github/token"]}"#,
    );
    assert_eq!(status, 429, "{text}");
    for r in d.requests() {
        let id = r["id"].as_str().unwrap();
        d.keygate(&["deny", id]).ok();
    }
    still_healthy(&d, &good);
}

#[test]
fn idle_connections_do_not_starve_agents() {
    // An idle timeout no test outlasts: whatever is served while the idle connections
    // are held was served behind them, not after they timed out.
    let (d, good) = setup(&[("KEYGATE_LIMITS_IDLE_TIMEOUT", "10m")]);
    let mut idle: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(d.socket()).unwrap())
        .collect();
    d.keygate(&["status"]).ok();
    still_healthy(&d, &good);
    // They were there the whole time: none was cut to make room (300 is under the
    // default cap of 512) or for idling.
    let open = idle
        .iter_mut()
        .map(|s| {
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 64];
            matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .filter(|open| *open)
        .count();
    assert_eq!(open, 300, "idle connections were cut");
    drop(idle);
}

#[test]
fn forged_button_presses_change_nothing_without_discord() {
    // With no Discord configured, only the operator decides: an agent cannot approve its
    // own request through the API, with any body.
    let (d, good) = setup(&[]);
    let child = d.keygate_as(&good, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    for body in [&b"{}"[..], br#"{"ttl":"1h"}"#] {
        let (status, _) = d.http("POST", &format!("/v1/requests/{id}/approve"), &good, body);
        assert_eq!(status, 403);
    }
    let (status, _) = d.http(
        "POST",
        &format!("/v1/requests/{id}/approve"),
        &d.operator_token(),
        br#"{"ttl":"forever"}"#,
    );
    assert_eq!(status, 400, "a bad TTL changes nothing");
    assert_eq!(d.requests()[0]["status"], "pending");
    d.keygate(&["approve", &id]).ok();
    assert_eq!(finish(child).code, 0);
    still_healthy(&d, &good);
}
