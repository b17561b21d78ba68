//! `KEYGATE_DISCORD_PING`: whether a request's message notifies the rule's approvers
//! (default true). A value other than `true` or `false` stops the daemon at start,
//! naming the variable.

#[test]
fn a_bad_ping_setting_stops_the_daemon_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keygate_tests::bin("keygated"))
        .env_clear()
        .env("XDG_CONFIG_HOME", dir.path().join("c"))
        .env("XDG_DATA_HOME", dir.path().join("d"))
        .env("XDG_STATE_HOME", dir.path().join("s"))
        .env("XDG_RUNTIME_DIR", dir.path().join("r"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .env("KEYGATE_DISCORD_TOKEN", "a-token")
        .env("KEYGATE_DISCORD_CHANNEL_ID", "42")
        .env("KEYGATE_DISCORD_API_URL", "http://127.0.0.1:9")
        .env("KEYGATE_DISCORD_PING", "maybe")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEYGATE_DISCORD_PING"), "{err}");
    assert!(!err.contains("a-token"), "the token was printed: {err}");
}
