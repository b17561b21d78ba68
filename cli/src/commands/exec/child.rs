//! Starting the child and carrying its output: its environment (ours, less
//! KEYGATE_TOKEN, plus the secrets), and its stdout and stderr, through the masker.
//!
//! With masking on, each of the child's output streams goes to a pipe, or, when ours is
//! a terminal, to a pseudo-terminal, so that the child still sees a tty (`isatty`, the
//! window size, colours, line buffering). A thread per stream reads it, masks it and
//! writes it to our stream as it comes. When stdout and stderr are the same terminal,
//! the child gets one pty for both, so their order on screen is kept. The pty is not the
//! child's controlling terminal: stdin, job control and Ctrl-C stay with the real one.
//! With `--no-masking` the child simply inherits our stdout and stderr.
//!
//! For `keygate mcp` the output is captured instead ([`Output::Capture`]): both streams
//! go through pipes and the masker into [`Captured`] buffers that keep the first 64 KiB,
//! and the child's stdin is empty (ours carries the protocol).

use std::fs::File;
use std::io::{self, IsTerminal as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mask::{Masker, pump};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, Signal};
use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, OutputModes};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::failure::{Failure, Outcome};

/// A secret as the child gets it.
#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    pub value: Zeroizing<String>,
}

/// What the child is started with.
#[derive(Debug)]
pub struct Spec<'a> {
    pub argv: &'a [String],
    /// `(VAR, value)` for the child's environment.
    pub env: Vec<(String, Zeroizing<String>)>,
    /// Where it runs (ours when `None`).
    pub cwd: Option<&'a Path>,
    pub output: &'a Output,
}

/// Where the child's output goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// To our stdout and stderr, masked unless `mask` is false (`--no-masking`); the
    /// child shares our stdin.
    Ours { mask: bool },
    /// Into buffers, always masked; the child's stdin is empty.
    Capture { stdout: Captured, stderr: Captured },
}

/// How much of each captured stream is kept.
pub const CAPTURE_LIMIT: usize = 64 * 1024;

/// One captured output stream: its first [`CAPTURE_LIMIT`] bytes (after masking), and
/// how many bytes it had in all. Shared by the thread that fills it and the caller.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Kept>>);

#[derive(Debug, Default)]
struct Kept {
    bytes: Vec<u8>,
    total: u64,
}

impl Captured {
    /// What was kept, as text (invalid UTF-8 replaced), and whether some was cut.
    pub fn text(&self) -> (String, bool) {
        let kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cut = kept.total > kept.bytes.len() as u64;
        (String::from_utf8_lossy(&kept.bytes).into_owned(), cut)
    }

    /// How many bytes the stream had, kept or not.
    pub fn total(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .total
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = CAPTURE_LIMIT.saturating_sub(kept.bytes.len());
        kept.bytes.extend_from_slice(&buf[..buf.len().min(room)]);
        kept.total += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A running child and the threads carrying its output.
#[derive(Debug)]
pub struct Running {
    pub child: tokio::process::Child,
    pid: Pid,
    /// The masters of the child's ptys, to follow our window size.
    ptys: Vec<OwnedFd>,
    pumps: Vec<oneshot::Receiver<()>>,
}

impl Running {
    /// Sends `signal` to the child (not to its group, which is ours). Only called while
    /// the child has not been waited for, so the pid is still its.
    pub fn signal(&self, signal: i32) {
        if let Some(signal) = Signal::from_named_raw(signal) {
            let _ = rustix::process::kill_process(self.pid, signal);
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Gives the child's ptys our window size again (after SIGWINCH). Returns whether
    /// there is any pty.
    pub fn follow_window_size(&self) -> bool {
        let ours = [io::stdout().as_fd(), io::stderr().as_fd()]
            .into_iter()
            .find_map(|fd| rustix::termios::tcgetwinsize(fd).ok());
        if let Some(size) = ours {
            for master in &self.ptys {
                let _ = rustix::termios::tcsetwinsize(master, size);
            }
        }
        !self.ptys.is_empty()
    }

    /// Waits until the output threads have written everything, but no longer than
    /// `limit`: a grandchild that keeps the stream open must not keep keygate (and its
    /// exit code) waiting; what it writes later finds the pipe closed.
    pub async fn drain(&mut self, limit: Duration) {
        let pumps = std::mem::take(&mut self.pumps);
        let _ = tokio::time::timeout(limit, async {
            for p in pumps {
                let _ = p.await;
            }
        })
        .await;
    }
}

/// Where one of the child's output streams goes.
enum Route {
    Inherit,
    Pipe,
    /// A pipe into a buffer.
    Capture(Captured),
    Pty,
    /// The same pty as stdout.
    SharedPty,
}

/// The variables a child never inherits from us.
const CREDENTIALS: [&str; 3] = [
    "KEYGATE_TOKEN",
    "KEYGATE_STORE_PASSPHRASE",
    "KEYGATE_DISCORD_TOKEN",
];

/// Starts the child; its output is masked for `secrets` (every value it was ever given).
pub fn spawn(spec: &Spec<'_>, secrets: &[Secret]) -> Outcome<Running> {
    let (out_route, err_route, stdin) = match spec.output {
        Output::Ours { mask } => {
            let (out, err) = routes(*mask);
            (out, err, Stdio::inherit())
        }
        Output::Capture { stdout, stderr } => (
            Route::Capture(stdout.clone()),
            Route::Capture(stderr.clone()),
            Stdio::null(),
        ),
    };
    let mut cmd = tokio::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..]).stdin(stdin);
    // Our credentials are not the child's: the agent's token, and the daemon's own that
    // `keygate --standalone` reads from its environment (the store's passphrase would
    // open every secret at once; the bot token would speak as the bot).
    for var in CREDENTIALS {
        cmd.env_remove(var);
    }
    if let Some(dir) = spec.cwd {
        cmd.current_dir(dir);
    }
    for (var, value) in &spec.env {
        cmd.env(var, value.as_str());
    }
    let cannot = |what: &str, e: io::Error| Failure::error(format!("cannot {what}: {e}"));

    // (reader of the child's stream, where to write it)
    let mut carried: Vec<(File, Sink)> = Vec::new();
    let mut ptys = Vec::new();
    let mut stdout_slave = None;
    match out_route {
        Route::Inherit => {
            cmd.stdout(Stdio::inherit());
        }
        Route::Pipe => {
            let (r, w) = io::pipe().map_err(|e| cannot("make a pipe", e))?;
            cmd.stdout(w);
            carried.push((File::from(OwnedFd::from(r)), ours(io::stdout().as_fd())?));
        }
        Route::Capture(into) => {
            let (r, w) = io::pipe().map_err(|e| cannot("make a pipe", e))?;
            cmd.stdout(w);
            carried.push((File::from(OwnedFd::from(r)), Box::new(into)));
        }
        Route::Pty | Route::SharedPty => {
            let (master, slave) =
                open_pty(io::stdout().as_fd()).map_err(|e| cannot("open a pseudo-terminal", e))?;
            stdout_slave = Some(
                slave
                    .try_clone()
                    .map_err(|e| cannot("open a pseudo-terminal", e))?,
            );
            cmd.stdout(slave);
            let reader = master
                .try_clone()
                .map_err(|e| cannot("open a pseudo-terminal", e))?;
            ptys.push(master);
            carried.push((File::from(reader), ours(io::stdout().as_fd())?));
        }
    }
    match err_route {
        Route::Inherit => {
            cmd.stderr(Stdio::inherit());
        }
        Route::Pipe => {
            let (r, w) = io::pipe().map_err(|e| cannot("make a pipe", e))?;
            cmd.stderr(w);
            carried.push((File::from(OwnedFd::from(r)), ours(io::stderr().as_fd())?));
        }
        Route::Capture(into) => {
            let (r, w) = io::pipe().map_err(|e| cannot("make a pipe", e))?;
            cmd.stderr(w);
            carried.push((File::from(OwnedFd::from(r)), Box::new(into)));
        }
        Route::SharedPty if stdout_slave.is_some() => {
            cmd.stderr(stdout_slave.take().map_or_else(Stdio::inherit, Stdio::from));
        }
        Route::Pty | Route::SharedPty => {
            let (master, slave) =
                open_pty(io::stderr().as_fd()).map_err(|e| cannot("open a pseudo-terminal", e))?;
            cmd.stderr(slave);
            let reader = master
                .try_clone()
                .map_err(|e| cannot("open a pseudo-terminal", e))?;
            ptys.push(master);
            carried.push((File::from(reader), ours(io::stderr().as_fd())?));
        }
    }
    drop(stdout_slave);

    let child = cmd
        .spawn()
        .map_err(|e| Failure::error(format!("cannot run `{}`: {e}", spec.argv[0])))?;
    // The command holds the child's ends (and a copy of the environment): gone now, so
    // that the readers see the end of the stream when the child is done.
    drop(cmd);
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
        .ok_or_else(|| Failure::error("the child vanished as it started"))?;

    let mut pumps = Vec::new();
    for (from, to) in carried {
        let mut masker = Masker::new(
            secrets
                .iter()
                .map(|s| (s.name.as_str(), s.value.as_bytes())),
        )
        .map_err(|e| Failure::error(format!("cannot build the masker: {e}")))?;
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("keygate-output".into())
            .spawn(move || {
                // A pty's master reads EIO once the child's side is closed: that is its end.
                let _ = pump(PtyEnd(from), to, Some(&mut masker));
                let _ = done.send(());
            })
            .map_err(|e| cannot("start an output thread", e))?;
        pumps.push(finished);
    }
    let running = Running {
        child,
        pid,
        ptys,
        pumps,
    };
    running.follow_window_size();
    Ok(running)
}

/// Where stdout and stderr go: ptys for terminals, pipes otherwise, when masking.
fn routes(masking: bool) -> (Route, Route) {
    if !masking {
        return (Route::Inherit, Route::Inherit);
    }
    let out_tty = io::stdout().is_terminal();
    let err_tty = io::stderr().is_terminal();
    let out = if out_tty { Route::Pty } else { Route::Pipe };
    let err = match (err_tty, out_tty) {
        (false, _) => Route::Pipe,
        (true, true) if same_terminal() => Route::SharedPty,
        (true, _) => Route::Pty,
    };
    (out, err)
}

fn same_terminal() -> bool {
    let dev = |fd: BorrowedFd<'_>| rustix::fs::fstat(fd).ok().map(|s| s.st_rdev);
    let out = dev(io::stdout().as_fd());
    out.is_some() && out == dev(io::stderr().as_fd())
}

/// Where a stream's masked bytes are written.
type Sink = Box<dyn io::Write + Send>;

/// A handle of our own on one of our output streams: unbuffered, so every masked chunk
/// is written at once.
fn ours(fd: BorrowedFd<'_>) -> Outcome<Sink> {
    fd.try_clone_to_owned()
        .map(|fd| Box::new(File::from(fd)) as Sink)
        .map_err(|e| Failure::error(format!("cannot use our own output: {e}")))
}

/// A pty pair whose modes and size follow `like` (our terminal), less output
/// processing: our terminal turns `\n` into `\r\n` when we write to it, and a value that
/// holds a newline must reach the masker as it was written.
fn open_pty(like: BorrowedFd<'_>) -> io::Result<(OwnedFd, OwnedFd)> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut modes =
        rustix::termios::tcgetattr(like).or_else(|_| rustix::termios::tcgetattr(&slave))?;
    modes.output_modes.remove(OutputModes::OPOST);
    rustix::termios::tcsetattr(&slave, OptionalActions::Now, &modes)?;
    if let Ok(size) = rustix::termios::tcgetwinsize(like) {
        rustix::termios::tcsetwinsize(&master, size)?;
    }
    Ok((master, slave))
}

/// Reads a pipe or a pty master; a pty's EIO (the child side is closed) is the end.
struct PtyEnd(File);

impl io::Read for PtyEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(0),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::{CAPTURE_LIMIT, Captured};

    #[test]
    fn a_capture_keeps_the_first_64_kib_and_counts_the_rest() {
        let c = Captured::default();
        let mut w = c.clone();
        w.write_all(b"hello ").expect("write");
        assert_eq!(c.text(), ("hello ".to_owned(), false));
        w.write_all(&vec![b'a'; CAPTURE_LIMIT]).expect("write");
        let (text, cut) = c.text();
        assert!(cut);
        assert_eq!(text.len(), CAPTURE_LIMIT);
        assert!(text.starts_with("hello aaa"));
        assert_eq!(c.total(), 6 + CAPTURE_LIMIT as u64);
    }
}
