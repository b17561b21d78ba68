//! The audit log: one JSON line per event, each carrying the SHA-256 of the line before
//! it, so an edited, removed or reordered line breaks the chain and `keygate audit
//! --verify` finds it. A line is written and fsynced before its effect is visible; when
//! it cannot be written, the caller does not go ahead (fail closed).
//!
//! No event carries a secret value: the types below have no field that could hold one.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use keygate_proto::{AgentName, GrantId, RequestId, SecretName, api::AuditVerify};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted: an agent, the operator, a Discord user, the policy, or the daemon itself.
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    pub who: String,
    pub via: &'static str,
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
    RequestExpired {
        request: &'a RequestId,
    },
    RequestCancelled {
        request: &'a RequestId,
        by: &'a Actor,
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
}

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    ts: String,
    #[serde(flatten)]
    event: &'a Event<'a>,
    prev: &'a str,
}

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
}

/// The append-only, hash-chained log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    head: Mutex<Head>,
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
        Ok(Self {
            path: path.to_path_buf(),
            head: Mutex::new(Head { file, seq, hash }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes and fsyncs one event. Only when this returns `Ok` may its effect be visible.
    ///
    /// The fsync blocks; on the daemon's multi-threaded runtime the worker's other tasks
    /// move to another thread meanwhile, so a burst of decisions cannot stall grant hits.
    pub fn record(&self, event: &Event<'_>) -> Result<(), AuditError> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.write(event))
            }
            _ => self.write(event),
        }
    }

    fn write(&self, event: &Event<'_>) -> Result<(), AuditError> {
        let mut head = self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let line = Line {
            seq: head.seq + 1,
            ts: keygate_proto::duration::rfc3339(SystemTime::now()),
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
        head.file.write_all(text.as_bytes()).map_err(io)?;
        head.file.sync_data().map_err(io)?;
        head.seq += 1;
        head.hash = hash;
        Ok(())
    }

    /// Like [`AuditLog::record`] for events whose loss must not stop the daemon (a
    /// refused login, say): a failure is logged instead.
    pub fn record_or_log(&self, event: &Event<'_>) {
        if let Err(e) = self.record(event) {
            tracing::error!("{e}");
        }
    }

    /// The hash of the last line written, which only this process knows: a verification
    /// compares the file's end with it, so even the last line cannot be altered unseen.
    pub fn head_hash(&self) -> String {
        self.head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hash
            .clone()
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
                    .and_then(keygate_proto::duration::parse_rfc3339)
                    .is_some_and(|ts| ts >= t),
            };
            if recent {
                out.push(v);
            }
        }
        Ok(out)
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
