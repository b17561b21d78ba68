//! Connections from inside this process: `keygate --standalone` talks to its own gate
//! through the very server `keygated` runs — the same router, authentication and
//! limits — over in-memory pipes instead of a socket, so no command needs a second,
//! in-process copy of any route.

use super::Listener;

/// The accepting end of [`in_process`].
#[derive(Debug)]
pub struct InProcessListener(pub(super) tokio::sync::mpsc::Receiver<tokio::io::DuplexStream>);

/// The dialling end of [`in_process`]: each [`Dialer::dial`] is a new connection, served
/// exactly as one on the Unix socket (the same router, authentication and limits), over
/// an in-memory pipe instead of a socket. Nothing outside this process can reach it.
#[derive(Debug, Clone)]
pub struct Dialer(tokio::sync::mpsc::Sender<tokio::io::DuplexStream>);

/// How much one direction of an in-process connection buffers.
const PIPE: usize = 64 * 1024;

impl Dialer {
    /// A new connection to the in-process server; an error once it has stopped.
    pub async fn dial(&self) -> std::io::Result<tokio::io::DuplexStream> {
        let (ours, theirs) = tokio::io::duplex(PIPE);
        self.0.send(theirs).await.map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the gate has stopped",
            )
        })?;
        Ok(ours)
    }
}

/// A listener that only this process can dial, and its dialer.
pub fn in_process() -> (Dialer, Listener) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    (Dialer(tx), Listener::InProcess(InProcessListener(rx)))
}
