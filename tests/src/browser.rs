//! Helpers for the browser tests (`tests/tests/browser.rs`): Debian's Chromium and
//! chromedriver, and Selenium (PyPI) in a virtual environment made once per target
//! directory, driving `tests/browser/driver.py`, whose events are read line by line.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::poll;

/// The Selenium the tests drive Chromium with: 4.50.0, as 4.52.0 needs a `certifi`
/// newer than the registry offered when this was pinned.
pub const SELENIUM: &str = "selenium==4.50.0";

/// The driver script, kept in the repository.
pub fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/driver.py")
}

/// What the tests need to run a browser.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The venv's Python, with [`SELENIUM`].
    pub python: PathBuf,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Chromium, chromedriver and Selenium, or `None` with a loud `skipped:` line where
/// they cannot be had; a failure instead when `KEYGATE_REQUIRE_BROWSER=1` (CI), so the
/// tests never pass without running. `KEYGATE_CHROMIUM` and `KEYGATE_CHROMEDRIVER`
/// name other binaries than Debian's `/usr/bin/chromium` and `/usr/bin/chromedriver`.
pub fn browser() -> Option<Browser> {
    match find() {
        Ok(b) => Some(b),
        Err(why) => {
            assert!(
                std::env::var("KEYGATE_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "KEYGATE_REQUIRE_BROWSER=1 but the browser tests cannot run: {why}"
            );
            println!("skipped: no browser here ({why})");
            eprintln!("skipped: no browser here ({why})");
            None
        }
    }
}

fn find() -> Result<Browser, String> {
    let path = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let chromium = path("KEYGATE_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = path("KEYGATE_CHROMEDRIVER", "/usr/bin/chromedriver");
    for (p, package) in [(&chromium, "chromium"), (&chromedriver, "chromium-driver")] {
        if !p.exists() {
            return Err(format!(
                "{} is missing (Debian: apt-get install {package})",
                p.display()
            ));
        }
    }
    Ok(Browser {
        python: venv()?,
        chromium,
        chromedriver,
    })
}

/// The venv with [`SELENIUM`], made once under the target directory.
fn venv() -> Result<PathBuf, String> {
    crate::pyvenv::venv("browser-venv", SELENIUM)
}

/// Lines a child prints on stdout, read on a thread.
#[derive(Debug)]
pub struct Lines {
    rx: mpsc::Receiver<String>,
    /// Every line so far.
    pub seen: Vec<String>,
}

impl Lines {
    /// Read `child`'s stdout.
    pub fn of(child: &mut Child) -> Self {
        let stdout = child.stdout.take().expect("a piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first line (up to `limit`) that `want` accepts.
    pub fn wait_for(&mut self, limit: Duration, what: &str, want: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no {what} ({e}); saw:\n{}", self.seen.join("\n")),
            }
        }
    }
}

/// A child process ended by SIGINT (as Ctrl-C ends it) when dropped.
#[derive(Debug)]
pub struct Interruptible(pub Child);

impl Drop for Interruptible {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        // No panic here (this may run while a test unwinds): a child that does not
        // stop in time is killed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `driver.py` session.
#[derive(Debug)]
pub struct Session {
    child: Child,
    lines: Lines,
}

impl Session {
    /// Starts the driver with `b` and its arguments: `PAGE_URL SHOTS_DIR SECRET` for
    /// the demo's flow, `layout PAGE_URL SHOTS_DIR` to read how a message is drawn.
    pub fn start(b: &Browser, args: &[&std::ffi::OsStr]) -> Self {
        let mut child = Command::new(&b.python)
            .arg(driver())
            .args(args)
            .env("KEYGATE_CHROMIUM", &b.chromium)
            .env("KEYGATE_CHROMEDRIVER", &b.chromedriver)
            // Selenium must not go looking for drivers or browsers on the network.
            .env("SE_OFFLINE", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the browser driver");
        let lines = Lines::of(&mut child);
        Self { child, lines }
    }

    /// The event `kind`, waiting up to 60 s; fails on the driver's `error` event.
    pub fn event(&mut self, kind: &str) -> Value {
        let line = self.lines.wait_for(
            Duration::from_secs(60),
            &format!("{kind} event from the browser driver"),
            |l| {
                let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                v["event"] == kind || v["event"] == "error"
            },
        );
        let v: Value = serde_json::from_str(&line).expect("a JSON event");
        assert_ne!(v["event"], "error", "the browser driver failed: {v}");
        v
    }

    /// Waits for the driver to close the browser and exit well.
    pub fn finish(mut self) {
        self.event("done");
        let status = poll(
            Duration::from_secs(30),
            "the browser driver to exit",
            || self.child.try_wait().ok().flatten(),
        );
        assert!(status.success(), "the browser driver failed ({status})");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
