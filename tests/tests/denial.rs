//! A denial's reason reaches the agent: `keygate get` prints it on stderr (one line,
//! control characters escaped) and exits 3, and the request's JSON carries
//! `denial_reason` — only when a person gave one, and never longer than 400 characters.

use keygate_tests::{Daemon, finish};

fn request(d: &Daemon, id: &str) -> serde_json::Value {
    d.requests()
        .into_iter()
        .find(|r| r["id"] == id)
        .expect("the request is listed")
}

#[test]
fn the_operators_reason_reaches_the_agent_and_the_json() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_abc");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    d.keygate(&["deny", &id, "--reason", "use the staging token"])
        .ok();
    let r = finish(child);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr
            .contains("denied by operator: use the staging token"),
        "{}",
        r.stderr
    );
    let req = request(&d, &id);
    assert_eq!(req["status"], "denied");
    assert_eq!(req["denial_reason"], "use the staging token");
    assert_eq!(req["message"], "use the staging token", "message is kept");

    // The agent reads the same field on its own request.
    let (status, body) = d.http("GET", &format!("/v1/requests/{id}"), &t, b"");
    assert_eq!(status, 200, "{body}");
    let own: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(own["denial_reason"], "use the staging token");
}

#[test]
fn a_reason_over_400_characters_is_refused_and_changes_nothing() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_abc");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();

    let long = "é".repeat(401);
    let r = d.keygate(&["deny", &id, "--reason", &long]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("at most 400"), "{}", r.stderr);
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);

    let body = serde_json::json!({ "reason": long }).to_string();
    let (status, answer) = d.http(
        "POST",
        &format!("/v1/requests/{id}/deny"),
        &d.operator_token(),
        body.as_bytes(),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()["error"],
        "bad_request"
    );
    assert_eq!(request(&d, &id)["status"], "pending", "nothing changed");
    assert!(!d.audit().contains("\"denied\""), "{}", d.audit());

    // Exactly 400 is fine.
    let most = "é".repeat(400);
    d.keygate(&["deny", &id, "--reason", &most]).ok();
    let r = finish(child);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(&most), "{}", r.stderr);
    assert_eq!(request(&d, &id)["denial_reason"], most.as_str());
}

#[test]
fn no_reason_means_no_denial_reason() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_abc");
    d.secret("prod/db", "x");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    d.keygate(&["deny", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("denied by operator"), "{}", r.stderr);
    let req = request(&d, &id);
    assert_eq!(req["status"], "denied");
    assert!(req.get("denial_reason").is_none(), "{req}");
    assert_eq!(req["message"], "denied by operator");

    // A blank reason is none; the policy's own denial is no person's reason either.
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    d.keygate(&["deny", &id, "--reason", "   "]).ok();
    assert_eq!(finish(child).code, 3);
    assert!(request(&d, &id).get("denial_reason").is_none());
    let r = d.keygate_as(&t, &["get", "prod/db"]).run();
    assert_eq!(r.code, 3, "{r:?}");
    let denied = d
        .requests()
        .into_iter()
        .find(|r| r["secrets"][0] == "prod/db")
        .unwrap();
    assert!(denied.get("denial_reason").is_none(), "{denied}");
}

#[test]
fn a_reason_is_printed_on_one_line_with_control_characters_escaped() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_abc");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    d.keygate(&["deny", &id, "--reason", "no\nway \u{1b}[2J today"])
        .ok();
    let r = finish(child);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("denied by"))
        .unwrap_or_default();
    assert!(line.contains(r"no\nway \u{1b}[2J today"), "{:?}", r.stderr);
    // The JSON keeps what was written.
    assert_eq!(request(&d, &id)["denial_reason"], "no\nway \u{1b}[2J today");
}
