//! A real `redis-server` for the cluster tests, on its own port and directory, stopped
//! (killed) when dropped. Debian's `redis-server` package is what `.ci/run` installs;
//! where it is missing the tests say `skipped:` loudly, and fail instead when
//! `KEYGATE_REQUIRE_REDIS=1` (CI), so they never pass without running.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll;

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// `redis-server`, if it can be found: on `PATH` or where Debian puts it.
fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// A free loopback port (bound and let go; `redis-server` takes it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl RedisServer {
    /// Starts one, or `None` (with a loud `skipped:` line) where there is no
    /// `redis-server`; panics instead when `KEYGATE_REQUIRE_REDIS=1`.
    pub fn start() -> Option<Self> {
        let Some(_) = find() else {
            assert!(
                std::env::var("KEYGATE_REQUIRE_REDIS").as_deref() != Ok("1"),
                "KEYGATE_REQUIRE_REDIS=1 but there is no redis-server (Debian: apt-get install redis-server)"
            );
            println!("skipped: no redis-server here (Debian: apt-get install redis-server)");
            eprintln!("skipped: no redis-server here (Debian: apt-get install redis-server)");
            return None;
        };
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL: nothing is saved, as in a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk), and waits
    /// until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let bin = find().expect("redis-server");
        let child = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        self.child = Some(child);
        let port = self.port;
        poll(Duration::from_secs(10), "redis-server to answer", || {
            (command(port, &["PING"]).as_deref() == Some("+PONG\r\n")).then_some(())
        });
    }

    /// Sends one command and returns Redis's raw answer (RESP), for looking at keys.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        command(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One command over a fresh connection, its answer as raw RESP text.
fn command(port: u16, args: &[&str]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        let _ = write!(req, "${}\r\n{a}\r\n", a.len());
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}
