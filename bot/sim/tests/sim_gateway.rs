//! The simulator's gateway against a real twilight shard: READY, a button press
//! answered through twilight-http, a refused token, and recovery from a dropped
//! connection, RECONNECT and INVALID_SESSION.
// Helpers outside #[test] fns fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::time::Duration;

use keygate_discord_sim::{PressSpec, SimConfig};
use sim_support::{Bot, WAIT, client, discord_code, start};
use twilight_gateway::Event;
use twilight_model::application::interaction::InteractionData;
use twilight_model::channel::message::component::{ActionRow, Button, ButtonStyle, Component};
use twilight_model::http::interaction::{
    InteractionResponse, InteractionResponseData, InteractionResponseType,
};
use twilight_model::id::Id;

fn approve_row() -> Vec<Component> {
    let button = |id: &str, label: &str, style| {
        Component::Button(Button {
            custom_id: Some(id.into()),
            disabled: false,
            emoji: None,
            id: None,
            label: Some(label.into()),
            sku_id: None,
            style,
            url: None,
        })
    };
    vec![Component::ActionRow(ActionRow {
        id: None,
        components: vec![
            button("kg:approve:req_1", "Approve", ButtonStyle::Success),
            button("kg:deny:req_1", "Deny", ButtonStyle::Danger),
        ],
    })]
}

#[tokio::test]
async fn press_round_trip_through_twilight() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    let ready = bot
        .next(|e| match e {
            Event::Ready(r) => Some(r),
            _ => None,
        })
        .await
        .expect("READY");
    assert_eq!(ready.user.id.get(), cfg.application_id);
    assert_eq!(ready.application.id.get(), cfg.application_id);
    assert_eq!(ready.resume_gateway_url, sim.gateway_url());
    assert!(sim.wait_connected(WAIT).await);
    assert_eq!(sim.identify_count(), 1);

    let http = client(&sim, &cfg.bot_token);
    let me = http.current_user().await.unwrap().model().await.unwrap();
    assert_eq!(me.id.get(), cfg.application_id);
    assert!(me.bot);

    let rows = approve_row();
    let posted = http
        .create_message(Id::new(cfg.channel_id))
        .content("agent wants db-password")
        .components(&rows)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(posted.author.id.get(), cfg.application_id);
    let stored = sim.message(posted.id.get()).unwrap();
    assert_eq!(stored.live_buttons().len(), 2);
    assert_eq!(stored.buttons()[0].style, 3);

    let handle = sim
        .press(&PressSpec::new(posted.id.get(), "kg:approve:req_1", 42).roles([7]))
        .unwrap();
    let interaction = bot.interaction().await.expect("INTERACTION_CREATE");
    assert_eq!(interaction.author_id().map(Id::get), Some(42));
    assert_eq!(interaction.guild_id.map(Id::get), Some(cfg.guild_id));
    let roles = &interaction.member.as_ref().unwrap().roles;
    assert_eq!(roles.iter().map(|r| r.get()).collect::<Vec<_>>(), vec![7]);
    let Some(InteractionData::MessageComponent(data)) = &interaction.data else {
        panic!("not a component press: {:?}", interaction.data);
    };
    assert_eq!(data.custom_id, "kg:approve:req_1");
    assert_eq!(interaction.message.as_ref().map(|m| m.id), Some(posted.id));

    let response = InteractionResponse {
        kind: InteractionResponseType::UpdateMessage,
        data: Some(InteractionResponseData {
            content: Some("Approved by <@42>".into()),
            components: Some(Vec::new()),
            ..InteractionResponseData::default()
        }),
    };
    http.interaction(Id::new(cfg.application_id))
        .create_response(interaction.id, &interaction.token, &response)
        .await
        .unwrap();

    let callback = handle.response(WAIT).await.expect("callback");
    assert_eq!(callback.kind, 7);
    assert!(!callback.ephemeral);
    // Recorded at all means it came inside the window; `elapsed` says where.
    assert!(callback.elapsed <= cfg.interaction_window);
    let updated = sim.message(posted.id.get()).unwrap();
    assert_eq!(updated.content, "Approved by <@42>");
    assert_eq!(updated.edited, 1);
    assert!(updated.buttons().is_empty());
    // No allowed_mentions was sent, so Discord would have pinged the user.
    assert_eq!(updated.pings.users, vec![42]);

    let log = sim.rest_log();
    assert!(log.iter().all(|c| c.route.is_some()), "{log:#?}");
    let cb = log
        .iter()
        .find(|c| c.route == Some("interaction_callback"))
        .unwrap();
    // twilight asks for no callback body and sends no Authorization there.
    assert!(!cb.path.contains('?'), "{}", cb.path);
    assert_eq!(cb.status, 204);
    assert!(!cb.authorized);
}

#[tokio::test]
async fn wrong_token_is_refused_on_rest_and_gateway() {
    let sim = start(SimConfig::default()).await;
    let http = client(&sim, "not-the-token");
    let err = http.current_user().await.unwrap_err();
    assert_eq!(discord_code(&err), Some((401, 0)));

    let mut bot = Bot::connect(&sim, "not-the-token");
    let close = bot
        .next(|e| match e {
            Event::GatewayClose(frame) => Some(frame.map(|f| f.code)),
            _ => None,
        })
        .await
        .expect("a close frame");
    assert_eq!(close, Some(4004));
    // 4004 is fatal for twilight: the stream ends.
    let end = tokio::time::timeout(WAIT, async {
        while let Some(item) = bot.rx.recv().await {
            if let sim_support::Item::Error(e) = item {
                panic!("{e}");
            }
        }
    })
    .await;
    assert!(end.is_ok(), "twilight kept the shard alive after 4004");
    assert_eq!(sim.identify_count(), 0);
}

#[tokio::test]
async fn dropped_connection_resumes_and_replays_missed_interactions() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = client(&sim, &cfg.bot_token);
    let rows = approve_row();
    let posted = http
        .create_message(Id::new(cfg.channel_id))
        .content("x")
        .components(&rows)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();

    sim.drop_connection();
    assert!(!sim.connected());
    // Dispatched while no connection is open: kept for the resume.
    let handle = sim
        .press(&PressSpec::new(posted.id.get(), "kg:deny:req_1", 5))
        .unwrap();
    // Discord replays what was missed, then says RESUMED.
    let replayed = bot.interaction().await.expect("replayed interaction");
    assert!(bot.resumed().await, "twilight did not resume");
    assert_eq!(replayed.id.get(), handle.id());
    assert_eq!((sim.identify_count(), sim.resume_count()), (1, 1));

    // The window counts from delivery, so the replayed press can still be answered.
    let response = InteractionResponse {
        kind: InteractionResponseType::DeferredUpdateMessage,
        data: None,
    };
    http.interaction(Id::new(cfg.application_id))
        .create_response(replayed.id, &replayed.token, &response)
        .await
        .unwrap();
    assert_eq!(handle.response(WAIT).await.map(|c| c.kind), Some(6));

    // RECONNECT: twilight resumes again.
    sim.send_reconnect();
    assert!(bot.resumed().await);
    assert!(sim.wait_for_sessions(|i, r| i == 1 && r == 2, WAIT).await);

    // INVALID_SESSION (not resumable): twilight identifies afresh.
    sim.send_invalid_session(false);
    assert!(bot.ready().await);
    assert!(sim.wait_for_sessions(|i, r| i == 2 && r == 2, WAIT).await);

    // A closed connection with a resumable code: twilight resumes.
    sim.close_connection(4000);
    assert!(bot.resumed().await);
    assert!(sim.wait_for_sessions(|i, r| i == 2 && r == 3, WAIT).await);
}

#[tokio::test]
async fn heartbeats_are_acknowledged() {
    let sim = start(SimConfig {
        heartbeat_interval: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;
    let mut bot = Bot::connect(&sim, &sim.config().bot_token);
    assert!(bot.ready().await);
    let acks = bot
        .next(|e| matches!(e, Event::GatewayHeartbeatAck).then_some(()))
        .await;
    assert!(acks.is_some());
    assert!(sim.heartbeat_count() >= 1);
    assert!(sim.connected());
}

/// Speak the protocol by hand, badly, as a broken client would.
#[tokio::test]
async fn garbage_gets_discords_answers() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_websockets::{ClientBuilder, Message};

    let sim = start(SimConfig::default()).await;
    let url = format!("{}/?v=10&encoding=json", sim.gateway_url());
    let connect = || async {
        let (mut ws, _) = ClientBuilder::new()
            .uri(&url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let hello = ws.next().await.unwrap().unwrap();
        let hello: serde_json::Value = serde_json::from_str(hello.as_text().unwrap()).unwrap();
        assert_eq!(hello["op"], 10);
        assert_eq!(hello["d"]["heartbeat_interval"], 41_250);
        ws
    };
    let close_code = |msg: Message| msg.as_close().map(|(c, _)| u16::from(c));

    let mut ws = connect().await;
    ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(close_code(ws.next().await.unwrap().unwrap()), Some(4002));

    let mut ws = connect().await;
    ws.send(Message::text(r#"{"op":99,"d":null}"#))
        .await
        .unwrap();
    assert_eq!(close_code(ws.next().await.unwrap().unwrap()), Some(4001));

    let mut ws = connect().await;
    ws.send(Message::text(r#"{"op":3,"d":{}}"#)).await.unwrap();
    assert_eq!(close_code(ws.next().await.unwrap().unwrap()), Some(4003));

    // Resuming a session that never existed: op 9, not resumable.
    let mut ws = connect().await;
    let token = &sim.config().bot_token;
    let resume =
        serde_json::json!({"op": 6, "d": {"token": token, "session_id": "nope", "seq": 3}});
    ws.send(Message::text(resume.to_string())).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    let reply: serde_json::Value = serde_json::from_str(reply.as_text().unwrap()).unwrap();
    assert_eq!(reply["op"], 9);
    assert_eq!(reply["d"], false);

    // IDENTIFY without the "Bot " prefix is accepted, as on Discord; a second one is not.
    let mut ws = connect().await;
    let identify = serde_json::json!({"op": 2, "d": {"token": token, "intents": 0,
        "properties": {"os": "linux", "browser": "x", "device": "x"}}});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    let ready = ws.next().await.unwrap().unwrap();
    let ready: serde_json::Value = serde_json::from_str(ready.as_text().unwrap()).unwrap();
    assert_eq!(
        (ready["t"].as_str(), ready["s"].as_u64()),
        (Some("READY"), Some(1))
    );
    ws.send(Message::text(identify.to_string())).await.unwrap();
    assert_eq!(close_code(ws.next().await.unwrap().unwrap()), Some(4005));
}
