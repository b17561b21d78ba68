//! Crash safety of the file store: a child process (this test binary, re-run on its ignored
//! `crash_child` test) writes a long, known sequence of changes and is SIGKILLed at varied
//! moments. Afterwards the file must open with the passphrase and hold exactly the state
//! after some prefix of the sequence: every completed write, never half of one.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use keygate_gateway::store::{FileStore, KdfParams, SECRET_FILE, SecretStore};
use keygate_proto::{SecretName, SecretValue};
use secrecy::SecretString;

const DIR_VAR: &str = "KEYGATE_TEST_CRASH_DIR";
const PASS: &str = "crash test passphrase";
const KEYS: usize = 5;
/// The child stops here if nobody kills it.
const MAX_OPS: usize = 200_000;

fn open(dir: &Path) -> FileStore {
    let pass = SecretString::from(PASS.to_owned());
    FileStore::open(dir, Some(&pass), KdfParams::INSECURE_FOR_TESTS).unwrap()
}

/// Operation `j` of the sequence: a set of a value whose length varies, or now and then a
/// remove.
fn op(j: usize) -> (String, Option<String>) {
    let key = format!("k/{}", j % KEYS);
    if j % 7 == 6 {
        (key, None)
    } else {
        (key, Some(format!("{j}:{}", "v".repeat(j % 50))))
    }
}

#[test]
#[ignore = "the child process of killed_writers_leave_a_consistent_file"]
fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let store = open(Path::new(&dir));
    for j in 0..MAX_OPS {
        let (key, value) = op(j);
        let key = SecretName::new(key).unwrap();
        match value {
            Some(v) => drop(store.set(&key, &SecretValue::new(v)).unwrap()),
            None => drop(store.remove(&key).unwrap()),
        }
    }
}

/// The number of operations whose result the store holds, or a panic if it matches no
/// prefix of the sequence.
fn completed_ops(store: &FileStore) -> usize {
    let mut found = BTreeMap::new();
    for meta in store.list().unwrap() {
        assert!(meta.created_at <= meta.updated_at);
        let v = store.get(&meta.name).unwrap().unwrap();
        assert_eq!(v.len(), meta.size);
        found.insert(meta.name.as_str().to_owned(), v.expose().to_owned());
    }
    let mut expected = BTreeMap::new();
    for n in 0..=MAX_OPS {
        if expected == found {
            return n;
        }
        let (key, value) = op(n);
        match value {
            Some(v) => expected.insert(key, v),
            None => expected.remove(&key),
        };
    }
    panic!("the file holds a state no prefix of the writes produces: {found:?}");
}

#[test]
fn killed_writers_leave_a_consistent_file() {
    let exe = std::env::current_exe().unwrap();
    let mut total_ops = 0;
    let rounds: usize = 16;
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--test-threads=1"])
            .env(DIR_VAR, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();

        // Round 0 kills the child while it starts (perhaps while it creates the file); the
        // others once it writes, after a delay that varies from round to round.
        if round > 0 {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !dir.path().join(SECRET_FILE).exists() {
                assert!(
                    Instant::now() < deadline,
                    "the child never created the file"
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the child exited early"
                );
                thread::sleep(Duration::from_millis(1));
            }
            // 1.5 ms to 25.5 ms, shuffled across rounds.
            let step = u64::try_from((round * 7) % 16).unwrap();
            thread::sleep(Duration::from_micros(1_500 + 1_600 * step));
            // And at least two writes seen to land (each replaces the file: a new inode),
            // however slowly a busy machine runs the child.
            let inode = |p: &Path| {
                use std::os::unix::fs::MetadataExt as _;
                std::fs::metadata(p).map(|m| m.ino()).ok()
            };
            let file = dir.path().join(SECRET_FILE);
            let (mut last, mut seen) = (inode(&file), 0);
            while seen < 2 {
                assert!(Instant::now() < deadline, "the child stopped writing");
                thread::sleep(Duration::from_millis(1));
                let now = inode(&file);
                if now != last {
                    (last, seen) = (now, seen + 1);
                }
            }
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child finished before the kill"
        );

        let store = open(dir.path());
        let n = completed_ops(&store);
        total_ops += n;

        // The store goes on working, and leaves no temp file of the killed writer behind.
        store
            .set(
                &SecretName::new("after").unwrap(),
                &SecretValue::new("crash".into()),
            )
            .unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        println!("round {round}: killed after {n} completed writes");
    }
    assert!(
        total_ops > rounds,
        "the children were killed before they wrote much ({total_ops} writes in {rounds} rounds)"
    );
}
