//! Grants: reuse within the TTL, single use, expiry, and every way to revoke.

use std::time::Duration;

use keygate_tests::{Daemon, finish, poll};

fn approve_next(d: &Daemon) {
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
}

fn get_approved(d: &Daemon, token: &str, secret: &str) -> String {
    let child = d.keygate_as(token, &["get", secret]).spawn();
    approve_next(d);
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

fn grants(d: &Daemon) -> Vec<serde_json::Value> {
    serde_json::from_str(&d.keygate(&["grants", "--json"]).ok().stdout).expect("grants JSON")
}

#[test]
fn a_reusable_grant_serves_reads_until_it_ends() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_1");
    let t = d.agent("ci-one");
    assert_eq!(get_approved(&d, &t, "github/token"), "ghp_1\n");
    for _ in 0..3 {
        let r = d.keygate_as(&t, &["get", "github/token"]).ok();
        assert_eq!(r.stdout, "ghp_1\n");
    }
    assert_eq!(
        d.requests().len(),
        1,
        "reads under the grant file no request"
    );
    let g = &grants(&d)[0];
    assert_eq!(g["agent"], "ci-one");
    assert_eq!(g["approved_by"][0], "operator");
    assert_eq!(g["reads"], 4);
    // One audit line covers every read under the grant.
    assert_eq!(d.audit().matches("\"event\":\"released\"").count(), 1);
}

#[test]
fn a_single_use_grant_is_spent_by_its_first_read() {
    let d = Daemon::start();
    d.secret("db/password", "pw");
    let t = d.agent("ci-one");
    assert_eq!(get_approved(&d, &t, "db/password"), "pw\n");
    let again = d
        .keygate_as(&t, &["get", "db/password", "--timeout", "1s"])
        .run();
    assert_eq!(again.code, 4, "a spent grant asks again: {again:?}");
    assert_eq!(
        grants(&d).len(),
        1,
        "the spent grant stays listed until its TTL ends"
    );
}

#[test]
fn an_expired_grant_releases_nothing_and_is_audited() {
    let d = Daemon::start();
    d.secret("short/token", "s");
    let t = d.agent("ci-one");
    assert_eq!(get_approved(&d, &t, "short/token"), "s\n");
    poll(Duration::from_secs(20), "the grant to expire", || {
        grants(&d).is_empty().then_some(())
    });
    let r = d
        .keygate_as(&t, &["get", "short/token", "--timeout", "1s"])
        .run();
    assert_eq!(r.code, 4, "{r:?}");
    poll(
        Duration::from_secs(10),
        "the expiry in the audit log",
        || d.audit().contains("\"cause\":\"expired\"").then_some(()),
    );
}

#[test]
fn revoke_by_id_agent_secret_and_all() {
    let d = Daemon::start();
    d.secret("github/a", "1");
    d.secret("github/b", "2");
    d.secret("github/c", "3");
    let one = d.agent("ci-one");
    let two = d.agent("ci-two");
    get_approved(&d, &one, "github/a");
    get_approved(&d, &one, "github/b");
    get_approved(&d, &two, "github/a");
    get_approved(&d, &two, "github/b");
    get_approved(&d, &one, "github/c");
    assert_eq!(grants(&d).len(), 5);

    // Each selector ends exactly what it names, and every other grant survives it.
    let key = |g: &serde_json::Value| {
        format!(
            "{}:{}",
            g["agent"].as_str().unwrap_or_default(),
            g["secrets"][0].as_str().unwrap_or_default()
        )
    };
    let live = |d: &Daemon| {
        let mut k: Vec<String> = grants(d).iter().map(key).collect();
        k.sort();
        k
    };
    let first = grants(&d)[0].clone();
    let id = first["id"].as_str().unwrap().to_owned();
    let mut expected = live(&d);
    expected.retain(|k| *k != key(&first));
    d.keygate(&["revoke", &id]).ok();
    assert_eq!(live(&d), expected, "revoke by id");

    expected.retain(|k| !k.ends_with(":github/b"));
    d.keygate(&["revoke", "--secret", "github/b"]).ok();
    assert_eq!(live(&d), expected, "revoke by secret");

    expected.retain(|k| !k.starts_with("ci-two:"));
    d.keygate(&["revoke", "--agent", "ci-two"]).ok();
    assert_eq!(live(&d), expected, "revoke by agent");
    assert!(
        !expected.is_empty(),
        "the test must leave a grant for --all"
    );

    d.keygate(&["revoke", "--all"]).ok();
    assert!(grants(&d).is_empty());
    let r = d
        .keygate_as(&one, &["get", "github/a", "--timeout", "1s"])
        .run();
    assert_eq!(r.code, 4, "a revoked grant releases nothing: {r:?}");
    assert!(d.audit().contains("\"cause\":\"revoked\""));
    let unknown = d.keygate(&["revoke", &id]).run();
    assert_eq!(unknown.code, 1, "{unknown:?}");
}

/// Repeated reads under a reusable grant are answered from what the first read built
/// (docs/benchmarks.md): that answer follows every change of the value, and nothing is
/// served from it once the grant is revoked, the secret removed or the agent gone.
#[test]
fn repeated_reads_follow_the_value_and_stop_with_the_grant() {
    let d = Daemon::start();
    d.secret("github/token", "ghp_1");
    let t = d.agent("ci-one");
    assert_eq!(get_approved(&d, &t, "github/token"), "ghp_1\n");
    let path = "/v1/secrets/github%2Ftoken";
    let read = |want: &str| {
        let (status, body) = d.http("GET", path, &t, b"");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["value"], want, "{body}");
    };
    read("ghp_1");
    read("ghp_1");
    d.secret("github/token", "ghp_2");
    read("ghp_2");
    read("ghp_2");
    assert_eq!(grants(&d)[0]["reads"], 5, "every read is counted");
    d.keygate(&["secrets", "rm", "github/token"]).ok();
    let (status, body) = d.http("GET", path, &t, b"");
    assert_eq!(status, 409, "a removed secret is not served: {body}");
    d.secret("github/token", "ghp_3");
    read("ghp_3");
    read("ghp_3");
    let id = grants(&d)[0]["id"].as_str().expect("id").to_owned();
    d.keygate(&["revoke", &id]).ok();
    let (status, body) = d.http("GET", path, &t, b"");
    assert_eq!(status, 403, "revoked at once: {body}");
    assert_eq!(d.audit().matches("\"event\":\"released\"").count(), 1);
}
