//! One opaque value in Redis, read and replaced under a lock: where the cluster's secret
//! store (`KEYGATE_SECRET_STORE=redis`) keeps its sealed secrets, exactly the bytes the
//! file store writes to `secrets.kgv` (already encrypted: Redis never holds a value or
//! the passphrase).
//!
//! Synchronous, like the secret store that uses it (the daemon calls the store from
//! `spawn_blocking`): one blocking connection, made again after any error, every call
//! bounded by [`TIMEOUT`]. The lock is a key with an expiry and a random token; a write
//! goes through only while its writer still holds the lock, so a writer stalled past
//! the expiry cannot overwrite the next one's work.

use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::Script;

use crate::{ClusterError, KEY_PREFIX};

/// How long one command may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// How long a lock lives if its holder never releases it.
pub const LOCK_TTL: Duration = Duration::from_secs(30);
/// How long [`Blob::lock`] waits for another holder.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

static PUT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("state/scripts/put_locked.lua")));
/// How many connections a blob keeps (the blocking threads that read it at once).
const CONNECTIONS: usize = 4;

static GET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("state/scripts/get_bounded.lua")));
static UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("state/scripts/unlock.lua")));

struct Inner {
    client: redis::Client,
    /// A few connections, each used by one call at a time: reads on several threads
    /// do not queue behind one another.
    conns: [Mutex<Option<redis::Connection>>; CONNECTIONS],
    /// Where the next call starts looking for a free connection.
    next: std::sync::atomic::AtomicUsize,
    key: String,
    lock_key: String,
    shown: String,
}

/// One value in Redis under `{keygate}:NAME`.
#[derive(Clone)]
pub struct Blob(Arc<Inner>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("at", &self.0.shown)
            .finish_non_exhaustive()
    }
}

/// This process's hold on a blob's lock; released on drop.
#[derive(Debug)]
pub struct BlobLock {
    blob: Blob,
    token: String,
}

impl Drop for BlobLock {
    fn drop(&mut self) {
        let (lock_key, token) = (&self.blob.0.lock_key, &self.token);
        let _ = self
            .blob
            .call(|c| UNLOCK.key(lock_key).arg(token).invoke::<i64>(c));
    }
}

impl Blob {
    /// The blob `{keygate}:NAME` in the Redis at `url`. Connects lazily: only a URL that
    /// does not parse fails here.
    pub fn open(url: &str, name: &str) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url).map_err(|e| ClusterError::BadUrl(e.to_string()))?;
        let info = client.get_connection_info();
        let key = format!("{KEY_PREFIX}{name}");
        let shown = format!(
            "Redis {} (db {}), key {key}",
            info.addr(),
            info.redis_settings().db()
        );
        Ok(Self(Arc::new(Inner {
            client,
            conns: std::array::from_fn(|_| Mutex::new(None)),
            next: std::sync::atomic::AtomicUsize::new(0),
            lock_key: format!("{key}:lock"),
            key,
            shown,
        })))
    }

    /// Where it is, for messages: host, port, database and key, never a password.
    pub fn shown(&self) -> &str {
        &self.0.shown
    }

    /// Runs `f` on the connection, connecting first if need be; any error drops the
    /// connection so the next call makes a fresh one.
    fn call<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let start = self
            .0
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A free connection if there is one, else wait for the one this call started at.
        let free =
            (0..CONNECTIONS).find_map(|i| self.0.conns[(start + i) % CONNECTIONS].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => self.0.conns[start % CONNECTIONS]
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        };
        if slot.is_none() {
            let conn = self
                .0
                .client
                .get_connection_with_timeout(TIMEOUT)
                .map_err(|e| self.failed(e))?;
            conn.set_read_timeout(Some(TIMEOUT))
                .and_then(|()| conn.set_write_timeout(Some(TIMEOUT)))
                .map_err(|e| self.failed(e))?;
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(ClusterError::Unreachable("no connection".into()));
        };
        let result = f(conn);
        if result.is_err() {
            *slot = None;
        }
        result.map_err(|e| self.failed(e))
    }

    /// A Redis error, saying which Redis (never its password).
    fn failed(&self, e: redis::RedisError) -> ClusterError {
        match ClusterError::from(e) {
            ClusterError::Unreachable(why) => {
                ClusterError::Unreachable(format!("{}: {why}", self.0.shown))
            }
            other => other,
        }
    }

    /// The bytes, or `None` if the key does not exist. A value longer than `max` bytes is
    /// refused without being read; size and bytes are read in one step.
    pub fn get(&self, max: u64) -> Result<Option<Vec<u8>>, ClusterError> {
        let key = &self.0.key;
        let answer: redis::Value = self.call(|c| GET.key(key).arg(max).invoke(c))?;
        let redis::Value::Array(items) = answer else {
            return Err(ClusterError::Protocol(format!(
                "reading {} answered {answer:?}",
                self.0.shown
            )));
        };
        match items.as_slice() {
            [redis::Value::Int(2)] => Ok(None),
            [redis::Value::Int(1), redis::Value::BulkString(bytes)] => Ok(Some(bytes.clone())),
            [redis::Value::Int(0), redis::Value::Int(len)] => Err(ClusterError::Protocol(format!(
                "{} holds {len} bytes, more than the {max} a store may",
                self.0.shown
            ))),
            _ => Err(ClusterError::Protocol(format!(
                "reading {} answered unexpectedly",
                self.0.shown
            ))),
        }
    }

    /// Whether the key exists.
    pub fn exists(&self) -> Result<bool, ClusterError> {
        let n: i64 = self.call(|c| redis::cmd("EXISTS").arg(&self.0.key).query(c))?;
        Ok(n == 1)
    }

    /// Takes the blob's lock, waiting up to [`LOCK_WAIT`] for another holder.
    pub fn lock(&self) -> Result<BlobLock, ClusterError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| ClusterError::Protocol(e.to_string()))?;
        let token = hex::encode(nonce);
        let ttl = u64::try_from(LOCK_TTL.as_millis()).unwrap_or(u64::MAX);
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let set: Option<String> = self.call(|c| {
                redis::cmd("SET")
                    .arg(&self.0.lock_key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query(c)
            })?;
            if set.is_some() {
                return Ok(BlobLock {
                    blob: self.clone(),
                    token,
                });
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Protocol(format!(
                    "another node has held the lock on {} for over {LOCK_WAIT:?}",
                    self.0.shown
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the bytes, if `lock` (ours) is still held.
    pub fn put(&self, lock: &BlobLock, bytes: &[u8]) -> Result<(), ClusterError> {
        let (key, lock_key) = (&self.0.key, &self.0.lock_key);
        let written: i64 = self.call(|c| {
            PUT.key(key)
                .key(lock_key)
                .arg(bytes)
                .arg(&lock.token)
                .invoke(c)
        })?;
        if written == 1 {
            Ok(())
        } else {
            Err(ClusterError::Protocol(format!(
                "the lock on {} expired before the write: nothing was written",
                self.0.shown
            )))
        }
    }
}
