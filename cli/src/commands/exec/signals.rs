//! The signals `keygate exec` passes on to its child, and how it tells a signal the
//! terminal sent from one a process sent.
//!
//! The child stays in keygate's process group, so it is in the terminal's foreground
//! group when keygate is: Ctrl-C, Ctrl-\\ and a window-size change reach it from the
//! terminal directly, the way they reach any program, and it can read the terminal
//! without being stopped. Forwarding those too would deliver them twice. So each caught
//! signal comes with its origin (`siginfo`): one the kernel raised for the terminal
//! (`SI_KERNEL`) is not forwarded, the child has it already; one a process sent (`kill`,
//! a supervisor stopping keygate) is.
//!
//! The signals are caught with handlers, not blocked: a blocked mask would be inherited
//! by the child, and a handled signal is reset to its default in the child by `exec`.

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;
use tokio::sync::mpsc;

/// The signals keygate catches while the child runs.
pub const CAUGHT: [i32; 5] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH];

/// One caught signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    pub signal: i32,
    /// Raised by the kernel for our terminal: the child, in the same foreground process
    /// group, got it as well.
    pub from_terminal: bool,
}

impl Caught {
    /// Whether it asks the child to end (so a pending restart should not happen).
    pub fn ends(self) -> bool {
        self.signal != SIGWINCH
    }
}

/// The caught signals, as they come.
#[derive(Debug)]
pub struct Signals {
    rx: mpsc::UnboundedReceiver<Caught>,
}

impl Signals {
    /// Catches [`CAUGHT`] from now on (they no longer end keygate), read in a thread of
    /// their own.
    pub fn catch() -> io::Result<Self> {
        let mut signals = SignalsInfo::<WithOrigin>::new(CAUGHT)?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("keygate-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    let caught = Caught {
                        signal: origin.signal,
                        from_terminal: origin.cause == Cause::Kernel,
                    };
                    if tx.send(caught).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self { rx })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Caught {
        match self.rx.recv().await {
            Some(caught) => caught,
            None => std::future::pending().await,
        }
    }
}
