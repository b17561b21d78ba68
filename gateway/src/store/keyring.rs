//! The keyring store: one system-keychain item per secret (service `keygate`, user = the
//! secret's name), plus the index file that `list` reads.
//!
//! Writes go to the keychain first and then to the index, both under the index's lock, so
//! the index never names a value that was not stored. The keychain is the truth for values:
//! `get` asks it directly, whatever the index says.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use keygate_proto::{SecretName, SecretValue};
use zeroize::Zeroizing;

use super::index::{Index, IndexEntry};
use super::{Backend, KEYRING_SERVICE, SecretMeta, SecretStore, StoreError, disk};

/// Secrets in the system keychain. Each call is a round trip to the keychain service
/// (D-Bus on Linux), and may wait for the keychain to be unlocked.
pub struct KeyringStore {
    data_dir: PathBuf,
    index: Index,
}

impl KeyringStore {
    /// Opens the store whose index lives in `data_dir` (created 0700 if missing). Does not
    /// touch the keychain; a damaged index is reported now.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        disk::ensure_private_dir(data_dir)?;
        let index = Index::new(data_dir);
        index.read()?;
        Ok(Self {
            data_dir: data_dir.to_owned(),
            index,
        })
    }

    /// The index file `list` reads.
    pub fn index_path(&self) -> &Path {
        self.index.path()
    }

    fn entry(action: &'static str, name: &SecretName) -> Result<::keyring::Entry, StoreError> {
        ::keyring::Entry::new(KEYRING_SERVICE, name.as_str())
            .map_err(|e| keychain_error(action, name, e))
    }
}

/// A keychain error as words that hold no value.
pub(crate) fn describe(err: ::keyring::Error) -> String {
    use ::keyring::Error as E;
    match err {
        E::PlatformFailure(e) => format!("the keychain failed: {e}"),
        E::NoStorageAccess(e) => format!("no access to the keychain (is it locked?): {e}"),
        E::NoEntry => "there is no such item".into(),
        E::BadEncoding(bytes) => {
            drop(Zeroizing::new(bytes));
            "the stored value is not UTF-8 text".into()
        }
        E::TooLong(attr, max) => format!("{attr} is longer than the keychain allows ({max})"),
        E::Invalid(attr, why) => format!("{attr} is invalid: {why}"),
        E::Ambiguous(items) => format!(
            "{} keychain items match; delete the extra ones with your keychain tool",
            items.len()
        ),
        // keyring's errors are non-exhaustive; a future one might carry bytes.
        _ => "unexpected keychain error".into(),
    }
}

fn keychain_error(action: &'static str, name: &SecretName, err: ::keyring::Error) -> StoreError {
    StoreError::Keychain {
        action,
        name: name.to_string(),
        reason: describe(err),
    }
}

fn meta(name: &SecretName, e: &IndexEntry) -> SecretMeta {
    SecretMeta {
        name: name.clone(),
        created_at: e.created_at,
        updated_at: e.updated_at,
        size: e.size,
        backend: Backend::Keyring,
    }
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &KEYRING_SERVICE)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl SecretStore for KeyringStore {
    fn backend(&self) -> Backend {
        Backend::Keyring
    }

    fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, StoreError> {
        match Self::entry("read", name)?.get_password() {
            Ok(value) => Ok(Some(SecretValue::new(value))),
            Err(::keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error("read", name, e)),
        }
    }

    fn set(&self, name: &SecretName, value: &SecretValue) -> Result<SecretMeta, StoreError> {
        // The index is read (and checked) before the keychain is touched, so a damaged index
        // fails the write before anything changes.
        let mut txn = self.index.begin()?;
        Self::entry("store", name)?
            .set_password(value.expose())
            .map_err(|e| keychain_error("store", name, e))?;
        let now = SystemTime::now();
        let entry = IndexEntry {
            created_at: txn.entries.get(name).map_or(now, |e| e.created_at),
            updated_at: now,
            size: value.len(),
        };
        txn.entries.insert(name.clone(), entry);
        txn.commit()?;
        Ok(meta(name, &entry))
    }

    fn remove(&self, name: &SecretName) -> Result<bool, StoreError> {
        let mut txn = self.index.begin()?;
        let in_keychain = match Self::entry("delete", name)?.delete_credential() {
            Ok(()) => true,
            Err(::keyring::Error::NoEntry) => false,
            Err(e) => return Err(keychain_error("delete", name, e)),
        };
        let in_index = txn.entries.remove(name).is_some();
        if in_index {
            txn.commit()?;
        }
        Ok(in_keychain || in_index)
    }

    /// From the index alone: no keychain call, no value read.
    fn list(&self) -> Result<Vec<SecretMeta>, StoreError> {
        Ok(self
            .index
            .read()?
            .iter()
            .map(|(name, e)| meta(name, e))
            .collect())
    }
}
