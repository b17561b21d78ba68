//! `keygate exec`, through the real binaries: injection, mapping, references, the
//! token kept from the child, masking, exit codes and signals, a tty child, argv binding,
//! revoke within the grace, restart on change.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use keygate_tests::{Daemon, Ran, bin, finish, poll};

/// A daemon with an agent of the `ci-*` rules; returns its token.
fn setup() -> (Daemon, String) {
    let d = Daemon::start();
    let t = d.agent("ci-one");
    (d, t)
}

/// Runs `keygate exec ARGS` as the agent.
fn exec(d: &Daemon, token: &str, args: &[&str]) -> Ran {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    d.keygate_as(token, &all).run()
}

/// A background `keygate exec` whose stdout is read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(d: &Daemon, token: &str, args: &[&str]) -> Self {
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

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Takes the lines that came so far.
    fn take_lines(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// Waits for a line of stdout equal to `want`, while keygate still runs.
    fn wait_line(&mut self, want: &str) {
        self.wait_line_within(want, Duration::from_secs(20));
    }

    fn wait_line_within(&mut self, want: &str, limit: Duration) {
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
    fn end(mut self, limit: Duration) -> (i32, Vec<String>, String) {
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
fn wait_for_the_check(d: &Daemon) {
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

fn approve_next(d: &Daemon) {
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
}

#[test]
fn injects_with_e_and_s_under_the_mapped_names() {
    let (d, t) = setup();
    d.secret("public/alpha", "value-a");
    d.secret("public/api-key.v2", "value-b");
    let r = exec(
        &d,
        &t,
        &[
            "--no-masking",
            "-e",
            "MY_A=public/alpha",
            "-s",
            "public/api-key.v2",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s' "$MY_A" "$PUBLIC_API_KEY_V2""#,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "value-a|value-b");
    assert!(d.requests().is_empty(), "an allow rule needs no request");
}

#[test]
fn references_in_the_environment_are_resolved() {
    let (d, t) = setup();
    d.secret("public/db-url", "postgres://u:p@h/db");
    let r = d
        .keygate_as(
            &t,
            &[
                "exec",
                "--no-masking",
                "--",
                "sh",
                "-c",
                r#"printf '%s' "$DB_URL""#,
            ],
        )
        .env("DB_URL", "keygate://public/db-url")
        .run();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "postgres://u:p@h/db");

    let bad = d
        .keygate_as(&t, &["exec", "--", "true"])
        .env("DB_URL", "keygate://../etc/passwd")
        .run();
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("DB_URL"), "{}", bad.stderr);
}

#[test]
fn usage_errors_exit_2_before_anything_is_asked() {
    let (d, t) = setup();
    for args in [
        &["--", "true"][..],
        &["-e", "NOEQUALS", "--", "true"],
        &["-e", "1X=public/a", "--", "true"],
        &["-e", "X=Public/A", "--", "true"],
        &["-s", "public/a", "-e", "PUBLIC_A=public/b", "--", "true"],
        &["-s", "public/a"],
    ] {
        let r = exec(&d, &t, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
    let r = exec(
        &d,
        &t,
        &["-s", "github/token", "--", "no-such-program-here"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not found in PATH"), "{}", r.stderr);
    assert!(
        d.requests().is_empty(),
        "nobody is asked for a command that cannot run"
    );
}

#[test]
fn the_child_never_sees_keygate_token() {
    let (d, t) = setup();
    d.secret("public/x", "x");
    let r = exec(
        &d,
        &t,
        &[
            "-s",
            "public/x",
            "--",
            "sh",
            "-c",
            r#"printf '%s' "${KEYGATE_TOKEN-unset}""#,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "unset");
}

#[test]
fn values_are_masked_on_stdout_and_stderr() {
    let (d, t) = setup();
    d.secret("public/token", "tok_4f9a8b7c6d");
    let r = exec(
        &d,
        &t,
        &[
            "-s",
            "public/token",
            "--",
            "sh",
            "-c",
            r#"echo "out: $PUBLIC_TOKEN."; echo "err: $PUBLIC_TOKEN" >&2; printf 'tok_4f9a'; printf '8b7c6d end'"#,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "out: <keygate:public/token>.\n<keygate:public/token> end"
    );
    assert!(
        r.stderr.contains("err: <keygate:public/token>"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("tok_4f9a8b7c6d") && !r.stderr.contains("tok_4f9a8b7c6d"));

    let plain = exec(
        &d,
        &t,
        &[
            "--no-masking",
            "-s",
            "public/token",
            "--",
            "sh",
            "-c",
            r#"echo "$PUBLIC_TOKEN""#,
        ],
    );
    assert_eq!(plain.stdout, "tok_4f9a8b7c6d\n");
}

#[test]
fn masking_holds_over_megabytes_and_overlapping_values() {
    let (d, t) = setup();
    d.secret("public/long", "abcdef-123456");
    d.secret("public/short", "abcdef");
    d.secret("public/tail", "456789");
    // ~4 MiB: each line holds the long value, the short one, and the long one running
    // into the tail one (overlapping occurrences).
    let r = exec(
        &d,
        &t,
        &[
            "-e",
            "L=public/long",
            "-e",
            "S=public/short",
            "-e",
            "T=public/tail",
            "--",
            "sh",
            "-c",
            r#"yes "x $L y $S z ${L}789 w" | head -n 100000"#,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want = "x <keygate:public/long> y <keygate:public/short> z <keygate:public/long><keygate:public/tail> w\n";
    assert_eq!(r.stdout.len(), want.len() * 100_000);
    assert!(
        r.stdout.lines().all(|l| format!("{l}\n") == want),
        "a line differs"
    );
}

#[test]
fn exit_codes_are_the_childs() {
    let (d, t) = setup();
    d.secret("public/x", "x");
    let r = exec(&d, &t, &["-s", "public/x", "--", "sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "{r:?}");
    let r = exec(
        &d,
        &t,
        &["-s", "public/x", "--", "sh", "-c", "kill -TERM $$"],
    );
    assert_eq!(r.code, 143, "killed by SIGTERM is 128 + 15: {r:?}");
    let r = exec(
        &d,
        &t,
        &[
            "--no-masking",
            "-s",
            "public/x",
            "--",
            "sh",
            "-c",
            "kill -KILL $$",
        ],
    );
    assert_eq!(r.code, 137, "{r:?}");
}

#[test]
fn a_signal_sent_to_keygate_reaches_the_child() {
    let (d, t) = setup();
    d.secret("public/x", "x");
    let mut run = Running::start(
        &d,
        &t,
        &[
            "-s",
            "public/x",
            "--",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    run.wait_line("ready");
    let status = Command::new("kill")
        .args(["-TERM", &run.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (code, lines, stderr) = run.end(Duration::from_secs(10));
    assert_eq!(code, 9, "the child's own exit code: {lines:?} {stderr}");
    assert!(lines.iter().any(|l| l == "got TERM"), "{lines:?}");
}

/// `script` (util-linux) runs keygate with a pseudo-terminal as its stdout. A machine
/// without it cannot run the test, and says so rather than passing.
fn under_a_terminal(d: &Daemon, token: &str, command: &str) -> String {
    let line = format!("{} {command}", bin("keygate").display());
    let out = match Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYGATE_URL", format!("unix://{}", d.socket().display()))
        .env("KEYGATE_TOKEN", token)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("this test needs `script` (util-linux's bsdutils): {e}"),
    };
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn a_tty_child_stays_a_tty_and_is_masked() {
    let (d, t) = setup();
    d.secret("public/x", "s3cr3t-value");
    let check = r#"[ -t 1 ] && echo out-tty; [ -t 2 ] && echo err-tty; echo "v=$PUBLIC_X""#;
    let out = under_a_terminal(&d, &t, &format!("exec -s public/x -- sh -c '{check}'"));
    assert!(out.contains("out-tty\n"), "{out:?}");
    assert!(out.contains("err-tty\n"), "{out:?}");
    assert!(out.contains("v=<keygate:public/x>\n"), "{out:?}");
    assert!(!out.contains("s3cr3t-value"), "{out:?}");
    // And through a pipe it is a pipe.
    let r = exec(
        &d,
        &t,
        &[
            "-s",
            "public/x",
            "--",
            "sh",
            "-c",
            "[ -t 1 ] && echo tty || echo pipe",
        ],
    );
    assert_eq!(r.stdout, "pipe\n");
}

#[test]
fn one_request_for_all_secrets_bound_to_the_command() {
    let (d, t) = setup();
    d.secret("github/a", "value-one");
    d.secret("github/b", "value-two");
    let child = d
        .keygate_as(
            &t,
            &[
                "exec",
                "--reason",
                "deploy",
                "-e",
                "A=github/a",
                "-e",
                "B=github/b",
                "--",
                "sh",
                "-c",
                r#"printf '%s %s' "$A" "$B""#,
            ],
        )
        .spawn();
    let id = d.pending_request();
    let reqs = d.requests();
    assert_eq!(reqs.len(), 1, "one request for both: {reqs:?}");
    let req = &reqs[0];
    assert_eq!(req["id"], id.as_str());
    assert_eq!(req["secrets"], serde_json::json!(["github/a", "github/b"]));
    assert_eq!(
        req["command"],
        serde_json::json!(["sh", "-c", r#"printf '%s %s' "$A" "$B""#])
    );
    assert!(req["host"].as_str().is_some_and(|h| !h.is_empty()), "{req}");
    assert_eq!(req["reason"], "deploy");
    d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "<keygate:github/a> <keygate:github/b>");
}

#[test]
fn a_grant_for_one_command_refuses_another() {
    let (d, t) = setup();
    d.secret("github/token", "ghp_bound");
    let first = ["-s", "github/token", "--", "sh", "-c", "echo one"];
    let child = d
        .keygate_as(&t, &[&["exec"][..], &first[..]].concat())
        .spawn();
    approve_next(&d);
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "one\n");

    // The same command again: the reusable grant serves it, nobody is asked.
    let again = exec(&d, &t, &first);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(d.requests().len(), 1);

    // Another command: the grant does not serve it; a new request waits, and times out.
    let other = exec(
        &d,
        &t,
        &[
            "--timeout",
            "1s",
            "-s",
            "github/token",
            "--",
            "sh",
            "-c",
            "echo two",
        ],
    );
    assert_eq!(other.code, 4, "{other:?}");
    assert_eq!(
        d.requests().len(),
        2,
        "the other command filed its own request"
    );
    // Nor does `keygate get`, which presents no command.
    let get = d
        .keygate_as(&t, &["get", "github/token", "--timeout", "1s"])
        .run();
    assert_eq!(get.code, 4, "{get:?}");
}

#[test]
fn revoke_ends_the_child_within_the_grace() {
    let (d, t) = setup();
    d.secret("github/token", "ghp_revoked");
    let mut run = Running::start(
        &d,
        &t,
        &[
            "--grace",
            "5s",
            "-s",
            "github/token",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 30",
        ],
    );
    approve_next(&d);
    run.wait_line("started");
    d.keygate(&["revoke", "--all"]).ok();
    let (code, _, stderr) = run.end(Duration::from_secs(10));
    // SIGTERM, not the SIGKILL that ends the grace: it ended within the grace.
    assert_eq!(code, 143, "128 + SIGTERM: {stderr}");
    assert!(stderr.contains("revoked; stopping sh"), "{stderr}");
}

#[test]
fn a_child_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let (d, t) = setup();
    d.secret("github/token", "ghp_stubborn");
    let mut run = Running::start(
        &d,
        &t,
        &[
            "--grace",
            "1s",
            "-s",
            "github/token",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo started; exec sleep 30",
        ],
    );
    approve_next(&d);
    run.wait_line("started");
    let revoked = Instant::now();
    d.keygate(&["revoke", "--all"]).ok();
    let (code, _, stderr) = run.end(Duration::from_secs(10));
    assert_eq!(code, 137, "128 + SIGKILL: {stderr}");
    assert!(
        revoked.elapsed() >= Duration::from_secs(1),
        "the grace was given"
    );
}

#[test]
fn restart_on_change_gives_the_child_the_new_value() {
    let (d, t) = setup();
    d.secret("github/token", "ghp_old");
    let mut run = Running::start(
        &d,
        &t,
        &[
            "--restart-on-change",
            "--no-masking",
            "--grace",
            "2s",
            "-e",
            "GH=github/token",
            "--",
            "sh",
            "-c",
            r#"echo "v=$GH"; exec sleep 30"#,
        ],
    );
    approve_next(&d);
    run.wait_line("v=ghp_old");
    wait_for_the_check(&d);
    d.secret("github/token", "ghp_new");
    // At once, normally; a change the daemon's watch misses is still caught when the
    // long-poll (25 s) ends and exec compares the values.
    run.wait_line_within("v=ghp_new", Duration::from_secs(40));
    d.keygate(&["revoke", "--all"]).ok();
    let (code, _, stderr) = run.end(Duration::from_secs(10));
    assert_eq!(code, 143, "{stderr}");
    assert!(
        stderr.contains("github/token changed; restarting sh"),
        "{stderr}"
    );
    assert_eq!(d.requests().len(), 1, "the restart needs no new approval");
}

#[test]
fn restarted_child_output_masks_old_and_new_values() {
    let (d, t) = setup();
    d.secret("github/token", "ghp_first");
    let mut run = Running::start(
        &d,
        &t,
        &[
            "--restart-on-change",
            "-e",
            "GH=github/token",
            "--",
            "sh",
            "-c",
            r#"echo "v=$GH"; echo "old=ghp_first"; exec sleep 30"#,
        ],
    );
    approve_next(&d);
    run.wait_line("v=<keygate:github/token>");
    wait_for_the_check(&d);
    d.secret("github/token", "ghp_second");
    poll(Duration::from_secs(40), "the restarted child", || {
        run.take_lines();
        let starts = run.seen.iter().filter(|l| *l == "v=<keygate:github/token>");
        (starts.count() == 2).then_some(())
    });
    d.keygate(&["revoke", "--all"]).ok();
    let (_, lines, _) = run.end(Duration::from_secs(20));
    assert!(lines.iter().all(|l| !l.contains("ghp_")), "{lines:?}");
}

#[test]
fn expiry_ends_the_child() {
    let (d, t) = setup();
    d.secret("short/token", "short-lived");
    // The "short lived" rule grants 5 s.
    let mut run = Running::start(
        &d,
        &t,
        &[
            "-s",
            "short/token",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 30",
        ],
    );
    approve_next(&d);
    run.wait_line("started");
    let (code, _, stderr) = run.end(Duration::from_secs(15));
    assert_eq!(code, 143, "{stderr}");
    assert!(stderr.contains("expired; stopping sh"), "{stderr}");
}

#[test]
fn an_unreachable_daemon_ends_the_child_when_the_grant_would_have_expired() {
    let (mut d, t) = setup();
    d.secret("short/token", "outage");
    let mut run = Running::start(
        &d,
        &t,
        &[
            "--ttl",
            "6s",
            "-s",
            "short/token",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 30",
        ],
    );
    approve_next(&d);
    run.wait_line("started");
    d.stop();
    let (code, _, stderr) = run.end(Duration::from_secs(15));
    assert_eq!(code, 143, "fail closed: {stderr}");
    assert!(
        stderr.contains("expired while the daemon could not be asked"),
        "{stderr}"
    );
}

#[test]
fn a_daemon_that_forgot_the_grant_ends_the_child() {
    let (mut d, t) = setup();
    d.secret("github/token", "ghp_forgotten");
    let mut run = Running::start(
        &d,
        &t,
        &[
            "-s",
            "github/token",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 30",
        ],
    );
    approve_next(&d);
    run.wait_line("started");
    // Grants live in the daemon's memory: a restart forgets them.
    d.restart();
    let (code, _, stderr) = run.end(Duration::from_secs(20));
    assert_eq!(code, 143, "{stderr}");
    assert!(stderr.contains("no longer serves grant"), "{stderr}");
}
