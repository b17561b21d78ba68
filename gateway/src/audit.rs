//! The audit log: one JSON line per event, each carrying the SHA-256 of the line before
//! it, so an edited, removed or reordered line breaks the chain and `keygate audit
//! --verify` finds it. A line is written and fsynced before its effect is visible; when
//! it cannot be written, the caller does not go ahead (fail closed).
//!
//! What reduces access (a revocation, an agent's removal, an expiry) must never wait on a
//! full or failing disk: [`AuditLog::record_or_hold`] keeps such a line in memory and
//! writes it, in order, as soon as the log can be written again. While the log is failing,
//! [`AuditLog::ensure_writable`] refuses, so nothing is released unrecorded. A write that
//! is cut short (ENOSPC) is truncated back to the last whole line, so the chain stays
//! whole.
//!
//! No event carries a secret value: the types below have no field that could hold one.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use keygate_proto::{AgentName, GrantId, RequestId, SecretName, Timestamp, api::AuditVerify};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted: an agent, the operator, a Discord user, the policy, or the daemon itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub who: String,
    pub via: &'static str,
}

impl Actor {
    /// A decider as the log names them: `operator` from the terminal, or a person by their
    /// label on their channel.
    pub fn of(decider: &keygate_proto::approval::Decider) -> Self {
        Self {
            who: decider.label(),
            via: decider.via(),
        }
    }
}

/// Everything the log records.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    DaemonStarted {
        store: &'a str,
        rules: usize,
    },
    DaemonStopped,
    /// `keygate --standalone` opened the state in-process (`pid` is its own); its
    /// requests and grants end with it.
    StandaloneStarted {
        store: &'a str,
        rules: usize,
        pid: u32,
    },
    StandaloneStopped,
    PolicyReloaded {
        rules: usize,
    },
    RequestFiled {
        request: &'a RequestId,
        agent: &'a AgentName,
        secrets: &'a [SecretName],
        reason: &'a str,
        rule: Option<&'a str>,
        decision: &'a str,
        ttl_seconds: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<&'a [String]>,
    },
    RequestApproval {
        request: &'a RequestId,
        by: &'a Actor,
        approvals: usize,
        quorum: u32,
    },
    RequestDecided {
        request: &'a RequestId,
        outcome: &'a str,
        by: &'a Actor,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        grant: Option<&'a GrantId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ttl_seconds: Option<u64>,
    },
    /// What an approver wrote beside an approval with a chosen TTL.
    DecisionNote {
        request: &'a RequestId,
        by: &'a Actor,
        note: &'a str,
    },
    /// An approval channel could not show a request; the others still do.
    PostFailed {
        request: &'a RequestId,
        channel: &'a str,
        why: &'a str,
    },
    RequestExpired {
        request: &'a RequestId,
    },
    RequestCancelled {
        request: &'a RequestId,
        by: &'a Actor,
    },
    /// In a cluster: the change the line before this one (on this node) named did not
    /// happen, because another node changed the request first or Redis did not answer.
    DecisionLost {
        request: &'a RequestId,
        why: &'a str,
    },
    Released {
        agent: &'a AgentName,
        secret: &'a SecretName,
        #[serde(skip_serializing_if = "Option::is_none")]
        grant: Option<&'a GrantId>,
        /// `grant` or the rule that allows it outright.
        basis: &'a str,
    },
    GrantEnded {
        grant: &'a GrantId,
        agent: &'a AgentName,
        cause: &'a str,
        reads: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<&'a Actor>,
    },
    /// A live grant now ends later; written (and synced) before it does.
    GrantExtended {
        grant: &'a GrantId,
        agent: &'a AgentName,
        by: &'a Actor,
        expires_at: Timestamp,
    },
    SecretSet {
        name: &'a SecretName,
        size: usize,
    },
    SecretRemoved {
        name: &'a SecretName,
    },
    StoreLocked,
    StoreUnlocked,
    AgentAdded {
        name: &'a AgentName,
    },
    AgentRemoved {
        name: &'a AgentName,
    },
    AuthFailed {
        route: &'a str,
        why: &'a str,
    },
    Refused {
        who: &'a Actor,
        what: &'a str,
        why: &'a str,
    },
    /// Unknown tokens, counted: the first from a route is written at once, the rest are
    /// summed into one line a minute, so they cannot grow the log without bound.
    AuthFailures {
        route: &'a str,
        why: &'a str,
        count: u64,
    },
    /// The log could be written again after it failed; `held` lines that reduce access
    /// were kept in memory meanwhile and are written just before this one, `lost` were
    /// dropped because too many were held.
    AuditResumed {
        held: u64,
        lost: u64,
    },
}

#[derive(Serialize)]
struct Line<'a, E: Serialize> {
    seq: u64,
    ts: Timestamp,
    #[serde(flatten)]
    event: &'a E,
    prev: &'a str,
}

/// A line that could not be written yet: its time and event, kept in order.
#[derive(Debug)]
struct Held {
    ts: Timestamp,
    event: serde_json::Value,
}

/// The most lines held in memory while the log cannot be written.
const MAX_HELD: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log {}: cannot encode an event: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug)]
struct Head {
    file: File,
    seq: u64,
    hash: String,
    /// The file's length after the last whole line.
    len: u64,
    held: VecDeque<Held>,
    /// Held lines written since the last failure, and lines dropped for lack of room.
    held_total: u64,
    lost: u64,
}

/// How far the file is known to be on disk.
#[derive(Debug)]
struct Synced {
    /// The log's file, for fsync (the same open file as the head's).
    file: File,
    /// The last line known to be on disk.
    through: u64,
}

/// The append-only, hash-chained log.
///
/// Lines are appended under one lock and synced under another (group commit): a writer
/// whose line was appended while another writer's fsync ran finds it on disk when that
/// fsync ends, or runs the next one for everyone waiting. Each line is still on disk
/// before its writer returns, but a burst of decisions shares fsyncs.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    head: Mutex<Head>,
    synced: Mutex<Synced>,
    /// The last line appended (it may not be on disk yet).
    written: AtomicU64,
    /// The last write failed: nothing may be released until a write succeeds again.
    failing: AtomicBool,
    /// How long each [`AuditLog::record`] took, fsync included (for `GET /metrics`).
    writes: prometheus_client::metrics::histogram::Histogram,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl AuditLog {
    /// Opens (or creates, 0600) the log and finds the end of its chain.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::fsutil::ensure_private_dir(dir).map_err(io)?;
        }
        truncate_torn_tail(path).map_err(io)?;
        let (seq, hash) = match File::open(path) {
            Ok(f) => {
                let mut seq = 0;
                let mut hash = GENESIS.to_owned();
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(io)?;
                    if line.is_empty() {
                        continue;
                    }
                    seq = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
                        .unwrap_or(seq + 1);
                    hash = sha256_hex(line.as_bytes());
                }
                (seq, hash)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, GENESIS.to_owned()),
            Err(e) => return Err(io(e)),
        };
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let synced = Synced {
            file: file.try_clone().map_err(io)?,
            through: seq,
        };
        Ok(Self {
            path: path.to_path_buf(),
            synced: Mutex::new(synced),
            written: AtomicU64::new(seq),
            head: Mutex::new(Head {
                file,
                seq,
                hash,
                len,
                held: VecDeque::new(),
                held_total: 0,
                lost: 0,
            }),
            failing: AtomicBool::new(false),
            writes: crate::metrics::audit_write_histogram(),
        })
    }

    /// The histogram of write times (shared: observations made here show there).
    pub fn write_histogram(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.writes.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes and fsyncs one event. Only when this returns `Ok` may its effect be visible.
    ///
    /// The fsync blocks; on the daemon's multi-threaded runtime the worker's other tasks
    /// move to another thread meanwhile, so a burst of decisions cannot stall grant hits.
    pub fn record(&self, event: &Event<'_>) -> Result<(), AuditError> {
        let started = std::time::Instant::now();
        let written = blocking(|| self.write(event, false));
        self.writes.observe(started.elapsed().as_secs_f64());
        written
    }

    /// For what must go ahead whatever the disk says: what reduces access (revocation,
    /// removal, expiry) and what only reports (refusals, failed logins). A line that cannot
    /// be written now is held in memory and written, in order, before the next line that
    /// can be.
    pub fn record_or_hold(&self, event: &Event<'_>) {
        let started = std::time::Instant::now();
        let written = blocking(|| self.write(event, true));
        self.writes.observe(started.elapsed().as_secs_f64());
        if let Err(e) = written {
            tracing::error!("{e}; the line is held and will be written when the log can be");
        }
    }

    /// Whether the log is writing normally (no failure is being recovered from): a
    /// release may then go ahead without [`AuditLog::ensure_writable`]'s work.
    pub fn is_writable(&self) -> bool {
        !self.failing.load(Ordering::Acquire)
    }

    /// `Ok` when the log can be written: at once while it is healthy, else after writing
    /// the held lines and an `audit_resumed` line. Releases call it first, so a failing
    /// log releases nothing, not even reads that share a grant's one audit line.
    pub fn ensure_writable(&self) -> Result<(), AuditError> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        blocking(|| {
            let seq = {
                let mut head = self.lock();
                self.recover(&mut head)?;
                head.seq
            };
            self.sync_through(seq)
        })
    }

    /// Returns once line `seq` (and every line before it) is on disk: at once if another
    /// writer's fsync already covered it, else after one fsync that covers every line
    /// appended so far.
    fn sync_through(&self, seq: u64) -> Result<(), AuditError> {
        let mut synced = self
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if synced.through >= seq {
            return Ok(());
        }
        let target = self.written.load(Ordering::Acquire);
        if let Err(e) = synced.file.sync_data() {
            self.failing.store(true, Ordering::Release);
            return Err(AuditError::Io {
                path: self.path.clone(),
                source: e,
            });
        }
        synced.through = target;
        Ok(())
    }

    /// After a failure: writes the held lines, then one `audit_resumed` line.
    fn recover(&self, head: &mut Head) -> Result<(), AuditError> {
        self.flush_held(head)?;
        if self.failing.load(Ordering::Acquire) {
            let resumed = Event::AuditResumed {
                held: head.held_total,
                lost: head.lost,
            };
            self.append(head, Timestamp::now(), &resumed)?;
            head.held_total = 0;
            head.lost = 0;
            self.failing.store(false, Ordering::Release);
            tracing::info!("the audit log can be written again");
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Head> {
        self.head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self, event: &Event<'_>, hold: bool) -> Result<(), AuditError> {
        let seq = self.append_event(event, hold)?;
        self.sync_through(seq)
    }

    /// Appends the held lines and then `event`; returns the event's line number. A line
    /// that cannot be appended is held when `hold`.
    fn append_event(&self, event: &Event<'_>, hold: bool) -> Result<u64, AuditError> {
        let mut head = self.lock();
        let ts = Timestamp::now();
        let result = self
            .recover(&mut head)
            .and_then(|()| self.append(&mut head, ts, event));
        if let Err(e) = result {
            if hold {
                if head.held.len() < MAX_HELD {
                    let event =
                        serde_json::to_value(event).map_err(|source| AuditError::Encode {
                            path: self.path.clone(),
                            source,
                        })?;
                    head.held.push_back(Held { ts, event });
                } else {
                    head.lost += 1;
                }
            }
            return Err(e);
        }
        Ok(head.seq)
    }

    /// Writes the held lines, oldest first.
    fn flush_held(&self, head: &mut Head) -> Result<(), AuditError> {
        while let Some(h) = head.held.front() {
            let (ts, event) = (h.ts, h.event.clone());
            self.append(head, ts, &event)?;
            head.held.pop_front();
            head.held_total += 1;
        }
        Ok(())
    }

    /// Appends one line (not synced: see [`AuditLog::sync_through`]). On failure the file
    /// is cut back to its last whole line, so a torn write (a full disk) never breaks the
    /// chain.
    fn append<E: Serialize>(
        &self,
        head: &mut Head,
        ts: Timestamp,
        event: &E,
    ) -> Result<(), AuditError> {
        let line = Line {
            seq: head.seq + 1,
            ts,
            event,
            prev: &head.hash,
        };
        let mut text = serde_json::to_string(&line).map_err(|source| AuditError::Encode {
            path: self.path.clone(),
            source,
        })?;
        let hash = sha256_hex(text.as_bytes());
        text.push('\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        if let Err(e) = head.file.write_all(text.as_bytes()) {
            self.failing.store(true, Ordering::Release);
            if let Err(cut) = head.file.set_len(head.len) {
                tracing::error!("audit log: cannot cut a torn line back: {cut}");
            }
            return Err(io(e));
        }
        head.seq += 1;
        head.hash = hash;
        head.len += text.len() as u64;
        self.written.store(head.seq, Ordering::Release);
        Ok(())
    }

    /// The hash of the last line written, which only this process knows: a verification
    /// compares the file's end with it, so even the last line cannot be altered unseen.
    pub fn head_hash(&self) -> String {
        self.lock().hash.clone()
    }

    /// Verifies the chain of the whole file.
    pub fn verify(&self) -> Result<AuditVerify, AuditError> {
        let head = self.head_hash();
        verify_file(&self.path, Some(&head))
    }

    /// Lines newer than `since` (all when `None`), as JSON values.
    pub fn read_since(
        &self,
        since: Option<SystemTime>,
    ) -> Result<Vec<serde_json::Value>, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let f = File::open(&self.path).map_err(io)?;
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            let line = line.map_err(io)?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let recent = match since {
                None => true,
                Some(t) => v
                    .get("ts")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|ts| Timestamp::parse(ts).ok())
                    .is_some_and(|ts| ts.system_time() >= t),
            };
            if recent {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// Runs a blocking write off the async workers where it can (see [`AuditLog::record`]).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Cuts an unfinished last line (a crash or a full disk mid-write) so the log ends on a
/// whole line. Such a line was never synced, so nothing it says took effect.
fn truncate_torn_tail(path: &Path) -> std::io::Result<()> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Look back in blocks for the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(buf.len());
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                tracing::warn!(
                    "audit log {}: cut an unfinished last line ({} bytes)",
                    path.display(),
                    len - keep
                );
                f.set_len(keep)?;
                f.sync_data()?;
            }
            return Ok(());
        }
        if start == 0 {
            tracing::warn!("audit log {}: cut an unfinished only line", path.display());
            f.set_len(0)?;
            return f.sync_data();
        }
        end = start;
    }
}

/// Checks every line's `prev` and `seq` against the line before it; with `head`, also
/// that the file ends where the writer last wrote.
pub fn verify_file(path: &Path, head: Option<&str>) -> Result<AuditVerify, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(io)?;
    let mut prev = GENESIS.to_owned();
    let mut n = 0u64;
    let broken = |at: u64, problem: String| AuditVerify {
        ok: false,
        lines: at,
        broken_at: Some(at),
        problem: Some(problem),
    };
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io)?;
        n += 1;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            return Ok(broken(n, format!("line {n} is not JSON")));
        };
        if v.get("prev").and_then(serde_json::Value::as_str) != Some(prev.as_str()) {
            return Ok(broken(
                n,
                format!(
                    "line {n} does not follow line {}: a line was edited, removed or moved",
                    n - 1
                ),
            ));
        }
        if v.get("seq").and_then(serde_json::Value::as_u64) != Some(n) {
            return Ok(broken(n, format!("line {n} has the wrong sequence number")));
        }
        prev = sha256_hex(line.as_bytes());
    }
    if let Some(head) = head
        && head != prev
    {
        return Ok(broken(
            n,
            "the log ends before the last line the daemon wrote: its end was edited or cut".into(),
        ));
    }
    Ok(AuditVerify {
        ok: true,
        lines: n,
        broken_at: None,
        problem: None,
    })
}

#[cfg(test)]
mod tests;
