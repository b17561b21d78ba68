//! Where the sealed store keeps its one encrypted blob: `secrets.kgv` on disk
//! ([`OnDisk`]), or a key in the cluster's Redis (`InRedis`, in `redis.rs`). A vault
//! only moves bytes that are already sealed; the sealing, the passphrase and the key are
//! the sealed store's (`file.rs`), the same for both.

use std::path::{Path, PathBuf};

use super::disk::{self, LockGuard};
use super::{Backend, SECRET_FILE, SECRET_LOCK_FILE, StoreError};

/// A place for the sealed blob, read freely and replaced under its lock.
pub trait Vault: Send + Sync {
    /// Held around a read-modify-write; released on drop.
    type Lock;

    /// Which backend this makes the store.
    fn backend(&self) -> Backend;

    /// Whether other nodes write it too.
    fn is_shared(&self) -> bool {
        false
    }

    /// What messages name it by: a path, or the Redis key's address.
    fn place(&self) -> &Path;

    /// The whole blob, or `None` when there is none yet; refused (corrupt) when larger
    /// than `max` bytes.
    fn read(&self, max: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Waits for the lock writers hold.
    fn lock(&self) -> Result<Self::Lock, StoreError>;

    /// Replaces the blob, atomically; only under `lock`.
    fn write(&self, lock: &Self::Lock, bytes: &[u8]) -> Result<(), StoreError>;

    /// Clears what a writer that died mid-write left behind; only under the lock.
    fn tidy(&self, lock: &Self::Lock) {
        let _ = lock;
    }
}

/// `secrets.kgv` in the data directory, locked by `secrets.lock` (flock), replaced
/// atomically (see `disk.rs`).
#[derive(Debug)]
pub struct OnDisk {
    path: PathBuf,
    lock_path: PathBuf,
}

impl OnDisk {
    /// The vault in `data_dir`, which is created 0700 if missing.
    pub fn in_dir(data_dir: &Path) -> Result<Self, StoreError> {
        disk::ensure_private_dir(data_dir)?;
        Ok(Self {
            path: data_dir.join(SECRET_FILE),
            lock_path: data_dir.join(SECRET_LOCK_FILE),
        })
    }
}

/// The flock on `secrets.lock`.
#[derive(Debug)]
pub struct DiskLock(#[allow(dead_code)] LockGuard);

impl Vault for OnDisk {
    type Lock = DiskLock;

    fn backend(&self) -> Backend {
        Backend::File
    }

    fn place(&self) -> &Path {
        &self.path
    }

    fn read(&self, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
        disk::read_bounded(&self.path, max)
    }

    fn lock(&self) -> Result<DiskLock, StoreError> {
        disk::lock_exclusive(&self.lock_path).map(DiskLock)
    }

    fn write(&self, _lock: &DiskLock, bytes: &[u8]) -> Result<(), StoreError> {
        disk::write_atomic(&self.path, bytes)
    }

    fn tidy(&self, _lock: &DiskLock) {
        disk::remove_stale_temps(&self.path);
    }
}
