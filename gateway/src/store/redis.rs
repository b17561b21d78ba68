//! The sealed store's blob in the cluster's Redis (`KEYGATE_SECRET_STORE=redis`): the
//! same sealed bytes the file store writes to `secrets.kgv`, under
//! `{keygate}:secrets`, so every node of a cluster reads the same secrets and Redis
//! never holds a value or the passphrase. The Redis side is `keygate_cluster::blob`.

use std::path::{Path, PathBuf};

use keygate_cluster::ClusterError;
use keygate_cluster::blob::{Blob, BlobLock};

use super::vault::Vault;
use super::{Backend, StoreError};

/// The key the sealed secrets live under (after keygate's `{keygate}:` prefix).
pub const SECRETS_KEY: &str = "secrets";

/// Where the sealed blob's nonce is (bytes 68 to 91 of its header, new with every write):
/// a grant's read in Redis answers it, so a node knows whether its decrypted copy is
/// current in the same round trip (`keygate_cluster::Shared::read_marked`).
pub const NONCE_MARK: (&str, u32, u32) = (SECRETS_KEY, 68, 91);

/// The sealed blob in Redis.
#[derive(Debug)]
pub struct InRedis {
    blob: Blob,
    place: PathBuf,
}

impl InRedis {
    /// The vault in the Redis at `url` (connected lazily).
    pub fn at(url: &str) -> Result<Self, StoreError> {
        let blob = Blob::open(url, SECRETS_KEY).map_err(cluster)?;
        let place = PathBuf::from(blob.shown());
        Ok(Self { blob, place })
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(cluster)`
fn cluster(e: ClusterError) -> StoreError {
    StoreError::Cluster(e.to_string())
}

impl Vault for InRedis {
    type Lock = BlobLock;

    fn backend(&self) -> Backend {
        Backend::Redis
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn place(&self) -> &Path {
        &self.place
    }

    fn read(&self, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.blob.get(max).map_err(cluster)
    }

    fn lock(&self) -> Result<BlobLock, StoreError> {
        self.blob.lock().map_err(cluster)
    }

    fn write(&self, lock: &BlobLock, bytes: &[u8]) -> Result<(), StoreError> {
        self.blob.put(lock, bytes).map_err(cluster)
    }
}

#[cfg(test)]
mod tests {
    /// The mark is where the header keeps its nonce: a grant's read in Redis must answer
    /// exactly those bytes.
    #[test]
    fn the_mark_is_the_headers_nonce() {
        let (_, start, end) = super::NONCE_MARK;
        let doc = include_str!("file/format.rs");
        assert!(
            doc.contains(&format!("//!     {start}    24  nonce")),
            "format.rs no longer puts the nonce at {start}"
        );
        assert_eq!(end - start + 1, 24);
    }
}
