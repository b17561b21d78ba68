//! `KEYGATE_DISCORD_PING`: whether a request's message notifies the rule's approvers
//! (default true): exactly the rule's approvers, never anyone the requester's text
//! names, nobody at all with `false`. A value other than `true` or `false` stops the
//! daemon at start, naming the variable.

#[test]
fn a_bad_ping_setting_stops_the_daemon_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keygate_tests::bin("keygated"))
        .env_clear()
        .env("XDG_CONFIG_HOME", dir.path().join("c"))
        .env("XDG_DATA_HOME", dir.path().join("d"))
        .env("XDG_STATE_HOME", dir.path().join("s"))
        .env("XDG_RUNTIME_DIR", dir.path().join("r"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .env("KEYGATE_DISCORD_TOKEN", "a-token")
        .env("KEYGATE_DISCORD_CHANNEL_ID", "42")
        .env("KEYGATE_DISCORD_API_URL", "http://127.0.0.1:9")
        .env("KEYGATE_DISCORD_PING", "maybe")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEYGATE_DISCORD_PING"), "{err}");
    assert!(!err.contains("a-token"), "the token was printed: {err}");
}

use keygate_discord_sim::{PressSpec, Simulator};
use keygate_tests::discord::{WAIT, World};
use keygate_tests::finish;

const OPS: u64 = 111_111_111_111_111_111;
const OPS_ROLE: u64 = 222_222_222_222_222_222;

/// A simulator and a daemon connected to it, with `extra` environment.
fn world(extra: &[(&str, &str)]) -> World {
    World::start(keygate_tests::POLICY, extra, &[("github/token", "v")])
}

/// No call the bot made let Discord parse mentions itself (`parse` stays empty, so
/// `users` / `roles` lists are never combined with it — a 400 on Discord).
fn parse_never_used(sim: &Simulator) {
    for call in sim.rest_log() {
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&call.raw_body) else {
            continue;
        };
        let allowed = body
            .get("allowed_mentions")
            .or_else(|| body.get("data").and_then(|d| d.get("allowed_mentions")));
        if let Some(a) = allowed {
            assert_eq!(
                a["parse"],
                serde_json::json!([]),
                "{} {}: {a}",
                call.method,
                call.path
            );
        }
    }
}

#[test]
fn the_rules_approvers_are_pinged_and_nobody_else() {
    let w = world(&[]);
    let (rt, sim) = (&w.rt, &w.sim);
    let (child, _, msg) = w.ask("github/token", "@everyone @here <@42> <@&43> deploy");
    // "ops": one user and one role, mentioned in the content where a mention notifies.
    assert!(!msg.pings.everyone, "{:?}", msg.pings);
    assert_eq!(msg.pings.users, vec![OPS]);
    assert_eq!(msg.pings.roles, vec![OPS_ROLE]);
    assert!(
        msg.content.contains(&format!("<@{OPS}>")),
        "{}",
        msg.content
    );
    assert!(
        msg.content.contains(&format!("<@&{OPS_ROLE}>")),
        "{}",
        msg.content
    );
    let allowed = msg.allowed_mentions.clone().expect("allowed_mentions sent");
    assert_eq!(allowed["parse"], serde_json::json!([]), "{allowed}");
    assert_eq!(
        allowed["users"],
        serde_json::json!([OPS.to_string()]),
        "{allowed}"
    );
    assert_eq!(
        allowed["roles"],
        serde_json::json!([OPS_ROLE.to_string()]),
        "{allowed}"
    );
    // Approving edits the message; the mentions stay exactly the approvers.
    let approve = msg
        .live_buttons()
        .into_iter()
        .find(|b| b.label.as_deref() == Some("Approve"))
        .and_then(|b| b.custom_id)
        .unwrap();
    let h = sim
        .press(&PressSpec {
            custom_id: approve,
            message_id: msg.id,
            username: "ops".into(),
            ..PressSpec::new(0, "", OPS)
        })
        .unwrap();
    rt.block_on(h.response(WAIT)).expect("answered");
    assert_eq!(finish(child).code, 0);
    let now = sim.message(msg.id).unwrap();
    assert!(now.edited > 0);
    assert_eq!(
        now.pings, msg.pings,
        "an edit changed whom the message names"
    );
    // Nothing else the bot sent pinged anyone.
    for m in sim.messages() {
        if m.id != msg.id {
            assert!(m.pings.is_empty(), "{:?} pinged {:?}", m.content, m.pings);
        }
    }
    parse_never_used(sim);
}

#[test]
fn with_ping_off_nobody_is_pinged() {
    let w = world(&[("KEYGATE_DISCORD_PING", "false")]);
    let sim = &w.sim;
    let (mut child, _, msg) = w.ask("github/token", "@everyone please");
    assert!(msg.pings.is_empty(), "{:?}", msg.pings);
    assert!(!msg.content.contains("<@"), "{}", msg.content);
    let allowed = msg.allowed_mentions.clone().expect("allowed_mentions sent");
    assert_eq!(allowed["parse"], serde_json::json!([]), "{allowed}");
    assert!(
        allowed
            .get("users")
            .is_none_or(|u| u == &serde_json::json!([]))
    );
    assert!(
        allowed
            .get("roles")
            .is_none_or(|r| r == &serde_json::json!([]))
    );
    parse_never_used(sim);
    child.kill().ok();
    child.wait().ok();
}
