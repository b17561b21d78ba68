//! Grants and their second clock: a grant's TTL starts at approval and is kept by a moka
//! cache with a per-entry expiry. moka hides an expired entry from `get` at once; its
//! eviction listener (fired during maintenance, which the daemon runs every half second)
//! tells the rest of the daemon so the audit log and approval messages can say so.
//!
//! The hot path is [`Grants::find`]: a read lock on a small per-agent index, then the
//! grant's own flags and clock (not moka's table). No disk, no await, no allocation. A
//! reusable grant also keeps the answer it gave for each secret ([`Grant::answer`]), so a
//! repeated read builds nothing.
//!
//! `Grants` alone owns the cache, its per-agent index, and [`watch`]ing: every way a grant
//! starts, is extended or ends goes through here, so watchers always hear of it.
//!
//! A grant's end is stored in the grant itself and moka's expiry is computed from it, so
//! an extension moves the end and then re-puts the entry for moka to follow.

pub mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use keygate_policies::Approvers;
use keygate_proto::api::{GrantRef, GrantView};
use keygate_proto::{GrantId, RequestId, SecretName, Timestamp};
use moka::notification::RemovalCause;

use keygate_proto::api::{GrantStatus, GrantWatch};
use tokio::sync::mpsc;

use self::watch::{Watch, WatchError};
use crate::identity::Agent;
use crate::requests::Request;

/// A live grant. Values are read from the store at release; the only copy a grant holds
/// is a reusable grant's last answer per secret (the release JSON, zeroized when
/// dropped), which goes when the grant is closed or ends, or the value changes.
#[derive(Debug)]
pub struct Grant {
    pub id: GrantId,
    pub request: RequestId,
    pub agent: Agent,
    pub secrets: Vec<SecretName>,
    /// When it was approved: its TTL started then.
    pub created_at: SystemTime,
    /// When it ends, as nanoseconds since the Unix epoch: an extension moves it.
    ends: AtomicU64,
    pub ttl: Duration,
    /// The longest it may live from `created_at`, extensions included (the rule's
    /// `max_ttl` when it was filed).
    pub max_ttl: Duration,
    pub approved_by: Vec<String>,
    pub reuse: bool,
    /// Who may approve requests like the one behind it: they may also see and revoke it.
    pub approvers: Approvers,
    /// SHA-256 of the argv the grant is bound to (`keygate exec`): only reads that
    /// present it are served.
    pub command_sha256: Option<String>,
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
    /// Kept answers being handed out right now (they never wait, so they do without
    /// `in_flight`'s semaphore); [`Grant::close`] waits for these too.
    quick_reads: AtomicUsize,
    /// Set once the grant has left the table (revoked, or its TTL ran out in moka's
    /// clock): [`Grants::find`] no longer returns it.
    ended: AtomicBool,
    /// When it was made on the monotonic clock (with `created_at`). Reads check their
    /// time against it, so a wall clock set back does not stretch a grant; its end is
    /// no later than moka's entry (whose TTL starts at insertion, after this was set).
    born: Instant,
    /// Per secret (reusable grants only): the answer the first read gave, and the store
    /// generation its value was read in. Later reads in the same generation get the same
    /// bytes. Dropped when the grant is closed or ends; zeroized when the last copy goes.
    answers: Vec<Mutex<Option<Answer>>>,
}

/// What defines a grant: see [`Grant::restore`].
#[derive(Debug)]
pub struct Parts {
    pub id: GrantId,
    pub request: RequestId,
    pub agent: Agent,
    pub secrets: Vec<SecretName>,
    pub created_at: SystemTime,
    pub ends: SystemTime,
    pub ttl: Duration,
    pub max_ttl: Duration,
    pub approved_by: Vec<String>,
    pub reuse: bool,
    pub approvers: Approvers,
    pub command_sha256: Option<String>,
}

/// A release answer kept for the reads after the first. Its body holds the secret's
/// value, so its `Debug` (and so the grant's) shows only its size.
struct Answer {
    generation: u64,
    body: Bytes,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("generation", &self.generation)
            .field(
                "body",
                &format_args!("<{} bytes, redacted>", self.body.len()),
            )
            .finish()
    }
}

impl Grant {
    /// The grant an approved request makes: its TTL starts now.
    pub fn for_request(request: &Request, ttl: Duration, approved_by: Vec<String>) -> Self {
        let now = SystemTime::now();
        Self::restore(Parts {
            id: GrantId::random(),
            request: request.id.clone(),
            agent: request.agent.clone(),
            secrets: request.secrets.clone(),
            created_at: now,
            ends: now + ttl,
            ttl,
            max_ttl: request.max_ttl.max(ttl),
            approved_by,
            reuse: request.reuse,
            approvers: request.approvers.clone(),
            command_sha256: request.command_sha256.clone(),
        })
    }

    /// A grant from what defines it: a new one, or (in a cluster) this node's copy of
    /// one another node made, which starts with no read taken or logged here. Its
    /// monotonic birth is set back by the time since `created_at`, so its length is
    /// measured from approval on every node.
    pub fn restore(p: Parts) -> Self {
        let n = p.secrets.len();
        let age = SystemTime::now()
            .duration_since(p.created_at)
            .unwrap_or_default();
        let now = Instant::now();
        Self {
            id: p.id,
            request: p.request,
            agent: p.agent,
            secrets: p.secrets,
            created_at: p.created_at,
            ends: AtomicU64::new(nanos(p.ends)),
            ttl: p.ttl,
            max_ttl: p.max_ttl,
            approved_by: p.approved_by,
            reuse: p.reuse,
            approvers: p.approvers,
            command_sha256: p.command_sha256,
            spent: (0..n).map(|_| AtomicBool::new(false)).collect(),
            logged: (0..n).map(|_| AtomicBool::new(false)).collect(),
            log_lock: Mutex::new(()),
            reads: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            in_flight: tokio::sync::RwLock::new(()),
            quick_reads: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            born: now.checked_sub(age).unwrap_or(now),
            answers: (0..n).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Whether a read of `secret` presenting `command` may be served under this grant
    /// now (before taking it: a single-use one may be spent, or its wall-clock end
    /// passed).
    fn serves(&self, secret: &SecretName, command: Option<&str>) -> bool {
        self.index_of(secret).is_some() && self.serves_command(command) && self.live(Instant::now())
    }

    /// Whether a read presenting `command` matches the command the grant is bound to
    /// (any, when it is bound to none).
    fn serves_command(&self, command: Option<&str>) -> bool {
        self.command_sha256
            .as_deref()
            .is_none_or(|bound| Some(bound) == command)
    }

    /// Whether the grant is still in the table and within its time at `now`, as moka
    /// would say (it hides an expired entry at once, before its listener runs; the
    /// grant's own deadline is no later, and `ended` is set as it leaves the table),
    /// without asking moka: neither costs a hash or a trip through moka.
    fn live(&self, now: Instant) -> bool {
        // Its length, from the one stored end (an extension moves only that), measured
        // on the monotonic clock from `born`.
        let length = self
            .expires_at()
            .duration_since(self.created_at)
            .unwrap_or_default();
        !self.ended.load(Ordering::Acquire) && now.saturating_duration_since(self.born) < length
    }

    fn answers_of(&self, i: usize) -> Option<std::sync::MutexGuard<'_, Option<Answer>>> {
        self.answers
            .get(i)
            .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The answer kept for `secret`, if it was built in store generation `generation`
    /// (the value has not changed since) and the grant is still open.
    pub fn answer(&self, secret: &SecretName, generation: u64) -> Option<Bytes> {
        self.answer_at(self.index_of(secret)?, generation)
    }

    /// [`Grant::answer`] for its `i`th secret.
    fn answer_at(&self, i: usize, generation: u64) -> Option<Bytes> {
        if !self.reuse || !self.logged.get(i)?.load(Ordering::Acquire) {
            return None;
        }
        let mut kept = self.answers_of(i)?;
        match kept.as_ref() {
            Some(a) if a.generation == generation => Some(a.body.clone()),
            // Stale: the value changed since. Not kept a moment longer.
            Some(_) => {
                *kept = None;
                None
            }
            None => None,
        }
    }

    /// Keeps the answer for `secret` (built from a value read in store generation
    /// `generation`) for the next reads, unless the grant is single-use, closed or ended.
    pub fn keep_answer(&self, secret: &SecretName, generation: u64, body: &Bytes) {
        let Some(i) = self.index_of(secret) else {
            return;
        };
        if !self.reuse {
            return;
        }
        if let Some(mut kept) = self.answers_of(i) {
            // Checked under the lock `forget_answers` takes: an answer is never kept
            // after the grant's have been dropped.
            if !self.closed.load(Ordering::Acquire) && !self.ended.load(Ordering::Acquire) {
                *kept = Some(Answer {
                    generation,
                    body: body.clone(),
                });
            }
        }
    }

    /// A repeated read of `secret` answered with the kept answer, the read counted: only
    /// when the grant is reusable, open (held, as [`Grant::hold`] would, without
    /// waiting), within its time, and keeps an answer from store generation
    /// `generation`. `None` takes and counts nothing.
    fn take_kept(&self, i: usize, generation: u64) -> Option<Bytes> {
        if !self.reuse {
            return None;
        }
        // Counted in, then `closed` read; `close` sets `closed`, then reads the count
        // (all sequentially consistent): a read that gets in before it is in the final
        // tally, one after it sees `closed`.
        self.quick_reads.fetch_add(1, Ordering::SeqCst);
        let body = if self.closed.load(Ordering::SeqCst) {
            None
        } else {
            self.answer_at(i, generation).inspect(|_| {
                // Reusable, and within its time (checked by the caller): nothing to
                // spend.
                self.reads.fetch_add(1, Ordering::Relaxed);
            })
        };
        self.quick_reads.fetch_sub(1, Ordering::SeqCst);
        body
    }

    /// Drops the kept answers: for `secret`, or (`None`) all of them.
    fn forget_answers_for(&self, secret: Option<&SecretName>) {
        for (i, s) in self.secrets.iter().enumerate() {
            if secret.is_none_or(|n| n == s)
                && let Some(mut kept) = self.answers_of(i)
            {
                *kept = None;
            }
        }
    }

    /// Drops every kept answer (the grant is closed or has ended).
    fn forget_answers(&self) {
        self.forget_answers_for(None);
    }

    /// Marks the grant gone from the table, and drops its answers.
    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.forget_answers();
    }

    /// The id and end an agent is told with every release.
    pub fn reference(&self) -> GrantRef {
        GrantRef {
            id: self.id.clone(),
            expires_at: Timestamp::from(self.expires_at()),
        }
    }

    /// When it ends (later after an extension).
    pub fn expires_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.ends.load(Ordering::Acquire))
    }

    /// The latest it may end: approval time + its `max_ttl`.
    pub fn cap(&self) -> SystemTime {
        self.created_at + self.max_ttl
    }

    /// Where an extension by `by` would move its end: `by` later, never past
    /// [`Grant::cap`]. `None` when that adds nothing (it already ends at the cap).
    pub fn extended_end(&self, by: Duration) -> Option<SystemTime> {
        let now = self.expires_at();
        let end = now.checked_add(by).unwrap_or(self.cap()).min(self.cap());
        (end > now).then_some(end)
    }

    /// How long until it ends, for moka.
    fn remaining(&self) -> Duration {
        self.expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }

    pub fn view(&self) -> GrantView {
        GrantView {
            id: self.id.clone(),
            agent: self.agent.name.clone(),
            secrets: self.secrets.clone(),
            created_at: Timestamp::from(self.created_at),
            expires_at: Timestamp::from(self.expires_at()),
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
        if now >= self.expires_at() {
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
        self.closed.store(true, Ordering::SeqCst);
        drop(self.in_flight.write().await);
        // Kept answers in flight never wait on anything: their end is moments away.
        while self.quick_reads.load(Ordering::SeqCst) != 0 {
            tokio::task::yield_now().await;
        }
        self.forget_answers();
    }

    /// Gives a single-use read back (its audit line could not be written).
    pub fn give_back(&self, secret: &SecretName) {
        if let Some(i) = self.index_of(secret) {
            self.spent[i].store(false, Ordering::Release);
            self.reads.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Nanoseconds since the Unix epoch (0 before it; saturating far after it).
fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Tells moka each grant's own end: at creation, and again when an extension re-puts it.
struct GrantExpiry;

impl moka::Expiry<GrantId, Arc<Grant>> for GrantExpiry {
    fn expire_after_create(
        &self,
        _key: &GrantId,
        value: &Arc<Grant>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.remaining())
    }

    fn expire_after_update(
        &self,
        _key: &GrantId,
        value: &Arc<Grant>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.remaining())
    }
}

/// Why a grant could not be extended.
#[derive(Debug)]
pub enum ExtendError<E> {
    /// No such live grant.
    NotFound,
    /// It already ends at approval time + its `max_ttl`; the cap is given.
    AtCap(SystemTime),
    /// The commit (its audit line) failed: nothing changed.
    Commit(E),
}

/// A grant that ended on its own (its TTL ran out).
#[derive(Debug)]
pub struct Ended {
    pub grant: Arc<Grant>,
}

/// Each agent's live grants, looked up on every grant hit. An agent hashes as its
/// random serial, so the index needs no SipHash: the keys are agents the operator added,
/// not input an attacker picks.
type AgentIndex = HashMap<Agent, Vec<Arc<Grant>>, std::hash::BuildHasherDefault<SerialHasher>>;

/// Spreads an agent's random serial over the hash (a multiply by an odd constant, for
/// the high bits hashbrown reads); other input goes through FNV-1a.
#[derive(Default)]
struct SerialHasher(u64);

impl std::hash::Hasher for SerialHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The grant that last served a connection's grant hit, tried first on its next one
/// (see [`Grants::take_kept_where`]).
#[derive(Debug, Default)]
pub struct LastGrant(Option<Arc<Grant>>);

/// Every live grant.
pub struct Grants {
    cache: moka::future::Cache<GrantId, Arc<Grant>>,
    by_agent: Arc<RwLock<AgentIndex>>,
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
        let by_agent: Arc<RwLock<AgentIndex>> = Arc::default();
        let index = Arc::clone(&by_agent);
        let watch = Arc::new(Watch::default());
        let watching = Arc::clone(&watch);
        let cache = moka::future::Cache::builder()
            .expire_after(GrantExpiry)
            .eviction_listener(move |_id, grant: Arc<Grant>, cause| {
                // An extension re-puts the same grant: it stays live and indexed.
                if cause == RemovalCause::Replaced {
                    return;
                }
                grant.end();
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
            .find(|g| g.serves(secret, command) && g.take(secret, now).is_some())
            .cloned()
    }

    /// The hot path's hot path: a repeated read answered at once with what the grant
    /// [`find`](Grants::find) would take keeps for it (see [`Grant::answer`]). `None`
    /// when that grant keeps nothing usable, or there is none: nothing was taken, and
    /// the read goes the whole way.
    pub fn take_kept(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
        generation: u64,
    ) -> Option<Bytes> {
        self.take_kept_where(
            agent,
            |s| s == secret,
            command,
            generation,
            Instant::now(),
            &mut LastGrant::default(),
        )
    }

    /// [`Grants::take_kept`] for the secret `is_secret` picks out (so a caller can match
    /// a name as it came, without building a [`SecretName`]), at `now`. `last` is the
    /// caller's memory of the grant that served it last (one connection's): tried first,
    /// it spares the index and its lock, which every connection shares.
    pub fn take_kept_where(
        &self,
        agent: &Agent,
        is_secret: impl Fn(&SecretName) -> bool,
        command: Option<&str>,
        generation: u64,
        now: Instant,
        last: &mut LastGrant,
    ) -> Option<Bytes> {
        let serves = |g: &Arc<Grant>| {
            let i = g.secrets.iter().position(&is_secret)?;
            (g.serves_command(command) && g.live(now)).then_some(i)
        };
        // The same checks as through the index: a grant revoked or ended since fails
        // `live` (and a closed one `take_kept`), whoever still holds it.
        if let Some(g) = &last.0
            && g.agent == *agent
            && let Some(i) = serves(g)
        {
            return g.take_kept(i, generation);
        }
        let index = self
            .by_agent
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (grant, i) = index
            .get(agent)?
            .iter()
            .find_map(|g| serves(g).map(|i| (g, i)))?;
        last.0 = Some(Arc::clone(grant));
        grant.take_kept(i, generation)
    }

    pub async fn get(&self, id: &GrantId) -> Option<Arc<Grant>> {
        self.cache.get(id).await
    }

    /// Ends a grant before its time (revocation); the caller closes and audits it.
    pub async fn revoke(&self, id: &GrantId) -> Option<Arc<Grant>> {
        let gone = self.cache.remove(id).await;
        if let Some(g) = &gone {
            g.end();
            self.watch.ended(id, GrantStatus::Revoked);
        }
        gone
    }

    /// Moves a live grant's end `by` later (never past its cap). `commit` runs first,
    /// with the new end, under moka's per-entry lock (so extensions of one grant never
    /// interleave, and one that races its expiry finds nothing): when it fails, nothing
    /// changes. Then the end moves, watchers hear of it, and moka follows.
    pub async fn extend<E: Send + Sync + 'static>(
        &self,
        id: &GrantId,
        by: impl FnOnce(&Grant) -> Duration,
        commit: impl FnOnce(&Grant, SystemTime) -> Result<(), E>,
    ) -> Result<Arc<Grant>, ExtendError<E>> {
        use moka::ops::compute::{CompResult, Op};
        let done = self
            .cache
            .entry_by_ref(id)
            .and_try_compute_with(|entry| {
                let step = || {
                    let grant = entry.ok_or(ExtendError::NotFound)?.into_value();
                    if grant.closed.load(Ordering::Acquire) {
                        return Err(ExtendError::NotFound);
                    }
                    let end = grant
                        .extended_end(by(&grant))
                        .ok_or(ExtendError::AtCap(grant.cap()))?;
                    commit(&grant, end).map_err(ExtendError::Commit)?;
                    grant.ends.store(nanos(end), Ordering::Release);
                    // Kept answers name the old end: the next read builds a new one.
                    grant.forget_answers();
                    self.watch.extended(&grant.id, end);
                    Ok(Op::Put(grant))
                };
                std::future::ready(step())
            })
            .await?;
        match done {
            CompResult::ReplacedWith(e) | CompResult::Inserted(e) | CompResult::Unchanged(e) => {
                Ok(e.into_value())
            }
            CompResult::StillNone(_) | CompResult::Removed(_) => Err(ExtendError::NotFound),
        }
    }

    /// A secret's value changed: watchers of grants that cover it hear of it, and the
    /// answers kept with the old value go (they would not be served again anyway: the
    /// store's generation moved on).
    pub fn secret_changed(&self, name: SecretName) {
        self.forget_answers(Some(&name));
        self.watch.secret_changed(name);
    }

    /// Drops kept answers: those for `secret`, or (`None`) all (the store was locked).
    pub fn forget_answers(&self, secret: Option<&SecretName>) {
        let index = self
            .by_agent
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for g in index.values().flatten() {
            g.forget_answers_for(secret);
        }
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
            .filter(|g| g.expires_at() > now)
            .collect();
        all.sort_by_key(|g| g.expires_at());
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

fn unindex(index: &RwLock<AgentIndex>, grant: &Grant) {
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
