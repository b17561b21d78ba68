//! The sealed store: every secret in one blob encrypted with a key derived from a
//! passphrase. In `<data_dir>/secrets.kgv` it is the file store ([`FileStore`]), for
//! machines without a keychain; in the cluster's Redis it is the Redis store
//! ([`RedisStore`]), the same bytes under a Redis key. Where the blob lives is a
//! [`Vault`]; everything below is the same for both, and "the file" means the blob.
//!
//! While unlocked the store keeps the derived key and the decrypted secrets in memory
//! (zeroized when locked or dropped). Before every operation it reads the file and compares
//! the header's nonce, which changes on each write, with the one it decrypted last: another
//! process's writes are noticed, and unchanged files are not decrypted again. Each write
//! takes `secrets.lock`, re-reads and fully decrypts the file under it, and replaces the
//! file atomically, so writers in several processes cannot lose each other's changes, and a
//! file that does not decrypt or parse is reported and never overwritten.

mod crypto;
mod format;

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use keygate_proto::{SecretName, SecretValue};
use secrecy::{ExposeSecret as _, SecretString};

use self::crypto::{DerivedKey, SALT_LEN, TAG_LEN};
pub use self::crypto::{KdfParams, KdfParamsError};
use self::format::{HEADER_LEN, Header, KeyId, MAX_FILE_LEN, Secrets, Stored};
use super::redis::InRedis;
use super::vault::{OnDisk, Vault};
use super::{Backend, SecretMeta, SecretStore, StoreError};

/// Secrets in a passphrase-encrypted blob kept in a [`Vault`]. See the module docs and
/// docs/secret-store.md.
pub struct Sealed<V> {
    vault: V,
    /// Cost for a file this store creates or re-keys.
    kdf: KdfParams,
    state: Mutex<State>,
}

/// The sealed store in `secrets.kgv`.
pub type FileStore = Sealed<OnDisk>;

/// The sealed store in the cluster's Redis.
pub type RedisStore = Sealed<InRedis>;

enum State {
    Locked,
    Unlocked(Unlocked),
}

impl State {
    fn unlocked(&mut self) -> Result<&mut Unlocked, StoreError> {
        match self {
            Self::Locked => Err(StoreError::Locked),
            Self::Unlocked(u) => Ok(u),
        }
    }
}

struct Unlocked {
    key: DerivedKey,
    key_id: KeyId,
    /// The nonce of the file `secrets` was read from or written to; `None` when the file
    /// is gone.
    seen_nonce: Option<[u8; crypto::NONCE_LEN]>,
    secrets: Secrets,
}

impl FileStore {
    /// Opens the store in `data_dir` (created 0700 if missing). An existing file's header is
    /// checked now, so a damaged file is reported at startup. With a passphrase the store is
    /// unlocked (and the file created if there is none); without one it starts locked.
    ///
    /// `kdf` is the argon2id cost for a file created or re-keyed by this store; an existing
    /// file keeps the cost in its header.
    pub fn open(
        data_dir: &Path,
        passphrase: Option<&SecretString>,
        kdf: KdfParams,
    ) -> Result<Self, StoreError> {
        Self::in_vault(OnDisk::in_dir(data_dir)?, passphrase, kdf)
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        self.vault.place()
    }

    /// Whether the file exists yet (it is created by the first unlock).
    pub fn exists(&self) -> bool {
        self.vault.place().exists()
    }
}

impl RedisStore {
    /// Opens the store in the Redis at `url` (`KEYGATE_CLUSTER_REDIS_URL`), as
    /// [`FileStore::open`] opens the file: Redis must answer now.
    pub fn open(
        url: &str,
        passphrase: Option<&SecretString>,
        kdf: KdfParams,
    ) -> Result<Self, StoreError> {
        Self::in_vault(InRedis::at(url)?, passphrase, kdf)
    }
}

impl<V: Vault> Sealed<V> {
    /// Opens the store in `vault`: an existing blob's header is checked now, so a damaged
    /// one is reported at startup; with a passphrase the store is unlocked (and the blob
    /// created if there is none).
    pub fn in_vault(
        vault: V,
        passphrase: Option<&SecretString>,
        kdf: KdfParams,
    ) -> Result<Self, StoreError> {
        let store = Self {
            vault,
            kdf,
            state: Mutex::new(State::Locked),
        };
        if let Some(bytes) = store.read()? {
            Header::decode(&bytes).map_err(|reason| store.corrupt(reason))?;
        }
        if let Some(passphrase) = passphrase {
            store.unlock(passphrase)?;
        }
        Ok(store)
    }

    /// Re-encrypts the file under `new` with a fresh salt (and this store's KDF cost). The
    /// store must be unlocked; it stays unlocked under the new passphrase. Other processes
    /// holding the file unlocked lock themselves when they notice.
    pub fn change_passphrase(&self, new: &SecretString) -> Result<(), StoreError> {
        let passphrase = non_empty(new)?;
        let mut state = self.state();
        state.unlocked()?;
        let guard = self.lock_file()?;
        self.refresh(&mut state, true)?;
        let unlocked = state.unlocked()?;
        let salt = crypto::random::<SALT_LEN>()?;
        let key = crypto::derive(passphrase, &salt, self.kdf)?;
        let key_id = KeyId {
            kdf: self.kdf,
            salt,
            check: key.check,
        };
        let nonce = write_file(&self.vault, &guard, &key, key_id, &unlocked.secrets)?;
        unlocked.key = key;
        unlocked.key_id = key_id;
        unlocked.seen_nonce = Some(nonce);
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // State only changes by whole assignments after the disk work succeeded, so a panic
        // elsewhere cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_file(&self) -> Result<V::Lock, StoreError> {
        self.vault.lock()
    }

    fn read(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.vault.read(MAX_FILE_LEN)
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::corrupt(self.vault.place(), reason)
    }

    /// Opens `bytes` with `key`: the key check first (wrong passphrase), then the AEAD
    /// (damage), then the JSON.
    fn decrypt(&self, bytes: &[u8], key: &DerivedKey) -> Result<(Header, Secrets), StoreError> {
        let (header, ciphertext) = Header::decode(bytes).map_err(|r| self.corrupt(r))?;
        if !key.matches(&header.key.check) {
            return Err(StoreError::WrongPassphrase {
                path: self.vault.place().to_owned(),
            });
        }
        let plaintext = key
            .open(&header.nonce, &bytes[..HEADER_LEN], ciphertext)
            .ok_or_else(|| {
                self.corrupt(
                    "it does not authenticate although the passphrase is right: it was altered or damaged",
                )
            })?;
        let secrets = format::decode_payload(&plaintext).map_err(|r| self.corrupt(r))?;
        Ok((header, secrets))
    }

    /// Brings the cached secrets up to date with the file; with `verify`, decrypts it even
    /// when its nonce says it is unchanged (before a write: a damaged file is never
    /// overwritten). Locks the store when the file was re-keyed under another passphrase.
    fn refresh(&self, state: &mut State, verify: bool) -> Result<(), StoreError> {
        let bytes = self.read()?;
        self.refresh_with(state, bytes, verify)
    }

    /// [`Sealed::refresh`] from `bytes`, the vault's content as read just now.
    fn refresh_with(
        &self,
        state: &mut State,
        bytes: Option<Vec<u8>>,
        verify: bool,
    ) -> Result<(), StoreError> {
        let unlocked = state.unlocked()?;
        let Some(bytes) = bytes else {
            if unlocked.seen_nonce.is_some() {
                tracing::warn!(path = %self.vault.place().display(), "the secret file disappeared; the store is empty now");
            }
            unlocked.seen_nonce = None;
            unlocked.secrets = Secrets::new();
            return Ok(());
        };
        let (header, _) = Header::decode(&bytes).map_err(|r| self.corrupt(r))?;
        if unlocked.seen_nonce == Some(header.nonce) && !verify {
            return Ok(());
        }
        if header.key.salt != unlocked.key_id.salt || header.key.kdf != unlocked.key_id.kdf {
            tracing::warn!(path = %self.vault.place().display(), "the secret file was re-encrypted under another passphrase; locking");
            *state = State::Locked;
            return Err(StoreError::Locked);
        }
        if header.key.check != unlocked.key_id.check {
            // Same salt and cost, so the same passphrase gives the same check: it was edited.
            return Err(self.corrupt("its key check was altered"));
        }
        let (header, secrets) = self.decrypt(&bytes, &unlocked.key)?;
        unlocked.seen_nonce = Some(header.nonce);
        unlocked.secrets = secrets;
        Ok(())
    }

    /// Read-modify-write under the lock file: `change` edits a copy of the secrets and says
    /// whether anything changed; only then is the file rewritten and the copy kept.
    fn update<T>(&self, change: impl FnOnce(&mut Secrets) -> (bool, T)) -> Result<T, StoreError> {
        let mut state = self.state();
        state.unlocked()?;
        let guard = self.lock_file()?;
        self.refresh(&mut state, true)?;
        let unlocked = state.unlocked()?;
        self.vault.tidy(&guard);
        let mut secrets = unlocked.secrets.clone();
        let (changed, out) = change(&mut secrets);
        if changed {
            let nonce = write_file(
                &self.vault,
                &guard,
                &unlocked.key,
                unlocked.key_id,
                &secrets,
            )?;
            unlocked.seen_nonce = Some(nonce);
            unlocked.secrets = secrets;
        }
        Ok(out)
    }

    /// Reads the up-to-date secrets.
    fn with_secrets<T>(&self, read: impl FnOnce(&Secrets) -> T) -> Result<T, StoreError> {
        // Read before the state is locked: a vault across the network (Redis) must not
        // hold every other reader while its bytes travel. Bytes a write replaces meanwhile
        // are what a read that started before it sees; a copy they bring back is
        // replaced at the next read, and a write reads again under its lock.
        let bytes = self.read()?;
        let mut state = self.state();
        self.refresh_with(&mut state, bytes, false)?;
        let unlocked = state.unlocked()?;
        Ok(read(&unlocked.secrets))
    }

    /// Creates the file under `passphrase` unless another process just did; returns its
    /// bytes in the latter case.
    fn create(&self, passphrase: &[u8]) -> Result<Result<Unlocked, Vec<u8>>, StoreError> {
        let guard = self.lock_file()?;
        if let Some(bytes) = self.read()? {
            return Ok(Err(bytes));
        }
        let salt = crypto::random::<SALT_LEN>()?;
        let key = crypto::derive(passphrase, &salt, self.kdf)?;
        let key_id = KeyId {
            kdf: self.kdf,
            salt,
            check: key.check,
        };
        let secrets = Secrets::new();
        let nonce = write_file(&self.vault, &guard, &key, key_id, &secrets)?;
        tracing::info!(path = %self.vault.place().display(), kdf = ?self.kdf, "created the secret file");
        Ok(Ok(Unlocked {
            key,
            key_id,
            seen_nonce: Some(nonce),
            secrets,
        }))
    }
}

fn non_empty(passphrase: &SecretString) -> Result<&[u8], StoreError> {
    let bytes = passphrase.expose_secret().as_bytes();
    if bytes.is_empty() {
        Err(StoreError::EmptyPassphrase)
    } else {
        Ok(bytes)
    }
}

/// Seals `secrets` under `key` with a fresh nonce and replaces the file; returns the nonce.
fn write_file<V: Vault>(
    vault: &V,
    lock: &V::Lock,
    key: &DerivedKey,
    key_id: KeyId,
    secrets: &Secrets,
) -> Result<[u8; crypto::NONCE_LEN], StoreError> {
    let mut buffer = format::encode_payload(secrets)
        .map_err(|r| StoreError::Crypto(format!("cannot encode the secrets: {r}")))?;
    let header = Header {
        key: key_id,
        nonce: crypto::random()?,
        ciphertext_len: (buffer.len() + TAG_LEN) as u64,
    };
    let aad = header.encode();
    key.seal(&header.nonce, &aad, &mut buffer)?;
    let mut file = Vec::with_capacity(HEADER_LEN + buffer.len());
    file.extend_from_slice(&aad);
    file.extend_from_slice(&buffer);
    vault.write(lock, &file)?;
    Ok(header.nonce)
}

fn meta(name: &SecretName, stored: &Stored, backend: Backend) -> SecretMeta {
    SecretMeta {
        name: name.clone(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
        size: stored.value.len(),
        backend,
    }
}

impl<V> fmt::Debug for Sealed<V>
where
    V: Vault,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.try_lock().as_deref() {
            Ok(State::Locked) => "locked".to_owned(),
            Ok(State::Unlocked(u)) => format!("unlocked, {} secrets", u.secrets.len()),
            Err(_) => "busy".to_owned(),
        };
        f.debug_struct("Sealed")
            .field("backend", &self.vault.backend())
            .field("at", &self.vault.place())
            .field("state", &state)
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

impl<V: Vault> SecretStore for Sealed<V> {
    fn backend(&self) -> Backend {
        self.vault.backend()
    }

    fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, StoreError> {
        self.with_secrets(|s| s.get(name).map(|stored| stored.value.clone()))
    }

    fn current(&self, name: &SecretName, mark: &[u8]) -> Option<Option<SecretValue>> {
        let state = self.state();
        let State::Unlocked(u) = &*state else {
            return None;
        };
        // The nonce is random with every write and authenticated with the secrets it
        // was read with: the same nonce, the same secrets.
        (u.seen_nonce
            .as_ref()
            .map(<[u8; crypto::NONCE_LEN]>::as_slice)
            == Some(mark))
        .then(|| u.secrets.get(name).map(|stored| stored.value.clone()))
    }

    fn set(&self, name: &SecretName, value: &SecretValue) -> Result<SecretMeta, StoreError> {
        self.update(|secrets| {
            let now = SystemTime::now();
            let created_at = secrets.get(name).map_or(now, |s| s.created_at);
            let stored = Stored {
                value: value.clone(),
                created_at,
                updated_at: now,
            };
            let meta = meta(name, &stored, self.vault.backend());
            secrets.insert(name.clone(), stored);
            (true, meta)
        })
    }

    fn remove(&self, name: &SecretName) -> Result<bool, StoreError> {
        self.update(|secrets| {
            let removed = secrets.remove(name).is_some();
            (removed, removed)
        })
    }

    /// Needs the store unlocked: names and times are inside the encrypted payload.
    fn list(&self) -> Result<Vec<SecretMeta>, StoreError> {
        let backend = self.vault.backend();
        self.with_secrets(|s| {
            s.iter()
                .map(|(name, stored)| meta(name, stored, backend))
                .collect()
        })
    }

    fn is_locked(&self) -> bool {
        matches!(*self.state(), State::Locked)
    }

    fn is_shared(&self) -> bool {
        self.vault.is_shared()
    }

    /// Derives the key (slow by design) and decrypts the file; creates the file when there
    /// is none. Unlocking an unlocked store checks the passphrase again.
    fn unlock(&self, passphrase: &SecretString) -> Result<(), StoreError> {
        let passphrase = non_empty(passphrase)?;
        // argon2 runs without the state lock held, so readers are not stalled behind it.
        let bytes = match self.read()? {
            Some(bytes) => bytes,
            None => match self.create(passphrase)? {
                Ok(unlocked) => {
                    *self.state() = State::Unlocked(unlocked);
                    return Ok(());
                }
                Err(bytes) => bytes,
            },
        };
        let (header, _) = Header::decode(&bytes).map_err(|r| self.corrupt(r))?;
        let key = crypto::derive(passphrase, &header.key.salt, header.key.kdf)?;
        let (header, secrets) = self.decrypt(&bytes, &key)?;
        *self.state() = State::Unlocked(Unlocked {
            key,
            key_id: header.key,
            seen_nonce: Some(header.nonce),
            secrets,
        });
        Ok(())
    }

    fn lock(&self) {
        *self.state() = State::Locked;
    }
}
