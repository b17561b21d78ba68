//! Discord approvals end to end: the real `keygated` with its real twilight bot, talking
//! to the Discord simulator over real sockets, and the real `keygate` CLI as the agent.

use std::process::Child;
use std::time::{Duration, Instant};

use keygate_discord_sim::{
    CommandSpec, GuildMode, InteractionHandle, PressSpec, SimConfig, SimMessage, Simulator,
};
use keygate_tests::discord::Shown;
use keygate_tests::{finish, poll};

const OPS: u64 = 111_111_111_111_111_111;
const OPS_ROLE: u64 = 222_222_222_222_222_222;
const PAIR: u64 = 333_333_333_333_333_333;
const STRANGER: u64 = 999_999_999_999_999_999;
const VALUE: &str = "ghp_DISCORD_never_shown_42";
const WAIT: Duration = Duration::from_secs(10);

/// The shared Discord world, with the default policy and this file's secrets.
struct World(keygate_tests::discord::World);

impl std::ops::Deref for World {
    type Target = keygate_tests::discord::World;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl World {
    fn new() -> Self {
        let secrets = [
            ("github/token", VALUE),
            ("vault/key", VALUE),
            ("slow/thing", VALUE),
        ];
        Self(keygate_tests::discord::World::start(
            keygate_tests::POLICY,
            &[],
            &secrets,
        ))
    }

    /// The agent asks; returns its process and the message the bot posted.
    fn ask(&self, secret: &str, reason: &str) -> (Child, SimMessage) {
        let (child, _, msg) = self.0.ask(secret, reason);
        (child, msg)
    }

    fn button(msg: &SimMessage, style: u8) -> String {
        msg.live_buttons()
            .into_iter()
            .find(|b| b.style == style)
            .and_then(|b| b.custom_id)
            .expect("button")
    }

    /// Presses a button as `user` with `roles`; returns how the bot answered, whether
    /// only the presser sees the answer, and its text.
    fn press(&self, msg: &SimMessage, custom_id: &str, spec: PressSpec) -> (Shown, bool, String) {
        let spec = PressSpec {
            custom_id: custom_id.to_owned(),
            message_id: msg.id,
            ..spec
        };
        let h = self.sim.press(&spec).expect("press dispatched");
        self.answer(&h, msg)
    }

    /// The bot's whole answer to a press ([`keygate_tests::discord::World::answer`]).
    fn answer(&self, h: &InteractionHandle, msg: &SimMessage) -> (Shown, bool, String) {
        self.0.answer(h, msg.id)
    }

    fn edited(&self, msg: &SimMessage, pred: impl FnMut(&SimMessage) -> bool) -> SimMessage {
        self.rt
            .block_on(self.sim.wait_for_edit(msg.id, pred, WAIT))
            .expect("the message was edited")
    }
}

/// The colour bar of a message's embed (`docs/discord-simulator.md`: the bot's colours
/// per state).
fn colour(m: &SimMessage) -> u64 {
    m.embeds[0]["color"].as_u64().expect("an embed colour")
}
const AMBER: u64 = 0xF1_C40F;
const GREEN: u64 = 0x2E_CC71;
const RED: u64 = 0xE7_4C3C;
const GREY: u64 = 0x95_A5A6;

fn user(id: u64) -> PressSpec {
    PressSpec {
        username: format!("user{}", id % 1000),
        ..PressSpec::new(0, "", id)
    }
}

#[test]
fn approve_in_discord_releases_and_the_message_shows_it() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "open PR #12");
    let text = msg.text();
    for part in [
        "ci-one",
        "github/token",
        "open PR #12",
        "15m",
        "Approve",
        "Deny",
        "<t:",
    ] {
        assert!(text.contains(part), "{part} missing: {text}");
    }
    let buttons = msg.live_buttons();
    assert_eq!(
        buttons.iter().filter(|b| b.style == 3).count(),
        1,
        "{buttons:?}"
    );
    assert_eq!(
        buttons.iter().filter(|b| b.style == 4).count(),
        1,
        "{buttons:?}"
    );
    assert!(
        buttons
            .iter()
            .any(|b| b.label.as_deref() == Some("Approve for 5m")),
        "{buttons:?}"
    );
    assert_eq!(colour(&msg), AMBER, "pending");
    let approve = World::button(&msg, 3);
    let started = Instant::now();
    let (kind, ephemeral, _) = w.press(&msg, &approve, user(OPS));
    let callback = started.elapsed();
    assert_eq!(kind, Shown::Updated);
    assert!(!ephemeral);
    let r = finish(child);
    let released = started.elapsed();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), VALUE);
    let after = w.sim.message(msg.id).unwrap();
    // The decision buttons go; the live grant's controls take their place.
    let labels: Vec<_> = after
        .live_buttons()
        .into_iter()
        .map(|b| b.label.unwrap_or_default())
        .collect();
    assert_eq!(labels, ["Revoke", "Extend"], "{labels:?}");
    assert!(after.text().contains("Approved by"), "{}", after.text());
    assert!(after.text().contains("Grant ends"));
    assert_eq!(colour(&after), GREEN, "a live grant");
    eprintln!("press → callback {callback:?}; press → agent has the value {released:?}");
}

#[test]
fn deny_in_discord_exits_3() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "x");
    let deny = World::button(&msg, 4);
    let (kind, _, _) = w.press(&msg, &deny, user(OPS));
    assert_eq!(kind, Shown::Updated);
    assert_eq!(finish(child).code, 3);
    let after = w.sim.message(msg.id).unwrap();
    assert!(after.text().contains("Denied by"));
    assert_eq!(colour(&after), RED);
}

#[test]
fn an_outsiders_press_is_refused_ephemerally_and_changes_nothing() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "x");
    let approve = World::button(&msg, 3);
    let (kind, ephemeral, data) = w.press(&msg, &approve, user(STRANGER));
    assert_eq!(kind, Shown::Reply, "{data}");
    assert!(ephemeral);
    assert!(data.contains("not an approver"), "{data}");
    for spec in [
        PressSpec {
            guild: GuildMode::OtherGuild(42),
            ..user(OPS)
        },
        PressSpec {
            guild: GuildMode::Dm,
            ..user(OPS)
        },
        PressSpec {
            bot: true,
            ..user(OPS)
        },
    ] {
        let (kind, ephemeral, data) = w.press(&msg, &approve, spec);
        assert!(kind == Shown::Reply && ephemeral, "{data}");
    }
    assert_eq!(w.d.requests()[0]["status"], "pending");
    assert_eq!(w.sim.message(msg.id).unwrap().edited, 0);
    assert!(w.d.audit().contains("\"refused\""));
    w.d.keygate(&["deny", w.d.requests()[0]["id"].as_str().unwrap()])
        .ok();
    assert_eq!(finish(child).code, 3);
}

#[test]
fn a_press_by_role_counts() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "x");
    let approve = World::button(&msg, 3);
    let (kind, _, _) = w.press(
        &msg,
        &approve,
        PressSpec {
            roles: vec![OPS_ROLE],
            ..user(555)
        },
    );
    assert_eq!(kind, Shown::Updated);
    assert_eq!(finish(child).code, 0);
}

#[test]
fn quorum_two_needs_two_people() {
    let w = World::new();
    let (child, msg) = w.ask("vault/key", "x");
    let approve = World::button(&msg, 3);
    let (kind, _, data) = w.press(&msg, &approve, user(OPS));
    assert_eq!(kind, Shown::Updated);
    assert!(data.contains("1 of 2"), "{data}");
    let again = w.sim.message(msg.id).unwrap();
    let (_, _, data) = w.press(&again, &approve, user(OPS));
    assert!(
        data.contains("1 of 2"),
        "the same approver twice counts once: {data}"
    );
    assert_eq!(w.d.requests()[0]["status"], "pending");
    let (kind, _, _) = w.press(&again, &approve, user(PAIR));
    assert_eq!(kind, Shown::Updated);
    assert_eq!(finish(child).code, 0);
}

/// Red-team finding 1: the same account pressing under two display names is one approver.
#[test]
fn one_person_who_renames_is_still_one_approver() {
    let w = World::new();
    let (child, msg) = w.ask("vault/key", "x");
    let approve = World::button(&msg, 3);
    let (_, _, data) = w.press(
        &msg,
        &approve,
        PressSpec {
            username: "alice".into(),
            ..user(OPS)
        },
    );
    assert!(data.contains("1 of 2"), "{data}");
    let again = w.sim.message(msg.id).unwrap();
    let (_, _, data) = w.press(
        &again,
        &approve,
        PressSpec {
            username: "alice-the-second".into(),
            ..user(OPS)
        },
    );
    assert!(data.contains("1 of 2"), "a rename counted twice: {data}");
    let r = &w.d.requests()[0];
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(r["approvals"].as_array().map(Vec::len), Some(1), "{r}");
    // A second, distinct account still completes the quorum.
    let (kind, _, _) = w.press(&again, &approve, user(PAIR));
    assert_eq!(kind, Shown::Updated);
    assert_eq!(finish(child).code, 0);
}

/// Red-team finding 10: Discord refusing a message does not keep the request from the
/// terminal, and releases nothing by itself.
#[test]
fn a_refused_post_leaves_the_request_to_the_terminal() {
    let w = World::new();
    w.sim.refuse_posts(1);
    let child =
        w.d.keygate_as(&w.agent, &["get", "github/token", "--reason", "x"])
            .spawn();
    let id = w.d.pending_request();
    let r =
        w.d.requests()
            .into_iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap();
    assert_eq!(r["posted_to"], serde_json::json!(["terminal"]), "{r}");
    assert!(w.sim.messages().iter().all(|m| !m.text().contains(&id)));
    assert!(w.d.audit().contains("\"post_failed\""), "{}", w.d.audit());
    w.d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), VALUE);
}

/// Discord answering the post with 429 does not lose the request: the bot (twilight's
/// rate limiter, reading the simulator's `X-RateLimit-*` headers) waits at least
/// `retry_after`, posts again, and the request is shown in Discord and approved there.
#[test]
fn a_rate_limited_post_is_retried_after_retry_after_and_shown() {
    const RETRY_AFTER: Duration = Duration::from_millis(1500);
    let w = World::new();
    w.sim.rate_limit(Some("create_message"), 1, RETRY_AFTER);
    let (child, msg) = w.ask("github/token", "x");
    let id = w.d.pending_request();
    let posts: Vec<_> = w
        .sim
        .rest_log()
        .into_iter()
        .filter(|c| c.route == Some("create_message"))
        .collect();
    assert_eq!(
        posts.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200],
        "{posts:?}"
    );
    let waited = posts[1].received_at.duration_since(posts[0].received_at);
    assert!(
        waited >= RETRY_AFTER,
        "the bot came back {waited:?} after a 429 asking for {RETRY_AFTER:?}"
    );
    // The gate records where it showed the request once every channel has answered.
    poll(WAIT, "the request to be shown in Discord", || {
        w.d.requests()
            .into_iter()
            .find(|r| r["id"] == id.as_str())
            .filter(|r| {
                r["posted_to"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|c| c == "discord"))
            })
    });
    assert!(!w.d.audit().contains("\"post_failed\""), "{}", w.d.audit());
    let approve = World::button(&msg, 3);
    w.press(&msg, &approve, user(OPS));
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), VALUE);
}

/// Forged custom ids, presses from another channel, and a member of another rule's group
/// are refused, each with an ephemeral answer, and change nothing.
#[test]
fn forged_and_foreign_presses_change_nothing() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "x");
    let id = w.d.pending_request();
    let approve = World::button(&msg, 3);
    let refused = |spec: PressSpec, custom_id: &str, what: &str| {
        let (_, ephemeral, data) = w.press(&msg, custom_id, spec);
        assert!(ephemeral, "{what}: {data}");
        let r = &w.d.requests()[0];
        assert_eq!(r["status"], "pending", "{what}: {r}");
        assert_eq!(r["approvals"].as_array().map(Vec::len), Some(0), "{what}");
    };
    let forged = || PressSpec {
        forged: true,
        ..user(OPS)
    };
    refused(forged(), "kg:x:garbage", "an unknown custom id");
    refused(
        forged(),
        "kg:a:req_AAAAAAAAAAAAAAAAAAAAAA",
        "another request's id",
    );
    refused(
        PressSpec {
            channel_id: Some(424_242),
            ..user(OPS)
        },
        &approve,
        "a press from another channel",
    );
    // PAIR approves `vault/*` requests (the `pair` group), not `github/*` (`ops`).
    refused(user(PAIR), &approve, "a member of another rule's group");
    assert!(w.d.audit().contains("\"refused\""), "{}", w.d.audit());
    let (kind, _, _) = w.press(&msg, &approve, user(OPS));
    assert_eq!(kind, Shown::Updated);
    assert_eq!(finish(child).code, 0);
    let r =
        w.d.requests()
            .into_iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap();
    assert_eq!(r["status"], "approved");
}

/// "Approve for 5m" gives a five-minute grant; a forged longer TTL is cut to the rule's.
#[test]
fn shorter_ttl_buttons_and_a_forged_longer_ttl() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "x");
    let five = msg
        .live_buttons()
        .into_iter()
        .find(|b| b.label.as_deref() == Some("Approve for 5m"))
        .and_then(|b| b.custom_id)
        .expect("an Approve for 5m button");
    let (kind, _, _) = w.press(&msg, &five, user(OPS));
    assert_eq!(kind, Shown::Updated);
    assert_eq!(finish(child).code, 0);
    assert_eq!(w.d.requests()[0]["ttl_seconds"], 300);

    let (child, msg) = w.ask("github/other", "x");
    let id = w.d.pending_request();
    let forged = PressSpec {
        forged: true,
        ..user(OPS)
    };
    let (kind, _, _) = w.press(&msg, &format!("kg:a:{id}:999999"), forged);
    assert_eq!(kind, Shown::Updated);
    finish(child);
    let r =
        w.d.requests()
            .into_iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap();
    assert_eq!(r["status"], "approved", "{r}");
    assert_eq!(
        r["ttl_seconds"], 900,
        "a forged TTL is cut to the rule's: {r}"
    );
}

#[test]
fn timeout_and_revoke_edit_the_message() {
    let w = World::new();
    // The rule gives this request 2 s: look for it by its secret, whatever its status
    // by the time we look, so a slow machine cannot make the test miss it.
    let child =
        w.d.keygate_as(&w.agent, &["get", "slow/thing", "--reason", "x"])
            .spawn();
    let id = poll(WAIT, "the slow/thing request", || {
        w.d.requests()
            .into_iter()
            .find(|r| r["secrets"][0] == "slow/thing")
            .and_then(|r| r["id"].as_str().map(str::to_owned))
    });
    assert_eq!(finish(child).code, 4);
    let m =
        w.rt.block_on(w.sim.wait_for_message(
            |m| m.text().contains(&id) && m.text().contains("Expired"),
            WAIT,
        ))
        .expect("the request's message, edited to say it expired");
    assert!(m.live_buttons().is_empty());
    assert_eq!(colour(&m), GREY, "expired");

    let (child, msg) = w.ask("github/token", "x");
    let approve = World::button(&msg, 3);
    w.press(&msg, &approve, user(OPS));
    assert_eq!(finish(child).code, 0);
    w.d.keygate(&["revoke", "--all"]).ok();
    let m = w.edited(&msg, |m| m.text().contains("revoked"));
    assert_eq!(colour(&m), GREY, "revoked");
}

#[test]
fn a_press_after_the_decision_is_already_decided() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "x");
    let approve = World::button(&msg, 3);
    let deny = World::button(&msg, 4);
    // Both presses leave before either is answered, as two approvers tapping at once.
    let a = w
        .sim
        .press(&PressSpec {
            custom_id: approve,
            message_id: msg.id,
            ..user(OPS)
        })
        .unwrap();
    let b = w
        .sim
        .press(&PressSpec {
            custom_id: deny,
            message_id: msg.id,
            roles: vec![OPS_ROLE],
            ..user(777)
        })
        .unwrap();
    let ca = w.answer(&a, &msg);
    let cb = w.answer(&b, &msg);
    let (winner, loser) = if cb.1 { (ca, cb) } else { (cb, ca) };
    assert_eq!(winner.0, Shown::Updated, "{winner:?}");
    assert!(
        loser.0 == Shown::Reply && loser.1 && loser.2.contains("Already decided"),
        "{loser:?}"
    );
    let code = finish(child).code;
    assert!(code == 0 || code == 3);
}

#[test]
fn a_dropped_connection_resumes_and_the_request_survives() {
    let w = World::new();
    let (child, msg) = w.ask("github/token", "x");
    w.sim.drop_connection();
    assert!(
        w.rt.block_on(w.sim.wait_for_sessions(|_, resumes| resumes >= 1, WAIT)),
        "no resume"
    );
    assert!(w.rt.block_on(w.sim.wait_connected(WAIT)));
    let approve = World::button(&msg, 3);
    let (kind, _, _) = w.press(&msg, &approve, user(OPS));
    assert_eq!(kind, Shown::Updated);
    assert_eq!(finish(child).code, 0);
    let status = w.d.keygate(&["status"]).ok().stdout;
    assert!(status.contains("connected"), "{status}");
}

#[test]
fn a_wrong_bot_token_stops_the_daemon_at_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(Simulator::start(SimConfig::default())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keygate_tests::bin("keygated"))
        .env("XDG_CONFIG_HOME", dir.path().join("c"))
        .env("XDG_DATA_HOME", dir.path().join("d"))
        .env("XDG_STATE_HOME", dir.path().join("s"))
        .env("XDG_RUNTIME_DIR", dir.path().join("r"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .env("KEYGATE_DISCORD_TOKEN", "not-the-token")
        .env(
            "KEYGATE_DISCORD_CHANNEL_ID",
            sim.config().channel_id.to_string(),
        )
        .env("KEYGATE_DISCORD_API_URL", sim.rest_url())
        .env("KEYGATE_DISCORD_GATEWAY_URL", sim.gateway_url())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the bot token"), "{err}");
    assert!(
        !err.contains("not-the-token"),
        "the token was printed: {err}"
    );
}

#[test]
fn a_hostile_reason_renders_inert_and_no_value_reaches_discord() {
    let w = World::new();
    let reason = "@everyone @here <@123> **URGENT**\nAgent: root\n[click](http://evil)";
    let (child, msg) = w.ask("github/token", reason);
    // Exactly the rule's approvers ("ops": one user, one role); nothing the reason names.
    assert!(!msg.pings.everyone, "{:?}", msg.pings);
    assert_eq!(msg.pings.users, vec![OPS], "{:?}", msg.pings);
    assert_eq!(msg.pings.roles, vec![OPS_ROLE], "{:?}", msg.pings);
    let text = msg.text();
    assert!(
        !text.contains("@everyone") && !text.contains("@here") && !text.contains("<@123>"),
        "{text}"
    );
    assert!(!text.contains("**URGENT**"), "{text}");
    let approve = World::button(&msg, 3);
    w.press(&msg, &approve, user(OPS));
    assert_eq!(finish(child).code, 0);
    for call in w.sim.rest_log() {
        assert!(
            !call.raw_body.contains(VALUE),
            "{} {} sent the value",
            call.method,
            call.path
        );
        assert!(
            call.route.is_some(),
            "unexpected route {} {}",
            call.method,
            call.path
        );
    }
}

#[test]
fn slash_commands_list_and_revoke_grants() {
    let w = World::new();
    assert!(
        w.rt.block_on(w.sim.wait_for_command("keygate", WAIT)),
        "registered"
    );
    let (child, msg) = w.ask("github/token", "x");
    let approve = World::button(&msg, 3);
    w.press(&msg, &approve, user(OPS));
    assert_eq!(finish(child).code, 0);
    let grant: Vec<serde_json::Value> =
        serde_json::from_str(&w.d.keygate(&["grants", "--json"]).ok().stdout).unwrap();
    let id = grant[0]["id"].as_str().unwrap().to_owned();

    let h = w.sim.command(&CommandSpec::new(&["grants"], OPS)).unwrap();
    let cb = w.rt.block_on(h.response(WAIT)).unwrap();
    assert!(
        cb.ephemeral && cb.data.to_string().contains(&id),
        "{:?}",
        cb.data
    );

    let h = w
        .sim
        .command(&CommandSpec::new(&["revoke"], STRANGER).option("grant", &id))
        .unwrap();
    let cb = w.rt.block_on(h.response(WAIT)).unwrap();
    assert!(
        cb.data.to_string().contains("not an approver"),
        "{:?}",
        cb.data
    );

    let h = w
        .sim
        .command(&CommandSpec::new(&["revoke"], OPS).option("grant", &id))
        .unwrap();
    let cb = w.rt.block_on(h.response(WAIT)).unwrap();
    assert!(cb.data.to_string().contains("Revoked"), "{:?}", cb.data);
    poll(WAIT, "the grant to go", || {
        w.d.keygate(&["grants", "--json"])
            .ok()
            .stdout
            .trim()
            .eq("[]")
            .then_some(())
    });
    w.edited(&msg, |m| m.text().contains("revoked"));
}
