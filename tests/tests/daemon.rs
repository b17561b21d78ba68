//! The daemon's life: its socket, a second daemon, SIGHUP, shutdown, the demo.

use std::os::unix::fs::PermissionsExt as _;

use keygate_tests::{Daemon, bin, finish, poll};
use std::time::Duration;

#[test]
fn socket_and_token_files_are_private() {
    let d = Daemon::start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket()), 0o600);
    assert_eq!(mode(d.socket().parent().unwrap()), 0o700);
    assert_eq!(mode(&d.root().join("config/keygate/operator.token")), 0o600);
    assert_eq!(mode(&d.audit_path()), 0o600);
}

#[test]
fn a_second_daemon_refuses_and_a_stale_socket_is_replaced() {
    let mut d = Daemon::start();
    let second = std::process::Command::new(bin("keygated"))
        .env("XDG_CONFIG_HOME", d.root().join("config"))
        .env("XDG_DATA_HOME", d.root().join("data"))
        .env("XDG_STATE_HOME", d.root().join("state"))
        .env("XDG_RUNTIME_DIR", d.root().join("run"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already serving"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // A socket file left behind by a dead daemon.
    d.stop();
    std::os::unix::net::UnixListener::bind(d.socket()).unwrap();
    d.restart();
    d.keygate(&["status"]).ok();
}

#[test]
fn sighup_reloads_policies_and_a_broken_file_keeps_the_old_ones() {
    let d = Daemon::start();
    d.secret("public/x", "1");
    d.secret("new/x", "2");
    let t = d.agent("ci-one");
    assert_eq!(d.keygate_as(&t, &["get", "new/x"]).run().code, 3);
    std::fs::write(
        d.policy_path(),
        "[[rule]]\nname = \"all\"\nagents = [\"*\"]\nsecrets = [\"new/*\"]\naction = \"allow\"\n",
    )
    .unwrap();
    d.signal("HUP");
    poll(Duration::from_secs(10), "the reload", || {
        (d.keygate_as(&t, &["get", "new/x"]).run().code == 0).then_some(())
    });
    std::fs::write(d.policy_path(), "[[rule]]\nname = \n").unwrap();
    d.signal("HUP");
    poll(Duration::from_secs(10), "the refused reload", || {
        d.log().contains("policies not reloaded").then_some(())
    });
    assert_eq!(d.keygate_as(&t, &["get", "new/x"]).run().code, 0);
}

#[test]
fn shutdown_answers_waiting_agents_and_removes_the_socket() {
    let mut d = Daemon::start();
    d.secret("github/token", "v");
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    d.pending_request();
    let status = d.stop();
    assert!(status.success(), "{status}");
    let r = finish(child);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("shutting down"), "{}", r.stderr);
    assert!(!d.socket().exists());
    assert!(d.audit().contains("daemon_stopped"));
}

#[test]
fn a_broken_policy_file_stops_the_daemon_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keygate")).unwrap();
    std::fs::write(
        dir.path().join("keygate/policies.toml"),
        "[[rule]]\nbogus = 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin("keygated"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("d"))
        .env("XDG_STATE_HOME", dir.path().join("s"))
        .env("XDG_RUNTIME_DIR", dir.path().join("r"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("policies.toml"), "{err}");
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn the_demo_runs_the_whole_flow() {
    let out = std::process::Command::new(bin("keygated"))
        .args(["demo", "--once"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The message as posted (its buttons, its colour), the Approve… form with the rule's
    // TTL filled in, and the message as the submit left it, note and approver included.
    for step in [
        "Approval needed",
        "(amber bar)",
        "[ Approve… ]blue",
        "Grant lasts",
        "[ 10m",
        "/modal-submit",
        "(green bar)",
        "(100000000000000001): for the demo deploy",
        "[ Revoke ]red",
        "approved",
        "Released",
        "Live grant",
        "intact",
    ] {
        assert!(text.contains(step), "{step} missing from:\n{text}");
    }
}

#[test]
fn the_encrypted_file_store_locks_and_unlocks() {
    let d = Daemon::start_with(keygate_tests::POLICY, &[("KEYGATE_SECRET_STORE", "file")]);
    let status = d.keygate(&["status", "--json"]).ok().stdout;
    let s: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(s["store_backend"], "file");
    assert_eq!(s["store_locked"], true);
    let locked = d.keygate(&["secrets", "set", "public/x"]).stdin("v1").run();
    assert_eq!(locked.code, 1);
    assert!(
        locked.stderr.contains("keygate unlock"),
        "{}",
        locked.stderr
    );
    d.keygate(&["unlock"]).stdin("correct horse\n").ok();
    d.secret("public/x", "v1-plaintext-marker");
    let t = d.agent("ci-one");
    assert_eq!(
        d.keygate_as(&t, &["get", "public/x"]).ok().stdout,
        "v1-plaintext-marker\n"
    );
    d.keygate(&["lock"]).ok();
    let r = d.keygate_as(&t, &["get", "public/x"]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("locked"), "{}", r.stderr);
    let wrong = d.keygate(&["unlock"]).stdin("wrong horse\n").run();
    assert_ne!(wrong.code, 0);
    assert!(
        wrong.stderr.contains("wrong passphrase"),
        "{}",
        wrong.stderr
    );
    d.keygate(&["unlock"]).stdin("correct horse\n").ok();
    assert_eq!(
        d.keygate_as(&t, &["get", "public/x"]).ok().stdout,
        "v1-plaintext-marker\n"
    );
    let file = d.root().join("data/keygate/secrets.kgv");
    let bytes = std::fs::read(file).unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"v1-plaintext"),
        "the value is in clear on disk"
    );
}
