//! The daemon on the OS keychain, end to end: `KEYGATE_SECRET_STORE=keyring` against a real
//! Secret Service (gnome-keyring in a private D-Bus session, which `scripts/test` starts).
//! Every other test daemon uses the memory or file store.

use std::time::{SystemTime, UNIX_EPOCH};

use keygate_tests::{Daemon, POLICY, finish};

/// The session bus to hand the daemon, or `None` (and a loud line) when this run has no
/// Secret Service. Under CI (`KEYGATE_REQUIRE_SECRET_SERVICE=1`) a missing one fails.
fn session_bus() -> Option<String> {
    let enabled = std::env::var("KEYGATE_TEST_SECRET_SERVICE").as_deref() == Ok("1");
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
    if let (true, Some(bus)) = (enabled, bus) {
        return Some(bus);
    }
    assert!(
        std::env::var("KEYGATE_REQUIRE_SECRET_SERVICE").as_deref() != Ok("1"),
        "KEYGATE_REQUIRE_SECRET_SERVICE=1 but there is no Secret Service session \
         (KEYGATE_TEST_SECRET_SERVICE=1 and DBUS_SESSION_BUS_ADDRESS): run scripts/test"
    );
    println!("SKIPPED: no Secret Service here; scripts/test runs this inside one");
    None
}

/// A secret name no other run shares: the keychain outlives the test's temporary tree.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}/run-{}-{nanos}", std::process::id())
}

#[test]
fn the_daemon_keeps_secrets_in_the_keychain_and_releases_them_after_approval() {
    const VALUE: &str = "ghp_keychain_value_41c7";
    let Some(bus) = session_bus() else { return };
    let name = unique("github/token");
    let mut d = Daemon::start_with(
        POLICY,
        &[
            ("KEYGATE_SECRET_STORE", "keyring"),
            ("DBUS_SESSION_BUS_ADDRESS", bus.as_str()),
            ("RUST_LOG", "trace"),
        ],
    );
    let status: serde_json::Value =
        serde_json::from_str(&d.keygate(&["status", "--json"]).ok().stdout).expect("status");
    assert_eq!(status["store_backend"], "keyring", "{status}");

    d.secret(&name, VALUE);
    let listed = d.keygate(&["secrets", "list"]).ok().stdout;
    assert!(listed.contains(&name), "{listed}");

    let token = d.agent("ci-keychain");
    let child = d.keygate_as(&token, &["get", &name]).spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let got = finish(child);
    assert_eq!(
        (got.code, got.stdout.as_str()),
        (0, "ghp_keychain_value_41c7\n")
    );

    // The value lives in the keychain, not in the daemon: a restarted daemon (new
    // process, empty caches, grants gone) still has it.
    d.restart();
    let token = d.agent("ci-keychain-2");
    let child = d.keygate_as(&token, &["get", &name]).spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let got = finish(child);
    assert_eq!(got.stdout, format!("{VALUE}\n"), "{got:?}");

    // Removing it removes it from the keychain: after another restart it is gone.
    d.keygate(&["secrets", "rm", &name]).ok();
    d.restart();
    let listed = d.keygate(&["secrets", "list"]).ok().stdout;
    assert!(!listed.contains(&name), "{listed}");

    for (what, text) in [("daemon log", d.log()), ("audit log", d.audit())] {
        assert!(!text.contains(VALUE), "the value is in the {what}");
    }
}
