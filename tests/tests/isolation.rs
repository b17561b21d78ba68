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
    assert_ne!(cancel.code, 0, "B cancelled A's request");
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
