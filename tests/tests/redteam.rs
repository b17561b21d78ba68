//! The red-team findings on the gate's core, each tried as the attack was and shown to
//! fail now: a full disk under the audit log, a flood of bad tokens, a removed agent's
//! name reused, an agent reading daemon-wide counts, a read racing a revocation.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use keygate_tests::{Daemon, finish, poll};

const VALUE: &str = "ghp_REDTEAM_value_42";

fn setup(extra: &[(&str, &str)]) -> (Daemon, String) {
    let d = Daemon::start_with(keygate_tests::POLICY, extra);
    d.secret("github/token", VALUE);
    let t = d.agent("ci-one");
    (d, t)
}

/// Files a request for `secret` as `token`, approves it, and returns the released value.
fn approved_get(d: &Daemon, token: &str, secret: &str) -> String {
    let child = d
        .keygate_as(token, &["get", secret, "--reason", "red team"])
        .spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.trim().to_owned()
}

fn audit_lines(d: &Daemon) -> Vec<serde_json::Value> {
    d.audit()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect()
}

/// A small tmpfs, unmounted on drop. Mounting needs root, which CI has: a machine where
/// it fails cannot run this test, and says so.
struct SmallDisk {
    dir: PathBuf,
    _keep: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let keep = tempfile::tempdir().expect("temp dir");
        let dir = keep.path().join("disk");
        std::fs::create_dir(&dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs to mount a small tmpfs (run it as root, as CI does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir, _keep: keep }
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    /// Fills the disk to the last byte.
    fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.dir.join("filler")).expect("filler");
        let block = vec![b'x'; 4096];
        while f.write_all(&block).is_ok() {}
        for _ in 0..4096 {
            if f.write_all(b"x").is_err() {
                break;
            }
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).expect("remove filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Finding 4: with the audit log's disk full, nothing is released (not even reads that
/// share a reusable grant's one line), revocation and removal still work, a torn line
/// never breaks the chain, and the held lines land once there is room again.
#[test]
fn a_full_audit_disk_stops_releases_but_never_revocation() {
    let disk = SmallDisk::mount("256k");
    let state = disk.path().display().to_string();
    let (d, token) = setup(&[("XDG_STATE_HOME", &state)]);
    let doomed = d.agent("ci-doomed");
    assert_eq!(approved_get(&d, &token, "github/token"), VALUE);

    disk.fill();
    // Anything that must be recorded before it happens now fails, and says why. (The
    // log's last page may still hold a few lines: tmpfs hands out whole pages.)
    let r = (0..100)
        .map(|i| {
            d.keygate(&["secrets", "set", &format!("github/other{i}")])
                .stdin("x")
                .run()
        })
        .find(|r| r.code != 0)
        .expect("the full disk refused an audit line");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("audit"), "{}", r.stderr);
    // The reusable grant's reads shared its first line, but a failing log releases
    // nothing.
    let r = d.keygate_as(&token, &["get", "github/token"]).run();
    assert_ne!(r.code, 0, "released while the audit log fails: {r:?}");
    assert!(!r.stdout.contains(VALUE));
    assert!(r.stderr.contains("audit"), "{}", r.stderr);

    // What reduces access goes ahead.
    d.keygate(&["revoke", "--all"]).ok();
    assert_eq!(d.keygate(&["grants", "--json"]).ok().stdout.trim(), "[]");
    d.keygate(&["agents", "rm", "ci-doomed"]).ok();
    assert_eq!(d.keygate_as(&doomed, &["grants"]).run().code, 5);
    // Torn writes were cut back: the chain on disk is whole.
    d.keygate(&["audit", "--verify"]).ok();

    disk.free();
    // The next release writes the held lines, then says the log is back.
    assert_eq!(approved_get(&d, &token, "github/token"), VALUE);
    let log = std::fs::read_to_string(disk.path().join("keygate/audit.jsonl")).expect("log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect();
    let revoked = lines
        .iter()
        .position(|l| l["event"] == "grant_ended" && l["cause"] == "revoked");
    let removed = lines
        .iter()
        .position(|l| l["event"] == "agent_removed" && l["name"] == "ci-doomed");
    let resumed = lines.iter().position(|l| l["event"] == "audit_resumed");
    assert!(
        revoked.is_some() && removed.is_some() && resumed.is_some(),
        "{}",
        d.audit()
    );
    assert!(revoked < resumed && removed < resumed);
    d.keygate(&["audit", "--verify"]).ok();
    assert!(!log.contains(VALUE));
}

/// Finding 4, the other half: a line cut short by a crash or a full disk is trimmed at
/// the next start, so `audit --verify` does not report the log broken forever.
#[test]
fn a_torn_last_line_is_cut_at_start() {
    use std::io::Write as _;
    let (mut d, _) = setup(&[]);
    d.stop();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.audit_path())
        .expect("audit log");
    f.write_all(br#"{"seq":99,"ts":"2026-"#).expect("torn line");
    drop(f);
    d.restart();
    d.keygate(&["audit", "--verify"]).ok();
    assert!(d.audit().ends_with('\n'));
}

/// Finding 5: a flood of bad tokens with huge paths grows the log by a few lines, not by
/// a line (and an fsync) per attempt.
#[test]
fn a_flood_of_bad_tokens_barely_grows_the_log() {
    let (d, token) = setup(&[]);
    let before = std::fs::metadata(d.audit_path()).expect("audit").len();
    let path = format!("/v1/grants/{}", "A".repeat(60_000));
    for i in 0..300 {
        let (status, _) = d.http("GET", &path, &format!("kga_wrong{i}"), b"");
        assert_eq!(status, 401);
    }
    let after = std::fs::metadata(d.audit_path()).expect("audit").len();
    assert!(
        after - before < 2_000,
        "the log grew by {} bytes",
        after - before
    );
    let failed: Vec<_> = audit_lines(&d)
        .into_iter()
        .filter(|l| l["event"] == "auth_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0]["route"].as_str().is_some_and(|r| r.len() < 100));
    // The rest are counted when the daemon stops (or after a minute).
    let mut d = d;
    d.stop();
    let counted: u64 = audit_lines(&d)
        .iter()
        .filter(|l| l["event"] == "auth_failures")
        .filter_map(|l| l["count"].as_u64())
        .sum();
    assert_eq!(counted, 299);
    d.restart();
    d.secret("github/token", VALUE);
    assert_eq!(approved_get(&d, &token, "github/token"), VALUE);
}

/// Finding 7: removing an agent cancels its requests and revokes its grants, and a new
/// agent given the same name inherits nothing.
#[test]
fn a_removed_agents_name_carries_nothing_to_the_next_holder() {
    let (d, old) = setup(&[]);
    d.secret("vault/key", VALUE);
    assert_eq!(approved_get(&d, &old, "github/token"), VALUE);
    let waiting = d
        .keygate_as(&old, &["get", "vault/key", "--reason", "pending"])
        .spawn();
    let pending = d.pending_request();

    d.keygate(&["agents", "rm", "ci-one"]).ok();
    let r = finish(waiting);
    assert_ne!(r.code, 0, "{r:?}");
    let req = d
        .requests()
        .into_iter()
        .find(|r| r["id"] == pending.as_str())
        .expect("the request is still listed");
    assert_eq!(req["status"], "cancelled", "{req}");
    assert_eq!(d.keygate(&["grants", "--json"]).ok().stdout.trim(), "[]");

    let new = d.agent("ci-one");
    let r = d.keygate(&["approve", &pending]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("already decided"), "{}", r.stderr);
    assert_eq!(
        d.keygate_as(&new, &["grants", "--json"]).ok().stdout.trim(),
        "[]"
    );
    let (status, body) = d.http("GET", "/v1/secrets/github%2Ftoken", &new, b"");
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains(VALUE));
}

/// Finding 12: an agent's status holds its own counts and nothing daemon-wide.
#[test]
fn an_agent_sees_only_its_own_counts() {
    let (d, one) = setup(&[]);
    let two = d.agent("ci-two");
    assert_eq!(approved_get(&d, &one, "github/token"), VALUE);
    let waiting = d
        .keygate_as(&one, &["get", "db/x", "--reason", "pending"])
        .spawn();
    d.pending_request();

    let operator: serde_json::Value =
        serde_json::from_str(&d.keygate(&["status", "--json"]).ok().stdout).unwrap();
    assert_eq!(operator["agents"], 2);
    assert_eq!(operator["live_grants"], 1);
    assert_eq!(operator["pending_requests"], 1);
    assert!(operator["store_locked"].is_boolean());

    let agent: serde_json::Value =
        serde_json::from_str(&d.keygate_as(&two, &["status", "--json"]).ok().stdout).unwrap();
    assert_eq!(agent["live_grants"], 0, "{agent}");
    assert_eq!(agent["pending_requests"], 0, "{agent}");
    for hidden in ["agents", "store_locked", "store_backend", "policy_rules"] {
        assert!(agent.get(hidden).is_none(), "{hidden}: {agent}");
    }
    let own: serde_json::Value =
        serde_json::from_str(&d.keygate_as(&one, &["status", "--json"]).ok().stdout).unwrap();
    assert_eq!(own["live_grants"], 1, "{own}");
    assert_eq!(own["pending_requests"], 1, "{own}");
    d.keygate(&["cancel", &d.pending_request()]).ok();
    finish(waiting);
}

/// Suspected, settled: once `keygate revoke` returns, no read under the grant is in
/// flight, so every value the agent got is counted on the grant's last audit line.
#[test]
fn every_read_racing_a_revocation_is_counted() {
    let (d, token) = setup(&[]);
    assert_eq!(approved_get(&d, &token, "github/token"), VALUE);
    let d = Arc::new(d);
    let got = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (d, token, got, stop) = (
                Arc::clone(&d),
                token.clone(),
                Arc::clone(&got),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = d.http("GET", "/v1/secrets/github%2Ftoken", &token, b"");
                    match status {
                        200 => {
                            assert!(body.contains(VALUE));
                            got.fetch_add(1, Ordering::Relaxed);
                        }
                        403 => break,
                        other => panic!("{other}: {body}"),
                    }
                }
            })
        })
        .collect();
    poll(Duration::from_secs(10), "reads under the grant", || {
        (got.load(Ordering::Relaxed) > 20).then_some(())
    });
    d.keygate(&["revoke", "--all"]).ok();
    let at_revoke = got.load(Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader");
    }
    stop.store(true, Ordering::Relaxed);
    let ended: Vec<_> = audit_lines(&d)
        .into_iter()
        .filter(|l| l["event"] == "grant_ended")
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    let total = got.load(Ordering::Relaxed);
    assert_eq!(ended[0]["reads"].as_u64(), Some(total), "{ended:?}");
    // Reads answered after revoke returned would show as total > at_revoke; with the
    // grant closed before the answer, none can have started after it.
    assert!(
        total <= at_revoke + 4,
        "{total} reads, {at_revoke} at revoke"
    );
}
