//! The harness for end-to-end tests: a real `keygated` in its own temporary XDG tree, and
//! the real `keygate` CLI pointed at it. Nothing here sleeps for a fixed time: every wait
//! is a poll with a deadline.

pub mod browser;
pub mod cluster;
pub mod discord;
pub mod exec;
pub mod mcp;
pub mod metrics;
pub mod pyvenv;
pub mod redis;

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where cargo put the workspace's binaries (next to this test's `deps/` directory).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // Tests run from `target/<profile>/deps/`, the benchmark from `target/<profile>/`.
    let mut dir = exe.parent().expect("target directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target directory");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (scripts/test does)",
        path.display()
    );
    path
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A policy with the rules most tests need.
pub const POLICY: &str = r#"
[defaults]
request_timeout = "1m"
ttl = "15m"
max_ttl = "1h"

[approvers.ops]
users = ["111111111111111111"]
roles = ["222222222222222222"]

[approvers.pair]
users = ["111111111111111111", "333333333333333333"]

[[rule]]
name = "ci reads public things"
agents = ["ci-*"]
secrets = ["public/*"]
action = "allow"

[[rule]]
name = "nobody reads prod"
agents = ["*"]
secrets = ["prod/*"]
action = "deny"

[[rule]]
name = "ci asks for github"
agents = ["ci-*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]
reuse = true

[[rule]]
name = "single use db"
agents = ["ci-*"]
secrets = ["db/*"]
action = "ask"
approvers = ["ops"]
reuse = false

[[rule]]
name = "short lived"
agents = ["ci-*"]
secrets = ["short/*"]
action = "ask"
approvers = ["ops"]
ttl = "5s"
reuse = true

[[rule]]
name = "quick timeout"
agents = ["ci-*"]
secrets = ["slow/*"]
action = "ask"
approvers = ["ops"]
request_timeout = "2s"

[[rule]]
name = "two keys"
agents = ["ci-*"]
secrets = ["vault/*"]
action = "ask"
approvers = ["pair"]
quorum = 2
"#;

/// A running daemon in a temporary tree.
#[derive(Debug)]
pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts `keygated serve` with [`POLICY`] and an in-memory store.
    pub fn start() -> Self {
        Self::start_with(POLICY, &[])
    }

    /// Starts `keygated serve` with this policy and extra environment.
    pub fn start_with(policy: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), policy, extra_env)
    }

    /// Starts `keygated serve` in the tree `dir`, where the caller may have put files
    /// first (a cluster node gets the first node's operator token this way), with this
    /// policy and extra environment.
    pub fn start_in(dir: tempfile::TempDir, policy: &str, extra_env: &[(&str, &str)]) -> Self {
        let root = dir.path();
        let mut env = vec![
            (
                "XDG_CONFIG_HOME".into(),
                root.join("config").display().to_string(),
            ),
            (
                "XDG_DATA_HOME".into(),
                root.join("data").display().to_string(),
            ),
            (
                "XDG_STATE_HOME".into(),
                root.join("state").display().to_string(),
            ),
            (
                "XDG_RUNTIME_DIR".into(),
                root.join("run").display().to_string(),
            ),
            ("KEYGATE_SECRET_STORE".into(), "memory".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        for (k, v) in extra_env {
            env.retain(|(key, _)| key != k);
            env.push(((*k).into(), (*v).into()));
        }
        std::fs::create_dir_all(root.join("config/keygate")).expect("config dir");
        std::fs::write(root.join("config/keygate/policies.toml"), policy).expect("policy");
        let mut d = Self {
            dir,
            child: None,
            env,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(bin("keygated"))
            .arg("serve")
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start keygated");
        self.child = Some(child);
        let socket = self.socket();
        poll(Duration::from_secs(20), "keygated's socket", || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("keygated exited early ({status}): {}", self.log());
            }
            UnixStream::connect(&socket).ok().map(|_| ())
        });
    }

    /// Starts `keygated serve` whose bot connects to the Discord simulator `sim` (the
    /// caller waits for the bot with `sim.wait_connected`).
    pub fn start_with_discord(
        policy: &str,
        sim: &keygate_discord_sim::Simulator,
        extra: &[(&str, &str)],
    ) -> Self {
        let discord = discord_env(sim);
        let mut env: Vec<(&str, &str)> = discord.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        Self::start_with(policy, &env)
    }

    /// Starts `keygated serve` with [`POLICY`] and a TLS listener on a free loopback port;
    /// returns it, the `https://` URL and the certificate fingerprint it logged.
    pub fn start_tls() -> (Self, String, String) {
        let d = Self::start_with(POLICY, &[("KEYGATE_SERVER_LISTEN", "127.0.0.1:0")]);
        let line = poll(Duration::from_secs(10), "the TLS listener", || {
            d.log()
                .lines()
                .find(|l| l.contains("serving TLS on"))
                .map(str::to_owned)
        });
        let url = line
            .split("serving TLS on ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .expect("url")
            .to_owned();
        let fp = line
            .split("fingerprint ")
            .nth(1)
            .expect("fingerprint")
            .trim()
            .to_owned();
        (d, url, fp)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.root().join("run/keygate/keygated.sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root().join("keygated.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn audit_path(&self) -> PathBuf {
        self.root().join("state/keygate/audit.jsonl")
    }

    pub fn audit(&self) -> String {
        std::fs::read_to_string(self.audit_path()).unwrap_or_default()
    }

    pub fn policy_path(&self) -> PathBuf {
        self.root().join("config/keygate/policies.toml")
    }

    pub fn operator_token(&self) -> String {
        std::fs::read_to_string(self.root().join("config/keygate/operator.token"))
            .expect("operator token")
            .trim()
            .to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (`TERM`, `HUP`, ...) to the daemon.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Stops the daemon with SIGTERM and waits for it.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        poll(Duration::from_secs(20), "keygated to stop", || {
            child.try_wait().ok().flatten()
        })
    }

    /// Kills the daemon with SIGKILL (no shutdown at all, as in a crash) and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again in the same tree.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// The environment a client of this daemon runs with (its XDG tree, and so its socket).
    pub fn client_env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// A `keygate` command as the operator.
    pub fn keygate(&self, args: &[&str]) -> Cli {
        self.keygate_as(&self.operator_token(), args)
    }

    /// A `keygate` command with this token.
    pub fn keygate_as(&self, token: &str, args: &[&str]) -> Cli {
        let mut cmd = Command::new(bin("keygate"));
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("KEYGATE_TOKEN", token)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        Cli { cmd }
    }

    /// Adds an agent and returns its token.
    pub fn agent(&self, name: &str) -> String {
        let out = self.keygate(&["agents", "add", name]).ok();
        out.stdout.trim().to_owned()
    }

    /// Stores a secret.
    pub fn secret(&self, name: &str, value: &str) {
        self.keygate(&["secrets", "set", name]).stdin(value).ok();
    }

    /// The operator's view of the requests.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let out = self.keygate(&["requests", "--json"]).ok();
        serde_json::from_str(&out.stdout).expect("requests JSON")
    }

    /// The id of the one pending request, once there is one.
    pub fn pending_request(&self) -> String {
        poll(Duration::from_secs(10), "a pending request", || {
            self.requests()
                .into_iter()
                .find(|r| r["status"] == "pending")
                .and_then(|r| r["id"].as_str().map(str::to_owned))
        })
    }

    /// Sends raw bytes over the socket; returns (status, body).
    pub fn raw(&self, request: &[u8]) -> (u16, String) {
        let mut s = UnixStream::connect(self.socket()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        s.write_all(request).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    /// An HTTP request with a token and a body; returns (status, body).
    pub fn http(&self, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: keygated\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.raw(&req)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The environment that points a daemon's bot at the Discord simulator `sim`.
pub fn discord_env(sim: &keygate_discord_sim::Simulator) -> Vec<(&'static str, String)> {
    let c = sim.config();
    vec![
        ("KEYGATE_DISCORD_TOKEN", c.bot_token.clone()),
        ("KEYGATE_DISCORD_CHANNEL_ID", c.channel_id.to_string()),
        ("KEYGATE_DISCORD_GUILD_ID", c.guild_id.to_string()),
        ("KEYGATE_DISCORD_API_URL", sim.rest_url()),
        ("KEYGATE_DISCORD_GATEWAY_URL", sim.gateway_url()),
    ]
}

/// A `keygate` invocation being prepared.
#[derive(Debug)]
pub struct Cli {
    cmd: Command,
}

/// What a `keygate` run did.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    #[must_use]
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    #[must_use]
    pub fn env_remove(mut self, k: &str) -> Self {
        self.cmd.env_remove(k);
        self
    }

    /// Feeds `input` on stdin.
    pub fn stdin(self, input: &str) -> Input {
        Input {
            cli: self,
            input: input.to_owned(),
        }
    }

    pub fn run(mut self) -> Ran {
        ran(&self.cmd.output().expect("run keygate"))
    }

    /// Runs and insists on exit 0.
    pub fn ok(self) -> Ran {
        let r = self.run();
        assert_eq!(r.code, 0, "keygate failed: {r:?}");
        r
    }

    /// Starts it in the background.
    pub fn spawn(mut self) -> Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keygate")
    }
}

/// A `keygate` invocation with stdin.
#[derive(Debug)]
pub struct Input {
    cli: Cli,
    input: String,
}

impl Input {
    pub fn run(mut self) -> Ran {
        let mut child = self
            .cli
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keygate");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(self.input.as_bytes());
        }
        ran(&child.wait_with_output().expect("keygate output"))
    }

    pub fn ok(self) -> Ran {
        let r = self.run();
        assert_eq!(r.code, 0, "keygate failed: {r:?}");
        r
    }
}

fn ran(out: &Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits for a background `keygate` and collects what it did.
pub fn finish(child: Child) -> Ran {
    ran(&child.wait_with_output().expect("keygate output"))
}

/// Seconds since the epoch of a time as the API writes it (RFC 3339).
pub fn unix_secs(time: &str) -> i64 {
    let t = keygate_proto::Timestamp::parse(time).expect("an RFC 3339 time");
    i64::try_from(t.unix_seconds()).expect("a time after 1970")
}
