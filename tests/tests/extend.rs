//! `keygate extend GRANT_ID [--by DURATION]` (`POST /v1/grants/{id}/extend`), through the
//! real binaries: the grant's own TTL by default, never past approval time + the rule's
//! `max_ttl`, refused (changing nothing) once there, audited, and followed by the grant's
//! expiry and by a running `keygate exec`.

use std::time::Duration;

use keygate_tests::exec::{Running, approve_next};
use keygate_tests::{Daemon, POLICY, finish};

/// Seconds since the epoch of a time in the API's JSON.
fn secs(time: &serde_json::Value) -> i64 {
    keygate_tests::unix_secs(time.as_str().expect("a time string"))
}

/// A grant for `secret` for agent `ci-one`, approved by the operator: (grant JSON, token).
fn approved(d: &Daemon, secret: &str) -> (serde_json::Value, String) {
    d.secret(secret, "v");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", secret]).spawn();
    approve_next(d);
    assert_eq!(finish(child).code, 0);
    (grant(d), t)
}

fn grant(d: &Daemon) -> serde_json::Value {
    let out = d.keygate(&["grants", "--json"]).ok().stdout;
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).expect("grants JSON");
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

#[test]
fn extend_adds_the_grants_ttl_then_stops_at_max_ttl() {
    let d = Daemon::start();
    // "ci asks for github": ttl 15m (the defaults'), max_ttl 1h.
    let (g, _) = approved(&d, "github/token");
    let id = g["id"].as_str().unwrap();
    let created = secs(&g["created_at"]);
    assert_eq!(secs(&g["expires_at"]) - created, 15 * 60);

    let r = d.keygate(&["extend", id]).ok();
    let printed = serde_json::Value::String(r.stdout.trim().to_owned());
    assert_eq!(secs(&printed) - created, 30 * 60, "{r:?}");
    assert!(r.stderr.contains(&format!("grant {id} now ends")), "{r:?}");
    let now = grant(&d);
    assert_eq!(now["expires_at"], printed);
    let request = d.requests().remove(0);
    assert_eq!(
        request["grant"]["expires_at"], printed,
        "the request agrees"
    );

    let r = d.keygate(&["extend", id, "--by", "10m"]).ok();
    let printed = serde_json::Value::String(r.stdout.trim().to_owned());
    assert_eq!(secs(&printed) - created, 40 * 60);

    // 40m more would pass the cap: cut to approval + 1h.
    let r = d.keygate(&["extend", id, "--by", "40m"]).ok();
    let printed = serde_json::Value::String(r.stdout.trim().to_owned());
    assert_eq!(secs(&printed) - created, 60 * 60);

    // At the cap: refused, clearly, and nothing changes.
    let audit_before = d.audit();
    let r = d.keygate(&["extend", id]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("max_ttl"), "{}", r.stderr);
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let (status, body) = d.http(
        "POST",
        &format!("/v1/grants/{id}/extend"),
        &d.operator_token(),
        b"{}",
    );
    assert_eq!(status, 409, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "max_ttl_reached");
    assert_eq!(grant(&d)["expires_at"], printed);
    assert_eq!(
        d.audit(),
        audit_before,
        "a refused extension writes nothing"
    );

    // Each extension is audited: who, and the new end.
    let extended: Vec<serde_json::Value> = d
        .audit()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["event"] == "grant_extended")
        .collect();
    assert_eq!(extended.len(), 3, "{extended:?}");
    assert_eq!(extended[2]["grant"], id);
    assert_eq!(extended[2]["by"]["who"], "operator");
    assert_eq!(extended[2]["expires_at"], printed);
}

#[test]
fn a_rule_whose_ttl_is_its_max_ttl_cannot_be_extended() {
    let policy = format!(
        "{POLICY}\n[[rule]]\nname = \"capped\"\nagents = [\"ci-*\"]\nsecrets = [\"capped/*\"]\naction = \"ask\"\napprovers = [\"ops\"]\nttl = \"10m\"\nmax_ttl = \"10m\"\n"
    );
    let d = Daemon::start_with(&policy, &[]);
    let (g, _) = approved(&d, "capped/x");
    let r = d.keygate(&["extend", g["id"].as_str().unwrap()]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot be extended"), "{}", r.stderr);
    assert_eq!(grant(&d)["expires_at"], g["expires_at"]);
}

#[test]
fn unknown_grants_bad_durations_and_agents_are_refused() {
    let d = Daemon::start();
    let r = d.keygate(&["extend", "gnt_0123456789abcdefghijkl"]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no live grant"), "{}", r.stderr);
    let r = d.keygate(&["extend", "not-a-grant"]).run();
    assert_eq!(r.code, 2, "{r:?}");
    let r = d
        .keygate(&["extend", "gnt_0123456789abcdefghijkl", "--by", "soon"])
        .run();
    assert_eq!(r.code, 2, "{r:?}");

    let (g, t) = approved(&d, "github/token");
    let id = g["id"].as_str().unwrap();
    let path = format!("/v1/grants/{id}/extend");
    for body in [
        &br#"{"by": "soon"}"#[..],
        br#"{"by": "0s"}"#,
        br#"{"until": "1h"}"#,
    ] {
        let (status, answer) = d.http("POST", &path, &d.operator_token(), body);
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains("bad_request"), "{answer}");
    }

    // The agent holding the grant may not extend it.
    let r = d.keygate_as(&t, &["extend", id]).run();
    assert_eq!(r.code, 5, "{r:?}");
    let (status, _) = d.http("POST", &path, &t, b"{}");
    assert_eq!(status, 403);
    assert_eq!(grant(&d)["expires_at"], g["expires_at"], "nothing changed");
}

#[test]
fn exec_keeps_running_past_the_old_end() {
    let d = Daemon::start();
    d.secret("short/token", "short-lived");
    let t = d.agent("ci-one");
    // "short lived" grants 2 s.
    let mut run = Running::start(
        &d,
        &t,
        &[
            "-s",
            "short/token",
            "--",
            "sh",
            "-c",
            "echo started; sleep 4; echo finished",
        ],
    );
    approve_next(&d);
    run.wait_line("started");
    let id = grant(&d)["id"].as_str().unwrap().to_owned();
    d.keygate(&["extend", &id, "--by", "30s"]).ok();
    let (code, lines, stderr) = run.end(Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    assert!(lines.iter().any(|l| l == "finished"), "{lines:?}");
    assert!(!stderr.contains("expired"), "{stderr}");
}

/// Repeated reads under a reusable grant are answered from the answer the first read
/// built; an extension must not leave the old end in it.
#[test]
fn a_read_after_an_extension_tells_the_new_end() {
    let d = Daemon::start();
    let (g, t) = approved(&d, "github/token");
    let id = g["id"].as_str().unwrap();
    let path = "/v1/secrets/github%2Ftoken";
    let read = |what: &str| {
        let (status, body) = d.http("GET", path, &t, b"");
        assert_eq!(status, 200, "{what}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("release JSON");
        assert_eq!(v["value"], "v");
        v["grant"]["expires_at"].clone()
    };
    assert_eq!(read("first"), g["expires_at"]);
    assert_eq!(read("repeated"), g["expires_at"]);
    let r = d.keygate(&["extend", id]).ok();
    let new_end = serde_json::Value::String(r.stdout.trim().to_owned());
    assert_ne!(new_end, g["expires_at"]);
    assert_eq!(read("after the extension"), new_end);
    assert_eq!(read("repeated after it"), new_end);
}

/// The grant's own clock (what a read checks, with no trip through moka) moves with an
/// extension: past the old end, reads are still served.
#[test]
fn reads_go_on_past_the_old_end() {
    let d = Daemon::start();
    // "short lived": ttl 5s, reusable.
    let (g, t) = approved(&d, "short/token");
    let id = g["id"].as_str().unwrap();
    d.keygate(&["extend", id, "--by", "10m"]).ok();
    let old_end = std::time::SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(secs(&g["expires_at"])).unwrap());
    keygate_tests::poll(Duration::from_secs(20), "the old end to pass", || {
        (std::time::SystemTime::now() > old_end + Duration::from_secs(1)).then_some(())
    });
    let r = d
        .keygate_as(&t, &["get", "short/token", "--timeout", "1s"])
        .run();
    assert_eq!((r.code, r.stdout.as_str()), (0, "v\n"), "{r:?}");
    assert_eq!(
        d.requests().len(),
        1,
        "served under the grant, no new request"
    );
}
