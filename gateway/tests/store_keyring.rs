//! The keyring store against a real Secret Service, and the auto choice with and without one.
//!
//! The tests that need a Secret Service run only with `KEYGATE_TEST_SECRET_SERVICE=1`:
//!
//! ```sh
//! dbus-run-session -- sh -c 'export XDG_DATA_HOME=$(mktemp -d); \
//!   echo -n testpass | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
//!   KEYGATE_TEST_SECRET_SERVICE=1 cargo test -p keygate-gateway --test store_keyring'
//! ```
//!
//! The ones that need no keychain at all (a child process whose `DBUS_SESSION_BUS_ADDRESS`
//! points nowhere) run everywhere.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keygate_gateway::store::{
    self, Backend, Choice, KEYRING_INDEX_FILE, KEYRING_SERVICE, KeyringStore, SecretStore,
    StoreConfig, StoreError,
};
use keygate_proto::{SecretName, SecretValue};

const ENABLE_VAR: &str = "KEYGATE_TEST_SECRET_SERVICE";
const CHILD_MODE_VAR: &str = "KEYGATE_TEST_CHILD_MODE";
const CHILD_DIR_VAR: &str = "KEYGATE_TEST_CHILD_DIR";

fn secret_service_available() -> bool {
    if std::env::var(ENABLE_VAR).as_deref() == Ok("1") {
        return true;
    }
    // CI sets this so that a broken setup fails instead of skipping quietly.
    assert!(
        std::env::var("KEYGATE_REQUIRE_SECRET_SERVICE").as_deref() != Ok("1"),
        "KEYGATE_REQUIRE_SECRET_SERVICE=1 but {ENABLE_VAR} is not 1"
    );
    println!("skipped: set {ENABLE_VAR}=1 inside dbus-run-session with an unlocked gnome-keyring");
    false
}

/// A name no other test run uses, so runs never see each other's items.
fn unique(name: &str) -> SecretName {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("{}-{nanos}", std::process::id())
    });
    SecretName::new(format!("keygate-test/{run}/{name}")).unwrap()
}

fn value(s: &str) -> SecretValue {
    SecretValue::new(s.to_owned())
}

/// Removes the items a test made, even when it fails.
struct Cleanup<'a> {
    store: &'a KeyringStore,
    names: Vec<SecretName>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.store.remove(name);
        }
    }
}

#[test]
fn keyring_round_trip_overwrite_and_remove() {
    if !secret_service_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KeyringStore::open(dir.path()).unwrap();
    let a = unique("round-trip");
    let _cleanup = Cleanup {
        store: &s,
        names: vec![a.clone()],
    };
    assert_eq!(s.backend(), Backend::Keyring);
    assert_eq!(s.get(&a).unwrap(), None);

    let first = s.set(&a, &value("first value")).unwrap();
    assert_eq!(first.size, 11);
    assert_eq!(first.backend, Backend::Keyring);
    assert_eq!(s.get(&a).unwrap(), Some(value("first value")));

    thread::sleep(Duration::from_millis(5));
    let odd = "line one\nline two\r\nünïcødé 🔑 \"quoted\"";
    let second = s.set(&a, &value(odd)).unwrap();
    assert_eq!(second.created_at, first.created_at, "created_at stays");
    assert!(second.updated_at > first.updated_at, "updated_at moves");
    assert_eq!(second.size, odd.len());
    assert_eq!(s.get(&a).unwrap(), Some(value(odd)));

    assert!(s.remove(&a).unwrap());
    assert_eq!(s.get(&a).unwrap(), None);
    assert!(!s.remove(&a).unwrap());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn keyring_list_comes_from_the_index_and_the_index_holds_no_value() {
    if !secret_service_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keygate");
    let s = KeyringStore::open(&dir).unwrap();
    let (a, b) = (unique("list/a"), unique("list/b"));
    let _cleanup = Cleanup {
        store: &s,
        names: vec![a.clone(), b.clone()],
    };
    s.set(&b, &value("value-of-b-9f8e7d")).unwrap();
    s.set(&a, &value("value-of-a-1a2b3c")).unwrap();

    let listed = s.list().unwrap();
    let names: Vec<_> = listed.iter().map(|m| m.name.clone()).collect();
    assert_eq!(names, [a.clone(), b.clone()], "sorted by name");

    let index = std::fs::read_to_string(dir.join(KEYRING_INDEX_FILE)).unwrap();
    assert!(index.contains(a.as_str()));
    assert!(!index.contains("value-of"), "{index}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(KEYRING_INDEX_FILE)), 0o600);
    assert_eq!(mode(&dir), 0o700);

    // Delete b's item behind the store's back: `list` still names it (it never asks the
    // keychain), while `get` asks the keychain, the truth for values.
    keyring::Entry::new(KEYRING_SERVICE, b.as_str())
        .unwrap()
        .delete_credential()
        .unwrap();
    assert_eq!(s.list().unwrap(), listed);
    assert_eq!(s.get(&b).unwrap(), None);
    // Removing it then cleans the index.
    assert!(s.remove(&b).unwrap());
    assert_eq!(s.list().unwrap().len(), 1);

    // Another store on the same directory reads the same index.
    let again = KeyringStore::open(&dir).unwrap();
    assert_eq!(again.list().unwrap(), s.list().unwrap());
    assert_eq!(again.get(&a).unwrap(), Some(value("value-of-a-1a2b3c")));
}

#[test]
fn keyring_debug_and_errors_show_no_value() {
    if !secret_service_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KeyringStore::open(dir.path()).unwrap();
    let a = unique("debug");
    let _cleanup = Cleanup {
        store: &s,
        names: vec![a.clone()],
    };
    s.set(&a, &value("do-not-print-me")).unwrap();
    let shown = format!("{s:?} {:?}", s.list().unwrap());
    assert!(!shown.contains("do-not-print-me"), "{shown}");
}

#[test]
fn auto_chooses_the_keyring_when_the_service_answers() {
    if !secret_service_available() {
        return;
    }
    store::probe_keychain(Duration::from_secs(2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opened = store::open(&StoreConfig::new(dir.path())).unwrap();
    assert_eq!(opened.backend(), Backend::Keyring, "{}", opened.why);
    assert!(opened.why.contains("answers"), "{}", opened.why);
}

// ----- without a keychain: child processes with a bus address that leads nowhere -----

/// Runs `child` with `mode` in `dir` and a D-Bus address that leads nowhere; returns what
/// it printed after `result=`.
fn run_child_without_a_bus(mode: &str, dir: &Path) -> String {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE_VAR, mode)
        .env(CHILD_DIR_VAR, dir)
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/keygate-test/bus",
        )
        .env_remove(ENABLE_VAR)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the child took {:?}",
        started.elapsed()
    );
    // The test harness prints `test child ... ` on the same line first.
    stdout
        .lines()
        .find_map(|l| l.split_once("result=").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no result line in: {stdout}"))
}

#[test]
#[ignore = "the child process of the tests without a bus"]
fn child() {
    let (Ok(mode), Some(dir)) = (
        std::env::var(CHILD_MODE_VAR),
        std::env::var_os(CHILD_DIR_VAR),
    ) else {
        return;
    };
    let dir = Path::new(&dir);
    let result = match mode.as_str() {
        "auto" => match store::open(&StoreConfig::new(dir)) {
            Ok(opened) => format!("{} | {}", opened.backend(), opened.why),
            Err(e) => format!("error | {e}"),
        },
        "forced-keyring" => {
            let mut config = StoreConfig::new(dir);
            config.choice = Choice::Forced(Backend::Keyring);
            let opened = store::open(&config).unwrap();
            let name = SecretName::new("some/secret").unwrap();
            match opened.store.set(&name, &value("the-value-123")) {
                Ok(_) => "stored?!".to_owned(),
                Err(e @ StoreError::Keychain { .. }) => format!("keychain error | {e}"),
                Err(e) => format!("other error | {e}"),
            }
        }
        other => format!("unknown mode {other}"),
    };
    println!("result={result}");
}

#[test]
fn auto_chooses_the_file_when_no_bus_answers() {
    let dir = tempfile::tempdir().unwrap();
    let result = run_child_without_a_bus("auto", dir.path());
    assert!(
        result.starts_with("file | no usable keychain: "),
        "{result}"
    );
    assert!(result.contains("cannot store an item"), "{result}");
}

#[test]
fn auto_refuses_to_hide_keychain_secrets_when_no_bus_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(KEYRING_INDEX_FILE),
        r#"{"version": 1, "secrets": {"db/password": {
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "size": 7}}}"#,
    )
    .unwrap();
    let result = run_child_without_a_bus("auto", dir.path());
    assert!(
        result.starts_with("error | secrets were stored in the system keychain"),
        "{result}"
    );
    assert!(result.contains("KEYGATE_SECRET_STORE=file"), "{result}");
}

#[test]
fn a_forced_keyring_without_a_bus_fails_clearly_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let result = run_child_without_a_bus("forced-keyring", dir.path());
    assert!(
        result.starts_with("keychain error | keychain: cannot store `some/secret`: "),
        "{result}"
    );
    assert!(!result.contains("the-value-123"), "{result}");
    let index = dir.path().join(KEYRING_INDEX_FILE);
    assert!(
        !index.exists(),
        "no index entry for a value that was not stored"
    );
}
