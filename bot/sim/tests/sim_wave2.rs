//! Discord wave 2 in the simulator: modals (type 9 checked, MODAL_SUBMIT parsed by
//! twilight), allowed_mentions checked and applied, components v2 checked and rendered.
#![allow(clippy::unwrap_used)]

mod sim_support;

use keygate_discord_sim::{ModalSubmitSpec, PressSpec, SimConfig, SimError, Simulator};
use serde_json::{Value, json};
use sim_support::{Bot, WAIT, client, discord_code, start};
use twilight_http::Client;
use twilight_http::request::Request;
use twilight_http::routing::Route;
use twilight_model::application::interaction::modal::ModalInteractionComponent;
use twilight_model::application::interaction::{Interaction, InteractionData, InteractionType};

struct World {
    sim: Simulator,
    http: Client,
    bot: Bot,
    channel: u64,
}

async fn world() -> World {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = client(&sim, &cfg.bot_token);
    World {
        sim,
        http,
        bot,
        channel: cfg.channel_id,
    }
}

/// Send raw JSON to a route: (status, body).
async fn raw(http: &Client, route: Route<'_>, body: &Value) -> (u16, Value) {
    let req = Request::builder(&route)
        .body(serde_json::to_vec(body).unwrap())
        .build()
        .unwrap();
    match http.request::<Value>(req).await {
        Ok(r) => {
            let status = r.status().get();
            let bytes = r.bytes().await.unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }
        Err(e) => {
            let (status, _) = discord_code(&e).unwrap_or((0, 0));
            let body = match e.kind() {
                twilight_http::error::ErrorType::Response { body, .. } => {
                    serde_json::from_slice(body).unwrap_or(Value::Null)
                }
                _ => Value::Null,
            };
            (status, body)
        }
    }
}

async fn post(w: &World, body: Value) -> (u16, Value) {
    raw(
        &w.http,
        Route::CreateMessage {
            channel_id: w.channel,
        },
        &body,
    )
    .await
}

async fn callback(http: &Client, i: &Interaction, body: Value) -> (u16, Value) {
    raw(
        http,
        Route::InteractionCallback {
            interaction_id: i.id.get(),
            interaction_token: &i.token,
            with_response: false,
        },
        &body,
    )
    .await
}

fn approve_row() -> Value {
    json!([{"type": 1, "components": [
        {"type": 2, "style": 3, "custom_id": "kg:approve:req_1", "label": "Approve"},
        {"type": 2, "style": 1, "custom_id": "kg:approve_ttl:req_1", "label": "Approve…"},
    ]}])
}

fn ttl_modal() -> Value {
    json!({"type": 9, "data": {
        "custom_id": "kg:modal:approve:req_1",
        "title": "Approve req_1",
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "kg:m:req_1:ttl", "style": 1,
                "label": "TTL", "value": "1h", "max_length": 20}]},
            {"type": 18, "label": "Note", "description": "optional",
                "component": {"type": 4, "custom_id": "kg:m:req_1:note", "style": 2, "required": false}},
        ],
    }})
}

/// Post the request message and press "Approve…"; the interaction the bot received.
async fn press_approve_ttl(w: &mut World, user: u64) -> (u64, Interaction) {
    let (status, msg) = post(
        w,
        json!({"content": "approve?", "components": approve_row()}),
    )
    .await;
    assert_eq!(status, 200, "{msg}");
    let id: u64 = msg["id"].as_str().unwrap().parse().unwrap();
    w.sim
        .press(&PressSpec::new(id, "kg:approve_ttl:req_1", user))
        .unwrap();
    let i = w.bot.interaction().await.unwrap();
    (id, i)
}

#[tokio::test]
async fn a_modal_opens_and_its_submit_parses_with_twilight() {
    let mut w = world().await;
    let (msg, press) = press_approve_ttl(&mut w, 42).await;
    let (status, body) = callback(&w.http, &press, ttl_modal()).await;
    assert_eq!(status, 204, "{body}");

    let modal = w.sim.open_modal(msg, 42).expect("open modal");
    assert_eq!(modal.title, "Approve req_1");
    assert_eq!(modal.inputs.len(), 2);
    assert_eq!(modal.input("ttl").unwrap().value.as_deref(), Some("1h"));
    assert_eq!(modal.input("ttl").unwrap().label.as_deref(), Some("TTL"));
    assert_eq!(modal.input("note").unwrap().label.as_deref(), Some("Note"));
    assert!(
        w.sim.open_modal(msg, 43).is_none(),
        "open for the presser only"
    );

    // Somebody else cannot submit it; a forged submit can be sent on purpose.
    let other = w
        .sim
        .submit_modal(&ModalSubmitSpec::new(msg, 43).value("ttl", "2h"));
    assert!(
        matches!(other, Err(SimError::NoOpenModal { .. })),
        "{other:?}"
    );
    // What Discord's client refuses to send: an empty required input, too long a value.
    let empty = w
        .sim
        .submit_modal(&ModalSubmitSpec::new(msg, 42).value("ttl", ""));
    assert!(
        matches!(empty, Err(SimError::BadModalValue { .. })),
        "{empty:?}"
    );
    let long = w
        .sim
        .submit_modal(&ModalSubmitSpec::new(msg, 42).value("ttl", "x".repeat(21)));
    assert!(
        matches!(long, Err(SimError::BadModalValue { .. })),
        "{long:?}"
    );
    let unknown = w
        .sim
        .submit_modal(&ModalSubmitSpec::new(msg, 42).value("nope", "x"));
    assert!(matches!(unknown, Err(SimError::UnknownModalInput { .. })));

    let handle = w
        .sim
        .submit_modal(&ModalSubmitSpec::new(msg, 42).roles([7]).value("ttl", "2h"))
        .unwrap();
    let submit = w.bot.interaction().await.unwrap();
    assert_eq!(submit.kind, InteractionType::ModalSubmit);
    assert_eq!(submit.message.as_ref().unwrap().id.get(), msg);
    assert_eq!(submit.author_id().unwrap().get(), 42);
    let Some(InteractionData::ModalSubmit(data)) = &submit.data else {
        panic!("{:?}", submit.data);
    };
    assert_eq!(data.custom_id, "kg:modal:approve:req_1");
    let mut got = Vec::new();
    for c in &data.components {
        let input = match c {
            ModalInteractionComponent::ActionRow(r) => r.components[0].clone(),
            ModalInteractionComponent::Label(l) => (*l.component).clone(),
            other => panic!("{other:?}"),
        };
        let ModalInteractionComponent::TextInput(t) = input else {
            panic!("{input:?}");
        };
        assert!(t.id > 0);
        got.push((t.custom_id, t.value));
    }
    assert_eq!(
        got,
        vec![
            ("kg:m:req_1:ttl".to_owned(), "2h".to_owned()),
            ("kg:m:req_1:note".to_owned(), String::new()),
        ]
    );
    assert!(w.sim.open_modal(msg, 42).is_none(), "submitted, so closed");
    assert!(handle.submitted_modal().is_some());

    // A modal submit may update the message the button was on, but not open a modal.
    let (status, body) = callback(&w.http, &submit, ttl_modal()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = callback(
        &w.http,
        &submit,
        json!({"type": 7, "data": {"content": "approved for 2h", "components": []}}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(w.sim.message(msg).unwrap().content, "approved for 2h");
    assert_eq!(handle.response(WAIT).await.unwrap().kind, 7);

    // Forged: no modal open, sent anyway with the keys as custom_ids.
    w.sim
        .submit_modal(&ModalSubmitSpec {
            forged: true,
            ..ModalSubmitSpec::new(msg, 43).value("reason", "x")
        })
        .unwrap();
    let forged = w.bot.interaction().await.unwrap();
    assert!(matches!(forged.data, Some(InteractionData::ModalSubmit(_))));
}

#[tokio::test]
async fn modals_discord_refuses_are_refused() {
    let mut w = world().await;
    let bad = [
        json!({"title": "x".repeat(46), "custom_id": "m", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 1, "label": "A"}]}]}),
        json!({"title": "T", "custom_id": "m", "components": []}),
        json!({"title": "T", "custom_id": "m", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 3, "label": "A"}]}]}),
        json!({"title": "T", "custom_id": "m", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 1}]}]}),
        json!({"title": "T", "custom_id": "m", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 1, "label": "A", "value": "toolong", "max_length": 3}]}]}),
        json!({"title": "T", "custom_id": "m", "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 1, "label": "A"}]},
            {"type": 18, "label": "B", "component": {"type": 4, "custom_id": "a", "style": 1}}]}),
        json!({"title": "T", "custom_id": "m", "components": [{"type": 2, "style": 1, "custom_id": "b", "label": "B"}]}),
    ];
    let (msg, press) = press_approve_ttl(&mut w, 42).await;
    for data in bad {
        let (status, body) = callback(&w.http, &press, json!({"type": 9, "data": data})).await;
        assert_eq!(status, 400, "{data}: {body}");
        assert_eq!(body["code"], 50035, "{body}");
    }
    assert!(w.sim.open_modal(msg, 42).is_none());

    // After a defer, a modal is too late.
    w.sim
        .press(&PressSpec::new(msg, "kg:approve_ttl:req_1", 42))
        .unwrap();
    let press = w.bot.interaction().await.unwrap();
    let (status, _) = callback(&w.http, &press, json!({"type": 6})).await;
    assert_eq!(status, 204);
    let (status, body) = callback(&w.http, &press, ttl_modal()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 40060);
    assert!(w.sim.open_modal(msg, 42).is_none());
}

#[tokio::test]
async fn allowed_mentions_decide_who_is_pinged() {
    let w = world().await;
    let am = json!({"parse": [], "users": ["42"], "roles": ["7"]});
    let (status, m) = post(
        &w,
        json!({"content": "<@42> <@43> <@&7> <@&8> @everyone approve?", "allowed_mentions": am}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    let id: u64 = m["id"].as_str().unwrap().parse().unwrap();
    let stored = w.sim.message(id).unwrap();
    assert_eq!(stored.pings.users, vec![42]);
    assert_eq!(stored.pings.roles, vec![7]);
    assert!(!stored.pings.everyone);
    assert_eq!(stored.notified, stored.pings);
    assert_eq!(stored.allowed_mentions, Some(am));
    assert_eq!(m["mention_roles"], json!(["7"]));

    // parse users together with a users list: Discord's 400.
    let (status, body) = post(
        &w,
        json!({"content": "<@42>", "allowed_mentions": {"parse": ["users"], "users": ["42"]}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(
        &w,
        json!({"content": "x", "allowed_mentions": {"parse": ["nobody"]}}),
    )
    .await;
    assert_eq!(status, 400);

    // Mentions in embeds never ping; an edit that adds a mention notifies nobody.
    let (_, e) = post(
        &w,
        json!({"content": "see below", "embeds": [{"description": "<@42> @everyone"}]}),
    )
    .await;
    let eid: u64 = e["id"].as_str().unwrap().parse().unwrap();
    assert!(w.sim.message(eid).unwrap().pings.is_empty());
    let (status, _) = raw(
        &w.http,
        Route::UpdateMessage {
            channel_id: w.channel,
            message_id: eid,
        },
        &json!({"content": "now <@42>"}),
    )
    .await;
    assert_eq!(status, 200);
    let edited = w.sim.message(eid).unwrap();
    assert_eq!(edited.pings.users, vec![42]);
    assert!(edited.notified.is_empty());
}

#[tokio::test]
async fn components_v2_messages() {
    let mut w = world().await;
    let v2 = 1 << 15;
    let layout = json!([{"type": 17, "accent_color": 0x00FF_AA00, "components": [
        {"type": 10, "content": "Agent **ci** asks for `github/token` <@42>"},
        {"type": 14, "divider": true},
        {"type": 9, "components": [{"type": 10, "content": "TTL 1h"}],
            "accessory": {"type": 2, "style": 3, "custom_id": "kg:approve:req_2", "label": "Approve"}},
        {"type": 1, "components": [{"type": 2, "style": 4, "custom_id": "kg:deny:req_2", "label": "Deny"}]},
    ]}]);
    let (status, m) = post(
        &w,
        json!({"flags": v2, "components": layout, "allowed_mentions": {"parse": [], "users": ["42"]}}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    let id: u64 = m["id"].as_str().unwrap().parse().unwrap();
    let stored = w.sim.message(id).unwrap();
    assert!(stored.components_v2());
    assert_eq!(
        stored.display_text(),
        "Agent **ci** asks for `github/token` <@42>\nTTL 1h"
    );
    assert_eq!(stored.pings.users, vec![42], "text displays ping");
    let ids: Vec<_> = stored
        .live_buttons()
        .into_iter()
        .filter_map(|b| b.custom_id)
        .collect();
    assert_eq!(ids, ["kg:approve:req_2", "kg:deny:req_2"]);

    // The bot reads the message in the press with twilight, and the press works.
    w.sim
        .press(&PressSpec::new(id, "kg:approve:req_2", 42))
        .unwrap();
    let press = w.bot.interaction().await.unwrap();
    assert!(press.message.is_some());
    let Some(InteractionData::MessageComponent(data)) = &press.data else {
        panic!("{:?}", press.data);
    };
    assert_eq!(data.custom_id, "kg:approve:req_2");

    // Refused: content or embeds with the flag, the flag removed, a Label in a message,
    // more than 40 components.
    let text = json!([{"type": 10, "content": "hi"}]);
    for body in [
        json!({"flags": v2, "content": "hi", "components": text}),
        json!({"flags": v2, "embeds": [{"description": "x"}], "components": text}),
        json!({"flags": v2, "components": [{"type": 18, "label": "L", "component": {"type": 4, "custom_id": "a", "style": 1}}]}),
        json!({"flags": v2, "components": (0..41).map(|i| json!({"type": 10, "content": format!("{i}")})).collect::<Vec<_>>()}),
        json!({"components": text}),
    ] {
        let (status, err) = post(&w, body.clone()).await;
        assert_eq!(status, 400, "{body}: {err}");
    }
    let route = || Route::UpdateMessage {
        channel_id: w.channel,
        message_id: id,
    };
    let (status, _) = raw(&w.http, route(), &json!({"flags": 0})).await;
    assert_eq!(status, 400, "the flag cannot be removed");
    let (status, _) = raw(&w.http, route(), &json!({"content": "legacy"})).await;
    assert_eq!(status, 400, "no content on a v2 message");
    let (status, body) = raw(&w.http, route(), &json!({"components": text})).await;
    assert_eq!(status, 200, "{body}");

    // A legacy message may become v2 by an edit, clearing its content.
    let (_, l) = post(&w, json!({"content": "old"})).await;
    let lid: u64 = l["id"].as_str().unwrap().parse().unwrap();
    let (status, body) = raw(
        &w.http,
        Route::UpdateMessage {
            channel_id: w.channel,
            message_id: lid,
        },
        &json!({"flags": v2, "content": "", "components": text}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.sim.message(lid).unwrap().display_text(), "hi");
}

/// One HTTP/1.1 request to the control API with `Connection: close`; (status, JSON).
async fn control(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_slice(body.as_bytes()).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn modal_over_the_control_api() {
    let w = world().await;
    let base = w.sim.control_url();
    let (_, msg) = post(
        &w,
        json!({"content": "<@42> approve?", "components": approve_row(),
               "allowed_mentions": {"parse": [], "users": ["42"]}}),
    )
    .await;
    let id = msg["id"].as_str().unwrap().to_owned();
    let World {
        sim, http, mut bot, ..
    } = w;
    // The bot: a press opens the modal; the submit updates the message with the values.
    let answering = tokio::spawn(async move {
        for _ in 0..2 {
            let i = bot.interaction().await.unwrap();
            let reply = match &i.data {
                Some(InteractionData::ModalSubmit(data)) => {
                    let ModalInteractionComponent::ActionRow(row) = &data.components[0] else {
                        panic!("{data:?}")
                    };
                    let ModalInteractionComponent::TextInput(input) = &row.components[0] else {
                        panic!("{row:?}")
                    };
                    json!({"type": 7, "data": {"content": format!("ttl {}", input.value), "components": []}})
                }
                _ => ttl_modal(),
            };
            let (status, body) = callback(&http, &i, reply).await;
            assert_eq!(status, 204, "{body}");
        }
    });

    let (status, pressed) = control(
        &base,
        "POST",
        "/press",
        Some(json!({"message_id": id, "custom_id": "kg:approve_ttl:req_1", "user_id": "42"})),
    )
    .await;
    assert_eq!(status, 200, "{pressed}");
    assert_eq!(pressed["callback"]["type"], 9);
    assert_eq!(pressed["modal"]["title"], "Approve req_1");
    assert_eq!(pressed["modal"]["inputs"][0]["value"], "1h");
    let (_, shown) = control(&base, "GET", &format!("/messages/{id}"), None).await;
    assert_eq!(
        shown["sim"]["open_modals"][0]["custom_id"],
        "kg:modal:approve:req_1"
    );
    assert_eq!(shown["sim"]["pings"]["users"], json!(["42"]));
    assert_eq!(shown["sim"]["allowed_mentions"]["users"], json!(["42"]));
    assert_eq!(shown["sim"]["text"], "<@42> approve?");

    let (status, err) = control(
        &base,
        "POST",
        "/modal-submit",
        Some(json!({"message_id": id, "user_id": "43", "values": {"ttl": "2h"}})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    let (status, submitted) = control(
        &base,
        "POST",
        "/modal-submit",
        Some(json!({"message_id": id, "user_id": "42", "values": {"ttl": "2h"}})),
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["callback"]["type"], 7);
    assert_eq!(submitted["original"]["content"], "ttl 2h");
    assert_eq!(
        submitted["submitted_modal"]["custom_id"],
        "kg:modal:approve:req_1"
    );
    answering.await.unwrap();
    drop(sim);
}
