//! A live grant's controls in Discord, end to end (the real `keygated` and its twilight
//! bot, the Discord simulator, the real CLI as the agent): while a grant lives its message
//! carries a red Revoke and a grey Extend; one of the grant's approvers revokes it at once
//! or extends it (never past the rule's `max_ttl`), anyone else is refused ephemerally and
//! nothing changes; the buttons go when the grant ends; and the message says when the
//! grant is ending soon.

use std::process::Child;
use std::time::Duration;

use keygate_discord_sim::{PressSpec, SimMessage};
use keygate_tests::discord::{WAIT, button};
use keygate_tests::{Daemon, finish, poll};

const OPS: u64 = 111_111_111_111_111_111;
const STRANGER: u64 = 999_999_999_999_999_999;

const POLICY: &str = r#"
[defaults]
request_timeout = "1m"
ttl = "15m"
max_ttl = "1h"

[approvers.ops]
users = ["111111111111111111"]
roles = ["222222222222222222"]

[[rule]]
name = "ci asks for github"
agents = ["ci-*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]
reuse = true

[[rule]]
name = "capped"
agents = ["ci-*"]
secrets = ["capped/*"]
action = "ask"
approvers = ["ops"]
ttl = "10m"
max_ttl = "20m"
reuse = true

[[rule]]
name = "brief"
agents = ["ci-*"]
secrets = ["brief/*"]
action = "ask"
approvers = ["ops"]
ttl = "10s"
max_ttl = "10s"
reuse = true

[[rule]]
name = "brief, once renewable"
agents = ["ci-*"]
secrets = ["renewable/*"]
action = "ask"
approvers = ["ops"]
ttl = "15s"
max_ttl = "30s"
reuse = true
"#;

/// The shared Discord world, with this file's policy and secrets.
struct World(keygate_tests::discord::World);

impl std::ops::Deref for World {
    type Target = keygate_tests::discord::World;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl World {
    fn new() -> Self {
        Self(keygate_tests::discord::World::start(
            POLICY,
            &[],
            &[
                ("github/token", "a-value"),
                ("capped/key", "a-value"),
                ("brief/key", "a-value"),
                ("renewable/key", "a-value"),
            ],
        ))
    }

    fn get(&self, secret: &str) -> Child {
        self.d
            .keygate_as(&self.agent, &["get", secret, "--reason", "x"])
            .spawn()
    }

    /// The agent asks for `secret`, an approver approves in Discord: the grant's
    /// message, live, and the grant's JSON.
    fn granted(&self, secret: &str) -> (SimMessage, serde_json::Value) {
        let child = self.get(secret);
        let id = self.d.pending_request();
        let msg = self.posted(&id);
        let approve = button(&msg, "Approve");
        let (kind, _, _) = self.press(&msg, &approve, OPS);
        assert_eq!(kind, 7, "the approval updated the message");
        assert_eq!(finish(child).code, 0);
        let msg = self.sim.message(msg.id).expect("the message");
        (msg, self.grant())
    }

    fn grants(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.d.keygate(&["grants", "--json"]).ok().stdout)
            .expect("grants JSON")
    }

    fn grant(&self) -> serde_json::Value {
        let all = self.grants();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].clone()
    }

    /// Presses `custom_id` on `msg` as `user`: the answer's type (7 the message updated,
    /// 4 a reply), whether only the presser sees it, and the text shown. A deferred
    /// answer (6, on a loaded machine) is followed to its outcome.
    fn press(&self, msg: &SimMessage, custom_id: &str, user: u64) -> (u8, bool, String) {
        self.press_as(msg, custom_id, user, false)
    }

    /// [`Self::press`]; `forged`: a custom id the message does not carry.
    fn press_as(
        &self,
        msg: &SimMessage,
        custom_id: &str,
        user: u64,
        forged: bool,
    ) -> (u8, bool, String) {
        let h = self
            .sim
            .press(&PressSpec {
                custom_id: custom_id.to_owned(),
                message_id: msg.id,
                username: format!("user{}", user % 1000),
                forged,
                ..PressSpec::new(0, "", user)
            })
            .expect("press dispatched");
        let (shown, ephemeral, text) = self.answer(&h, msg.id);
        (shown.kind(), ephemeral, text)
    }
}

fn audit_events(d: &Daemon, event: &str) -> Vec<serde_json::Value> {
    d.audit()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("an audit line"))
        .filter(|l| l["event"] == event)
        .collect()
}

#[test]
fn a_live_grant_shows_a_red_revoke_and_a_grey_extend() {
    let w = World::new();
    let (msg, g) = w.granted("github/token");
    let id = g["id"].as_str().unwrap();
    let styles: Vec<_> = msg
        .live_buttons()
        .into_iter()
        .map(|b| (b.label.unwrap_or_default(), b.style, b.custom_id.unwrap()))
        .collect();
    assert_eq!(
        styles,
        vec![
            ("Revoke".to_owned(), 4, format!("kg:r:{id}")),
            ("Extend".to_owned(), 2, format!("kg:e:{id}")),
        ]
    );
}

#[test]
fn an_approver_revokes_from_discord_and_the_next_read_asks_again() {
    let w = World::new();
    let (msg, g) = w.granted("github/token");
    let id = g["id"].as_str().unwrap();
    let (kind, ephemeral, text) = w.press(&msg, &button(&msg, "Revoke"), OPS);
    assert_eq!((kind, ephemeral), (7, false), "{text}");
    assert!(text.contains("revoked"), "{text}");
    assert!(
        text.contains("Revoked by") && text.contains("user111"),
        "{text}"
    );
    let now = w.sim.message(msg.id).unwrap();
    assert!(now.live_buttons().is_empty(), "{:?}", now.buttons());
    assert!(w.grants().is_empty(), "the grant is gone at once");
    let ended = audit_events(&w.d, "grant_ended");
    assert!(
        ended
            .iter()
            .any(|e| e["grant"] == id && e.to_string().contains("111111111111111111")),
        "the audit names the presser: {ended:?}"
    );
    // The agent's next read is a new request.
    let before = w.d.requests().len();
    let mut child = w.get("github/token");
    poll(WAIT, "a new request", || {
        (w.d.requests().len() > before).then_some(())
    });
    child.kill().ok();
    child.wait().ok();
}

#[test]
fn an_approver_extends_from_discord_then_the_cap_refuses() {
    let w = World::new();
    let (msg, g) = w.granted("capped/key");
    let id = g["id"].as_str().unwrap();
    let before = g["expires_at"].as_str().unwrap().to_owned();
    let extend = button(&msg, "Extend");
    let (kind, _, text) = w.press(&msg, &extend, OPS);
    assert_eq!(kind, 7, "{text}");
    let after = w.grant()["expires_at"].as_str().unwrap().to_owned();
    assert!(after > before, "{before} → {after}");
    // The message shows the new end (a Discord timestamp of it).
    let (old_t, new_t) = (
        keygate_tests::unix_secs(&before),
        keygate_tests::unix_secs(&after),
    );
    assert!(text.contains(&format!("<t:{new_t}:")), "{text}");
    assert!(!text.contains(&format!("<t:{old_t}:")), "{text}");
    let extended = audit_events(&w.d, "grant_extended");
    assert_eq!(extended.len(), 1, "{extended:?}");
    assert_eq!(extended[0]["grant"], id);
    assert!(extended[0].to_string().contains("111111111111111111"));

    // 10m + 10m is the rule's max_ttl of 20m: a second extension is refused.
    let audit = w.d.audit();
    let msg = w.sim.message(msg.id).unwrap();
    let (kind, ephemeral, text) = w.press(&msg, &extend, OPS);
    assert_eq!((kind, ephemeral), (4, true), "{text}");
    assert!(text.contains("longest this rule allows"), "{text}");
    assert_eq!(w.grant()["expires_at"].as_str().unwrap(), after);
    assert_eq!(w.d.audit(), audit, "nothing was written");
    assert_eq!(
        w.sim.message(msg.id).unwrap(),
        msg,
        "the message is unchanged"
    );
}

#[test]
fn an_outsiders_revoke_and_extend_are_refused_and_change_nothing() {
    let w = World::new();
    let (msg, g) = w.granted("github/token");
    for label in ["Revoke", "Extend"] {
        let (kind, ephemeral, text) = w.press(&msg, &button(&msg, label), STRANGER);
        assert_eq!((kind, ephemeral), (4, true), "{label}: {text}");
        assert!(text.contains("not an approver"), "{label}: {text}");
        assert_eq!(w.grant(), g, "{label} changed the grant");
        assert_eq!(
            w.sim.message(msg.id).unwrap(),
            msg,
            "{label} changed the message"
        );
    }
    assert!(audit_events(&w.d, "grant_extended").is_empty());
    assert!(audit_events(&w.d, "grant_ended").is_empty());
}

#[test]
fn forged_grant_buttons_change_nothing() {
    let w = World::new();
    let (msg, g) = w.granted("github/token");
    let id = g["id"].as_str().unwrap();
    // A second request, pending: its message does not show the grant.
    let mut child = w.get("capped/key");
    let other_id = poll(WAIT, "the second request", || {
        w.d.requests()
            .into_iter()
            .find(|r| r["status"] == "pending")
            .and_then(|r| r["id"].as_str().map(str::to_owned))
    });
    let other =
        w.rt.block_on(
            w.sim
                .wait_for_message(|m| m.text().contains(&other_id), WAIT),
        )
        .expect("posted");
    for custom_id in [
        format!("kg:r:{id}"),
        format!("kg:e:{id}"),
        "kg:r:gnt_AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        format!("kg:r:{id}:1"),
        format!("kg:x:{id}"),
    ] {
        let (kind, ephemeral, text) = w.press_as(&other, &custom_id, OPS, true);
        assert_eq!((kind, ephemeral), (4, true), "{custom_id}: {text}");
        assert_eq!(w.grant(), g, "{custom_id} changed the grant");
        assert_eq!(w.sim.message(other.id).unwrap(), other, "{custom_id}");
        assert_eq!(w.sim.message(msg.id).unwrap(), msg, "{custom_id}");
    }
    assert!(audit_events(&w.d, "grant_extended").is_empty());
    assert!(audit_events(&w.d, "grant_ended").is_empty());
    child.kill().ok();
    child.wait().ok();
}

#[test]
fn the_buttons_go_when_the_grant_is_revoked_from_the_cli() {
    let w = World::new();
    let (msg, g) = w.granted("github/token");
    w.d.keygate(&["revoke", g["id"].as_str().unwrap()]).ok();
    let m =
        w.rt.block_on(
            w.sim
                .wait_for_edit(msg.id, |m| m.text().contains("revoked"), WAIT),
        )
        .expect("edited to say revoked");
    assert!(m.live_buttons().is_empty(), "{:?}", m.buttons());
}

#[test]
fn a_grant_says_it_is_ending_soon_then_its_buttons_go_when_it_expires() {
    let w = World::new();
    // 10 s TTL: ending soon at 2 s left (a fifth, shorter than 2 minutes).
    let (msg, _) = w.granted("brief/key");
    assert!(!msg.text().contains("ending soon"), "{}", msg.text());
    let soon =
        w.rt.block_on(w.sim.wait_for_edit(
            msg.id,
            |m| m.text().contains("ending soon") || m.text().contains("expired"),
            Duration::from_secs(30),
        ))
        .expect("edited before the end");
    assert!(
        soon.text().contains("ending soon") && soon.text().contains("Ending soon"),
        "the grant ended before its message said it was ending soon: {}",
        soon.text()
    );
    assert!(
        !soon.live_buttons().is_empty(),
        "still live: {:?}",
        soon.buttons()
    );
    // Orange: not the amber of a request still waiting, not the green of a grant with
    // time to spare.
    assert_eq!(soon.embeds[0]["color"], 0xE6_7E22, "{:?}", soon.embeds);
    let ended =
        w.rt.block_on(w.sim.wait_for_edit(
            msg.id,
            |m| m.text().contains("expired"),
            Duration::from_secs(30),
        ))
        .expect("edited when the grant expired");
    assert!(ended.live_buttons().is_empty(), "{:?}", ended.buttons());
    assert!(!ended.text().contains("ending soon"), "{}", ended.text());
}

#[test]
fn an_extension_after_ending_soon_clears_the_note_and_re_arms_it() {
    let w = World::new();
    // 15 s TTL: ending soon at 3 s left; one extension of 15 s reaches max_ttl (30 s).
    let (msg, _) = w.granted("renewable/key");
    let wait = Duration::from_secs(40);
    let soon =
        w.rt.block_on(w.sim.wait_for_edit(
            msg.id,
            |m| m.text().contains("ending soon") || m.text().contains("expired"),
            wait,
        ))
        .expect("edited before the end");
    assert!(soon.text().contains("ending soon"), "{}", soon.text());
    let (kind, _, text) = w.press(&soon, &button(&soon, "Extend"), OPS);
    assert_eq!(kind, 7, "{text}");
    assert!(!text.contains("ending soon"), "{text}");
    let edits = w.sim.message(msg.id).expect("the message").edited;
    let again =
        w.rt.block_on(w.sim.wait_for_edit(
            msg.id,
            |m| {
                m.edited > edits
                    && (m.text().contains("ending soon") || m.text().contains("expired"))
            },
            wait,
        ))
        .expect("edited again before the new end");
    assert!(
        again.text().contains("ending soon"),
        "the extended grant ended without saying it was ending soon: {}",
        again.text()
    );
}
