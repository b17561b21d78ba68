//! The Approve… and Deny… forms in Discord, end to end (the real `keygated` and its
//! twilight bot, the Discord simulator, the real CLI as the agent): Approve… opens a
//! modal with the TTL pre-filled; its submit approves with the typed TTL, capped at the
//! rule's `max_ttl`; a bad duration changes nothing; an outsider gets no modal; a quorum
//! counts a person once; Deny… carries a reason to the agent; a forged submit is refused.

use std::process::Child;

use keygate_discord_sim::{Callback, ModalSubmitSpec, PressSpec, SimMessage};
use keygate_tests::discord::{WAIT, button};
use keygate_tests::{finish, unix_secs};

const OPS: u64 = 111_111_111_111_111_111;
const OPS2: u64 = 333_333_333_333_333_333;
const STRANGER: u64 = 999_999_999_999_999_999;

const POLICY: &str = r#"
[defaults]
request_timeout = "1m"
ttl = "15m"
max_ttl = "1h"

[approvers.ops]
users = ["111111111111111111", "333333333333333333"]

[[rule]]
name = "ci asks for github"
agents = ["ci-*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]
reuse = true

[[rule]]
name = "two people"
agents = ["ci-*"]
secrets = ["pair/*"]
action = "ask"
approvers = ["ops"]
quorum = 2
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
            &[("github/token", "a-value"), ("pair/key", "a-value")],
        ))
    }

    /// The agent asks for `secret`: the waiting `keygate get`, the request id, its message.
    fn ask(&self, secret: &str) -> (Child, String, SimMessage) {
        self.0.ask(secret, "x")
    }

    /// `user` presses the button labelled `label`: the first answer.
    fn press(&self, msg: &SimMessage, label: &str, user: u64) -> Callback {
        let h = self
            .sim
            .press(&PressSpec {
                username: format!("user{}", user % 1000),
                ..PressSpec::new(msg.id, button(msg, label), user)
            })
            .expect("press dispatched");
        self.rt
            .block_on(h.response(WAIT))
            .expect("answered in time")
    }

    /// `user` submits the modal open for them on `msg` (or a forged one): the answer's
    /// type after a deferred one is followed (7 the message updated, 4 a reply),
    /// whether only they see it, and the text shown.
    fn submit(&self, spec: &ModalSubmitSpec) -> (u8, bool, String) {
        let msg = spec.message_id.expect("a message");
        let h = self.sim.submit_modal(spec).expect("submit dispatched");
        let (shown, ephemeral, text) = self.answer(&h, msg);
        (shown.kind(), ephemeral, text)
    }

    fn request(&self, id: &str) -> serde_json::Value {
        self.d
            .requests()
            .into_iter()
            .find(|r| r["id"] == id)
            .expect("the request is listed")
    }

    /// The one live grant's length in seconds.
    fn grant_secs(&self) -> i64 {
        let all: Vec<serde_json::Value> =
            serde_json::from_str(&self.d.keygate(&["grants", "--json"]).ok().stdout)
                .expect("grants JSON");
        assert_eq!(all.len(), 1, "{all:?}");
        let g = &all[0];
        unix_secs(g["expires_at"].as_str().expect("an end"))
            - unix_secs(g["created_at"].as_str().expect("a start"))
    }
}

fn approve_with(w: &World, msg: &SimMessage, user: u64, ttl: &str) -> (u8, bool, String) {
    let cb = w.press(msg, "Approve…", user);
    assert_eq!(cb.kind, 9, "a modal, first: {cb:?}");
    w.submit(&ModalSubmitSpec::new(msg.id, user).value("ttl", ttl))
}

#[test]
fn the_request_shows_approve_and_deny_forms_beside_the_one_press_buttons() {
    let w = World::new();
    let (child, _, msg) = w.ask("github/token");
    let labels: Vec<_> = msg
        .live_buttons()
        .into_iter()
        .map(|b| b.label.unwrap_or_default())
        .collect();
    assert_eq!(
        labels,
        ["Approve", "Approve…", "Deny", "Deny…", "Approve for 5m"],
        "{labels:?}"
    );
    drop(child);
}

#[test]
fn approve_opens_a_modal_with_the_ttl_and_a_longer_ttl_is_granted() {
    let w = World::new();
    let (child, id, msg) = w.ask("github/token");
    let cb = w.press(&msg, "Approve…", OPS);
    assert_eq!(cb.kind, 9, "{cb:?}");
    let modal = w.sim.open_modal(msg.id, OPS).expect("a modal is open");
    assert!(modal.title.starts_with("Approve"), "{}", modal.title);
    assert_eq!(modal.input("ttl").unwrap().value.as_deref(), Some("15m"));
    assert!(modal.input("ttl").unwrap().required);
    assert!(!modal.input("note").unwrap().required);
    let (kind, _, text) = w.submit(
        &ModalSubmitSpec::new(msg.id, OPS)
            .value("ttl", "30m")
            .value("note", "for the deploy"),
    );
    assert_eq!(kind, 7, "{text}");
    // The note is on the message, beside the approver who wrote it.
    assert!(
        text.contains("Note") && text.contains("for the deploy"),
        "{text}"
    );
    assert!(text.contains(&format!("({OPS}): for the deploy")), "{text}");
    assert_eq!(finish(child).code, 0);
    assert_eq!(w.request(&id)["status"], "approved");
    let secs = w.grant_secs();
    assert!((1795..=1800).contains(&secs), "{secs}");
    let audit = w.d.audit();
    let note = audit
        .lines()
        .find(|l| l.contains("\"decision_note\""))
        .unwrap_or_else(|| panic!("no decision_note in {audit}"));
    assert!(
        note.contains("for the deploy") && note.contains(&id),
        "{note}"
    );
}

#[test]
fn a_hostile_note_is_shown_inert_and_pings_nobody() {
    let w = World::new();
    let (child, _, msg) = w.ask("github/token");
    let cb = w.press(&msg, "Approve…", OPS);
    assert_eq!(cb.kind, 9, "{cb:?}");
    let (kind, _, text) = w.submit(
        &ModalSubmitSpec::new(msg.id, OPS)
            .value("ttl", "15m")
            .value("note", "@everyone <@333333333333333333> **ship it**\n# now"),
    );
    assert_eq!(kind, 7, "{text}");
    assert_eq!(finish(child).code, 0);
    let m = w.sim.message(msg.id).expect("the message");
    let shown = m.display_text();
    assert!(
        shown.contains(
            "@\u{200B}everyone <\u{200B}@\u{200B}333333333333333333> \\*\\*ship it\\*\\* # now"
        ),
        "{shown}"
    );
    // Nobody new is pinged: the message notifies only whom it did when posted.
    assert!(!m.pings.everyone, "{:?}", m.pings);
    assert_eq!(
        m.pings, msg.notified,
        "the approvers named when posted, no more"
    );
}

#[test]
fn a_ttl_past_max_ttl_is_capped() {
    let w = World::new();
    let (child, _, msg) = w.ask("github/token");
    let (kind, _, text) = approve_with(&w, &msg, OPS, "5h");
    assert_eq!(kind, 7, "{text}");
    assert_eq!(finish(child).code, 0);
    let secs = w.grant_secs();
    assert!((3595..=3600).contains(&secs), "{secs}");
}

#[test]
fn a_bad_duration_changes_nothing() {
    let w = World::new();
    let (child, id, msg) = w.ask("github/token");
    let (kind, ephemeral, text) = approve_with(&w, &msg, OPS, "soon");
    assert_eq!((kind, ephemeral), (4, true), "{text}");
    assert!(text.contains("soon"), "{text}");
    assert_eq!(w.request(&id)["status"], "pending");
    assert!(w.d.keygate(&["grants", "--json"]).ok().stdout.trim() == "[]");
    // Still decidable.
    let (kind, _, text) = approve_with(&w, &msg, OPS, "10m");
    assert_eq!(kind, 7, "{text}");
    assert_eq!(finish(child).code, 0);
}

#[test]
fn an_outsider_gets_a_refusal_and_no_modal() {
    let w = World::new();
    let (child, id, msg) = w.ask("github/token");
    let cb = w.press(&msg, "Approve…", STRANGER);
    assert_eq!((cb.kind, cb.ephemeral), (4, true), "{cb:?}");
    assert!(w.sim.open_modal(msg.id, STRANGER).is_none());
    let cb = w.press(&msg, "Deny…", STRANGER);
    assert_eq!((cb.kind, cb.ephemeral), (4, true), "{cb:?}");
    assert!(w.sim.modals().is_empty(), "{:?}", w.sim.modals());
    assert_eq!(w.request(&id)["status"], "pending");
    drop(child);
}

#[test]
fn a_quorum_counts_one_person_once_however_named() {
    let w = World::new();
    let (child, id, msg) = w.ask("pair/key");
    let (kind, _, text) = approve_with(&w, &msg, OPS, "20m");
    assert_eq!(kind, 7, "{text}");
    // The same person again, under another name.
    let cb = w.press(&msg, "Approve…", OPS);
    assert_eq!(cb.kind, 9, "{cb:?}");
    let mut again = ModalSubmitSpec::new(msg.id, OPS).value("ttl", "20m");
    again.username = "someone-else".into();
    let (kind, _, text) = w.submit(&again);
    assert_eq!(kind, 7, "{text}");
    let r = w.request(&id);
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(r["approvals"].as_array().map(Vec::len), Some(1), "{r}");
    // A second person completes it.
    let (kind, _, text) = approve_with(&w, &msg, OPS2, "20m");
    assert_eq!(kind, 7, "{text}");
    assert_eq!(finish(child).code, 0);
    assert_eq!(w.request(&id)["status"], "approved");
    let secs = w.grant_secs();
    assert!((1195..=1200).contains(&secs), "{secs}");
}

#[test]
fn deny_with_a_reason_reaches_the_agent_and_the_message() {
    let w = World::new();
    let (child, id, msg) = w.ask("github/token");
    let cb = w.press(&msg, "Deny…", OPS);
    assert_eq!(cb.kind, 9, "{cb:?}");
    let modal = w.sim.open_modal(msg.id, OPS).expect("a modal is open");
    assert_eq!(modal.input("reason").unwrap().max_length, Some(400));
    let (kind, _, text) =
        w.submit(&ModalSubmitSpec::new(msg.id, OPS).value("reason", "use the *staging* token"));
    assert_eq!(kind, 7, "{text}");
    let r = finish(child);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("use the *staging* token"), "{}", r.stderr);
    assert_eq!(w.request(&id)["denial_reason"], "use the *staging* token");
    let shown = w.sim.message(msg.id).expect("the message").text();
    assert!(shown.contains(r"use the \*staging\* token"), "{shown}");
}

#[test]
fn a_forged_submit_for_a_modal_never_opened_is_refused() {
    let w = World::new();
    let (child, id, msg) = w.ask("github/token");
    let mut forged = ModalSubmitSpec::new(msg.id, OPS).value("kg:ttl", "1h");
    forged.custom_id = Some(button(&msg, "Approve…"));
    forged.forged = true;
    let (kind, ephemeral, text) = w.submit(&forged);
    assert_eq!((kind, ephemeral), (4, true), "{text}");
    assert_eq!(w.request(&id)["status"], "pending");
    let mut forged = ModalSubmitSpec::new(msg.id, OPS).value("kg:reason", "no");
    forged.custom_id = Some(button(&msg, "Deny…"));
    forged.forged = true;
    let (kind, ephemeral, text) = w.submit(&forged);
    assert_eq!((kind, ephemeral), (4, true), "{text}");
    assert_eq!(w.request(&id)["status"], "pending");
    drop(child);
}

/// The bot keeps open forms and its messages in memory only: after a restart of the
/// daemon, what the channel still shows from before — a pending request's buttons, a
/// form opened on it, a live grant's Revoke — is answered privately and changes nothing
/// (docs/operations.md, "What a restart forgets").
#[test]
fn after_a_restart_old_buttons_and_forms_change_nothing() {
    let mut w = World::new();
    let (child, _, granted) = w.ask("github/token");
    assert_eq!(approve_with(&w, &granted, OPS, "15m").0, 7);
    assert_eq!(finish(child).code, 0);
    let granted = w.sim.message(granted.id).expect("the approved message");
    let (child, _, pending) = w.ask("pair/key");
    assert_eq!(w.press(&pending, "Approve…", OPS).kind, 9);
    let before = w.sim.identify_count();
    w.0.d.restart();
    assert!(
        w.rt.block_on(w.sim.wait_for_sessions(|i, _| i > before, WAIT)),
        "the restarted bot never connected"
    );
    drop(child);
    let edits = |m: &SimMessage| w.sim.message(m.id).expect("still there").edited;
    let (granted_edits, pending_edits) = (edits(&granted), edits(&pending));

    let refused = |msg: &SimMessage, label: &str| {
        let h = w
            .sim
            .press(&PressSpec::new(msg.id, button(msg, label), OPS))
            .expect("press dispatched");
        let (shown, ephemeral, text) = w.answer(&h, msg.id);
        assert_eq!((shown.kind(), ephemeral), (4, true), "{label}: {text}");
        text
    };
    let text = refused(&pending, "Approve");
    assert!(text.contains("no longer knows"), "{text}");
    let text = refused(&granted, "Revoke");
    assert!(text.contains("no longer knows"), "{text}");
    let (kind, ephemeral, text) =
        w.submit(&ModalSubmitSpec::new(pending.id, OPS).value("ttl", "20m"));
    assert_eq!((kind, ephemeral), (4, true), "{text}");
    assert!(text.contains("did not open this form"), "{text}");
    assert_eq!(
        (edits(&granted), edits(&pending)),
        (granted_edits, pending_edits),
        "nothing was edited"
    );
}
