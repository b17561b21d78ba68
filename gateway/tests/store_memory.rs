//! The memory store through the public API, and the names `KEYGATE_SECRET_STORE` accepts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use keygate_gateway::store::{self, Backend, Choice, MemoryStore, SecretStore, StoreConfig};
use keygate_proto::{SecretName, SecretValue};
use secrecy::SecretString;

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn value(s: &str) -> SecretValue {
    SecretValue::new(s.to_owned())
}

#[test]
fn round_trip_with_metadata() {
    let s = MemoryStore::new();
    assert_eq!(s.backend(), Backend::Memory);
    assert!(s.list().unwrap().is_empty());
    assert_eq!(s.get(&name("a")).unwrap(), None);

    let first = s.set(&name("z/last"), &value("abc")).unwrap();
    s.set(&name("a/first"), &value("1")).unwrap();
    assert_eq!(first.size, 3);
    assert_eq!(first.backend, Backend::Memory);
    assert_eq!(first.created_at, first.updated_at);
    assert_eq!(s.get(&name("z/last")).unwrap(), Some(value("abc")));

    thread::sleep(Duration::from_millis(2));
    let second = s.set(&name("z/last"), &value("abcdef")).unwrap();
    assert_eq!(second.created_at, first.created_at, "created_at stays");
    assert!(second.updated_at > first.updated_at, "updated_at moves");
    assert_eq!(second.size, 6);

    let listed = s.list().unwrap();
    let names: Vec<_> = listed.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a/first", "z/last"], "sorted by name");
    assert_eq!(listed[1], second);

    assert!(s.remove(&name("z/last")).unwrap());
    assert!(!s.remove(&name("z/last")).unwrap());
    assert_eq!(s.get(&name("z/last")).unwrap(), None);
    assert_eq!(s.list().unwrap().len(), 1);
}

#[test]
fn never_locks_and_accepts_any_unlock() {
    let s = MemoryStore::new();
    assert!(!s.is_locked());
    s.unlock(&SecretString::from("anything".to_owned()))
        .unwrap();
    s.lock();
    assert!(!s.is_locked());
    s.set(&name("a"), &value("1")).unwrap();
}

#[test]
fn debug_shows_no_value() {
    let s = MemoryStore::new();
    s.set(&name("a"), &value("memory-value-42")).unwrap();
    let shown = format!("{s:?}");
    assert_eq!(shown, "MemoryStore { secrets: 1 }");
}

#[test]
fn threads_share_one_store() {
    let s = Arc::new(MemoryStore::new());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                for i in 0..50 {
                    s.set(&name(&format!("t{t}/{i}")), &value("v")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.list().unwrap().len(), 200);
}

#[test]
fn open_forced_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().join("unused"));
    config.choice = Choice::Forced(Backend::Memory);
    let opened = store::open(&config).unwrap();
    assert_eq!(opened.backend(), Backend::Memory);
    assert_eq!(opened.why, "set by configuration");
    opened.store.set(&name("a"), &value("1")).unwrap();
    assert_eq!(opened.store.get(&name("a")).unwrap(), Some(value("1")));
}

#[test]
fn backend_and_choice_names() {
    for b in [Backend::Keyring, Backend::File, Backend::Memory] {
        assert_eq!(b.to_string().parse::<Backend>().unwrap(), b);
        assert_eq!(b.to_string(), b.as_str());
    }
    assert_eq!(" File ".parse::<Backend>().unwrap(), Backend::File);
    assert_eq!("auto".parse::<Choice>().unwrap(), Choice::Auto);
    assert_eq!(
        "keyring".parse::<Choice>().unwrap(),
        Choice::Forced(Backend::Keyring)
    );
    assert_eq!(Choice::default(), Choice::Auto);
    let err = "vault".parse::<Backend>().unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown secret store `vault`: use `keyring`, `file`, `redis` or `memory`"
    );
    assert_eq!(
        serde_json::to_string(&Backend::Keyring).unwrap(),
        "\"keyring\""
    );
}
