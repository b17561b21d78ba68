//! `keygated demo` in a real browser: Debian's Chromium at a phone's 375×812, driven by
//! Selenium (`tests/browser/driver.py`). The page the demo prints loads; a request the
//! agent files appears without a reload; an outsider's tap on Approve gets the bot's
//! refusal, shown to them alone; the approver's Deny… opens its form, whose reason the
//! waiting agent is told; on the agent's next request the approver's tap on Approve
//! releases the secret to it, and the page then shows the approved message. A reason holding markup is
//! shown as the text it is. Screenshots land in `<target>/browser-shots/` (the ones in
//! `docs/` come from here). Skips, loudly, where no browser can be had; CI sets
//! `KEYGATE_REQUIRE_BROWSER=1` so it runs there.
// Helpers outside #[test] fns fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keygate_tests::browser::{Interruptible, Lines, Session, browser};
use keygate_tests::{bin, finish};

/// The demo's second secret, left for trying the flow by hand.
const SECRET: &str = "demo/db-password";
const VALUE: &str = "hunter2-demo";
/// Markup a requester could put in a reason: it must be shown, never run.
const REASON: &str =
    "<script>window.__kgPwned=1</script><img src=x onerror=\"window.__kgPwned=2\"> ship it";

/// The value after `KEY=` on the line that has it.
fn value_after(line: &str, key: &str) -> String {
    let at = line.find(key).unwrap() + key.len();
    line[at..].split_whitespace().next().unwrap().to_owned()
}

/// The agent's `keygate get SECRET --reason REASON`, waiting for a decision.
fn ask(url: &str, token: &str, reason: &str) -> Child {
    Command::new(bin("keygate"))
        .args(["get", SECRET, "--reason", reason])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYGATE_URL", url)
        .env("KEYGATE_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `keygated demo`, serving on, and what it printed: the page's address, the agent's
/// `KEYGATE_URL` and `KEYGATE_TOKEN`.
fn demo() -> (Interruptible, String, String, String) {
    let mut demo: Child = Command::new(bin("keygated"))
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = Lines::of(&mut demo);
    let demo = Interruptible(demo);
    let wait = Duration::from_secs(60);
    let page = out.wait_for(wait, "the page's address", |l| {
        l.contains("Approve from your browser: http://127.0.0.1:")
    });
    let page = value_after(&page, "Approve from your browser: ");
    let url = out.wait_for(wait, "KEYGATE_URL", |l| l.contains("KEYGATE_URL="));
    let token = out.wait_for(wait, "KEYGATE_TOKEN", |l| l.contains("KEYGATE_TOKEN=kga_"));
    (
        demo,
        page,
        value_after(&url, "KEYGATE_URL="),
        value_after(&token, "KEYGATE_TOKEN="),
    )
}

/// No browser needed: the demo prints where to approve, and that address serves the
/// page with its Content-Security-Policy.
#[test]
fn the_demo_prints_where_to_approve_and_serves_the_page_there() {
    let (_demo, page, url, token) = demo();
    assert!(page.ends_with('/'), "{page}");
    assert!(url.starts_with("unix://"), "{url}");
    assert!(token.starts_with("kga_"), "{token}");
    let addr = page.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let head = answer
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    let csp = keygate_discord_sim::CSP.to_ascii_lowercase();
    assert!(
        head.contains(&format!("content-security-policy: {csp}")),
        "{head}"
    );
    assert!(answer.contains("<script src=\"/page.js\" defer></script>"));
}

#[test]
fn the_demo_is_approved_from_a_phone_sized_browser() {
    let Some(b) = browser() else { return };
    let (demo, page, url, token) = demo();

    let shots = bin("keygate")
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("browser-shots");
    let mut driver = Session::start(&b, &[page.as_ref(), shots.as_os_str(), SECRET.as_ref()]);
    let loaded = driver.event("loaded");
    assert_eq!(loaded["width"], 375, "{loaded}");
    assert_eq!(
        loaded["overflow"], false,
        "the page scrolls sideways at 375 px: {loaded}"
    );
    assert_eq!(loaded["status"], "live", "{loaded}");

    // The agent asks, and waits.
    let agent = ask(&url, &token, REASON);

    // It appears on the open page, no reload, pending, with its buttons in colour, and
    // its reason's markup as plain text that ran nothing.
    let pending = driver.event("pending");
    assert_eq!(pending["marker"], "no reload", "{pending}");
    let text = pending["text"].as_str().unwrap();
    assert!(text.contains("Approval needed"), "{text}");
    assert!(
        text.contains("<script>window.__kgPwned=1</script>"),
        "{text}"
    );
    assert!(text.contains("<img src=x"), "{text}");
    assert_eq!(pending["markup_elements"], 0, "{pending}");
    assert_eq!(pending["pwned"], serde_json::Value::Null, "{pending}");
    assert_eq!(pending["overflow"], false, "{pending}");
    // The bot's amber bar and green / red buttons, as Discord draws them.
    assert_eq!(pending["bar"], "rgb(241, 196, 15)", "{pending}");
    let buttons = pending["buttons"].as_array().unwrap();
    let class_of = |label: &str| {
        let b = buttons.iter().find(|b| b["label"] == label);
        let b = b.unwrap_or_else(|| panic!("no {label} button in {buttons:?}"));
        b["class"].as_str().unwrap().to_owned()
    };
    assert!(
        class_of("Approve").contains("style-3"),
        "green: {buttons:?}"
    );
    assert!(class_of("Deny").contains("style-4"), "red: {buttons:?}");
    assert!(
        class_of("Approve…").contains("style-1"),
        "blurple: {buttons:?}"
    );

    // The outsider's tap: refused, in a reply the approver does not see.
    let refused = driver.event("refused");
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains("You are not an approver"),
        "{refused}"
    );
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains("Only you can see this"),
        "{refused}"
    );
    assert_eq!(refused["hidden_from_others"], true, "{refused}");
    assert_eq!(
        refused["typed_user_replies"], 1,
        "their own reply only: {refused}"
    );

    // The approver's Deny…: a form asks the reason; the agent is told it.
    let denied = driver.event("denied");
    assert!(
        denied["modal_title"]
            .as_str()
            .unwrap()
            .starts_with("Deny req_"),
        "{denied}"
    );
    assert!(
        denied["modal_labels"][0]
            .as_str()
            .unwrap()
            .starts_with("Reason (the agent is told)"),
        "{denied}"
    );
    let text = denied["text"].as_str().unwrap();
    assert!(text.contains("Denied"), "{text}");
    assert!(text.contains("demo-approver"), "{text}");
    assert!(text.contains("not on a Friday"), "{text}");
    assert_eq!(denied["bar"], "rgb(231, 76, 60)", "{denied}");
    assert!(
        denied["buttons"].as_array().unwrap().is_empty(),
        "a denied request has no buttons left: {denied}"
    );
    let got = finish(agent);
    assert_ne!(got.code, 0, "{got:?}");
    assert!(got.stdout.is_empty(), "{got:?}");
    assert!(got.stderr.contains("not on a Friday"), "{got:?}");

    // The agent asks again; the approver's tap on Approve releases the secret, and the
    // page shows who approved.
    let agent = ask(&url, &token, "ship it, take two");
    let approved = driver.event("approved");
    let text = approved["text"].as_str().unwrap();
    assert!(text.contains("Approved"), "{text}");
    assert!(text.contains("demo-approver"), "{text}");
    assert_eq!(approved["marker"], "no reload", "{approved}");
    assert_eq!(approved["bar"], "rgb(46, 204, 113)", "{approved}");
    let got = finish(agent);
    assert_eq!(got.code, 0, "{got:?}");
    assert_eq!(got.stdout, format!("{VALUE}\n"));
    driver.finish();
    drop(demo);
    for shot in [
        "demo-pending.png",
        "demo-refused.png",
        "demo-modal.png",
        "demo-approved.png",
    ] {
        assert!(shots.join(shot).exists(), "{shot}");
    }
}

/// One raw HTTP/1.1 request; the status.
fn http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A components v2 message, posted straight to the simulator's REST API as a bot
/// would: its container's accent bar, a heading, subtext, a divider, a section with a
/// red button beside bold and code, and a disabled green button, drawn as Discord draws
/// them, its markup as text.
#[test]
fn a_components_v2_message_is_drawn_as_discord_draws_it() {
    let Some(b) = browser() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(keygate_discord_sim::Simulator::start(
            keygate_discord_sim::SimConfig::default(),
        ))
        .unwrap();
    let cfg = sim.config().clone();
    let message = serde_json::json!({
        "flags": 1 << 15,
        "components": [{
            "type": 17, "accent_color": 0x00E7_4C3C,
            "components": [
                {"type": 10, "content": "# Deploy <script>window.__kgPwned=1</script>\n-# small print"},
                {"type": 14, "divider": true},
                {"type": 9, "components": [{"type": 10, "content": "**bold** and `code`"}],
                 "accessory": {"type": 2, "style": 4, "label": "Revoke", "custom_id": "x:1"}},
                {"type": 1, "components": [
                    {"type": 2, "style": 3, "label": "Done", "custom_id": "x:2", "disabled": true}
                ]}
            ]
        }]
    });
    let rest = sim.rest_url();
    let status = http(
        rest.trim_start_matches("http://"),
        "POST",
        &format!("/api/v10/channels/{}/messages", cfg.channel_id),
        &format!("Authorization: Bot {}\r\n", cfg.bot_token),
        &message.to_string(),
    );
    assert_eq!(status, 200);
    let shots = bin("keygate")
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("browser-shots");
    let page = sim.page_url();
    let mut driver = Session::start(&b, &["layout".as_ref(), page.as_ref(), shots.as_os_str()]);
    let drawn = driver.event("layout");
    assert_eq!(drawn["accent"], "rgb(231, 76, 60)", "{drawn}");
    assert_eq!(
        drawn["h1"], "Deploy <script>window.__kgPwned=1</script>",
        "{drawn}"
    );
    assert_eq!(drawn["subtext"], "small print", "{drawn}");
    assert_eq!(drawn["dividers"], 1, "{drawn}");
    assert_eq!(drawn["bold"], "bold", "{drawn}");
    assert_eq!(drawn["code"], "code", "{drawn}");
    assert_eq!(drawn["section_button"], "Revoke btn style-4", "{drawn}");
    assert_eq!(
        drawn["disabled"],
        serde_json::json!(["Done", "btn style-3"]),
        "{drawn}"
    );
    assert_eq!(drawn["markup_elements"], 0, "{drawn}");
    assert_eq!(drawn["pwned"], serde_json::Value::Null, "{drawn}");
    driver.finish();
    drop(sim);
}
