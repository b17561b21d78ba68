//! The keyring store's index, `<data_dir>/keyring-index.json`: each secret's name, times and
//! size, never its value. It lets `list` answer without enumerating the keychain or reading
//! a value out of it. Written atomically (0600) under `keyring-index.lock`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use keygate_proto::SecretName;
use serde::{Deserialize, Serialize};

use super::disk::{self, LockGuard};
use super::{KEYRING_INDEX_FILE, KEYRING_INDEX_LOCK_FILE, StoreError, timestamp};

const VERSION: u32 = 1;
const MAX_INDEX_LEN: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    #[serde(with = "timestamp")]
    pub(crate) created_at: SystemTime,
    #[serde(with = "timestamp")]
    pub(crate) updated_at: SystemTime,
    pub(crate) size: usize,
}

pub(crate) type Entries = BTreeMap<SecretName, IndexEntry>;

#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    secrets: Entries,
}

#[derive(Debug, Clone)]
pub(crate) struct Index {
    path: PathBuf,
    lock_path: PathBuf,
}

/// The index read under its lock; [`Transaction::commit`] writes it back.
#[derive(Debug)]
pub(crate) struct Transaction<'a> {
    index: &'a Index,
    pub(crate) entries: Entries,
    _guard: LockGuard,
}

impl Index {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(KEYRING_INDEX_FILE),
            lock_path: data_dir.join(KEYRING_INDEX_LOCK_FILE),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The entries; none when there is no index yet. Needs no lock: the file is replaced
    /// atomically.
    pub(crate) fn read(&self) -> Result<Entries, StoreError> {
        let Some(bytes) = disk::read_bounded(&self.path, MAX_INDEX_LEN)? else {
            return Ok(Entries::new());
        };
        let file: IndexFile = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::corrupt(&self.path, format!("it does not parse: {e}")))?;
        if file.version != VERSION {
            return Err(StoreError::corrupt(
                &self.path,
                format!(
                    "index version {}, and this keygate reads version {VERSION}",
                    file.version
                ),
            ));
        }
        Ok(file.secrets)
    }

    /// Takes the lock and reads the entries, for a read-modify-write.
    pub(crate) fn begin(&self) -> Result<Transaction<'_>, StoreError> {
        let guard = disk::lock_exclusive(&self.lock_path)?;
        let entries = self.read()?;
        Ok(Transaction {
            index: self,
            entries,
            _guard: guard,
        })
    }
}

impl Transaction<'_> {
    /// Replaces the index with the edited entries and releases the lock.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        let file = IndexFile {
            version: VERSION,
            secrets: self.entries,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::Io {
            action: "encode",
            path: self.index.path.clone(),
            source: std::io::Error::other(e),
        })?;
        bytes.push(b'\n');
        disk::write_atomic(&self.index.path, &bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::new(dir.path());
        assert!(index.read().unwrap().is_empty());

        let mut txn = index.begin().unwrap();
        let now = SystemTime::now();
        txn.entries.insert(
            SecretName::new("a/b").unwrap(),
            IndexEntry {
                created_at: now,
                updated_at: now,
                size: 3,
            },
        );
        txn.commit().unwrap();
        let back = index.read().unwrap();
        assert_eq!(back[&SecretName::new("a/b").unwrap()].size, 3);
        assert_eq!(back[&SecretName::new("a/b").unwrap()].created_at, now);

        std::fs::write(index.path(), b"{not json").unwrap();
        assert!(matches!(index.read(), Err(StoreError::Corrupt { .. })));
        assert!(index.begin().is_err(), "a corrupt index is not rewritten");
    }
}
