//! `keygate exec` while its grant lives, through the real binaries: revoke within the
//! grace (SIGTERM, then SIGKILL), restart on change (masking old and new values), expiry,
//! and a daemon that cannot be reached or forgot the grant.

use std::time::{Duration, Instant};

use keygate_tests::exec::{Running, approve_next, setup, wait_for_the_check};
use keygate_tests::poll;

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
