//! `/keygate grants` and `/keygate revoke`, answered without Discord.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]

use keygate_proto::UserId;
use serde_json::{Value, json};

use super::*;
use crate::testing::{Keeper, grant};

fn alice() -> Approver {
    Approver {
        channel: crate::CHANNEL,
        id: UserId(5),
        name: "alice".into(),
        roles: Vec::new(),
    }
}

fn data(options: Value) -> CommandData {
    serde_json::from_value(json!({
        "id": "77",
        "name": "keygate",
        "type": 1,
        "options": options,
    }))
    .unwrap()
}

fn revoke(grant: &str) -> CommandData {
    data(json!([{
        "name": "revoke",
        "type": 1,
        "options": [{ "name": "grant", "type": 3, "value": grant }],
    }]))
}

fn grants() -> CommandData {
    data(json!([{ "name": "grants", "type": 1, "options": [] }]))
}

#[tokio::test]
async fn grants_lists_what_the_caller_could_approve_with_names_made_inert() {
    let none = Keeper::default();
    assert_eq!(
        answer(&none, &alice(), &grants()).await,
        "No live grants that you could approve."
    );
    assert_eq!(none.asked_grants.lock().unwrap()[0], alice());

    let g = grant("ci_one_", &["github/token", "npm/token"], 4);
    let keeper = Keeper {
        grants: vec![g.clone()],
        ..Keeper::default()
    };
    let text = answer(&keeper, &alice(), &grants()).await;
    assert!(text.starts_with(&format!("`{}` **", g.id)), "{text}");
    assert!(
        text.contains(r"**ci\_one\_**"),
        "markdown made inert: {text}"
    );
    assert!(text.contains("github/token, npm/token"), "{text}");
    assert!(text.contains("(ends <t:1767226200:R>, 4 reads)"), "{text}");
}

#[tokio::test]
async fn a_long_grant_list_is_cut_by_whole_lines_and_says_how_many_more() {
    let keeper = Keeper {
        grants: (0..60)
            .map(|i| grant(&format!("agent-{i:02}"), &["team/app/token"], i))
            .collect(),
        ..Keeper::default()
    };
    let text = answer(&keeper, &alice(), &grants()).await;
    assert!(text.chars().count() <= 2000, "{}", text.len());
    let shown = text.lines().filter(|l| l.starts_with('`')).count();
    assert!(shown > 10 && shown < 60, "{shown}");
    assert!(
        text.ends_with(&format!("… and {} more", 60 - shown)),
        "{text}"
    );
    assert!(text.contains("agent-00") && !text.contains("agent-59"));
}

#[tokio::test]
async fn revoke_takes_a_grant_id_and_says_what_happened() {
    let id = GrantId::random();
    let keeper = Keeper::default();
    let text = answer(&keeper, &alice(), &revoke(id.as_str())).await;
    assert_eq!(text, format!(r"Revoked `{id}` (ci\_one)."));
    assert_eq!(
        keeper.revoked.lock().unwrap().as_slice(),
        std::slice::from_ref(&id)
    );

    for (refusal, said) in [
        (Refused::NotFound, "No live grant with that id."),
        (
            Refused::NotAllowed,
            "You are not an approver for that grant; nothing changed.",
        ),
        (
            Refused::Failed("disk full".into()),
            "Could not revoke: disk full",
        ),
    ] {
        let keeper = Keeper {
            revocation: Some(refusal),
            ..Keeper::default()
        };
        assert_eq!(answer(&keeper, &alice(), &revoke(id.as_str())).await, said);
    }
}

#[tokio::test]
async fn anything_else_revokes_nothing() {
    let keeper = Keeper::default();
    let not_an_id = "That is not a grant id (they look like `gnt_…`).";
    for bad in ["", "req_abc", "gnt_short", "<@1>"] {
        assert_eq!(answer(&keeper, &alice(), &revoke(bad)).await, not_an_id);
    }
    let missing = data(json!([{ "name": "revoke", "type": 1, "options": [] }]));
    assert_eq!(answer(&keeper, &alice(), &missing).await, not_an_id);
    for unknown in [
        data(json!([])),
        data(json!([{ "name": "rotate", "type": 1, "options": [] }])),
    ] {
        assert_eq!(
            answer(&keeper, &alice(), &unknown).await,
            "Unknown /keygate command."
        );
    }
    assert!(keeper.revoked.lock().unwrap().is_empty());
}
