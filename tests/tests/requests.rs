//! The life of a request, through the real binaries: allow, deny, ask, approve, deny,
//! timeout, cancel, quorum.

use std::time::Duration;

use keygate_tests::{Daemon, finish, poll};

#[test]
fn allow_rule_releases_without_asking() {
    let d = Daemon::start();
    d.secret("public/readme", "hello");
    let t = d.agent("ci-one");
    let r = d.keygate_as(&t, &["get", "public/readme"]).ok();
    assert_eq!(r.stdout, "hello\n");
    assert!(d.requests().is_empty(), "an allowed read files no request");
}

#[test]
fn deny_rule_and_no_rule_deny_with_exit_3() {
    let d = Daemon::start();
    d.secret("prod/db", "x");
    d.secret("other/thing", "y");
    let t = d.agent("ci-one");
    let r = d.keygate_as(&t, &["get", "prod/db"]).run();
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("nobody reads prod"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let r = d.keygate_as(&t, &["get", "other/thing"]).run();
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("no rule matched"), "{}", r.stderr);
}

#[test]
fn ask_then_approve_releases_the_value() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_abc");
    let t = d.agent("ci-one");
    let child = d
        .keygate_as(&t, &["get", "github/token", "--reason", "open PR #12"])
        .spawn();
    let id = d.pending_request();
    let req = d
        .requests()
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(req["reason"], "open PR #12");
    assert_eq!(req["agent"], "ci-one");
    d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "ghp_abc\n");
    assert!(r.stderr.contains("approved by operator"), "{}", r.stderr);
    // A second approval is refused.
    let again = d.keygate(&["approve", &id]).run();
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already decided"), "{}", again.stderr);
}

#[test]
fn ask_then_deny_exits_3_with_the_reason() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_abc");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    d.keygate(&["deny", &id, "--reason", "not today"]).ok();
    let r = finish(child);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("not today"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn a_request_nobody_decides_expires_with_exit_4() {
    let d = Daemon::start();
    d.secret("slow/thing", "v");
    let t = d.agent("ci-one");
    let r = d.keygate_as(&t, &["get", "slow/thing"]).run();
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
    assert_eq!(d.requests()[0]["status"], "expired");
}

#[test]
fn timeout_flag_gives_up_and_cancels() {
    let d = Daemon::start();
    d.secret("github/token", "v");
    let t = d.agent("ci-one");
    let r = d
        .keygate_as(&t, &["get", "github/token", "--timeout", "1s"])
        .run();
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(d.requests()[0]["status"], "cancelled");
}

#[test]
fn an_agent_cancels_its_request() {
    let d = Daemon::start();
    d.secret("github/token", "v");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    d.keygate_as(&t, &["cancel", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cancelled"), "{}", r.stderr);
    let late = d.keygate(&["approve", &id]).run();
    assert!(late.stderr.contains("already decided"), "{late:?}");
}

#[test]
fn interrupting_get_cancels_the_request() {
    let d = Daemon::start();
    d.secret("github/token", "v");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let r = finish(child);
    assert_ne!(r.code, 0);
    poll(
        Duration::from_secs(10),
        "the request to be cancelled",
        || {
            (d.requests().iter().find(|r| r["id"] == id.as_str())?["status"] == "cancelled")
                .then_some(())
        },
    );
}

#[test]
fn quorum_counts_one_approver_once() {
    let d = Daemon::start();
    d.secret("vault/key", "v");
    let t = d.agent("ci-one");
    let child = d
        .keygate_as(&t, &["get", "vault/key", "--timeout", "20s"])
        .spawn();
    let id = d.pending_request();
    let first = d.keygate(&["approve", &id]).ok();
    assert!(first.stderr.contains("1 of 2"), "{}", first.stderr);
    let second = d.keygate(&["approve", &id]).ok();
    assert!(second.stderr.contains("1 of 2"), "{}", second.stderr);
    let req = d
        .requests()
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(req["status"], "pending");
    d.keygate(&["deny", &id]).ok();
    assert_eq!(finish(child).code, 3);
}

#[test]
fn an_agent_that_hangs_up_cancels_its_request() {
    let d = Daemon::start();
    d.secret("github/token", "v");
    let t = d.agent("ci-one");
    let mut child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    child.kill().unwrap();
    let _ = child.wait();
    poll(
        Duration::from_secs(10),
        "the request to be cancelled",
        || {
            (d.requests().iter().find(|r| r["id"] == id.as_str())?["status"] == "cancelled")
                .then_some(())
        },
    );
    let late = d.keygate(&["approve", &id]).run();
    assert!(late.stderr.contains("already decided"), "{late:?}");
}
