//! The store as the daemon uses it: every call runs off the async workers
//! (`spawn_blocking`), and decrypted values are cached so a grant hit needs no keychain or
//! disk round trip. Cached values are zeroized on drop and dropped on lock and on every
//! change to a secret. A store that other processes change too, without this one
//! hearing of it (the cluster's Redis store), is never cached: every read asks it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use keygate_proto::{SecretName, SecretValue};

use super::{Backend, SecretMeta, SecretStore, StoreError};

/// A store call that failed: the store said no, or its blocking task died.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task that talked to the store panicked or was cancelled.
    #[error("the secret store's task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// A [`SecretStore`] with a cache of decrypted values in front of it.
pub struct CachedStore {
    store: Arc<dyn SecretStore>,
    values: RwLock<HashMap<SecretName, SecretValue>>,
    /// Bumped (under the `values` write lock) whenever a cached value becomes stale.
    generation: AtomicU64,
    /// Whether values may be kept: not for a store other nodes change.
    keeps: bool,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl CachedStore {
    pub fn new(store: Arc<dyn SecretStore>) -> Self {
        Self {
            keeps: !store.is_shared(),
            store,
            values: RwLock::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Whether a value read from this store may be kept for later reads (here, or as a
    /// grant's kept answer): `false` for a store other nodes change too.
    pub fn keeps_values(&self) -> bool {
        self.keeps
    }

    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    pub fn is_locked(&self) -> bool {
        self.store.is_locked()
    }

    /// Bumped by every change that can make a value read before it stale (a set, a
    /// removal, a lock): something built from a value read in generation `g` is current
    /// while this still says `g`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CallError> {
        let store = Arc::clone(&self.store);
        Ok(tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(CallError::Task)??)
    }

    /// A value from what the store holds in memory, if `mark` says it is current (see
    /// [`SecretStore::current`]); `None`: read it with [`CachedStore::get`].
    pub fn current(&self, name: &SecretName, mark: &[u8]) -> Option<Option<SecretValue>> {
        self.store.current(name, mark)
    }

    /// A value: from the cache, else from the store (and then cached).
    pub async fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, CallError> {
        if let Some(v) = self
            .values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(Some(v.clone()));
        }
        // A change to the secret while the store is read must not be overwritten by the
        // old value: only cache what was read if no change came in between.
        let generation = self.generation.load(Ordering::Acquire);
        let key = name.clone();
        let found = self.blocking(move |s| s.get(&key)).await?;
        if let Some(v) = found.as_ref().filter(|_| self.keeps) {
            let mut values = self
                .values
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.generation.load(Ordering::Acquire) == generation {
                values.entry(name.clone()).or_insert_with(|| v.clone());
            }
        }
        Ok(found)
    }

    pub async fn set(&self, name: SecretName, value: SecretValue) -> Result<SecretMeta, CallError> {
        let key = name.clone();
        let meta = self.blocking(move |s| s.set(&key, &value)).await;
        self.invalidate(Some(&name));
        meta
    }

    pub async fn remove(&self, name: SecretName) -> Result<bool, CallError> {
        let key = name.clone();
        let removed = self.blocking(move |s| s.remove(&key)).await;
        self.invalidate(Some(&name));
        removed
    }

    pub async fn list(&self) -> Result<Vec<SecretMeta>, CallError> {
        self.blocking(|s| s.list()).await
    }

    /// Forgets every decrypted value, here and in the store.
    pub async fn lock(&self) -> Result<(), CallError> {
        self.invalidate(None);
        self.blocking(|s| {
            s.lock();
            Ok(())
        })
        .await
    }

    pub async fn unlock(&self, passphrase: secrecy::SecretString) -> Result<(), CallError> {
        self.blocking(move |s| s.unlock(&passphrase)).await
    }

    /// Drops cached values (all, or one) and marks the change for readers in flight.
    fn invalidate(&self, name: Option<&SecretName>) {
        let mut values = self
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        match name {
            Some(n) => {
                values.remove(n);
            }
            None => values.clear(),
        }
    }
}
