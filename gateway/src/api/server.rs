//! Serving the API on a Unix socket: the socket is made 0600 inside a 0700 directory, a
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
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, watch};

use super::Ctx;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another keygated is already serving on {}: stop it first", .0.display())]
    InUse(PathBuf),
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
        // 0700: nobody else may even reach the socket, whatever its own mode.
        crate::fsutil::ensure_private_dir(dir).map_err(io)?;
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

/// How long a client may take to send its headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves until `stop` turns true, then drains.
pub async fn serve_unix(
    listener: UnixListener,
    gate: Ctx,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!("connection refused: {max_connections} connections open");
                    continue;
                };
                let gate = Arc::clone(&gate);
                let service = service_fn(move |req| super::handle(Arc::clone(&gate), req));
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            _ = stop.changed() => break,
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
