//! The chain: shared syncs, torn tails cut, and every way of tampering with a line found.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn concurrent_writers_share_syncs_and_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = std::sync::Arc::new(AuditLog::open(&path).unwrap());
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    log.record(&Event::StoreLocked).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let v = log.verify().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.lines, 800);
    assert_eq!(log.synced.lock().unwrap().through, 800);
}

#[test]
fn a_torn_tail_is_cut_back_to_the_last_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    log.record(&Event::StoreLocked).unwrap();
    drop(log);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":2,\"ts\"");
    std::fs::write(&path, &text).unwrap();
    let log = AuditLog::open(&path).unwrap();
    log.record(&Event::StoreUnlocked).unwrap();
    let v = log.verify().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.lines, 2);
}

/// A log of `n` lines, and its path (the directory lives as long as the first value).
fn log_of(n: usize) -> (tempfile::TempDir, PathBuf, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for _ in 0..n {
        log.record(&Event::StoreLocked).unwrap();
    }
    (dir, path, log)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_reopened_log_continues_its_chain() {
    let (_dir, path, log) = log_of(2);
    drop(log);
    let log = AuditLog::open(&path).unwrap();
    log.record_or_hold(&Event::StoreUnlocked);
    let v = log.verify().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.lines, 3);
    let all = log.read_since(None).unwrap();
    assert_eq!(all[2]["seq"], 3);
    assert_eq!(all[2]["event"], "store_unlocked");
    assert_eq!(all[0]["prev"], GENESIS);
    assert_eq!(log.path(), path);
}

#[test]
fn every_kind_of_tampering_is_found_at_its_line() {
    let (_dir, path, log) = log_of(4);
    let original = lines(&path);
    let check = |edited: Vec<String>, at: u64, says: &str| {
        rewrite(&path, &edited);
        let v = log.verify().unwrap();
        assert!(!v.ok, "{says}");
        assert_eq!(v.broken_at, Some(at), "{says}: {v:?}");
        assert!(v.problem.as_deref().unwrap().contains(says), "{v:?}");
    };
    let mut edited = original.clone();
    edited[1] = edited[1].replace("store_locked", "store_unlocked");
    check(edited, 3, "does not follow line 2");
    let mut removed = original.clone();
    removed.remove(1);
    check(removed, 2, "does not follow line 1");
    let mut moved = original.clone();
    moved.swap(1, 2);
    check(moved, 2, "does not follow");
    let mut garbage = original.clone();
    garbage[0] = "not json".into();
    check(garbage, 1, "line 1 is not JSON");
    check(original[..3].to_vec(), 3, "ends before the last line");
    rewrite(&path, &original);
    assert!(log.verify().unwrap().ok);
    // Without the writer's head, a cut end cannot be told; the rest still can.
    rewrite(&path, &original[..3]);
    assert!(verify_file(&path, None).unwrap().ok);
    assert_eq!(verify_file(&path, None).unwrap().lines, 3);
}

#[test]
fn a_renumbered_line_is_found() {
    let (_dir, path, log) = log_of(1);
    let mut only = lines(&path);
    only[0] = only[0].replace("\"seq\":1", "\"seq\":7");
    rewrite(&path, &only);
    let v = verify_file(&path, None).unwrap();
    assert_eq!(v.broken_at, Some(1));
    assert!(v.problem.unwrap().contains("wrong sequence number"));
    drop(log);
}

#[test]
fn read_since_keeps_what_is_recent() {
    let (_dir, _path, log) = log_of(3);
    assert_eq!(log.read_since(None).unwrap().len(), 3);
    let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
    assert_eq!(log.read_since(Some(hour_ago)).unwrap().len(), 3);
    let later = SystemTime::now() + std::time::Duration::from_secs(3600);
    assert!(log.read_since(Some(later)).unwrap().is_empty());
    log.ensure_writable().unwrap();
}

#[test]
fn a_decider_is_named_as_the_log_names_them() {
    use keygate_proto::UserId;
    use keygate_proto::approval::{Approver, Decider};
    let op = Actor::of(&Decider::Operator);
    assert_eq!((op.who.as_str(), op.via), ("operator", "terminal"));
    let p = Actor::of(&Decider::Person(Approver {
        channel: "discord",
        id: UserId(42),
        name: "alice".into(),
        roles: Vec::new(),
    }));
    assert_eq!((p.who.as_str(), p.via), ("@alice (42)", "discord"));
}

/// A line's `ts` is RFC 3339 in UTC, whole seconds (`2026-01-01T00:05:00Z`), and
/// `read_since` finds it by that time.
#[test]
fn a_line_is_stamped_in_rfc3339_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let before = Timestamp::now();
    log.record(&Event::StoreLocked).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let ts = line["ts"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-01-01T00:05:00Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    assert!(Timestamp::parse(ts).unwrap() >= before);
    let since = log.read_since(Some(before.system_time())).unwrap();
    assert_eq!(since.len(), 1);
}
