//! A new leader's bot takes over the messages another node's bot posted (a cluster's
//! Discord failover): bot 1 posts a request and goes away; bot 2, connected to the same
//! (simulated) Discord, adopts bot 1's message and from then on edits that very message
//! — on a change it is told of, and when a grant it adopted is ending soon — and posts
//! nothing new.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use keygate_bot::{BotConfig, Discord};
use keygate_discord_sim::{SimConfig, SimMessage, Simulator};
use keygate_proto::api::{GrantView, RequestView};
use keygate_proto::approval::{
    ApprovalChannel as _, Approver, BoxFuture, Change, Gatekeeper, Mentions, Outcome, Refused,
    Verdict,
};
use keygate_proto::{GrantId, RequestId, Timestamp};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Nobody presses in these tests: every question is refused.
struct Nobody;

impl Gatekeeper for Nobody {
    fn decide<'a>(
        &'a self,
        _id: &'a RequestId,
        _verdict: Verdict,
        _approver: &'a Approver,
    ) -> BoxFuture<'a, Result<Outcome, Refused>> {
        Box::pin(async { Err(Refused::NotFound) })
    }
    fn may_decide(&self, _id: &RequestId, _approver: &Approver) -> Result<(), Refused> {
        Err(Refused::NotFound)
    }
    fn request(&self, _id: &RequestId) -> Option<RequestView> {
        None
    }
    fn grants_for(&self, _approver: &Approver) -> Vec<GrantView> {
        Vec::new()
    }
    fn refused(&self, _approver: &Approver, _what: &str, _why: &str) {}
    fn revoke<'a>(
        &'a self,
        _id: &'a GrantId,
        _approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>> {
        Box::pin(async { Err(Refused::NotFound) })
    }
    fn extend<'a>(
        &'a self,
        _id: &'a GrantId,
        _approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>> {
        Box::pin(async { Err(Refused::NotFound) })
    }
}

async fn bot(sim: &Simulator) -> Arc<Discord> {
    let c = sim.config();
    let config = BotConfig {
        token: c.bot_token.clone().into(),
        channel_id: c.channel_id,
        guild_id: Some(c.guild_id),
        api_url: Some(sim.rest_url()),
        gateway_url: Some(sim.gateway_url()),
        ping: true,
    };
    let discord = Discord::connect(config, Arc::new(Nobody)).await.unwrap();
    assert!(
        discord.wait_connected(WAIT).await,
        "the bot never connected"
    );
    discord
}

fn at(from_now: i64) -> Timestamp {
    let d = Duration::from_secs(from_now.unsigned_abs());
    Timestamp::from(if from_now < 0 {
        SystemTime::now() - d
    } else {
        SystemTime::now() + d
    })
}

fn pending(id: &RequestId) -> RequestView {
    serde_json::from_value(json!({
        "id": id,
        "agent": "ci-one",
        "secrets": ["github/token"],
        "reason": "deploy",
        "status": "pending",
        "created_at": at(-10),
        "expires_at": at(300),
        "ttl_seconds": 600,
        "quorum": 1,
    }))
    .unwrap()
}

/// Bot 1 posts `view` and goes away: its message, and what bot 1 said it was.
async fn posted_by_a_bot_that_leaves(sim: &Simulator, view: &RequestView) -> SimMessage {
    let one = bot(sim).await;
    one.post(view, &Mentions::default()).await.unwrap();
    let msg = sim
        .wait_for_message(|m| m.text().contains(view.id.as_str()), WAIT)
        .await
        .expect("bot 1 posted the request");
    assert_eq!(one.message_of(&view.id), Some(msg.id));
    one.shut_down();
    let deadline = Instant::now() + WAIT;
    while sim.connected() {
        assert!(Instant::now() < deadline, "bot 1 never disconnected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    msg
}

#[tokio::test]
async fn a_new_bot_edits_the_message_another_bot_posted() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let id = RequestId::random();
    let view = pending(&id);
    let msg = posted_by_a_bot_that_leaves(&sim, &view).await;
    assert!(
        !msg.live_buttons().is_empty(),
        "a pending request has buttons"
    );

    let two = bot(&sim).await;
    assert_eq!(two.message_of(&id), None);
    // Id 0 is no Discord message: ignored.
    two.adopt(0, &view);
    assert_eq!(two.message_of(&id), None);
    two.adopt(msg.id, &view);
    assert_eq!(two.message_of(&id), Some(msg.id));

    let mut denied = view.clone();
    denied.status = keygate_proto::api::RequestStatus::Denied;
    denied.decided_by = Some("@alice (5)".into());
    denied.decided_at = Some(at(0));
    two.notify(&Change::Request(Box::new(denied)));
    let edited = sim
        .wait_for_edit(msg.id, |m| m.edited > 0, WAIT)
        .await
        .expect("bot 2 edited bot 1's message");
    assert!(edited.text().contains("Denied"), "{}", edited.text());
    assert!(edited.live_buttons().is_empty(), "{:?}", edited.buttons());
    assert_eq!(sim.messages().len(), 1, "bot 2 posted nothing new");
    // A denied request's message is done with: forgotten after its last edit.
    assert_eq!(two.message_of(&id), None);
}

#[tokio::test]
async fn an_adopted_grant_still_says_when_it_is_ending_soon() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let id = RequestId::random();
    let msg = posted_by_a_bot_that_leaves(&sim, &pending(&id)).await;

    // Approved 8 s ago for 10 s: 2 s left, inside its ending-soon lead of 2 s.
    let mut approved = pending(&id);
    approved.status = keygate_proto::api::RequestStatus::Approved;
    approved.approvals = vec!["@alice (5)".into()];
    approved.decided_at = Some(at(-8));
    approved.grant = Some(
        serde_json::from_value(json!({ "id": GrantId::random(), "expires_at": at(2) })).unwrap(),
    );
    let two = bot(&sim).await;
    two.adopt(msg.id, &approved);
    let edited = sim
        .wait_for_edit(msg.id, |m| m.text().contains("ending soon"), WAIT)
        .await
        .expect("bot 2 said the adopted grant is ending soon");
    assert!(edited.text().contains("Approved"), "{}", edited.text());
    assert_eq!(sim.messages().len(), 1, "bot 2 posted nothing new");
}
