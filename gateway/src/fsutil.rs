//! Writing private files safely: mode 0600 from the first byte, and atomically (temp
//! file, fsync, rename, fsync of the directory), so a crash leaves the old file or the
//! new one, never half of either.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`, atomically, mode 0600.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = dir.join(format!(".{name}.tmp-{}", hex::encode(rnd)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` (and parents) and makes it private to this user (0700). A directory that
/// exists and belongs to another user is refused, never taken over.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let owner = std::fs::symlink_metadata(dir)?.uid();
    let me = keygate_proto::paths::effective_uid();
    if owner != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("it belongs to uid {owner}, not to this user (uid {me})"),
        ));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Makes sure the socket's directory is private to this user: created 0700 when missing;
/// when it exists, it must already be a directory of ours with mode 0700. It is never
/// chmodded or taken over: a directory someone else made, or could reach into, may hold
/// their files, and whoever owns it can replace our socket later.
pub fn ensure_runtime_dir(dir: &Path) -> Result<(), RuntimeDirError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let io = |error| RuntimeDirError::Io {
        dir: dir.to_path_buf(),
        error,
    };
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        // Ours from the start; undo a umask that took the owner's bits.
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    keygate_proto::paths::check_private_dir(dir, &[keygate_proto::paths::effective_uid()])
        .map_err(RuntimeDirError::Untrusted)
}

/// Why the socket's directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeDirError {
    #[error(
        "refusing the socket directory: {0} (another user may have made it or put files in it: check and remove it, or set XDG_RUNTIME_DIR)"
    )]
    Untrusted(keygate_proto::paths::UntrustedDir),
    #[error("cannot create {}: {error}", .dir.display())]
    Io { dir: PathBuf, error: std::io::Error },
}
