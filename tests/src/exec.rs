//! Helpers for the `keygate exec` tests (`tests/tests/exec.rs`,
//! `tests/tests/exec_lifetime.rs`): a daemon with a `ci-*` agent, one-shot and
//! background runs of `keygate exec`, and waits on what exec does with its grant.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::Child;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::{Daemon, Ran, poll};

/// A daemon with an agent of the `ci-*` rules; returns its token.
pub fn setup() -> (Daemon, String) {
    let d = Daemon::start();
    let t = d.agent("ci-one");
    (d, t)
}

/// Runs `keygate exec ARGS` as the agent.
pub fn exec(d: &Daemon, token: &str, args: &[&str]) -> Ran {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    d.keygate_as(token, &all).run()
}

/// A background `keygate exec` whose stdout is read line by line as it comes.
#[derive(Debug)]
pub struct Running {
    /// The `keygate` process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// The stdout lines taken so far.
    pub seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn start(d: &Daemon, token: &str, args: &[&str]) -> Self {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        let mut child = d.keygate_as(token, &all).spawn();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut from = child.stderr.take().expect("stderr");
        let to = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    return;
                }
                if let Ok(mut s) = to.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Takes the lines that came so far.
    pub fn take_lines(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// Waits for a line of stdout equal to `want`, while keygate still runs.
    pub fn wait_line(&mut self, want: &str) {
        self.wait_line_within(want, Duration::from_secs(20));
    }

    pub fn wait_line_within(&mut self, want: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.seen.iter().any(|l| l == want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "no line {want:?} on stdout ({e}); saw {:?}; stderr: {}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits for keygate to end (within `limit`), and what it said.
    pub fn end(mut self, limit: Duration) -> (i32, Vec<String>, String) {
        let status = poll(limit, "keygate exec to end", || {
            self.child.try_wait().ok().flatten()
        });
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        // The stderr thread ends with the stream.
        let stderr = poll(Duration::from_secs(5), "keygate's stderr to end", || {
            (Arc::strong_count(&self.stderr) == 1).then(|| self.stderr())
        });
        (status.code().unwrap_or(-1), self.seen, stderr)
    }
}

/// Waits until exec has read its values a second time: the check it makes once it
/// watches the grant. A change made after that is one the watch reports.
pub fn wait_for_the_check(d: &Daemon) {
    poll(
        Duration::from_secs(20),
        "exec's check of the values",
        || {
            let out = d.keygate(&["grants", "--json"]).ok().stdout;
            let grants: Vec<serde_json::Value> = serde_json::from_str(&out).expect("grants JSON");
            grants
                .iter()
                .any(|g| g["reads"].as_u64().is_some_and(|r| r >= 2))
                .then_some(())
        },
    );
}

pub fn approve_next(d: &Daemon) {
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
}
