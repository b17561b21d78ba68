//! `keygate exec`, through the real binaries: injection, mapping, references, the
//! token kept from the child, masking, exit codes and signals, a tty child, argv binding.
//! What happens when the grant ends or changes is in `exec_lifetime.rs`.

use std::process::{Command, Stdio};
use std::time::Duration;

use keygate_tests::exec::{Running, approve_next, exec, setup};
use keygate_tests::{Daemon, bin, finish};

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
