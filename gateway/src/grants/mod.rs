//! Grants and their second clock: a grant's TTL starts at approval and is kept by a moka
//! cache with a per-entry expiry. moka hides an expired entry from `get` at once; its
//! eviction listener (fired during maintenance, which the daemon runs every half second)
//! tells the rest of the daemon so the audit log and approval messages can say so.
//!
//! The hot path is [`Grants::find`]: a read lock on a small per-agent index, then a cache
//! presence check. No disk, no await, no allocation.
//!
//! `Grants` alone owns the cache, its per-agent index, and [`watch`]ing: every way a grant
//! starts or ends goes through here, so watchers always hear of it.

pub mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use keygate_policies::Approvers;
use keygate_proto::api::{GrantRef, GrantView};
use keygate_proto::duration::rfc3339;
use keygate_proto::{GrantId, RequestId, SecretName};
use moka::notification::RemovalCause;

use keygate_proto::api::{GrantStatus, GrantWatch};
use tokio::sync::mpsc;

use self::watch::{Watch, WatchError};
use crate::identity::Agent;
use crate::requests::Request;

/// A live grant. Values are never copied into it: they are read from the store at release.
#[derive(Debug)]
pub struct Grant {
    pub id: GrantId,
    pub request: RequestId,
    pub agent: Agent,
    pub secrets: Vec<SecretName>,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    pub ttl: Duration,
    pub approved_by: Vec<String>,
    pub reuse: bool,
    /// Who may approve requests like the one behind it: they may also see and revoke it.
    pub approvers: Approvers,
    /// SHA-256 of the argv the grant is bound to (`keygate exec`): only reads that
    /// present it are served.
    pub command_sha256: Option<String>,
    reference: GrantRef,
    /// Per secret: read once already (single-use grants are spent by it).
    spent: Vec<AtomicBool>,
    /// Per secret: the audit line for the first read has been written and synced.
    logged: Vec<AtomicBool>,
    log_lock: Mutex<()>,
    reads: AtomicU64,
    /// Set once by [`Grant::close`]: no read starts after it.
    closed: AtomicBool,
    /// Held (shared) by each read from the moment it is taken until its value is handed
    /// over; [`Grant::close`] waits for them, so a revocation that has returned leaves
    /// no read of this grant in flight.
    in_flight: tokio::sync::RwLock<()>,
}

impl Grant {
    /// The grant an approved request makes: its TTL starts now.
    pub fn for_request(request: &Request, ttl: Duration, approved_by: Vec<String>) -> Self {
        let now = SystemTime::now();
        let n = request.secrets.len();
        let id = GrantId::random();
        let reference = GrantRef {
            id: id.clone(),
            expires_at: rfc3339(now + ttl),
        };
        Self {
            id,
            reference,
            request: request.id.clone(),
            agent: request.agent.clone(),
            secrets: request.secrets.clone(),
            created_at: now,
            expires_at: now + ttl,
            ttl,
            approved_by,
            reuse: request.reuse,
            approvers: request.approvers.clone(),
            command_sha256: request.command_sha256.clone(),
            spent: (0..n).map(|_| AtomicBool::new(false)).collect(),
            logged: (0..n).map(|_| AtomicBool::new(false)).collect(),
            log_lock: Mutex::new(()),
            reads: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            in_flight: tokio::sync::RwLock::new(()),
        }
    }

    /// The id and end an agent is told with every release: formatted once, at approval,
    /// so a grant hit formats no time.
    pub fn reference(&self) -> GrantRef {
        self.reference.clone()
    }

    pub fn view(&self) -> GrantView {
        GrantView {
            id: self.id.clone(),
            agent: self.agent.name.clone(),
            secrets: self.secrets.clone(),
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
            approved_by: self.approved_by.clone(),
            reuse: self.reuse,
            request: self.request.clone(),
            reads: self.reads(),
        }
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn index_of(&self, secret: &SecretName) -> Option<usize> {
        self.secrets.iter().position(|s| s == secret)
    }

    /// Takes one read of `secret` under this grant: `None` when it does not cover it, it
    /// has ended, or (single use) it was read already.
    fn take(&self, secret: &SecretName, now: SystemTime) -> Option<usize> {
        let i = self.index_of(secret)?;
        if now >= self.expires_at {
            return None;
        }
        if !self.reuse && self.spent[i].swap(true, Ordering::AcqRel) {
            return None;
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        Some(i)
    }

    /// Runs `write` once per secret of this grant, before the first read of it is
    /// answered; later reads share that audit line. When `write` fails, the read fails.
    pub fn log_first_read<E>(
        &self,
        secret: &SecretName,
        write: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(i) = self.index_of(secret) else {
            return Ok(());
        };
        if self.logged[i].load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self
            .log_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.logged[i].load(Ordering::Acquire) {
            write()?;
            self.logged[i].store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Holds the grant open for one read, until the guard is dropped: `None` once it is
    /// closed (revoked).
    pub async fn hold(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        let guard = self.in_flight.read().await;
        (!self.closed.load(Ordering::Acquire)).then_some(guard)
    }

    /// Closes the grant to new reads and waits for those in flight: after this, its read
    /// count is final and nothing more is released under it.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        drop(self.in_flight.write().await);
    }

    /// Gives a single-use read back (its audit line could not be written).
    pub fn give_back(&self, secret: &SecretName) {
        if let Some(i) = self.index_of(secret) {
            self.spent[i].store(false, Ordering::Release);
            self.reads.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Tells each grant's own TTL to moka.
struct GrantExpiry;

impl moka::Expiry<GrantId, Arc<Grant>> for GrantExpiry {
    fn expire_after_create(
        &self,
        _key: &GrantId,
        value: &Arc<Grant>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// A grant that ended on its own (its TTL ran out).
#[derive(Debug)]
pub struct Ended {
    pub grant: Arc<Grant>,
}

/// Every live grant.
pub struct Grants {
    cache: moka::future::Cache<GrantId, Arc<Grant>>,
    by_agent: Arc<RwLock<HashMap<Agent, Vec<Arc<Grant>>>>>,
    watch: Arc<Watch>,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants")
            .field("live", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Grants {
    /// The grant table, and a receiver of the grants that expire.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Ended>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let by_agent: Arc<RwLock<HashMap<Agent, Vec<Arc<Grant>>>>> = Arc::default();
        let index = Arc::clone(&by_agent);
        let watch = Arc::new(Watch::default());
        let watching = Arc::clone(&watch);
        let cache = moka::future::Cache::builder()
            .expire_after(GrantExpiry)
            .eviction_listener(move |_id, grant: Arc<Grant>, cause| {
                unindex(&index, &grant);
                if cause == RemovalCause::Expired {
                    watching.ended(&grant.id, GrantStatus::Expired);
                    let _ = tx.send(Ended { grant });
                }
            })
            .build();
        (
            Self {
                cache,
                by_agent,
                watch,
            },
            rx,
        )
    }

    /// Makes a grant live and known to watchers.
    pub async fn insert(&self, grant: Arc<Grant>) {
        self.watch.issued(&grant);
        self.by_agent
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(grant.agent.clone())
            .or_default()
            .push(Arc::clone(&grant));
        self.cache.insert(grant.id.clone(), grant).await;
    }

    /// The hot path: a live grant of `agent` that covers `secret` and can still be read,
    /// with the read taken. A grant bound to a command serves only reads presenting that
    /// command's hash.
    pub fn find(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
    ) -> Option<Arc<Grant>> {
        self.find_at(agent, secret, command, SystemTime::now())
    }

    /// [`Grants::find`] as of `now` (tests move the clock).
    fn find_at(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
        now: SystemTime,
    ) -> Option<Arc<Grant>> {
        let index = self
            .by_agent
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        index
            .get(agent)?
            .iter()
            .find(|g| {
                g.index_of(secret).is_some()
                    && g.command_sha256
                        .as_deref()
                        .is_none_or(|bound| Some(bound) == command)
                    // moka hides an expired entry at once, before its listener runs; a
                    // presence check is no read for its popularity sketch, and no await.
                    && self.cache.contains_key(&g.id)
                    && g.take(secret, now).is_some()
            })
            .cloned()
    }

    pub async fn get(&self, id: &GrantId) -> Option<Arc<Grant>> {
        self.cache.get(id).await
    }

    /// Ends a grant before its time (revocation); the caller closes and audits it.
    pub async fn revoke(&self, id: &GrantId) -> Option<Arc<Grant>> {
        let gone = self.cache.remove(id).await;
        if gone.is_some() {
            self.watch.ended(id, GrantStatus::Revoked);
        }
        gone
    }

    /// A secret's value changed: watchers of grants that cover it hear of it.
    pub fn secret_changed(&self, name: SecretName) {
        self.watch.secret_changed(name);
    }

    /// Waits on a grant for `keygate exec` (see [`Watch::wait`]); `agent` is `None` for
    /// the operator.
    pub async fn watch(
        &self,
        id: &GrantId,
        agent: Option<&Agent>,
        since: u64,
        wait: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<GrantWatch, WatchError> {
        self.watch.wait(id, agent, since, wait, stop).await
    }

    /// Live grants, soonest to end first.
    pub fn list(&self) -> Vec<Arc<Grant>> {
        let now = SystemTime::now();
        let mut all: Vec<Arc<Grant>> = self
            .cache
            .iter()
            .map(|(_, g)| g)
            .filter(|g| g.expires_at > now)
            .collect();
        all.sort_by_key(|g| g.expires_at);
        all
    }

    /// Lets moka notice expiries; the daemon calls it on a short interval.
    pub async fn tick(&self) {
        self.cache.run_pending_tasks().await;
    }

    /// Forgets grants that ended over an hour ago.
    pub fn purge(&self) {
        self.watch.purge();
    }
}

fn unindex(index: &RwLock<HashMap<Agent, Vec<Arc<Grant>>>>, grant: &Grant) {
    let mut index = index
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(list) = index.get_mut(&grant.agent) {
        list.retain(|g| g.id != grant.id);
        if list.is_empty() {
            index.remove(&grant.agent);
        }
    }
}

#[cfg(test)]
mod tests;
