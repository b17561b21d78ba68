//! The memory store: a map that lives and dies with the process. For tests and the demo.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use keygate_proto::{SecretName, SecretValue};

use super::{Backend, SecretMeta, SecretStore, StoreError};

struct Entry {
    value: SecretValue,
    created_at: SystemTime,
    updated_at: SystemTime,
}

impl Entry {
    fn meta(&self, name: &SecretName) -> SecretMeta {
        SecretMeta {
            name: name.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            size: self.value.len(),
            backend: Backend::Memory,
        }
    }
}

/// Secrets in a map in memory; gone when the process ends. Values are zeroized when they
/// are replaced, removed or dropped.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<SecretName, Entry>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<SecretName, Entry>> {
        // Every change is a single map operation, so a panic elsewhere cannot leave the map
        // half-updated: the poison carries no meaning here.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("secrets", &self.entries().len())
            .finish()
    }
}

impl SecretStore for MemoryStore {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, StoreError> {
        Ok(self.entries().get(name).map(|e| e.value.clone()))
    }

    fn set(&self, name: &SecretName, value: &SecretValue) -> Result<SecretMeta, StoreError> {
        let now = SystemTime::now();
        let mut entries = self.entries();
        let created_at = entries.get(name).map_or(now, |e| e.created_at);
        let entry = Entry {
            value: value.clone(),
            created_at,
            updated_at: now,
        };
        let meta = entry.meta(name);
        entries.insert(name.clone(), entry);
        Ok(meta)
    }

    fn remove(&self, name: &SecretName) -> Result<bool, StoreError> {
        Ok(self.entries().remove(name).is_some())
    }

    fn list(&self) -> Result<Vec<SecretMeta>, StoreError> {
        Ok(self
            .entries()
            .iter()
            .map(|(name, entry)| entry.meta(name))
            .collect())
    }
}
