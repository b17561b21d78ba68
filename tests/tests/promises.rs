//! Promises docs/api.md makes that no other suite holds to: `/healthz` tells nothing, a
//! request names at most 32 secrets, and `keygate policy check` says which rule decides.

use keygate_tests::{Daemon, finish};

#[test]
fn healthz_answers_anyone_and_tells_nothing() {
    let d = Daemon::start();
    let t = d.agent("ci-one");
    for token in ["", "kga_wrong", t.as_str()] {
        let (status, body) = d.http("GET", "/healthz", token, b"");
        assert_eq!(status, 200, "{token}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v, serde_json::json!({"ok": true}), "{body}");
    }
    // It is the only route that needs no token.
    let (status, _) = d.raw(b"GET /v1/status HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 401);
}

#[test]
fn a_request_names_at_most_32_secrets() {
    let d = Daemon::start();
    let t = d.agent("ci-one");
    let names = |n: usize| -> Vec<String> { (0..n).map(|i| format!("db/s{i}")).collect() };
    let body = |n: usize| serde_json::json!({"secrets": names(n), "reason": "many"}).to_string();
    let (status, text) = d.http("POST", "/v1/requests", &t, body(33).as_bytes());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("at most 32"), "{text}");
    assert!(d.requests().is_empty(), "a refused request was filed");
    let (status, text) = d.http("POST", "/v1/requests", &t, body(32).as_bytes());
    assert_eq!(status, 201, "{text}");
    let filed = d.requests();
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0]["secrets"].as_array().map(Vec::len), Some(32));
    let id = filed[0]["id"].as_str().expect("id").to_owned();
    d.keygate(&["cancel", &id]).ok();
}

#[test]
fn policy_check_names_the_deciding_rule() {
    let d = Daemon::start();
    for (agent, secret, words) in [
        (
            "ci-one",
            "github/token",
            &["ci asks for github", "ask", "ops"][..],
        ),
        (
            "ci-one",
            "public/readme",
            &["ci reads public things", "allow"],
        ),
        ("ci-one", "prod/db", &["nobody reads prod", "deny"]),
        ("stranger", "github/token", &["no rule", "deny"]),
    ] {
        let r = d.keygate(&["policy", "check", agent, secret]).ok();
        for w in words {
            assert!(
                r.stdout.contains(w) || r.stderr.contains(w),
                "{agent} {secret}: `{w}` missing: {r:?}"
            );
        }
    }
    // What it says is what filing does.
    let t = d.agent("ci-one");
    let r = d.keygate_as(&t, &["get", "prod/db"]).run();
    assert_eq!(r.code, 3, "{r:?}");
    d.secret("public/readme", "hello");
    let r = finish(d.keygate_as(&t, &["get", "public/readme"]).spawn());
    assert_eq!(r.code, 0, "an allowed secret needs nobody: {r:?}");
    assert_eq!(r.stdout.trim(), "hello");
}
