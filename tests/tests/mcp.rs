//! `keygate mcp`, driven by an independent client: the official MCP Python SDK
//! (`tests/mcp/driver.py`, in a virtual environment `keygate_tests::mcp::client` makes).
//! Tools listed, a run approved from the terminal, a denial with its reason, progress
//! while a request waits, a cancelled call and a closed stdin cancelling the request at
//! the daemon, bad inputs filing nothing, an unreachable daemon, withdrawal on revoke;
//! and in every session, no secret value anywhere in its traffic.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keygate_tests::mcp::{Session, client};
use keygate_tests::{Daemon, bin, poll};
use serde_json::{Value, json};

const VALUE: &str = "ghp_mcp_value_7f3e91";

fn setup() -> Option<(PathBuf, Daemon, String)> {
    let python = client()?;
    let d = Daemon::start();
    let t = d.agent("ci-one");
    Some((python, d, t))
}

fn request(d: &Daemon, id: &str) -> Value {
    d.requests()
        .into_iter()
        .find(|r| r["id"] == id)
        .expect("the request is listed")
}

fn run_args(secrets: Value, command: &[&str]) -> Value {
    let mut args = json!({"command": command, "reason": "open PR #12"});
    args["secrets"] = secrets;
    args
}

#[test]
fn lists_the_four_tools_and_negotiates_2025_11_25() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    let s = Session::start(&python, &d, &t, &json!([{"list_tools": true}]), &[]);
    let (events, traffic) = s.finish();
    let init = events
        .iter()
        .find(|e| e["event"] == "initialized")
        .expect("initialized");
    assert_eq!(init["protocol_version"], "2025-11-25");
    assert_eq!(init["server"]["name"], "keygate");
    let tools = events
        .iter()
        .find(|e| e["event"] == "tools")
        .expect("tools");
    let mut names: Vec<&str> = tools["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "list_grants",
            "list_secrets",
            "request_status",
            "run_with_secrets"
        ]
    );
    let run = tools["tools"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "run_with_secrets"))
        .expect("run_with_secrets");
    assert_eq!(
        run["inputSchema"]["required"],
        json!(["command", "secrets", "reason"])
    );
    assert!(String::from_utf8_lossy(&traffic.stdout).contains("\"tools\""));
}

#[test]
fn a_run_approved_from_the_terminal_gets_masked_output_and_keeps_its_exit_apart() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("github/token", VALUE);
    let argv = [
        "sh",
        "-c",
        r#"printf 'token=%s\n' "$GH"; printf 'err %s' "$GH" >&2; printf 'tok=%s\n' "${KEYGATE_TOKEN-unset}"; exit 3"#,
    ];
    let steps = json!([
        {"call": "run_with_secrets", "args": run_args(json!({"GH": "github/token"}), &argv), "progress": true},
        {"call": "list_grants"},
    ]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    let id = d.pending_request();
    // Bound to the argv, as `keygate exec` binds it.
    assert_eq!(request(&d, &id)["command"], json!(argv));
    d.keygate(&["approve", &id]).ok();
    let r = s.result(0);
    // The command exited 3: an error for the model, but approved, not denied.
    assert_eq!(r["is_error"], true, "{r:#}");
    let out = &r["structured"];
    assert_eq!(out["decision"]["outcome"], "approved", "{r:#}");
    assert_eq!(out["decision"]["request"]["id"], id.as_str());
    assert_eq!(out["decision"]["approved_by"], "operator");
    assert_eq!(out["run"]["exit_code"], 3);
    assert_eq!(
        out["run"]["stdout"],
        "token=<keygate:github/token>\ntok=unset\n"
    );
    assert_eq!(out["run"]["stderr"], "err <keygate:github/token>");
    assert_eq!(out["run"]["stdout_truncated"], false);
    assert!(
        r["text"]
            .as_str()
            .is_some_and(|t| t.contains("exit code 3")),
        "{r:#}"
    );
    assert!(
        s.progress_count(0) >= 1,
        "a progress notification while waiting"
    );

    let grants = s.result(1);
    assert_eq!(grants["is_error"], false, "{grants:#}");
    let listed = &grants["structured"]["grants"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{grants:#}");
    assert_eq!(listed[0]["secrets"], json!(["github/token"]));
    assert_eq!(listed[0]["approved_by"], json!(["operator"]));
    let (_, traffic) = s.finish();
    traffic.assert_free_of(VALUE);

    // request_status and list_secrets, in a session of their own.
    d.secret("public/x", "public-value-92ab");
    d.secret("prod/db", "prod-value-71cd");
    let steps = json!([
        {"call": "request_status", "args": {"id": id}},
        {"call": "list_secrets"},
    ]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    let status = s.result(0);
    assert_eq!(status["is_error"], false, "{status:#}");
    assert_eq!(status["structured"]["status"], "approved");
    assert_eq!(status["structured"]["decided_by"], "operator");
    let listed = s.result(1);
    assert_eq!(
        listed["structured"]["secrets"],
        json!([
            {"name": "github/token", "decision": "ask"},
            {"name": "public/x", "decision": "allow"},
        ]),
        "prod/db is denied to this agent, so not listed: {listed:#}"
    );
    let (_, traffic) = s.finish();
    for v in [VALUE, "public-value-92ab", "prod-value-71cd"] {
        traffic.assert_free_of(v);
    }
}

#[test]
fn an_allowed_run_succeeds_and_its_output_is_cut_at_64_kib() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("public/x", VALUE);
    let argv = [
        "sh",
        "-c",
        r#"printf '%s\n' "$X"; head -c 100000 /dev/zero | tr '\0' a"#,
    ];
    let steps = json!([
        {"call": "run_with_secrets", "args": run_args(json!({"X": "public/x"}), &argv)},
    ]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    let r = s.result(0);
    assert_eq!(r["is_error"], false, "{r:#}");
    let out = &r["structured"];
    assert_eq!(out["decision"]["outcome"], "allowed");
    assert_eq!(out["run"]["exit_code"], 0);
    let stdout = out["run"]["stdout"].as_str().expect("stdout");
    assert_eq!(stdout.len(), 64 * 1024);
    assert!(
        stdout.starts_with("<keygate:public/x>\naaa"),
        "{}",
        &stdout[..40]
    );
    assert_eq!(out["run"]["stdout_truncated"], true);
    assert_eq!(
        out["run"]["stdout_bytes"],
        "<keygate:public/x>\n".len() + 100_000
    );
    assert!(
        r["text"]
            .as_str()
            .is_some_and(|t| t.contains("[stdout cut at 64 KiB of")),
        "the text says it was cut"
    );
    assert!(d.requests().is_empty(), "an allow rule files nothing");
    let (_, traffic) = s.finish();
    traffic.assert_free_of(VALUE);
}

#[test]
fn a_denial_says_who_and_why_and_runs_nothing() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("github/token", VALUE);
    let marker = d.root().join("ran");
    let argv = ["touch", marker.to_str().expect("path")];
    let steps = json!([
        {"call": "run_with_secrets", "args": run_args(json!({"GH": "github/token"}), &argv)},
    ]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    let id = d.pending_request();
    d.keygate(&["deny", &id, "--reason", "use the staging token"])
        .ok();
    let r = s.result(0);
    assert_eq!(r["is_error"], true);
    let decision = &r["structured"]["decision"];
    assert_eq!(decision["outcome"], "denied", "{r:#}");
    assert_eq!(decision["denied_by"], "operator");
    assert_eq!(decision["denial_reason"], "use the staging token");
    assert_eq!(decision["request"]["id"], id.as_str());
    assert_eq!(r["structured"]["run"], Value::Null);
    assert!(
        r["text"]
            .as_str()
            .is_some_and(|t| t.contains("denied by operator: use the staging token")),
        "{r:#}"
    );
    assert!(!marker.exists(), "nothing ran");
    let (_, traffic) = s.finish();
    traffic.assert_free_of(VALUE);
}

#[test]
fn no_decision_within_the_timeout_is_a_timeout_and_cancels_the_request() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("github/token", VALUE);
    let mut args = run_args(json!({"GH": "github/token"}), &["true"]);
    args["timeout"] = json!("1s");
    let steps = json!([{"call": "run_with_secrets", "args": args}]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    let r = s.result(0);
    assert_eq!(r["is_error"], true);
    assert_eq!(r["structured"]["decision"]["outcome"], "timeout", "{r:#}");
    assert_eq!(r["structured"]["run"], Value::Null);
    let requests = d.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["status"], "cancelled");
    s.finish();
}

#[test]
fn progress_comes_at_least_every_10_seconds_while_a_request_waits() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("github/token", VALUE);
    let argv = ["sh", "-c", r#"printf '%s' "$GH""#];
    let steps = json!([
        {"call": "run_with_secrets", "args": run_args(json!({"GH": "github/token"}), &argv), "progress": true},
    ]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    let id = d.pending_request();
    let first = s.event("progress", 0);
    let from = Instant::now();
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains(&id) && m.contains("waiting for approval")),
        "{first:#}"
    );
    // The next one comes within 10 s, while still nobody decided.
    s.wait_for(
        Duration::from_secs(10),
        "a second progress notification",
        |e| e["event"] == "progress" && e["step"] == 0 && *e != first,
    );
    assert!(from.elapsed() < Duration::from_secs(10));
    assert_eq!(request(&d, &id)["status"], "pending");
    d.keygate(&["approve", &id]).ok();
    let r = s.result(0);
    assert_eq!(r["is_error"], false, "{r:#}");
    assert_eq!(r["structured"]["run"]["stdout"], "<keygate:github/token>");
    let (events, traffic) = s.finish();
    let progress: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "progress")
        .filter_map(|e| e["progress"].as_f64())
        .collect();
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "progress only grows: {progress:?}"
    );
    traffic.assert_free_of(VALUE);
}

#[test]
fn a_cancelled_call_cancels_its_request_at_the_daemon() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("github/token", VALUE);
    let steps = json!([
        {"call": "run_with_secrets", "args": run_args(json!({"GH": "github/token"}), &["true"]), "cancel_after_progress": 1},
        {"call": "list_grants"},
    ]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    s.event("cancelled", 0);
    poll(
        Duration::from_secs(10),
        "the request to be cancelled",
        || {
            let r = d.requests().into_iter().next()?;
            (r["status"] == "cancelled").then_some(())
        },
    );
    // The session goes on.
    let grants = s.result(1);
    assert_eq!(grants["structured"]["grants"], json!([]));
    let (_, traffic) = s.finish();
    assert!(
        String::from_utf8_lossy(&traffic.stdin).contains("notifications/cancelled"),
        "the client sent notifications/cancelled"
    );
    traffic.assert_free_of(VALUE);
}

/// No Python here: the raw protocol, then stdin closed while the request waits.
#[test]
fn a_closed_stdin_cancels_the_pending_request() {
    let d = Daemon::start();
    let t = d.agent("ci-one");
    d.secret("github/token", VALUE);
    let mut child = Command::new(bin("keygate"))
        .arg("mcp")
        .env_clear()
        .envs(d.client_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYGATE_TOKEN", &t)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keygate mcp");
    let mut stdin = child.stdin.take().expect("stdin");
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "run_with_secrets", "_meta": {"progressToken": "p1"},
            "arguments": run_args(json!({"GH": "github/token"}), &["true"])}}),
    ];
    for m in messages {
        writeln!(stdin, "{m}").expect("write");
    }
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let init: Value =
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json");
    // An older client gets its own version.
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init:#}");
    let id = d.pending_request();
    drop(stdin);
    poll(
        Duration::from_secs(10),
        "the request to be cancelled",
        || (request(&d, &id)["status"] == "cancelled").then_some(()),
    );
    let status = poll(Duration::from_secs(20), "keygate mcp to exit", || {
        child.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status}");
}

#[test]
fn without_an_agent_token_it_refuses_to_start() {
    let d = Daemon::start();
    let r = d.keygate(&["mcp"]).env_remove("KEYGATE_TOKEN").run();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("set KEYGATE_TOKEN"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn bad_inputs_are_tool_errors_and_file_nothing() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("github/token", VALUE);
    let good = || run_args(json!({"GH": "github/token"}), &["true"]);
    let with = |key: &str, v: Value| {
        let mut a = good();
        a[key] = v;
        a
    };
    let without = |key: &str| {
        let mut a = good();
        a.as_object_mut().expect("object").remove(key);
        a
    };
    let bad_runs = [
        (without("command"), "`command` is missing"),
        (with("command", json!([])), "`command` is empty"),
        (with("command", json!("ls -l")), "array of strings"),
        (with("command", json!([""])), "`command` is empty"),
        (with("command", json!(["ls", 3])), "array of strings"),
        (without("secrets"), "`secrets` is missing"),
        (with("secrets", json!({})), "at least one secret"),
        (
            with("secrets", json!(["github/token"])),
            "`secrets` must be an object",
        ),
        (
            with("secrets", json!({"1GH": "github/token"})),
            "not an environment variable name",
        ),
        (
            with("secrets", json!({"GH": "Github/Token"})),
            "not a secret name",
        ),
        (
            with("secrets", json!({"GH": "../etc/passwd"})),
            "not a secret name",
        ),
        (without("reason"), "`reason` is missing"),
        (with("reason", json!("   ")), "`reason` is missing"),
        (with("ttl", json!("soon")), "`ttl`"),
        (
            with("timeout", json!("0s")),
            "`timeout`: duration must be longer than zero",
        ),
        (
            with("timeout", json!(30)),
            "`timeout` must be a duration string",
        ),
        (with("cwd", json!("/no/such/dir")), "no such directory"),
        (
            with("secret", json!({"GH": "github/token"})),
            "unknown argument `secret`",
        ),
        (
            with("command", json!(["no-such-program-here"])),
            "not found in PATH",
        ),
    ];
    let mut steps: Vec<Value> = bad_runs
        .iter()
        .map(|(args, _)| json!({"call": "run_with_secrets", "args": args}))
        .collect();
    let others = [
        (
            json!({"call": "request_status", "args": {}}),
            "name the request",
        ),
        (
            json!({"call": "request_status", "args": {"id": "nope"}}),
            "id:",
        ),
        (
            json!({"call": "list_secrets", "args": {"x": 1}}),
            "takes no arguments",
        ),
    ];
    steps.extend(others.iter().map(|(s, _)| s.clone()));
    steps.push(json!({"call": "no_such_tool"}));
    let mut s = Session::start(&python, &d, &t, &Value::Array(steps), &[]);
    for (i, want) in bad_runs
        .iter()
        .map(|(_, w)| *w)
        .chain(others.iter().map(|(_, w)| *w))
        .enumerate()
    {
        let r = s.result(i);
        assert_eq!(r["is_error"], true, "step {i}: {r:#}");
        let text = r["text"].as_str().unwrap_or_default();
        assert!(text.contains(want), "step {i}: wanted {want:?} in {text:?}");
        let kind = &r["structured"]["error"];
        assert!(
            kind == "invalid_input" || kind == "cannot_run",
            "step {i}: {r:#}"
        );
    }
    let unknown = s.event("rpc_error", bad_runs.len() + others.len());
    assert!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("no tool named")),
        "{unknown:#}"
    );
    s.finish();
    assert!(d.requests().is_empty(), "nothing was filed");
}

#[test]
fn an_unreachable_daemon_is_a_clear_error_not_a_hang() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    let gone = d.root().join("nobody-here.sock");
    let url = format!("unix://{}", gone.display());
    let steps = json!([
        {"call": "list_secrets"},
        {"call": "run_with_secrets", "args": run_args(json!({"GH": "github/token"}), &["true"])},
    ]);
    let started = Instant::now();
    let mut s = Session::start(&python, &d, &t, &steps, &[("KEYGATE_URL", &url)]);
    for step in 0..2 {
        let r = s.result(step);
        assert_eq!(r["is_error"], true);
        assert_eq!(r["structured"]["error"], "unreachable", "{r:#}");
        assert!(
            r["text"]
                .as_str()
                .is_some_and(|t| t.contains("cannot reach keygated")),
            "{r:#}"
        );
    }
    s.finish();
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_revoked_grant_stops_the_command() {
    let Some((python, d, t)) = setup() else {
        return;
    };
    d.secret("github/token", VALUE);
    let argv = ["sh", "-c", r#"printf 'started %s\n' "$GH"; exec sleep 60"#];
    let steps = json!([
        {"call": "run_with_secrets", "args": run_args(json!({"GH": "github/token"}), &argv)},
    ]);
    let mut s = Session::start(&python, &d, &t, &steps, &[]);
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    // Once the value was read, the command runs (or is about to).
    poll(Duration::from_secs(20), "the grant's first read", || {
        let out = d.keygate(&["grants", "--json"]).ok().stdout;
        let grants: Vec<Value> = serde_json::from_str(&out).expect("grants JSON");
        grants
            .iter()
            .any(|g| g["reads"].as_u64().is_some_and(|r| r >= 1))
            .then_some(())
    });
    d.keygate(&["revoke", "--all"]).ok();
    let r = s.result(0);
    assert_eq!(r["is_error"], true, "{r:#}");
    let run = &r["structured"]["run"];
    assert_eq!(r["structured"]["decision"]["outcome"], "approved");
    assert!(
        run["withdrawn"]
            .as_str()
            .is_some_and(|w| w.contains("revoked")),
        "{r:#}"
    );
    assert_eq!(run["signal"], 15);
    assert_eq!(run["exit_code"], Value::Null);
    let (_, traffic) = s.finish();
    traffic.assert_free_of(VALUE);
}
