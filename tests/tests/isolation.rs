//! Agents see, cancel and read only their own requests and grants; tokens are checked.

use keygate_tests::{Daemon, finish};

#[test]
fn agents_cannot_touch_each_others_requests_or_grants() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_a");
    let a = d.agent("ci-a");
    let b = d.agent("ci-b");
    let child = d.keygate_as(&a, &["get", "github/token"]).spawn();
    let id = d.pending_request();

    let seen: Vec<serde_json::Value> =
        serde_json::from_str(&d.keygate_as(&b, &["requests", "--json"]).ok().stdout).unwrap();
    assert!(seen.is_empty(), "B sees A's request: {seen:?}");
    let cancel = d.keygate_as(&b, &["cancel", &id]).run();
    assert_eq!(cancel.code, 1, "B cancelled A's request: {cancel:?}");
    assert!(cancel.stderr.contains("no request"), "{}", cancel.stderr);
    let approve = d.keygate_as(&b, &["approve", &id]).run();
    assert_eq!(approve.code, 5, "an agent cannot approve: {approve:?}");

    d.keygate(&["approve", &id]).ok();
    assert_eq!(finish(child).code, 0);

    let grants: Vec<serde_json::Value> =
        serde_json::from_str(&d.keygate_as(&b, &["grants", "--json"]).ok().stdout).unwrap();
    assert!(grants.is_empty(), "B sees A's grant");
    let read = d
        .keygate_as(&b, &["get", "github/token", "--timeout", "1s"])
        .run();
    assert_eq!(read.code, 4, "B read A's secret: {read:?}");
    assert!(read.stdout.is_empty());
}

#[test]
fn bad_tokens_exit_5_and_are_audited() {
    let d = Daemon::start();
    let r = d.keygate_as("kga_not-a-real-token", &["grants"]).run();
    assert_eq!(r.code, 5, "{r:?}");
    assert!(d.audit().contains("auth_failed"));
    let t = d.agent("ci-one");
    for args in [
        &["agents", "list"][..],
        &["secrets", "list"],
        &["revoke", "--all"],
        &["audit"],
    ] {
        let r = d.keygate_as(&t, args).run();
        assert_eq!(r.code, 5, "agent on {args:?}: {r:?}");
    }
    // The operator token cannot read secrets as if it were an agent.
    let (status, body) = d.http(
        "GET",
        "/v1/secrets/github%2Ftoken",
        &d.operator_token(),
        b"",
    );
    assert_eq!(status, 403, "{body}");
    // A removed agent's token stops working.
    d.keygate(&["agents", "rm", "ci-one"]).ok();
    assert_eq!(d.keygate_as(&t, &["grants"]).run().code, 5);
}

#[test]
fn daemon_down_exits_6() {
    let mut d = Daemon::start();
    d.stop();
    let r = d.keygate(&["status"]).run();
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("cannot reach keygated"), "{}", r.stderr);
}

/// Another agent's request answers exactly as a missing one does: the same status and the
/// same body, so an agent cannot even learn that an id exists.
#[test]
fn another_agents_request_is_indistinguishable_from_a_missing_one() {
    let d = Daemon::start();
    let a = d.agent("ci-a");
    let b = d.agent("ci-b");
    let child = d
        .keygate_as(&a, &["get", "db/x", "--reason", "mine"])
        .spawn();
    let id = d.pending_request();
    let missing = "req_AAAAAAAAAAAAAAAAAAAAAA";
    for (method, suffix) in [("GET", ""), ("GET", "?wait=1s"), ("DELETE", "")] {
        let theirs = d.http(method, &format!("/v1/requests/{id}{suffix}"), &b, b"");
        let none = d.http(method, &format!("/v1/requests/{missing}{suffix}"), &b, b"");
        assert_eq!(theirs.0, 404, "{method} {suffix}: {theirs:?}");
        assert_eq!(theirs, none, "{method} {suffix}");
    }
    let r = d.keygate_as(&b, &["cancel", &id]).run();
    assert_eq!(r.code, 1, "{r:?}");
    // Still pending: B changed nothing.
    assert_eq!(d.requests()[0]["status"], "pending");
    d.keygate(&["cancel", &id]).ok();
    finish(child);
}

/// The daemon keeps only SHA-256 hashes of agent tokens, in a file only its user can read.
#[test]
fn agent_tokens_are_stored_only_as_hashes_in_a_private_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let d = Daemon::start();
    let token = d.agent("ci-one");
    let path = d.root().join("data/keygate/agents.json");
    let text = std::fs::read_to_string(&path).expect("agents file");
    assert!(!text.contains(&token), "the token itself is on disk");
    let secret_part = token.trim_start_matches("kga_");
    assert!(!text.contains(secret_part));
    let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let hash = file["agents"][0]["token_sha256"].as_str().expect("a hash");
    assert_eq!(hash.len(), 64);
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}
