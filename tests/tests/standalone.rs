//! `keygate --standalone`: no daemon. The real `keygate` runs the gate in its own
//! process over the state a `keygated` made (its file store, agents, policies, audit
//! log), connects its own bot to the Discord simulator for as long as it waits, and
//! exits; `keygated` and a standalone run refuse to share one state directory.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

use keygate_discord_sim::{PressSpec, SimMessage};
use keygate_tests::discord::{Shown, World};
use keygate_tests::{Cli, Daemon, POLICY, Ran, bin, poll};

const OPS: u64 = 111_111_111_111_111_111;
const VALUE: &str = "ghp_STANDALONE_never_shown_7";
const WAIT: Duration = Duration::from_secs(20);

/// The file store persists between processes (a memory store would be empty in each).
const FILE_STORE: [(&str, &str); 2] = [
    ("KEYGATE_SECRET_STORE", "file"),
    ("KEYGATE_STORE_PASSPHRASE", "correct horse battery staple"),
];

/// A Discord world whose keygated made the state (secrets, agent `ci-one`) and then
/// stopped, leaving it to standalone runs.
fn world() -> World {
    let mut w = World::start(POLICY, &FILE_STORE, &[("github/token", VALUE)]);
    w.d.stop();
    w
}

/// `keygate --standalone [--agent AGENT] ARGS…` in the daemon's tree.
fn standalone(d: &Daemon, agent: Option<&str>, args: &[&str]) -> Cli {
    let mut all = vec!["--standalone"];
    if let Some(a) = agent {
        all.extend(["--agent", a]);
    }
    all.extend_from_slice(args);
    // No token: standalone needs none. Its gate's log stays off (the daemon's tree asks
    // for RUST_LOG=info), so stderr holds only what the command says.
    d.keygate_as("", &all)
        .env_remove("KEYGATE_TOKEN")
        .env_remove("RUST_LOG")
}

/// A standalone `get` waiting for a decision.
struct Waiting {
    child: Child,
    /// The message its request was posted as.
    msg: SimMessage,
    /// The line it printed once its request was filed and pending.
    said: String,
    /// Its later stderr lines, read as they come.
    lines: mpsc::Receiver<String>,
}

impl Waiting {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for it to end: its exit code, stdout, and whole stderr.
    fn finish(self) -> Ran {
        let out = self.child.wait_with_output().expect("keygate output");
        let mut stderr = format!("{}\n", self.said);
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        }
    }
}

/// Starts a standalone `get` as `ci-one`; returns it once its own bot is connected, its
/// request's message is posted, and it has said that it waits (so a press cannot come
/// before its request is filed, and the line is always there to check).
fn ask(w: &World, reason: &str) -> Waiting {
    let before = w.sim.identify_count();
    let mut child = standalone(
        &w.d,
        Some("ci-one"),
        &["get", "github/token", "--reason", reason],
    )
    .spawn();
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert!(
        w.rt.block_on(
            w.sim
                .wait_for_sessions(|identified, _| identified > before, WAIT)
        ),
        "the standalone bot never connected"
    );
    let msg =
        w.rt.block_on(w.sim.wait_for_message(|m| m.text().contains(reason), WAIT))
            .expect("the standalone run posted its request");
    let said = lines.recv_timeout(WAIT).expect("the waiting line");
    Waiting {
        child,
        msg,
        said,
        lines,
    }
}

fn press(w: &World, msg: &SimMessage, style: u8) -> Shown {
    let custom_id = msg
        .live_buttons()
        .into_iter()
        .find(|b| b.style == style)
        .and_then(|b| b.custom_id)
        .expect("the button");
    let spec = PressSpec {
        custom_id,
        message_id: msg.id,
        username: "ops".into(),
        ..PressSpec::new(0, "", OPS)
    };
    let h = w.sim.press(&spec).expect("press dispatched");
    w.answer(&h, msg.id).0
}

fn audit_events(d: &Daemon) -> Vec<serde_json::Value> {
    d.audit()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect()
}

#[test]
fn standalone_get_is_approved_in_discord_and_its_grant_ends_with_the_process() {
    let w = world();
    let asked = ask(&w, "standalone approve");
    let msg = asked.msg.clone();
    // The waiting line, off a terminal: where it was posted and when it expires.
    assert!(
        asked
            .said
            .starts_with("keygate: waiting for approval of req_")
            && asked.said.contains("(posted to discord); it expires in"),
        "{}",
        asked.said
    );
    let text = msg.text();
    assert!(
        text.contains("ci-one") && text.contains("github/token"),
        "{text}"
    );
    assert_eq!(press(&w, &msg, 3), Shown::Updated);
    let r = asked.finish();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, format!("{VALUE}\n"));
    assert!(r.stderr.contains("approved by @ops"), "{}", r.stderr);
    assert!(!r.stderr.contains(VALUE));

    // Its grant ended with it: audited, and the message says so.
    let events = audit_events(&w.d);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let from = kinds
        .iter()
        .rposition(|k| *k == "standalone_started")
        .expect("standalone_started");
    let run = &events[from..];
    let has = |event: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        run.iter().any(|e| e["event"] == event && pred(e))
    };
    assert!(
        has("request_decided", &|e| e["outcome"] == "approved"),
        "{run:?}"
    );
    assert!(has("released", &|e| e["secret"] == "github/token"
        && e["agent"] == "ci-one"));
    assert!(has("grant_ended", &|e| e["cause"] == "revoked"
        && e["reads"] == 1));
    assert_eq!(
        run.last().map(|e| e["event"].clone()),
        Some("standalone_stopped".into())
    );
    assert!(!w.d.audit().contains(VALUE));
    let ended = w.rt.block_on(w.sim.wait_for_edit(
        msg.id,
        |m| m.text().contains("Grant revoked"),
        WAIT,
    ));
    assert!(
        ended.is_some(),
        "the message still shows a live grant: {:?} {:?}",
        w.sim.message(msg.id).map(|m| m.text()),
        w.sim
            .rest_log()
            .iter()
            .map(|c| (c.route, c.status, c.path.clone()))
            .collect::<Vec<_>>()
    );

    // The standalone lines continue the daemon's hash chain: both verify it.
    let v = standalone(&w.d, None, &["audit", "--verify"]).ok();
    assert!(v.stderr.contains("hash chain unbroken"), "{v:?}");
    let mut d = w.d;
    d.restart();
    let v = d.keygate(&["audit", "--verify"]).ok();
    assert!(v.stderr.contains("hash chain unbroken"), "{v:?}");
}

#[test]
fn standalone_get_denied_in_discord_exits_3() {
    let w = world();
    let asked = ask(&w, "standalone deny");
    assert_eq!(press(&w, &asked.msg, 4), Shown::Updated);
    let r = asked.finish();
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(r.stderr.contains("denied by"), "{}", r.stderr);
    assert!(
        audit_events(&w.d)
            .iter()
            .any(|e| e["event"] == "request_decided" && e["outcome"] == "denied")
    );
}

/// `keygated serve` in this daemon's tree, run to its end (it is expected to refuse).
fn keygated_beside(d: &Daemon) -> std::process::Output {
    let mut cmd = Command::new(bin("keygated"));
    cmd.arg("serve")
        .env_clear()
        .envs(d.client_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start keygated");
    let status = poll(WAIT, "keygated to refuse", || {
        child.try_wait().ok().flatten()
    });
    assert!(
        !status.success(),
        "keygated started beside a standalone run"
    );
    child.wait_with_output().expect("keygated output")
}

#[test]
fn standalone_and_keygated_refuse_to_share_a_state_directory() {
    let mut w = World::start(POLICY, &FILE_STORE, &[("github/token", VALUE)]);
    // Beside a running keygated: one line, exit 1, nothing written.
    let before = w.d.audit();
    let r = standalone(&w.d, Some("ci-one"), &["get", "github/token"]).run();
    assert_eq!(r.code, 1, "{r:?}");
    let pid = w.d.pid();
    assert!(
        r.stderr.starts_with(&format!(
            "keygate: keygated (pid {pid}) serves this state directory"
        )),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    assert_eq!(w.d.audit(), before, "a refused run wrote to the audit log");

    // keygated beside a waiting standalone run refuses too, naming it.
    w.d.stop();
    let asked = ask(&w, "standalone lock");
    let out = keygated_beside(&w.d);
    let err = String::from_utf8_lossy(&out.stderr);
    let standalone_pid = asked.pid();
    assert!(
        err.contains(&format!(
            "keygate --standalone (pid {standalone_pid}) is using this state directory"
        )),
        "{err}"
    );
    // The standalone run goes on undisturbed: it is approved and answers.
    assert_eq!(press(&w, &asked.msg, 3), Shown::Updated);
    let r = asked.finish();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, format!("{VALUE}\n"));
    // Gone with it, the lock: keygated starts again.
    w.d.restart();
    w.d.keygate(&["status"]).ok();
}

#[test]
fn standalone_acts_as_a_registered_agent_or_as_the_operator() {
    let mut d = Daemon::start_with(POLICY, &FILE_STORE);
    d.agent("ci-one");
    d.stop();
    // The operator's commands: no agent, no token.
    standalone(&d, None, &["secrets", "set", "public/readme"])
        .stdin("hello standalone")
        .ok();
    let list = standalone(&d, None, &["secrets", "list", "--json"]).ok();
    assert!(list.stdout.contains("public/readme"), "{list:?}");
    // An allow rule needs nobody: no Discord configured, and the value comes at once.
    let got = standalone(&d, Some("ci-one"), &["get", "public/readme"]).ok();
    assert_eq!(got.stdout, "hello standalone\n");
    // KEYGATE_MODE and KEYGATE_AGENT say the same as the flags; exec masks as ever, and
    // its child never gets the store's passphrase this process was given.
    let ran = d
        .keygate_as(
            "",
            &[
                "exec",
                "-s",
                "public/readme",
                "--",
                "sh",
                "-c",
                "echo \"$PUBLIC_README\"; echo \"pass=${KEYGATE_STORE_PASSPHRASE:-none}\"",
            ],
        )
        .env_remove("KEYGATE_TOKEN")
        .env_remove("RUST_LOG")
        .env("KEYGATE_MODE", "standalone")
        .env("KEYGATE_AGENT", "ci-one")
        .ok();
    assert_eq!(ran.stdout, "<keygate:public/readme>\npass=none\n");

    // An agent nobody registered is refused (5), before any request is filed.
    let r = standalone(&d, Some("ci-ghost"), &["get", "public/readme"]).run();
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr.contains("no agent named `ci-ghost`"),
        "{}",
        r.stderr
    );
    // No agent for an agent's command, or an agent for the operator's: usage (2).
    let r = standalone(&d, None, &["get", "public/readme"]).run();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--agent NAME"), "{}", r.stderr);
    let r = standalone(&d, Some("ci-one"), &["secrets", "list"]).run();
    assert_eq!(r.code, 2, "{r:?}");
    // A daemon's state means nothing here.
    let r = standalone(&d, None, &["grants"]).run();
    assert_eq!(r.code, 2, "{r:?}");
    // A request that needs a person, with no Discord: refused at once, saying why.
    let r = standalone(&d, Some("ci-one"), &["get", "github/token"]).run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("no Discord is configured"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);

    // The encrypted store with no passphrase and no terminal to ask on: one line, and
    // the run still ends (its gate stops at once, before its tasks have even run).
    let r = standalone(&d, Some("ci-one"), &["get", "public/readme"])
        .env_remove("KEYGATE_STORE_PASSPHRASE")
        .run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("locked: set KEYGATE_STORE_PASSPHRASE"),
        "{}",
        r.stderr
    );

    let v = standalone(&d, None, &["audit", "--verify"]).ok();
    assert!(v.stderr.contains("hash chain unbroken"), "{v:?}");
    d.restart();
    let list = d.keygate(&["secrets", "list", "--json"]).ok();
    assert!(list.stdout.contains("public/readme"), "{list:?}");
}

/// `keygate --standalone` hands over to `keygate-standalone` beside it; a `keygate`
/// installed without it says so in one line, and the ordinary `keygate` carries none
/// of the gate (the point of the second binary).
#[test]
fn keygate_hands_standalone_runs_to_the_binary_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("keygate");
    std::fs::copy(bin("keygate"), &alone).unwrap();
    let out = Command::new(&alone)
        .args(["--standalone", "--agent", "ci-1", "get", "github/token"])
        .env_clear()
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("keygate-standalone"), "{err}");
    // KEYGATE_MODE asks the same.
    let out = Command::new(&alone)
        .args(["--agent", "ci-1", "get", "github/token"])
        .env_clear()
        .env("KEYGATE_MODE", "standalone")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keygate-standalone"));
    assert!(bin("keygate-standalone").exists());
}
