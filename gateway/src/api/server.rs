//! Serving the API on a Unix socket: the socket is made 0600 inside a 0700 directory of
//! this user's (one owned by someone else, or open to others, is refused), a
//! stale socket left by a dead daemon is replaced, and a live daemon makes a second one
//! refuse to start. Each listener caps its connections on its own, the Unix socket keeps
//! a reserve for the operator, a connection with nothing in flight is closed after the
//! idle timeout (from its very first byte: a client that sends nothing is no exception),
//! and shutdown is graceful.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;

use super::{ApiError, Ctx};

mod in_process;
pub use in_process::{Dialer, InProcessListener, in_process};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another keygated is already serving on {}: stop it first", .0.display())]
    InUse(PathBuf),
    #[error(transparent)]
    RuntimeDir(#[from] crate::fsutil::RuntimeDirError),
    #[error("cannot listen on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the daemon's socket.
pub fn bind_unix(path: &Path) -> Result<UnixListener, BindError> {
    use std::os::unix::fs::PermissionsExt as _;
    let io = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        // 0700 and ours: nobody else may even reach the socket, whatever its own mode, nor
        // have put one there for us to find.
        crate::fsutil::ensure_runtime_dir(dir)?;
    }
    if path.exists() {
        // A socket that answers belongs to a live daemon; one that refuses is stale.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(BindError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);

/// What each listener lets clients hold.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections each listener holds at once (the Unix socket and the TCP listener
    /// have one such cap each: a flood on one never takes the other's slots).
    pub max_connections: usize,
    /// Extra slots on the Unix socket, used only when every ordinary one is busy
    /// with a request, and serving only `/healthz` and the operator's token.
    pub operator_reserve: usize,
    /// How long a connection may go without a request in flight: from accept to its
    /// first request (TLS handshake, protocol preface and headers included), and
    /// between requests. Then it is closed.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            operator_reserve: 8,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// The listeners the daemon serves on.
pub enum Listener {
    Unix(UnixListener),
    /// TCP, with TLS unless `None` (plain HTTP, loopback only).
    Tcp(TcpListener, Option<TlsAcceptor>),
    /// Connections from inside this process ([`in_process`]): `keygate --standalone`.
    InProcess(InProcessListener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(l) => f.debug_tuple("Unix").field(l).finish(),
            Self::Tcp(l, tls) => f
                .debug_tuple("Tcp")
                .field(l)
                .field(&tls.as_ref().map(|_| "tls"))
                .finish(),
            Self::InProcess(_) => f.write_str("InProcess"),
        }
    }
}

/// One connection's activity: how many requests it has in flight, since when it has
/// had none, and whether it was told to go. Atomics, not a lock: every request touches
/// it.
#[derive(Debug)]
struct Activity {
    busy: AtomicUsize,
    /// When it last had nothing in flight, as nanoseconds since [`clock_base`].
    idle_since: AtomicU64,
    evicted: AtomicBool,
    wake: Notify,
}

/// The common origin of every connection's idle clock (so they compare).
fn clock_base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn since_base(t: Instant) -> u64 {
    let d = t.saturating_duration_since(clock_base());
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

impl Activity {
    fn new() -> Self {
        Self {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(since_base(Instant::now())),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && !self.evicted.load(Ordering::Acquire)
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// A request was answered within the service call at `now` (no [`Busy`] held): the
    /// connection was in use then.
    fn answered_at(&self, now: Instant) {
        if self.busy.load(Ordering::Acquire) == 0 {
            self.idle_since.store(since_base(now), Ordering::Release);
        }
    }

    fn idle_since(&self) -> Instant {
        clock_base() + Duration::from_nanos(self.idle_since.load(Ordering::Acquire))
    }

    /// Resolves once the connection has been idle for `idle`, or was evicted.
    ///
    /// Requests do not wake it: the timer fires at the deadline the connection had when
    /// it was set, and the deadline is read again then (a request since moves it on).
    /// So a busy connection costs no timer or wake-up per request; only eviction wakes
    /// it early.
    async fn expired(&self, idle: Duration) {
        loop {
            if self.evicted.load(Ordering::Acquire) {
                return;
            }
            let deadline = if self.busy.load(Ordering::Acquire) == 0 {
                self.idle_since() + idle
            } else {
                // In flight now: look again after a whole idle period at the latest.
                Instant::now() + idle
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }
}

/// A request in flight; dropping it (answered, or abandoned) may make the connection
/// idle again.
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // The idle clock is set before the count drops: whoever sees it at 0 reads a
        // time no earlier than this request's end.
        let now = since_base(Instant::now());
        self.0.idle_since.store(now, Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One listener's connections.
#[derive(Debug)]
struct Pool {
    cap: usize,
    reserve: usize,
    inner: Mutex<PoolInner>,
}

#[derive(Debug, Default)]
struct PoolInner {
    next: u64,
    ordinary: usize,
    reserved: usize,
    conns: HashMap<u64, (bool, Arc<Activity>)>,
}

/// A connection's place in its pool, given back when the connection ends.
struct Slot {
    pool: Arc<Pool>,
    id: u64,
    reserved: bool,
    activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.pool.lock();
        if inner.conns.remove(&self.id).is_some() {
            if self.reserved {
                inner.reserved -= 1;
            } else {
                inner.ordinary -= 1;
            }
        }
    }
}

impl Pool {
    fn new(cap: usize, reserve: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            reserve,
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a new connection. When the ordinary slots are full, the connection
    /// that has gone longest without a request in flight is closed to make room (an
    /// ordinary one first): connections that send nothing cannot keep out one that
    /// asks something at once. When every slot is busy, the reserve (if any) takes
    /// it; past that, `None`: the connection is closed at once.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut inner = self.lock();
        let reserved = if inner.ordinary < self.cap {
            false
        } else if let Some((id, reserved)) = Self::longest_idle(&inner) {
            if let Some((_, activity)) = inner.conns.remove(&id) {
                activity.evict();
            }
            if reserved {
                inner.reserved -= 1;
            } else {
                inner.ordinary -= 1;
            }
            reserved
        } else if inner.reserved < self.reserve {
            true
        } else {
            return None;
        };
        let id = inner.next;
        inner.next += 1;
        let activity = Arc::new(Activity::new());
        inner.conns.insert(id, (reserved, Arc::clone(&activity)));
        if reserved {
            inner.reserved += 1;
        } else {
            inner.ordinary += 1;
        }
        Some(Slot {
            pool: Arc::clone(self),
            id,
            reserved,
            activity,
        })
    }

    fn longest_idle(inner: &PoolInner) -> Option<(u64, bool)> {
        inner
            .conns
            .iter()
            .filter(|(_, (_, a))| a.is_idle())
            .map(|(id, (reserved, a))| (*reserved, a.idle_since(), *id))
            // Ordinary slots first (`false` sorts first), then the longest idle.
            .min()
            .map(|(reserved, _, id)| (id, reserved))
    }
}

/// What every connection task needs.
struct Shared {
    gate: Ctx,
    builder: auto::Builder<TokioExecutor>,
    idle: Duration,
}

/// Serves every listener until `stop` turns true, then drains.
///
/// Each listener has its own pool of `max_connections` slots, and the Unix socket
/// `operator_reserve` more. A connection with no request in flight is closed
/// `idle_timeout` after it connected or after its last answer, whatever it sends
/// meanwhile (nothing, half a preface, a TLS handshake, half a header); when a pool is
/// full, the longest idle connection makes room for a new one.
pub async fn serve(
    listeners: Vec<Listener>,
    gate: Ctx,
    limits: ServerLimits,
    stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection's own idle clock (`Activity`) already cuts a client that is slow
        // with its headers; hyper's timer would cost a timer entry per request on top.
        .header_read_timeout(None)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .max_concurrent_streams(64);
    let shared = Arc::new(Shared {
        gate,
        builder,
        idle: limits.idle_timeout,
    });
    // Every connection task holds a sender; when all are gone, everything has drained.
    let (alive, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let reserve = match listener {
            Listener::Unix(_) => limits.operator_reserve,
            Listener::Tcp(..) | Listener::InProcess(_) => 0,
        };
        tasks.spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            Pool::new(limits.max_connections, reserve),
            stop.clone(),
            alive.clone(),
        ));
    }
    drop(alive);
    while tasks.join_next().await.is_some() {}
    if tokio::time::timeout(DRAIN, drained.recv()).await.is_err() {
        tracing::warn!(
            "some connections were still open after {}s",
            DRAIN.as_secs()
        );
    }
}

/// Serves on the Unix socket alone.
pub async fn serve_unix(
    listener: UnixListener,
    gate: Ctx,
    limits: ServerLimits,
    stop: watch::Receiver<bool>,
) {
    serve(vec![Listener::Unix(listener)], gate, limits, stop).await;
}

/// A reserved slot serves the operator (and `/healthz`) only: agents that hold every
/// ordinary slot with long polls cannot take the last ones too.
fn reserve_may_serve(gate: &Ctx, req: &Request<Incoming>) -> bool {
    req.uri().path().trim_end_matches('/') == "/healthz"
        || super::auth::is_operator(gate, req.headers())
}

fn busy_answer() -> Response<Full<Bytes>> {
    let mut r = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        keygate_proto::api::ErrorCode::Busy,
        "every connection slot is taken; the last few are kept for the operator",
    )
    .into_response();
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

async fn serve_conn<I>(io: I, shared: Arc<Shared>, slot: Slot, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let gate = Arc::clone(&shared.gate);
    let activity = Arc::clone(&slot.activity);
    let reserved = slot.reserved;
    // What this connection remembers between grant hits (its token, its grant).
    let memo = std::cell::RefCell::new(super::Memo::default());
    let service = service_fn(move |req: Request<Incoming>| {
        use futures_util::future::Either;
        if reserved && !reserve_may_serve(&gate, &req) {
            return Either::Left(std::future::ready(Ok::<_, Infallible>(busy_answer())));
        }
        // A repeated grant hit needs no await: answered here, and the request dropped
        // before hyper reads on. One clock read serves the grant's time and the idle
        // clock.
        let now = Instant::now();
        let answer = super::answer_at_once(&gate, &req, now, &mut memo.borrow_mut());
        if let Some(answer) = answer {
            activity.answered_at(now);
            return Either::Left(std::future::ready(Ok(answer)));
        }
        let busy = Busy::begin(&activity);
        let gate = Arc::clone(&gate);
        // Boxed: hyper moves the service's future into place for every request, and
        // the router's is large; the answer at once is not.
        Either::Right(Box::pin(async move {
            let _busy = busy;
            super::handle(gate, req).await
        }))
    });
    let conn = shared.builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // Idle too long, evicted, or told to stop. Polled only when one of those wakes it,
    // not each time hyper wakes the connection (a few times a request).
    let ended = Box::pin(async {
        tokio::select! {
            () = slot.activity.expired(shared.idle) => false,
            _ = stop.wait_for(|s| *s) => true,
        }
    });
    match Until::new(conn.as_mut(), ended).await {
        Err(true) => {}
        // Done, or idle or evicted: closed, with nothing in flight to lose.
        Ok(_) | Err(false) => return,
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        () = slot.activity.expired(shared.idle) => {}
    }
}

/// Runs `main` until it ends (`Ok`) or `side` does (`Err`), polling `side` only after its
/// own waker fired: a `select!` would poll every branch on every wake of the task.
struct Until<M, S> {
    main: M,
    side: S,
    waker: Arc<SideWaker>,
    /// The task's waker as last registered in `waker.task` (and not taken by a wake
    /// since): a task's waker seldom changes, so it is not registered again each poll.
    registered: Option<std::task::Waker>,
}

/// Notes that the side future was woken, and wakes the task.
#[derive(Debug, Default)]
struct SideWaker {
    woken: std::sync::atomic::AtomicBool,
    task: futures_util::task::AtomicWaker,
}

impl std::task::Wake for SideWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, std::sync::atomic::Ordering::Release);
        self.task.wake();
    }
}

impl<M, S> Until<M, S> {
    fn new(main: M, side: S) -> Self {
        let waker = Arc::new(SideWaker::default());
        // Polled once at the start, so that it can register its wake-ups.
        waker
            .woken
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Self {
            main,
            side,
            waker,
            registered: None,
        }
    }
}

impl<M, S> std::future::Future for Until<M, S>
where
    M: std::future::Future + Unpin,
    S: std::future::Future + Unpin,
{
    type Output = Result<M::Output, S::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        if let Poll::Ready(out) = std::pin::Pin::new(&mut self.main).poll(cx) {
            return Poll::Ready(Ok(out));
        }
        // Registered before the flag is read: a wake after this reaches the task.
        if !self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.waker.task.register(cx.waker());
            self.registered = Some(cx.waker().clone());
        }
        if self.waker.woken.load(std::sync::atomic::Ordering::Acquire)
            && self
                .waker
                .woken
                .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            // The wake took the registered waker: register it again before the side
            // future is polled, so its next wake reaches the task too.
            self.waker.task.register(cx.waker());
            let waker = std::task::Waker::from(Arc::clone(&self.waker));
            let mut side_cx = std::task::Context::from_waker(&waker);
            if let Poll::Ready(out) = std::pin::Pin::new(&mut self.side).poll(&mut side_cx) {
                return Poll::Ready(Err(out));
            }
        }
        Poll::Pending
    }
}

async fn accept_loop(
    mut listener: Listener,
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    mut stop: watch::Receiver<bool>,
    alive: tokio::sync::mpsc::Sender<()>,
) {
    loop {
        match &mut listener {
            Listener::InProcess(InProcessListener(rx)) => {
                let pipe = tokio::select! {
                    p = rx.recv() => p,
                    _ = stop.wait_for(|s| *s) => break,
                };
                // Every dialer is gone: nobody can connect any more.
                let Some(pipe) = pipe else { break };
                let Some(slot) = pool.admit() else {
                    tracing::debug!("connection closed at once: every slot is busy");
                    continue;
                };
                let (shared, stop, alive) = (Arc::clone(&shared), stop.clone(), alive.clone());
                tokio::spawn(async move {
                    serve_conn(pipe, shared, slot, stop).await;
                    drop(alive);
                });
            }
            Listener::Unix(l) => {
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    _ = stop.wait_for(|s| *s) => break,
                };
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                };
                let Some(slot) = pool.admit() else {
                    tracing::debug!("connection closed at once: every slot is busy");
                    continue;
                };
                let (shared, stop, alive) = (Arc::clone(&shared), stop.clone(), alive.clone());
                tokio::spawn(async move {
                    serve_conn(stream, shared, slot, stop).await;
                    drop(alive);
                });
            }
            Listener::Tcp(l, tls) => {
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    _ = stop.wait_for(|s| *s) => break,
                };
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                };
                let Some(slot) = pool.admit() else {
                    tracing::debug!("connection closed at once: every slot is busy");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (shared, mut stop, alive) = (Arc::clone(&shared), stop.clone(), alive.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve_conn(stream, shared, slot, stop).await,
                        Some(acceptor) => {
                            // The handshake counts against the connection's idle time.
                            let tls = tokio::select! {
                                r = acceptor.accept(stream) => r,
                                () = slot.activity.expired(shared.idle) => {
                                    tracing::debug!("TLS handshake timed out");
                                    return;
                                }
                                _ = stop.wait_for(|s| *s) => return,
                            };
                            match tls {
                                Ok(tls) => serve_conn(tls, shared, slot, stop).await,
                                Err(e) => tracing::debug!("TLS handshake failed: {e}"),
                            }
                        }
                    }
                    drop(alive);
                });
            }
        }
    }
}

/// Accept failing (out of file descriptors, most likely): say so, and give the
/// connections being closed a moment rather than spinning.
async fn accept_failed(e: &std::io::Error) {
    tracing::warn!("cannot accept a connection: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_closes_the_longest_idle_then_uses_the_reserve() {
        let pool = Pool::new(2, 1);
        let a = pool.admit().unwrap();
        let b = pool.admit().unwrap();
        let _a_busy = Busy::begin(&a.activity);
        // Full: the idle one (b) makes room, the busy one (a) stays.
        let c = pool.admit().unwrap();
        assert!(!c.reserved);
        assert!(b.activity.evicted.load(Ordering::Acquire));
        assert!(!a.activity.evicted.load(Ordering::Acquire));
        let _c_busy = Busy::begin(&c.activity);
        // Every ordinary slot busy: the reserve.
        let d = pool.admit().unwrap();
        assert!(d.reserved);
        let d_busy = Busy::begin(&d.activity);
        // Everything busy: refused.
        assert!(pool.admit().is_none());
        drop(b);
        assert!(
            pool.admit().is_none(),
            "an evicted slot was already given back"
        );
        drop(d);
        drop(d_busy);
        assert!(pool.admit().unwrap().reserved);
    }

    #[tokio::test]
    async fn idle_time_runs_only_with_nothing_in_flight() {
        let idle = Duration::from_millis(100);
        let a = Arc::new(Activity::new());
        let busy = Busy::begin(&a);
        assert!(
            tokio::time::timeout(3 * idle, a.expired(idle))
                .await
                .is_err(),
            "busy connections are never idle"
        );
        let ended = Instant::now();
        drop(busy);
        // Only a guard against a hang: how soon after `idle` it fires is the machine's.
        tokio::time::timeout(Duration::from_secs(60), a.expired(idle))
            .await
            .expect("idle after its last answer");
        assert!(ended.elapsed() >= idle, "not before its idle time");
        let b = Arc::new(Activity::new());
        b.evict();
        // Ended well before its own idle deadline (an hour): by the eviction.
        tokio::time::timeout(
            Duration::from_secs(60),
            b.expired(Duration::from_secs(3600)),
        )
        .await
        .expect("evicted before its idle time");
    }
}
