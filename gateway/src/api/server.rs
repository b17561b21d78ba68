//! Serving the API on a Unix socket: the socket is made 0600 inside a 0700 directory of
//! this user's (one owned by someone else, or open to others, is refused), a
//! stale socket left by a dead daemon is replaced, and a live daemon makes a second one
//! refuse to start. Connections are capped, headers must arrive in time, and shutdown
//! is graceful.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::Ctx;

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

/// How long a client may take to send its headers, or finish a TLS handshake.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);

/// The listeners the daemon serves on.
pub enum Listener {
    Unix(UnixListener),
    /// TCP, with TLS unless `None` (plain HTTP, loopback only).
    Tcp(TcpListener, Option<TlsAcceptor>),
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
        }
    }
}

/// Serves every listener until `stop` turns true, then drains. One connection cap
/// covers them all: a client that opens many connections and sends nothing is cut off
/// by the header timeout and cannot hold more than its share of slots for long.
pub async fn serve(
    listeners: Vec<Listener>,
    gate: Ctx,
    max_connections: usize,
    stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .max_concurrent_streams(64);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(
            listener,
            Arc::clone(&gate),
            builder.clone(),
            Arc::clone(&slots),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// Serves on the Unix socket alone.
pub async fn serve_unix(
    listener: UnixListener,
    gate: Ctx,
    max_connections: usize,
    stop: watch::Receiver<bool>,
) {
    serve(vec![Listener::Unix(listener)], gate, max_connections, stop).await;
}

type Permit = tokio::sync::OwnedSemaphorePermit;

fn spawn_conn<I>(
    io: I,
    gate: &Ctx,
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    permit: Permit,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let gate = Arc::clone(gate);
    let service = service_fn(move |req| super::handle(Arc::clone(&gate), req));
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        let _ = conn.await;
        drop(permit);
    });
}

async fn accept_loop(
    listener: Listener,
    gate: Ctx,
    builder: auto::Builder<TokioExecutor>,
    slots: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    // TLS handshakes run in their own tasks and hand finished streams back here.
    let (done_tx, mut done) =
        tokio::sync::mpsc::unbounded_channel::<(TlsStream<TcpStream>, Permit)>();
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            Some((tls, permit)) = done.recv() => {
                spawn_conn(tls, &gate, &builder, &graceful, permit);
                continue;
            }
            _ = stop.changed() => break,
        };
        match &listener {
            Listener::Unix(l) => {
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    _ = stop.changed() => break,
                };
                if let Ok((stream, _)) = accepted {
                    spawn_conn(stream, &gate, &builder, &graceful, permit);
                }
            }
            Listener::Tcp(l, tls) => {
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    // Finished handshakes must not wait for the next client to arrive.
                    Some((tls, ready)) = done.recv() => {
                        spawn_conn(tls, &gate, &builder, &graceful, ready);
                        continue;
                    }
                    _ = stop.changed() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                match tls {
                    None => spawn_conn(stream, &gate, &builder, &graceful, permit),
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        let done_tx = done_tx.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(tls)) => {
                                    let _ = done_tx.send((tls, permit));
                                }
                                Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "some connections were still open after {}s",
            DRAIN.as_secs()
        );
    }
}
