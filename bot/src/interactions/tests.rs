//! Each shape of interaction, handled without Discord: presses from the right and the
//! wrong places and people, forged and unknown buttons, slash commands, and kinds the
//! bot does not handle. Answers go to a port nobody listens on; what matters is what
//! the gatekeeper was asked.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use keygate_proto::approval::{Refused, Verdict};
use keygate_proto::{RequestId, RoleId, UserId};
use serde_json::json;

use super::*;
use crate::testing::{self, HERE, Keeper, Place, Who, alice, press};

fn handler(keeper: Arc<Keeper>) -> (Handler, Arc<Messages>) {
    let messages = Arc::new(Messages::default());
    let h = Handler {
        client: Arc::new(testing::client()),
        messages: Arc::clone(&messages),
        gatekeeper: keeper,
        forms: Arc::default(),
    };
    (h, messages)
}

async fn handled(keeper: &Arc<Keeper>, i: Interaction) -> Arc<Messages> {
    let (h, messages) = handler(Arc::clone(keeper));
    tokio::time::timeout(Duration::from_secs(20), Box::pin(h.handle(i)))
        .await
        .unwrap();
    messages
}

/// No press is updating the request's message: a change to it gets its own edit.
fn idle(messages: &Messages, id: &RequestId) -> bool {
    let v = testing::request(id, "pending");
    messages.posted(
        twilight_model::id::Id::new(1),
        &v,
        keygate_proto::approval::Mentions::default(),
    );
    messages
        .edit_for(&keygate_proto::approval::Change::Request(Box::new(v)))
        .is_some()
}

fn refusals(k: &Keeper) -> Vec<(String, String, String)> {
    k.refused.lock().unwrap().clone()
}

#[tokio::test]
async fn a_press_in_the_approval_channel_is_decided_as_the_button_says() {
    let id = RequestId::random();
    let cases = [
        (format!("kg:a:{id}"), Verdict::Approve { ttl: None }),
        (
            format!("kg:a:{id}:300"),
            Verdict::Approve {
                ttl: Some(Duration::from_secs(300)),
            },
        ),
        (format!("kg:d:{id}"), Verdict::Deny { reason: None }),
    ];
    for (custom_id, verdict) in cases {
        let keeper = Arc::new(Keeper::default());
        let messages = handled(&keeper, press(&custom_id, &alice(), HERE)).await;
        let decided = keeper.decided.lock().unwrap().clone();
        assert_eq!(decided.len(), 1, "{custom_id}");
        let (on, how, by) = &decided[0];
        assert_eq!(on, &id);
        assert_eq!(how, &verdict);
        assert_eq!(by.id, UserId(5));
        assert_eq!(by.name, "alice");
        assert_eq!(by.roles, [RoleId(7)]);
        assert_eq!(by.channel, crate::CHANNEL);
        assert!(refusals(&keeper).is_empty());
        assert!(idle(&messages, &id), "the update ended");
    }
}

#[tokio::test]
async fn a_press_from_the_wrong_place_or_person_is_refused_before_any_decision() {
    let id = RequestId::random();
    let button = format!("kg:a:{id}");
    let robot = Who {
        id: 6,
        name: "robot",
        roles: vec![7],
        bot: true,
    };
    let cases = [
        (
            alice(),
            Place::Dm,
            "keygate takes decisions in its server, not in direct messages",
        ),
        (robot, HERE, "bots cannot decide"),
        (
            alice(),
            Place::Guild(11, testing::CHANNEL),
            "this server is not the one keygate is configured for",
        ),
        (
            alice(),
            Place::Guild(testing::GUILD, 21),
            "decisions are taken in keygate's approval channel",
        ),
    ];
    for (who, place, why) in cases {
        let keeper = Arc::new(Keeper::default());
        handled(&keeper, press(&button, &who, place)).await;
        assert!(keeper.decided.lock().unwrap().is_empty(), "{why}");
        assert_eq!(
            refusals(&keeper),
            [(
                who.name.to_owned(),
                "button press".to_owned(),
                why.to_owned()
            )]
        );
    }
}

#[tokio::test]
async fn a_forged_or_unknown_button_decides_nothing() {
    let id = RequestId::random();
    for forged in [
        String::new(),
        "approve".to_owned(),
        format!("kg:x:{id}"),
        format!("kg:a:{id}:0"),
        format!("kg:a:{id}:-5"),
        format!("kg:a:{id}:300:1"),
        format!("kg:d:{id}:300"),
        "kg:a:req_not-an-id".to_owned(),
        format!("KG:a:{id}"),
    ] {
        let keeper = Arc::new(Keeper::default());
        handled(&keeper, press(&forged, &alice(), HERE)).await;
        assert!(keeper.decided.lock().unwrap().is_empty(), "{forged}");
        assert_eq!(
            refusals(&keeper),
            [(
                "alice".to_owned(),
                "button press".to_owned(),
                "unknown button".to_owned()
            )],
            "{forged}"
        );
    }
}

#[tokio::test]
async fn a_refused_decision_changes_nothing_and_ends_the_update() {
    let id = RequestId::random();
    for refusal in [
        Refused::AlreadyDecided("denied"),
        Refused::NotAllowed,
        Refused::NotFound,
        Refused::Failed("disk full".into()),
    ] {
        let keeper = Arc::new(Keeper {
            decision: Some(refusal),
            ..Keeper::default()
        });
        let messages = handled(&keeper, press(&format!("kg:d:{id}"), &alice(), HERE)).await;
        assert_eq!(keeper.decided.lock().unwrap().len(), 1);
        assert!(idle(&messages, &id));
    }
}

#[tokio::test]
async fn a_slash_command_goes_to_the_commands_and_others_are_declined() {
    let keeper = Arc::new(Keeper::default());
    let grants = json!([{ "name": "grants", "type": 1, "options": [] }]);
    handled(&keeper, testing::command(grants.clone(), &alice(), HERE)).await;
    let asked = keeper.asked_grants.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].id, UserId(5));

    // Not from a DM, and not from a bot.
    let keeper = Arc::new(Keeper::default());
    handled(&keeper, testing::command(grants, &alice(), Place::Dm)).await;
    assert!(keeper.asked_grants.lock().unwrap().is_empty());

    // A modal submit of a form keygate never makes: refused, nobody decides anything.
    let keeper = Arc::new(Keeper::default());
    let modal = json!({ "custom_id": "kg:a:x", "components": [] });
    handled(&keeper, testing::interaction(5, modal, &alice(), HERE)).await;
    assert!(keeper.decided.lock().unwrap().is_empty());
    assert_eq!(refusals(&keeper).len(), 1);
    assert!(keeper.asked_grants.lock().unwrap().is_empty());
}
