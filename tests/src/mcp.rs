//! Helpers for the `keygate mcp` tests (`tests/tests/mcp.rs`): the official MCP Python
//! SDK in a virtual environment made once per target directory, and a session of
//! `tests/mcp/driver.py` driving `keygate mcp` through it, read event by event, with the
//! session's whole traffic (stdin, stdout, stderr) kept for inspection.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Daemon, bin, poll};

/// The SDK the tests drive `keygate mcp` with: the official Python one.
pub const SDK: &str = "mcp==2.3.0";

/// The driver script, kept in the repository.
pub fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp/driver.py")
}

/// The virtual environment's Python with [`SDK`] installed, made on first use under the
/// target directory (`target/mcp-venv`) and kept for later runs. `None`, with a loud
/// `skipped:` line, when it cannot be made here; a failure instead when
/// `KEYGATE_REQUIRE_MCP_CLIENT=1` (CI), so the tests never pass without running.
pub fn client() -> Option<PathBuf> {
    match venv() {
        Ok(python) => Some(python),
        Err(why) => {
            assert!(
                std::env::var("KEYGATE_REQUIRE_MCP_CLIENT").as_deref() != Ok("1"),
                "KEYGATE_REQUIRE_MCP_CLIENT=1 but the MCP Python client cannot be set up: {why}"
            );
            println!("skipped: no MCP Python client here ({why})");
            eprintln!("skipped: no MCP Python client here ({why})");
            None
        }
    }
}

fn venv() -> Result<PathBuf, String> {
    crate::pyvenv::venv("mcp-venv", SDK)
}

/// One `driver.py` session against `keygate mcp`.
#[derive(Debug)]
pub struct Session {
    child: Child,
    events: mpsc::Receiver<Value>,
    /// Every event so far.
    pub seen: Vec<Value>,
    traffic: tempfile::TempDir,
}

impl Session {
    /// Starts the driver with `python` (from [`client`]) running `steps` as the agent
    /// with `token`, against the daemon `d`, with `extra` environment for `keygate mcp`.
    pub fn start(
        python: &Path,
        d: &Daemon,
        token: &str,
        steps: &Value,
        extra: &[(&str, &str)],
    ) -> Self {
        let traffic = tempfile::tempdir().expect("traffic dir");
        let mut cmd = Command::new(python);
        cmd.arg(driver())
            .arg(steps.to_string())
            .arg(traffic.path())
            .env_clear()
            .envs(d.client_env())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KEYGATE_TOKEN", token)
            .env("KEYGATE_BIN", bin("keygate"))
            .env("RUST_LOG", "keygate=debug,rmcp=debug");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the MCP driver");
        let stdout = child.stdout.take().expect("driver stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "noise", "line": line}));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            events,
            seen: Vec::new(),
            traffic,
        }
    }

    /// Waits (up to `limit`) for an event that `want` accepts, and returns it.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(e) = self.seen.iter().find(|e| want(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if want(&event) {
                        return event;
                    }
                }
                Err(e) => panic!(
                    "no {what} from the MCP driver ({e}); saw {:#?}; keygate mcp said: {}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// The event `kind` of step `step`.
    pub fn event(&mut self, kind: &str, step: usize) -> Value {
        self.wait_for(
            Duration::from_secs(60),
            &format!("{kind} of step {step}"),
            |e| e["event"] == kind && e["step"] == step,
        )
    }

    /// The result of step `step`.
    pub fn result(&mut self, step: usize) -> Value {
        self.event("result", step)
    }

    /// How many progress notifications step `step` has had so far.
    pub fn progress_count(&mut self, step: usize) -> usize {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        self.seen
            .iter()
            .filter(|e| e["event"] == "progress" && e["step"] == step)
            .count()
    }

    /// Waits for the session to end well; returns every event and the traffic.
    pub fn finish(mut self) -> (Vec<Value>, Traffic) {
        self.wait_for(Duration::from_secs(60), "the end of the session", |e| {
            e["event"] == "done"
        });
        let status = poll(Duration::from_secs(30), "the MCP driver to exit", || {
            self.child.try_wait().ok().flatten()
        });
        assert!(
            status.success(),
            "the MCP driver failed ({status}); saw {:#?}",
            self.seen
        );
        let read = |name: &str| std::fs::read(self.traffic.path().join(name)).unwrap_or_default();
        let traffic = Traffic {
            stdin: read("stdin"),
            stdout: read("stdout"),
            stderr: read("stderr"),
        };
        (std::mem::take(&mut self.seen), traffic)
    }

    /// What `keygate mcp` has logged so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(
            &std::fs::read(self.traffic.path().join("stderr")).unwrap_or_default(),
        )
        .into_owned()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A session's bytes, as `keygate mcp` read and wrote them.
#[derive(Debug)]
pub struct Traffic {
    pub stdin: Vec<u8>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Traffic {
    /// Fails if `value` appears anywhere in the session, in any of the forms a JSON
    /// writer could give it (as it is, or escaped).
    pub fn assert_free_of(&self, value: &str) {
        let escaped = serde_json::to_string(value).expect("json");
        let escaped = escaped.trim_matches('"');
        for (name, bytes) in [
            ("stdin", &self.stdin),
            ("stdout", &self.stdout),
            ("stderr", &self.stderr),
        ] {
            for form in [value, escaped] {
                assert!(
                    !contains(bytes, form.as_bytes()),
                    "a secret value appears on keygate mcp's {name}: {}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        assert!(!self.stdout.is_empty(), "no traffic was captured");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
