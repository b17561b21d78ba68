//! How the store touches the disk: a private directory, files that are 0600 from their first
//! byte and replaced atomically (temp file in the same directory, fsync, rename, fsync of the
//! directory), so a crash leaves the old file or the new one and never half of either; and an
//! advisory lock file around read-modify-write, so two processes cannot interleave.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Creates `dir` (and missing parents) private to this user, as every other directory of
/// the daemon's is made ([`crate::fsutil::ensure_private_dir`]): mode 0700, and refused
/// when another user owns it.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    crate::fsutil::ensure_private_dir(dir)
        .map_err(|e| StoreError::io("create the directory", dir, e))
}

/// An exclusive advisory lock (flock) on a lock file, released on drop. The lock file is
/// never deleted: removing it while someone waits on it would let two holders in.
#[derive(Debug)]
pub(crate) struct LockGuard {
    _file: File,
}

/// Blocks until this process holds the lock at `path`, creating the lock file (0600) if
/// needed.
pub(crate) fn lock_exclusive(path: &Path) -> Result<LockGuard, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io("open the lock file", path, e))?;
    file.lock().map_err(|e| StoreError::io("lock", path, e))?;
    Ok(LockGuard { _file: file })
}

/// The whole file, or `None` when there is none. A file larger than `max` bytes is called
/// corrupt rather than read into memory.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("open", path, e)),
    };
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io("read", path, e))?;
    if bytes.len() as u64 > max {
        return Err(StoreError::corrupt(
            path,
            format!("it is larger than {max} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// Lower-case hex, for random file and item names.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    format!(".{name}.tmp-")
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes`: mode 0600, atomic, durable once this returns.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = dir_of(path);
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| StoreError::Random(e.to_string()))?;
    let temp = dir.join(format!("{}{}", temp_prefix(path), hex(&random)));

    let written = write_new(&temp, bytes)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| StoreError::io("replace", path, e)));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    // The rename is only durable once the directory entry is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync the directory", dir, e))
}

fn write_new(temp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| StoreError::io("create", temp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io("write", temp, e))
}

/// Deletes temp files that a writer killed mid-write left next to `path`. Call it only
/// while holding the lock that writers of `path` hold, or it may delete a live temp file.
pub(crate) fn remove_stale_temps(path: &Path) {
    let prefix = temp_prefix(path);
    let Ok(entries) = fs::read_dir(dir_of(path)) else {
        return;
    };
    let stale: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    for temp in stale {
        if let Err(e) = fs::remove_file(&temp) {
            tracing::debug!(path = %temp.display(), error = %e, "cannot remove a stale temp file");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn writes_private_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        ensure_private_dir(&sub).unwrap();
        assert_eq!(
            fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
            0o700
        );

        let path = sub.join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(dir.path().join(".f.tmp-0011223344556677"), b"half").unwrap();
        fs::write(dir.path().join("other"), b"keep").unwrap();
        remove_stale_temps(&path);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("other")]);
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(read_bounded(&path, 4).unwrap().is_none());
        fs::write(&path, b"12345").unwrap();
        assert!(matches!(
            read_bounded(&path, 4),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(read_bounded(&path, 5).unwrap().unwrap(), b"12345");
    }
}
