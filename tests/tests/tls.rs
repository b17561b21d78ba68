//! Remote agents over TLS: the self-signed certificate, pinning, and the refusals.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use keygate_tests::{Daemon, bin, finish, poll};

/// Starts a daemon with a TLS listener on a free port; returns it, the URL and the
/// fingerprint it logged.
fn tls_daemon() -> (Daemon, String, String) {
    let d = Daemon::start_with(
        keygate_tests::POLICY,
        &[("KEYGATE_SERVER_LISTEN", "127.0.0.1:0")],
    );
    let line = poll(Duration::from_secs(10), "the TLS listener", || {
        d.log()
            .lines()
            .find(|l| l.contains("serving TLS on"))
            .map(str::to_owned)
    });
    let url = line
        .split("serving TLS on ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("url")
        .to_owned();
    let fp = line
        .split("fingerprint ")
        .nth(1)
        .expect("fingerprint")
        .trim()
        .to_owned();
    (d, url, fp)
}

#[test]
fn an_agent_over_tls_with_a_pinned_certificate() {
    let (d, url, fp) = tls_daemon();
    assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
    d.secret("github/token", "v-tls");
    let t = d.agent("ci-remote");
    let child = d
        .keygate_as(&t, &["get", "github/token"])
        .env("KEYGATE_URL", &url)
        .env(
            "KEYGATE_FINGERPRINT",
            &fp.to_uppercase().replace("SHA256:", "sha256:"),
        )
        .spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "v-tls");
    let key = d.root().join("data/keygate/tls/key.pem");
    assert_eq!(
        std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_wrong_fingerprint_is_refused() {
    let (d, url, _) = tls_daemon();
    let t = d.agent("ci-remote");
    let wrong = format!("sha256:{}", "0".repeat(64));
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", &url)
        .env("KEYGATE_FINGERPRINT", &wrong)
        .run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("pinned"), "{}", r.stderr);
    assert!(
        !d.audit().contains("auth_failed"),
        "the token was never sent"
    );
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", &url)
        .env("KEYGATE_FINGERPRINT", "sha256:nope")
        .run();
    assert_eq!(r.code, 2, "{r:?}");
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", "http://127.0.0.1:1")
        .run();
    assert_eq!(r.code, 2, "plain http from the CLI: {r:?}");
}

#[test]
fn plain_http_off_loopback_stops_the_daemon_before_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin("keygated"))
        .env("XDG_CONFIG_HOME", dir.path().join("c"))
        .env("XDG_DATA_HOME", dir.path().join("d"))
        .env("XDG_STATE_HOME", dir.path().join("s"))
        .env("XDG_RUNTIME_DIR", dir.path().join("r"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .env("KEYGATE_SERVER_LISTEN", "http://0.0.0.0:18080")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(
        !dir.path().join("r/keygate/keygated.sock").exists(),
        "it served"
    );
    assert!(
        !dir.path().join("s/keygate/audit.jsonl").exists(),
        "it started"
    );
}
