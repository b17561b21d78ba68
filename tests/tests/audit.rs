//! The audit log: hash-chained, verified, and never holding a value.

use keygate_tests::{Daemon, finish};

const VALUE: &str = "sk-live-SUPERSECRET-0123456789";

#[test]
fn no_secret_value_in_the_audit_log_the_daemon_log_or_cli_stderr() {
    let d = Daemon::start();
    d.secret("github/token", VALUE);
    d.secret("public/key", VALUE);
    let t = d.agent("ci-one");
    let child = d.keygate_as(&t, &["get", "github/token"]).spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.stdout.trim(), VALUE);
    let mut stderr = r.stderr;
    stderr += &d.keygate_as(&t, &["get", "public/key"]).ok().stderr;
    stderr += &d.keygate(&["secrets", "list"]).ok().stderr;
    stderr += &d.keygate(&["audit"]).ok().stdout;
    d.keygate(&["revoke", "--all"]).ok();
    assert!(!stderr.contains(VALUE), "CLI: {stderr}");
    assert!(!d.audit().contains(VALUE), "audit log");
    assert!(!d.log().contains(VALUE), "daemon log");
    assert!(!d.audit().contains("SUPERSECRET"));
}

#[test]
fn verify_finds_an_edited_a_removed_and_a_reordered_line() {
    let d = Daemon::start();
    d.secret("a/one", "1");
    d.secret("a/two", "2");
    d.agent("ci-one");
    let ok = d.keygate(&["audit", "--verify"]).ok();
    assert!(ok.stderr.contains("intact"), "{}", ok.stderr);
    let original = d.audit();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 4);

    let edited = original.replacen("a/one", "a/evil", 1);
    std::fs::write(d.audit_path(), &edited).unwrap();
    let r = d.keygate(&["audit", "--verify"]).run();
    assert_eq!(r.code, 1, "edit: {r:?}");

    let mut removed = lines.clone();
    removed.remove(1);
    std::fs::write(d.audit_path(), removed.join("\n") + "\n").unwrap();
    assert_eq!(d.keygate(&["audit", "--verify"]).run().code, 1, "removal");

    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    std::fs::write(d.audit_path(), swapped.join("\n") + "\n").unwrap();
    assert_eq!(d.keygate(&["audit", "--verify"]).run().code, 1, "reorder");

    let mut cut = lines.clone();
    cut.pop();
    std::fs::write(d.audit_path(), cut.join("\n") + "\n").unwrap();
    assert_eq!(
        d.keygate(&["audit", "--verify"]).run().code,
        1,
        "last line cut"
    );

    std::fs::write(d.audit_path(), &original).unwrap();
    d.keygate(&["audit", "--verify"]).ok();
}
