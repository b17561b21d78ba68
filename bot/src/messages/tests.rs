//! Which edit each change needs, and what a request message shows: requester text made
//! inert, buttons only while a decision is possible, and ids in the buttons that the
//! bot reads back as the request they came from.

#![allow(clippy::unwrap_used)]

use keygate_proto::approval::{GrantEnd, Verdict};
use twilight_model::channel::message::component::Component;

use super::*;
use crate::testing;

fn change(view: &RequestView) -> Change {
    Change::Request(Box::new(view.clone()))
}

fn custom_ids(r: &Rendered) -> Vec<String> {
    r.components
        .iter()
        .flat_map(|row| match row {
            Component::ActionRow(row) => row.components.clone(),
            _ => Vec::new(),
        })
        .filter_map(|c| match c {
            Component::Button(b) => b.custom_id,
            _ => None,
        })
        .collect()
}

fn title(r: &Rendered) -> String {
    r.embeds[0].title.clone().unwrap()
}

fn field<'a>(r: &'a Rendered, name: &str) -> &'a str {
    &r.embeds[0]
        .fields
        .iter()
        .find(|f| f.name == name)
        .unwrap()
        .value
}

#[test]
fn a_pending_request_has_buttons_that_read_back_as_its_own() {
    let id = RequestId::random();
    let r = render::request(&testing::request(&id, "pending"), None);
    let ids = custom_ids(&r);
    // Approve, Approve…, Deny, Deny…, and the shorter TTLs below the request's ten minutes.
    assert_eq!(ids.len(), 5, "{ids:?}");
    let mut forms = Vec::new();
    let parsed: Vec<(RequestId, Verdict)> = ids
        .iter()
        .filter_map(|c| match crate::buttons::parse(c) {
            Some(crate::buttons::Pressed::Decide(on, verdict)) => Some((on, verdict)),
            Some(
                crate::buttons::Pressed::ApproveForm(on) | crate::buttons::Pressed::DenyForm(on),
            ) => {
                forms.push(on);
                None
            }
            other => panic!("{c}: {other:?}"),
        })
        .collect();
    assert_eq!(forms, vec![id.clone(), id.clone()]);
    assert!(parsed.iter().all(|(on, _)| on == &id));
    assert!(parsed.contains(&(id.clone(), Verdict::Approve { ttl: None })));
    assert!(parsed.contains(&(id.clone(), Verdict::Deny { reason: None })));
    assert!(title(&r).contains("Approval needed"));
    for status in ["approved", "denied", "expired", "cancelled"] {
        let r = render::request(&testing::request(&id, status), None);
        assert!(r.components.is_empty(), "{status}: nothing left to press");
    }
}

#[test]
fn requester_text_cannot_ping_or_format() {
    let id = RequestId::random();
    let mut v = testing::request(&id, "pending");
    v.reason = "@everyone **now** <@123>\nApproved by: boss".into();
    v.host = Some("`build`".into());
    let r = render::request(&v, None);
    let reason = field(&r, "Reason");
    assert!(
        !reason.contains("@everyone") && !reason.contains("<@"),
        "{reason}"
    );
    assert!(reason.contains(r"\*\*now\*\*"), "{reason}");
    assert!(!reason.contains('\n'), "{reason}");
    assert_eq!(field(&r, "From"), r"\`build\`");
}

#[test]
fn a_change_edits_the_message_unless_a_press_is_updating_it() {
    let m = Messages::default();
    let id = RequestId::random();
    let pending = testing::request(&id, "pending");
    assert!(m.edit_for(&change(&pending)).is_none(), "not posted");
    let message = Id::new(42);
    m.posted(
        message,
        &pending,
        keygate_proto::approval::Mentions::default(),
    );
    let (on, r) = m.edit_for(&change(&pending)).unwrap();
    assert_eq!(on, message);
    assert!(!r.components.is_empty());

    m.begin_update(&id);
    assert!(
        m.edit_for(&change(&pending)).is_none(),
        "the press edits it"
    );
    m.end_update(&pending);
    assert!(m.edit_for(&change(&pending)).is_some());
    m.begin_update(&id);
    m.end_update_missing(&id);
    assert!(m.edit_for(&change(&pending)).is_some());
}

#[test]
fn a_request_that_ends_without_a_grant_gets_one_last_edit() {
    let m = Messages::default();
    let id = RequestId::random();
    m.posted(
        Id::new(42),
        &testing::request(&id, "pending"),
        keygate_proto::approval::Mentions::default(),
    );
    let denied = testing::request(&id, "denied");
    let (_, r) = m.edit_for(&change(&denied)).unwrap();
    assert!(title(&r).contains("Denied"));
    assert!(m.edit_for(&change(&denied)).is_none(), "forgotten");
}

#[test]
fn an_approved_request_is_kept_until_its_grant_ends() {
    let m = Messages::default();
    let id = RequestId::random();
    m.posted(
        Id::new(42),
        &testing::request(&id, "pending"),
        keygate_proto::approval::Mentions::default(),
    );
    let approved = testing::request(&id, "approved");
    assert!(m.edit_for(&change(&approved)).is_some());
    assert!(m.edit_for(&change(&approved)).is_some(), "still shown");
    let mut grant = testing::grant("ci-one", &["github/token"], 1);
    grant.request = id.clone();
    let ended = Change::GrantEnded {
        grant: grant.clone(),
        cause: GrantEnd::Revoked,
    };
    let (on, r) = m.edit_for(&ended).unwrap();
    assert_eq!(on, Id::new(42));
    assert!(title(&r).contains("Grant revoked"), "{}", title(&r));
    assert!(m.edit_for(&ended).is_none(), "forgotten");
    // A press that updated the message: the grant's end shows what it left.
    let other = RequestId::random();
    m.posted(
        Id::new(43),
        &testing::request(&other, "pending"),
        keygate_proto::approval::Mentions::default(),
    );
    m.begin_update(&other);
    m.end_update(&testing::request(&other, "approved"));
    grant.request = other;
    let (_, r) = m
        .edit_for(&Change::GrantEnded {
            grant,
            cause: GrantEnd::Expired,
        })
        .unwrap();
    assert!(title(&r).contains("Grant expired"), "{}", title(&r));
}

#[test]
fn an_approvers_note_stays_on_the_message_to_the_grants_end() {
    let m = Messages::default();
    let id = RequestId::random();
    m.posted(
        Id::new(44),
        &testing::request(&id, "pending"),
        keygate_proto::approval::Mentions::default(),
    );
    m.noted(&id, "@alice (1)".into(), "first".into());
    m.noted(&id, "@alice (1)".into(), "for the deploy".into());
    let approved = testing::request(&id, "approved");
    let (_, r) = m.edit_for(&change(&approved)).unwrap();
    assert_eq!(
        field(&r, "Note"),
        "@\u{200B}alice (1): for the deploy",
        "one note per person, the last"
    );
    let mut grant = testing::grant("ci-one", &["github/token"], 1);
    grant.request = id.clone();
    let (_, r) = m
        .edit_for(&Change::GrantEnded {
            grant,
            cause: GrantEnd::Expired,
        })
        .unwrap();
    assert!(title(&r).contains("Grant expired"), "{}", title(&r));
    assert_eq!(field(&r, "Note"), "@\u{200B}alice (1): for the deploy");
}

#[test]
fn an_adopted_message_notifies_nobody_and_adopting_it_again_keeps_what_it_knows() {
    let m = Messages::default();
    let id = RequestId::random();
    let pending = testing::request(&id, "pending");
    m.adopted(Id::new(45), &pending);
    assert_eq!(m.message_of(&id), Some(Id::new(45)));
    assert_eq!(m.mentions(&id), Some(Mentions::default()));

    // Posted here with mentions and a note: taking the same message over again keeps
    // both; another message replaces it all.
    let pinged = Mentions {
        users: vec![keygate_proto::UserId(5)],
        roles: Vec::new(),
    };
    m.posted(Id::new(46), &pending, pinged.clone());
    m.noted(&id, "@alice (5)".into(), "ok".into());
    m.adopted(Id::new(46), &pending);
    assert_eq!(m.mentions(&id), Some(pinged));
    let (message, r) = m
        .edit_for(&change(&testing::request(&id, "approved")))
        .unwrap();
    assert_eq!(message, Id::new(46));
    assert_eq!(field(&r, "Note"), "@\u{200B}alice (5): ok");
    m.adopted(Id::new(47), &pending);
    assert_eq!(m.message_of(&id), Some(Id::new(47)));
    assert_eq!(m.mentions(&id), Some(Mentions::default()));
}
