//! The state directory's lock: whoever serves the gate — `keygated`, or one
//! `keygate --standalone` — holds an exclusive `flock` on `keygate.lock` beside the audit
//! log for as long as it runs, so two processes never write one hash chain, one store or
//! one agents file at once. A lock, not a guess: the kernel drops it when the holder
//! dies, however it dies, so there is never a stale one to clean up. The file says who
//! holds it (`keygated pid 42`), so the one that comes second can name the first.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// The lock file's name, in the audit log's directory (the state directory by default).
pub const LOCK_FILE: &str = "keygate.lock";

/// Who serves the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// `keygated serve` (or the demo).
    Daemon,
    /// `keygate --standalone`.
    Standalone,
}

impl Holder {
    fn as_str(self) -> &'static str {
        match self {
            Self::Daemon => "keygated",
            Self::Standalone => "keygate --standalone",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it: `by` is what its file says (`keygated pid 42`).
    #[error("{}", held(*.wanted, .by, .dir))]
    Held {
        wanted: Holder,
        by: String,
        dir: PathBuf,
    },
    #[error("cannot lock the state directory ({}): {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The one line the second process says. `by` is the holder's signature,
/// `keygated pid 42`, shown as `keygated (pid 42)`.
fn held(wanted: Holder, by: &str, dir: &Path) -> String {
    let dir = dir.display();
    let (who, pid) = by.rsplit_once(" pid ").unwrap_or((by, ""));
    let them = if pid.is_empty() {
        who.to_owned()
    } else {
        format!("{who} (pid {pid})")
    };
    match (wanted, who == Holder::Daemon.as_str()) {
        (Holder::Daemon, true) => {
            format!("another {them} is already serving this state directory ({dir}): stop it first")
        }
        (Holder::Daemon, false) => format!(
            "{them} is using this state directory ({dir}): let it finish (or stop it), then start keygated"
        ),
        (Holder::Standalone, true) => format!(
            "{them} serves this state directory ({dir}): use it (leave out --standalone and KEYGATE_MODE), or stop it first"
        ),
        (Holder::Standalone, false) => {
            format!("{them} is using this state directory ({dir}): wait for it to finish")
        }
    }
}

/// The lock, held until dropped (or the process ends). The file itself is never removed:
/// removing it while another process waits to open it would let two holders in.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock of the directory `dir` (made private if missing) for `holder`, or
    /// says who has it. Never waits.
    pub fn acquire(dir: &Path, holder: Holder) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::fsutil::ensure_private_dir(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut by = String::new();
                let _ = file.read_to_string(&mut by);
                let by = by.lines().next().unwrap_or_default().trim().to_owned();
                // Taken a moment ago, not yet signed: still someone else's.
                let by = if by.is_empty() {
                    "a keygate process that is starting".to_owned()
                } else {
                    by
                };
                return Err(LockError::Held {
                    wanted: holder,
                    by,
                    dir: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now: sign it.
        let line = format!("{} pid {}\n", holder.as_str(), std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(line.as_bytes()))
            .map_err(io)?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_holder_is_refused_with_the_first_ones_name() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path(), Holder::Daemon).unwrap();
        let e = StateLock::acquire(dir.path(), Holder::Standalone).unwrap_err();
        let pid = std::process::id();
        assert!(
            e.to_string()
                .starts_with(&format!("keygated (pid {pid}) serves this state directory")),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'), "{e}");
        let e = StateLock::acquire(dir.path(), Holder::Daemon).unwrap_err();
        assert!(e.to_string().contains("already serving"), "{e}");
        drop(first);
        let second = StateLock::acquire(dir.path(), Holder::Standalone).unwrap();
        let e = StateLock::acquire(dir.path(), Holder::Daemon).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("keygate --standalone (pid {pid}) is using")),
            "{e}"
        );
        drop(second);
        StateLock::acquire(dir.path(), Holder::Daemon).unwrap();
    }
}
