//! The encrypted-file store: `<data_dir>/secrets.kgv`, for machines without a keychain.
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
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use keygate_proto::{SecretName, SecretValue};
use secrecy::{ExposeSecret as _, SecretString};

use self::crypto::{DerivedKey, SALT_LEN, TAG_LEN};
pub use self::crypto::{KdfParams, KdfParamsError};
use self::format::{HEADER_LEN, Header, KeyId, MAX_FILE_LEN, Secrets, Stored};
use super::disk::{self, LockGuard};
use super::{Backend, SECRET_FILE, SECRET_LOCK_FILE, SecretMeta, SecretStore, StoreError};

/// Secrets in a passphrase-encrypted file. See the module docs and docs/secret-store.md.
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    /// Cost for a file this store creates or re-keys.
    kdf: KdfParams,
    state: Mutex<State>,
}

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
        disk::ensure_private_dir(data_dir)?;
        let store = Self {
            path: data_dir.join(SECRET_FILE),
            lock_path: data_dir.join(SECRET_LOCK_FILE),
            kdf,
            state: Mutex::new(State::Locked),
        };
        if let Some(bytes) = store.read()? {
            Header::decode(&bytes).map_err(|reason| StoreError::corrupt(&store.path, reason))?;
        }
        if let Some(passphrase) = passphrase {
            store.unlock(passphrase)?;
        }
        Ok(store)
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file exists yet (it is created by the first unlock).
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Re-encrypts the file under `new` with a fresh salt (and this store's KDF cost). The
    /// store must be unlocked; it stays unlocked under the new passphrase. Other processes
    /// holding the file unlocked lock themselves when they notice.
    pub fn change_passphrase(&self, new: &SecretString) -> Result<(), StoreError> {
        let passphrase = non_empty(new)?;
        let mut state = self.state();
        state.unlocked()?;
        let _guard = self.lock_file()?;
        self.refresh(&mut state, true)?;
        let unlocked = state.unlocked()?;
        let salt = crypto::random::<SALT_LEN>()?;
        let key = crypto::derive(passphrase, &salt, self.kdf)?;
        let key_id = KeyId {
            kdf: self.kdf,
            salt,
            check: key.check,
        };
        let nonce = write_file(&self.path, &key, key_id, &unlocked.secrets)?;
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

    fn lock_file(&self) -> Result<LockGuard, StoreError> {
        disk::lock_exclusive(&self.lock_path)
    }

    fn read(&self) -> Result<Option<Vec<u8>>, StoreError> {
        disk::read_bounded(&self.path, MAX_FILE_LEN)
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::corrupt(&self.path, reason)
    }

    /// Opens `bytes` with `key`: the key check first (wrong passphrase), then the AEAD
    /// (damage), then the JSON.
    fn decrypt(&self, bytes: &[u8], key: &DerivedKey) -> Result<(Header, Secrets), StoreError> {
        let (header, ciphertext) = Header::decode(bytes).map_err(|r| self.corrupt(r))?;
        if !key.matches(&header.key.check) {
            return Err(StoreError::WrongPassphrase {
                path: self.path.clone(),
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
        let unlocked = state.unlocked()?;
        let Some(bytes) = self.read()? else {
            if unlocked.seen_nonce.is_some() {
                tracing::warn!(path = %self.path.display(), "the secret file disappeared; the store is empty now");
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
            tracing::warn!(path = %self.path.display(), "the secret file was re-encrypted under another passphrase; locking");
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
        let _guard = self.lock_file()?;
        self.refresh(&mut state, true)?;
        let unlocked = state.unlocked()?;
        disk::remove_stale_temps(&self.path);
        let mut secrets = unlocked.secrets.clone();
        let (changed, out) = change(&mut secrets);
        if changed {
            let nonce = write_file(&self.path, &unlocked.key, unlocked.key_id, &secrets)?;
            unlocked.seen_nonce = Some(nonce);
            unlocked.secrets = secrets;
        }
        Ok(out)
    }

    /// Reads the up-to-date secrets.
    fn with_secrets<T>(&self, read: impl FnOnce(&Secrets) -> T) -> Result<T, StoreError> {
        let mut state = self.state();
        self.refresh(&mut state, false)?;
        let unlocked = state.unlocked()?;
        Ok(read(&unlocked.secrets))
    }

    /// Creates the file under `passphrase` unless another process just did; returns its
    /// bytes in the latter case.
    fn create(&self, passphrase: &[u8]) -> Result<Result<Unlocked, Vec<u8>>, StoreError> {
        let _guard = self.lock_file()?;
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
        let nonce = write_file(&self.path, &key, key_id, &secrets)?;
        tracing::info!(path = %self.path.display(), kdf = ?self.kdf, "created the secret file");
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
fn write_file(
    path: &Path,
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
    disk::write_atomic(path, &file)?;
    Ok(header.nonce)
}

fn meta(name: &SecretName, stored: &Stored) -> SecretMeta {
    SecretMeta {
        name: name.clone(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
        size: stored.value.len(),
        backend: Backend::File,
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.try_lock().as_deref() {
            Ok(State::Locked) => "locked".to_owned(),
            Ok(State::Unlocked(u)) => format!("unlocked, {} secrets", u.secrets.len()),
            Err(_) => "busy".to_owned(),
        };
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .field("state", &state)
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

impl SecretStore for FileStore {
    fn backend(&self) -> Backend {
        Backend::File
    }

    fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, StoreError> {
        self.with_secrets(|s| s.get(name).map(|stored| stored.value.clone()))
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
            let meta = meta(name, &stored);
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
        self.with_secrets(|s| s.iter().map(|(name, stored)| meta(name, stored)).collect())
    }

    fn is_locked(&self) -> bool {
        matches!(*self.state(), State::Locked)
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
