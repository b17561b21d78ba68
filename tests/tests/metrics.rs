//! `GET /metrics` end to end: the real `keygated`, its Prometheus text read by parsers
//! that share nothing with its encoder (the Python `prometheus_client` parser and
//! `promtool check metrics`, see `keygate_tests::metrics`), the operator's token
//! required on the API, the tokenless loopback listener, and counters that move as a
//! request is filed, approved in the Discord simulator and released.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use keygate_discord_sim::PressSpec;
use keygate_tests::discord::{WAIT, World};
use keygate_tests::metrics::{
    family_type, label_values, parse, promtool, promtool_check, python, sample,
};
use keygate_tests::{Daemon, POLICY, bin, finish, poll};
use serde_json::Value;

const OPS: u64 = 111_111_111_111_111_111;
const VALUE: &str = "ghp_METRICS_never_a_label_77";

/// `GET /metrics` with the operator's token: the text, checked by promtool where it can
/// be had, and the families the Python parser reads (`None` when it cannot be had).
#[allow(clippy::unwrap_used)]
fn scrape(d: &Daemon) -> (String, Option<Vec<Value>>) {
    let (status, body) = d.http("GET", "/metrics", &d.operator_token(), b"");
    assert_eq!(status, 200, "{body}");
    if let Some(promtool) = promtool() {
        promtool_check(&promtool, &body);
    }
    let families = python().map(|p| parse(&p, &body));
    (body, families)
}

/// The value of one sample as the text has it, read without a parser (so the tests
/// still say something where no parser can be had).
#[allow(clippy::unwrap_used)]
fn line_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Fails if any secret, token or the bot's token appears anywhere in the text.
fn assert_free_of(text: &str, families: Option<&[Value]>, forbidden: &[&str]) {
    for f in forbidden {
        assert!(!text.contains(f), "`{f}` appears in the metrics:\n{text}");
        if let Some(families) = families {
            for v in label_values(families) {
                assert!(!v.contains(f), "a label holds `{f}`: {v}");
            }
        }
    }
}

#[test]
fn metrics_need_the_operator_token_and_count_refusals() {
    let d = Daemon::start_with(POLICY, &[("KEYGATE_LIMITS_REQUESTS_PER_MINUTE", "1")]);
    let agent = d.agent("ci-one");
    let (status, body) = d.raw(b"GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = d.http("GET", "/metrics", "kg_not_a_token", b"");
    assert_eq!(status, 401, "a wrong token: {body}");
    let (status, body) = d.http("GET", "/metrics", &agent, b"");
    assert_eq!(status, 403, "an agent's token: {body}");
    assert!(!body.contains("keygate_"), "{body}");
    let (status, _) = d.http("POST", "/metrics", &d.operator_token(), b"");
    assert_eq!(status, 404, "only GET");

    // One request the policy allows at once, then one too many for the minute.
    let file = br#"{"secrets":["public/readme"],"reason":"metrics"}"#;
    let (status, body) = d.http("POST", "/v1/requests", &agent, file);
    assert!(status < 300, "{status} {body}");
    let (status, body) = d.http("POST", "/v1/requests", &agent, file);
    assert_eq!(status, 429, "{body}");

    let (text, families) = scrape(&d);
    assert!(
        text.contains("# TYPE keygate_requests_total counter"),
        "{text}"
    );
    let approved = "keygate_requests_total{outcome=\"approved\",via=\"policy\"}";
    assert_eq!(line_value(&text, approved), Some(1.0), "{text}");
    let limited = "keygate_rate_limited_total{limit=\"per_minute\"}";
    assert_eq!(line_value(&text, limited), Some(1.0), "{text}");
    assert_eq!(line_value(&text, "keygate_auth_failures_total"), Some(1.0));
    // A policy's decision is no wait for a person: nothing timed.
    assert_eq!(
        line_value(&text, "keygate_approval_seconds_count"),
        Some(0.0)
    );
    assert_eq!(line_value(&text, "keygate_discord_connected"), Some(0.0));
    assert_free_of(
        &text,
        families.as_deref(),
        &[&agent, &d.operator_token(), "ci-one", "public/readme"],
    );
    if let Some(f) = families {
        for (name, kind) in [
            ("keygate_requests", "counter"),
            ("keygate_releases", "counter"),
            ("keygate_requests_pending", "gauge"),
            ("keygate_grants_live", "gauge"),
            ("keygate_approval_seconds", "histogram"),
            ("keygate_discord_connected", "gauge"),
            ("keygate_audit_write_seconds", "histogram"),
        ] {
            assert_eq!(family_type(&f, name).as_deref(), Some(kind), "{name}");
        }
        let labels = [("outcome", "approved"), ("via", "policy")];
        assert_eq!(sample(&f, "keygate_requests_total", &labels), Some(1.0));
        // The audit log was written (the start, the agent, the request...), and timed.
        let writes = sample(&f, "keygate_audit_write_seconds_count", &[]).unwrap_or(0.0);
        assert!(writes >= 3.0, "{writes}");
    }
}

#[test]
fn counters_move_when_a_request_is_filed_approved_and_released() {
    let w = World::start(POLICY, &[], &[("github/token", VALUE)]);
    let (before, _) = scrape(&w.d);
    assert_eq!(line_value(&before, "keygate_releases_total"), Some(0.0));
    assert_eq!(line_value(&before, "keygate_discord_connected"), Some(1.0));

    let (child, _, msg) = w.ask("github/token", "metrics");
    let (pending, _) = scrape(&w.d);
    assert_eq!(line_value(&pending, "keygate_requests_pending"), Some(1.0));
    let approve = msg
        .live_buttons()
        .into_iter()
        .find(|b| b.style == 3)
        .and_then(|b| b.custom_id)
        .expect("an Approve button");
    let h = w
        .sim
        .press(&PressSpec {
            username: "ops".into(),
            ..PressSpec::new(msg.id, approve, OPS)
        })
        .expect("press dispatched");
    w.answer(&h, msg.id);
    let got = finish(child);
    assert_eq!(got.code, 0, "{got:?}");
    assert_eq!(got.stdout.trim(), VALUE);

    // The grant hit: the reusable grant serves the agent again at once.
    let (status, body) = w.d.http("GET", "/v1/secrets/github/token", &w.agent, b"");
    assert_eq!(status, 200, "{body}");

    let (text, families) = scrape(&w.d);
    let approved = "keygate_requests_total{outcome=\"approved\",via=\"discord\"}";
    assert_eq!(line_value(&text, approved), Some(1.0), "{text}");
    assert_eq!(
        line_value(&text, "keygate_releases_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(line_value(&text, "keygate_requests_pending"), Some(0.0));
    assert_eq!(line_value(&text, "keygate_grants_live"), Some(1.0));
    assert_eq!(
        line_value(&text, "keygate_approval_seconds_count"),
        Some(1.0)
    );
    let hour = "keygate_approval_seconds_bucket{le=\"3600\"}";
    assert_eq!(line_value(&text, hour), Some(1.0), "{text}");
    let bot_token = w.sim.config().bot_token.clone();
    assert_free_of(
        &text,
        families.as_deref(),
        &[
            VALUE,
            &w.agent,
            &w.d.operator_token(),
            &bot_token,
            "github/token",
            "ci-one",
        ],
    );
    if let Some(f) = &families {
        let labels = [("outcome", "approved"), ("via", "discord")];
        assert_eq!(sample(f, "keygate_requests_total", &labels), Some(1.0));
        assert_eq!(sample(f, "keygate_releases_total", &[]), Some(2.0));
        assert_eq!(sample(f, "keygate_approval_seconds_count", &[]), Some(1.0));
        let sum = sample(f, "keygate_approval_seconds_sum", &[]).unwrap_or(-1.0);
        assert!(sum > 0.0 && sum < 120.0, "{sum}");
        assert_eq!(sample(f, "keygate_grants_live", &[]), Some(1.0));
    }

    // The gateway connection drops and comes back: counted, and connected again.
    w.sim.drop_connection();
    assert!(
        w.rt.block_on(w.sim.wait_for_sessions(|_, resumes| resumes >= 1, WAIT)),
        "no resume"
    );
    poll(WAIT, "the reconnect in the metrics", || {
        let (text, _) = scrape(&w.d);
        let again = line_value(&text, "keygate_discord_connected") == Some(1.0);
        let counted = line_value(&text, "keygate_discord_reconnects_total") >= Some(1.0);
        (again && counted).then_some(())
    });
}

/// `GET path` over plain TCP with no token; (status, body).
fn get_tcp(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics listener");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn the_loopback_listener_serves_metrics_without_a_token_and_nothing_else() {
    let d = Daemon::start_with(POLICY, &[("KEYGATE_METRICS_LISTEN", "127.0.0.1:0")]);
    let line = poll(Duration::from_secs(10), "the metrics listener", || {
        d.log()
            .lines()
            .find(|l| l.contains("serving metrics on http://"))
            .map(str::to_owned)
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("an address")
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    let (status, body) = get_tcp(&addr, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    assert_eq!(line_value(&body, "keygate_requests_pending"), Some(0.0));
    if let Some(promtool) = promtool() {
        promtool_check(&promtool, &body);
    }
    if let Some(python) = python() {
        let f = parse(&python, &body);
        assert_eq!(
            family_type(&f, "keygate_grants_live").as_deref(),
            Some("gauge")
        );
    }
    // No API here: not even what any token could read.
    for path in ["/v1/status", "/healthz", "/v1/secrets/x", "/"] {
        assert_eq!(get_tcp(&addr, "GET", path).0, 404, "{path}");
    }
    assert_eq!(get_tcp(&addr, "POST", "/metrics").0, 405);
    // And the API's route still wants the operator's token.
    let (status, _) = d.http("GET", "/metrics", "kg_not_a_token", b"");
    assert_eq!(status, 401);
}

#[test]
fn a_metrics_listener_off_loopback_stops_the_daemon_with_one_line() {
    for (addr, says) in [
        ("0.0.0.0:9464", "not a loopback address"),
        ("192.0.2.7:9464", "not a loopback address"),
        ("localhost:9464", "not an address"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new(bin("keygated"))
            .arg("serve")
            .env_clear()
            .env("XDG_CONFIG_HOME", dir.path().join("c"))
            .env("XDG_DATA_HOME", dir.path().join("d"))
            .env("XDG_STATE_HOME", dir.path().join("s"))
            .env("XDG_RUNTIME_DIR", dir.path().join("r"))
            .env("KEYGATE_SECRET_STORE", "memory")
            .env("KEYGATE_METRICS_LISTEN", addr)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run keygated");
        assert!(!out.status.success(), "{addr} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{addr}: {err}");
        assert!(
            lines[0].contains("KEYGATE_METRICS_LISTEN") && lines[0].contains(says),
            "{addr}: {err}"
        );
        // Refused before anything was made: no socket, no audit log.
        assert!(!dir.path().join("r/keygate/keygated.sock").exists());
        assert!(!dir.path().join("s/keygate/audit.jsonl").exists());
    }
    // The same from the configuration file.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("c/keygate")).expect("config dir");
    std::fs::write(
        dir.path().join("c/keygate/keygated.toml"),
        "[metrics]\nlisten = \"0.0.0.0:9464\"\n",
    )
    .expect("config file");
    let out = std::process::Command::new(bin("keygated"))
        .arg("serve")
        .env_clear()
        .env("XDG_CONFIG_HOME", dir.path().join("c"))
        .env("XDG_DATA_HOME", dir.path().join("d"))
        .env("XDG_STATE_HOME", dir.path().join("s"))
        .env("XDG_RUNTIME_DIR", dir.path().join("r"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run keygated");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("[metrics] listen") && err.contains("not a loopback address"),
        "{err}"
    );
}
