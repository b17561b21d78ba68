//! The secret store: where secret values live between releases.
//!
//! One trait, [`SecretStore`], and three backends behind it:
//!
//! - [`KeyringStore`]: the system keychain (Secret Service on Linux, Keychain on macOS,
//!   Credential Manager on Windows), one item per secret, plus an index file of names and
//!   times so that listing never touches the keychain or a value.
//! - [`FileStore`]: `secrets.kgv`, encrypted with a key derived from a passphrase
//!   (argon2id + XChaCha20-Poly1305), for headless servers without a keychain.
//! - [`RedisStore`]: the same sealed blob as the file store, in the cluster's Redis
//!   (`KEYGATE_SECRET_STORE=redis`), so every node of a cluster reads the same secrets;
//!   Redis never sees a value or the passphrase.
//! - [`MemoryStore`]: a map in memory, for tests and the demo.
//!
//! The API is synchronous: keychain and disk calls block, so the daemon calls the store from
//! `spawn_blocking`. No value ever reaches `Debug`, `Display`, a log line or an error.
//! [`open`] picks the backend (see [`Choice`]) and says why.

mod auto;
mod cached;
mod disk;
mod file;
mod index;
mod keyring;
mod memory;
pub(crate) mod redis;
mod timestamp;
pub mod vault;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keygate_proto::{SecretName, SecretValue};
use secrecy::SecretString;

pub use self::auto::probe_keychain;
pub use self::cached::{CachedStore, CallError};
pub use self::file::{FileStore, KdfParams, KdfParamsError, RedisStore, Sealed};
pub use self::keyring::KeyringStore;
pub use self::memory::MemoryStore;

/// File names inside the data directory.
pub const SECRET_FILE: &str = "secrets.kgv";
pub const KEYRING_INDEX_FILE: &str = "keyring-index.json";
/// Lock files: held (flock) around read-modify-write so processes cannot interleave.
const SECRET_LOCK_FILE: &str = "secrets.lock";
const KEYRING_INDEX_LOCK_FILE: &str = "keyring-index.lock";

/// The keychain service name every keygate item is stored under.
pub const KEYRING_SERVICE: &str = "keygate";

/// How long [`Choice::Auto`] waits for the keychain to answer its probe.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Which kind of store holds the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Keyring,
    File,
    Memory,
    Redis,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyring => "keyring",
            Self::File => "file",
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value of `KEYGATE_SECRET_STORE` that names no backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown secret store `{shown}`: use `keyring`, `file`, `redis` or `memory`")]
pub struct UnknownBackend {
    shown: String,
}

impl FromStr for Backend {
    type Err = UnknownBackend;

    /// Parses `keyring`, `file`, `redis` or `memory` (any case, surrounding blanks ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "keyring" => Ok(Self::Keyring),
            "file" => Ok(Self::File),
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            _ => Err(UnknownBackend {
                shown: s.chars().take(32).collect(),
            }),
        }
    }
}

/// How [`open`] picks the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// The keychain when one answers a probe, else the encrypted file; an existing store
    /// in the data directory is kept (see `docs/secret-store.md`).
    #[default]
    Auto,
    /// This backend, no questions asked (`KEYGATE_SECRET_STORE`).
    Forced(Backend),
}

impl FromStr for Choice {
    type Err = UnknownBackend;

    /// `auto`, or anything [`Backend::from_str`] accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("auto") {
            Ok(Self::Auto)
        } else {
            s.parse().map(Self::Forced)
        }
    }
}

/// What the store knows about a secret without reading its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: SecretName,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    /// The value's length in bytes.
    pub size: usize,
    pub backend: Backend,
}

/// Why a store operation failed. Messages are one line, say what to do, and never hold a
/// secret value (names and paths are not secret).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the secret store is locked: run `keygate unlock`")]
    Locked,

    #[error(
        "wrong passphrase for {} (or its header was altered); try again, or restore the file from a backup",
        path.display()
    )]
    WrongPassphrase { path: PathBuf },

    #[error("the passphrase is empty: choose a non-empty one")]
    EmptyPassphrase,

    #[error(
        "{} is corrupt: {reason}; it was left as it is: restore it from a backup",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },

    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("keychain: cannot {action} `{name}`: {reason}")]
    Keychain {
        action: &'static str,
        name: String,
        reason: String,
    },

    #[error(
        "secrets were stored in the system keychain (see {}), but no keychain answers now: {reason}; start it, or set KEYGATE_SECRET_STORE=file to use the encrypted file instead",
        index.display()
    )]
    KeychainGone { index: PathBuf, reason: String },

    #[error("the operating system's random source failed: {0}")]
    Random(String),

    #[error("cryptography failed: {0}")]
    Crypto(String),

    /// The Redis store's Redis did not answer, or not as expected.
    #[error("{0}")]
    Cluster(String),

    /// `KEYGATE_SECRET_STORE=redis` without a Redis to keep it in.
    #[error(
        "KEYGATE_SECRET_STORE=redis needs the cluster's Redis: set KEYGATE_CLUSTER_REDIS_URL (or [cluster] redis_url)"
    )]
    NoRedis,
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A place secret values live. Implementations are cheap to share (`Arc<dyn SecretStore>`)
/// and safe to call from many threads; every call may block.
pub trait SecretStore: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;

    /// The value, or `None` when no secret has that name.
    fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, StoreError>;

    /// The value, from what the store holds in memory, if that is current as `mark`
    /// says (the sealed store: the nonce of the blob it last read); `None` when it cannot
    /// tell, and the caller reads with [`SecretStore::get`]. Never blocks.
    fn current(&self, name: &SecretName, mark: &[u8]) -> Option<Option<SecretValue>> {
        let _ = (name, mark);
        None
    }

    /// Creates or replaces a secret. `created_at` survives a replacement.
    fn set(&self, name: &SecretName, value: &SecretValue) -> Result<SecretMeta, StoreError>;

    /// Removes a secret; `false` when there was none.
    fn remove(&self, name: &SecretName) -> Result<bool, StoreError>;

    /// Every secret's metadata, sorted by name. Reads no value out of a keychain.
    fn list(&self) -> Result<Vec<SecretMeta>, StoreError>;

    /// Whether values are out of reach until [`SecretStore::unlock`]. Only the file store
    /// locks.
    fn is_locked(&self) -> bool {
        false
    }

    /// Makes values reachable with a passphrase (the file store); others accept anything.
    fn unlock(&self, passphrase: &SecretString) -> Result<(), StoreError> {
        let _ = passphrase;
        Ok(())
    }

    /// Forgets decrypted values and keys until the next unlock (the file store).
    fn lock(&self) {}

    /// Whether other processes change this store without this one hearing of it (the
    /// cluster's Redis store): then nothing read from it may be kept.
    fn is_shared(&self) -> bool {
        false
    }
}

/// What [`open`] needs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Where the store keeps its files: `$XDG_DATA_HOME/keygate`. Created 0700 if missing.
    pub data_dir: PathBuf,
    /// Which backend; [`Choice::Auto`] by default.
    pub choice: Choice,
    /// The file store's passphrase (`KEYGATE_STORE_PASSPHRASE`); without it the file store
    /// starts locked.
    pub passphrase: Option<SecretString>,
    /// Key-derivation cost for a secret file created by this process; existing files keep
    /// the cost written in their header. [`KdfParams::default`] is the strong setting.
    pub kdf: KdfParams,
    /// How long [`Choice::Auto`] waits for the keychain: [`DEFAULT_PROBE_TIMEOUT`].
    pub probe_timeout: Duration,
    /// The cluster's Redis (`KEYGATE_CLUSTER_REDIS_URL`), for the Redis store.
    pub redis_url: Option<SecretString>,
}

impl StoreConfig {
    /// Auto choice, no passphrase, strong key derivation.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            choice: Choice::Auto,
            passphrase: None,
            kdf: KdfParams::default(),
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            redis_url: None,
        }
    }
}

/// An open store and why it was chosen, for the daemon's startup line
/// (`secret store: file (no usable keychain: ...)`).
#[derive(Debug, Clone)]
pub struct Opened {
    pub store: Arc<dyn SecretStore>,
    pub why: String,
}

impl Opened {
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }
}

/// Opens the store `config` asks for. With [`Choice::Auto`] this may probe the keychain,
/// which takes up to `config.probe_timeout`.
///
/// A file store opened without a passphrase is locked; with a wrong one this fails with
/// [`StoreError::WrongPassphrase`].
pub fn open(config: &StoreConfig) -> Result<Opened, StoreError> {
    let (backend, why) = match config.choice {
        Choice::Forced(backend) => (backend, "set by configuration".to_owned()),
        Choice::Auto => auto::choose(&config.data_dir, config.probe_timeout)?,
    };
    let store: Arc<dyn SecretStore> = match backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        Backend::Keyring => Arc::new(KeyringStore::open(&config.data_dir)?),
        Backend::File => Arc::new(FileStore::open(
            &config.data_dir,
            config.passphrase.as_ref(),
            config.kdf,
        )?),
        Backend::Redis => {
            let url = config.redis_url.as_ref().ok_or(StoreError::NoRedis)?;
            Arc::new(RedisStore::open(
                secrecy::ExposeSecret::expose_secret(url),
                config.passphrase.as_ref(),
                config.kdf,
            )?)
        }
    };
    Ok(Opened { store, why })
}
