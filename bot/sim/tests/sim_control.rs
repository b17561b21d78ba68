//! The HTTP control API, used the way `keygated demo` and curl use it, with a real
//! twilight bot answering presses on the other side.
// Helpers outside #[test] fns fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::sync::Arc;

use keygate_discord_sim::{SimConfig, Simulator};
use serde_json::{Value, json};
use sim_support::{Bot, WAIT, client, start};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use twilight_http::Client;
use twilight_model::application::interaction::InteractionData;
use twilight_model::channel::message::component::{ActionRow, Button, ButtonStyle, Component};
use twilight_model::http::interaction::{
    InteractionResponse, InteractionResponseData, InteractionResponseType,
};
use twilight_model::id::Id;

/// One HTTP/1.1 request with `Connection: close`; (status, JSON body).
async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
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
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A tiny bot: every press is answered by updating the message to name the presser.
fn responder(mut bot: Bot, http: Arc<Client>, app: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(i) = bot.interaction().await {
            let who = i.author_id().map_or(0, Id::get);
            let response = match &i.data {
                Some(InteractionData::MessageComponent(_)) => InteractionResponse {
                    kind: InteractionResponseType::UpdateMessage,
                    data: Some(InteractionResponseData {
                        content: Some(format!("decided by {who}")),
                        components: Some(Vec::new()),
                        ..InteractionResponseData::default()
                    }),
                },
                _ => InteractionResponse {
                    kind: InteractionResponseType::ChannelMessageWithSource,
                    data: Some(InteractionResponseData {
                        content: Some("no grants".into()),
                        ..InteractionResponseData::default()
                    }),
                },
            };
            let _ = http
                .interaction(Id::new(app))
                .create_response(i.id, &i.token, &response)
                .await;
        }
    })
}

async fn setup() -> (Simulator, Arc<Client>, tokio::task::JoinHandle<()>) {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = Arc::new(client(&sim, &cfg.bot_token));
    let task = responder(bot, Arc::clone(&http), cfg.application_id);
    (sim, http, task)
}

#[tokio::test]
async fn press_over_http() {
    let (sim, http, _bot) = setup().await;
    let cfg = sim.config().clone();
    let base = sim.control_url();
    let rows = vec![Component::ActionRow(ActionRow {
        id: None,
        components: vec![Component::Button(Button {
            custom_id: Some("kg:approve:req_1".into()),
            disabled: false,
            emoji: None,
            id: None,
            label: Some("Approve".into()),
            sku_id: None,
            style: ButtonStyle::Success,
            url: None,
        })],
    })];
    let posted = http
        .create_message(Id::new(cfg.channel_id))
        .content("approve?")
        .components(&rows)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();

    let (status, s) = call(&base, "GET", "/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(s["connected"], true);
    assert_eq!(s["gateway_url"], sim.gateway_url());

    let (status, list) = call(&base, "GET", "/messages", None).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], posted.id.to_string());
    assert_eq!(
        list[0]["sim"]["buttons"][0]["custom_id"],
        "kg:approve:req_1"
    );

    let (status, pressed) = call(
        &base,
        "POST",
        "/press",
        Some(json!({
            "message_id": posted.id.to_string(),
            "custom_id": "kg:approve:req_1",
            "user_id": "42",
            "username": "alice",
            "roles": ["7"],
        })),
    )
    .await;
    assert_eq!(status, 200, "{pressed}");
    assert_eq!(pressed["callback"]["type"], 7);
    assert_eq!(pressed["original"]["content"], "decided by 42");
    assert_eq!(pressed["original"]["sim"]["edited"], 1);

    // Pressing a button that is gone is refused before anything reaches the bot.
    let (status, err) = call(
        &base,
        "POST",
        "/press",
        Some(json!({ "message_id": posted.id.get(), "custom_id": "kg:approve:req_1", "user_id": 42 })),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = call(&base, "POST", "/press", Some(json!({ "custom_id": "x" }))).await;
    assert_eq!(status, 400);
    let (status, _) = call(&base, "GET", "/nowhere", None).await;
    assert_eq!(status, 404);

    let (status, log) = call(&base, "GET", "/rest-log", None).await;
    assert_eq!(status, 200);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|c| c["route"] == "interaction_callback")
    );
}

#[tokio::test]
async fn commands_and_connection_control_over_http() {
    let (sim, http, _bot) = setup().await;
    let cfg = sim.config().clone();
    let base = sim.control_url();
    let command = twilight_util::builder::command::CommandBuilder::new(
        "keygate",
        "keygate",
        twilight_model::application::command::CommandType::ChatInput,
    )
    .option(twilight_util::builder::command::SubCommandBuilder::new(
        "grants", "List",
    ))
    .build();
    http.interaction(Id::new(cfg.application_id))
        .set_guild_commands(Id::new(cfg.guild_id), &[command])
        .await
        .unwrap();

    let (status, ran) = call(
        &base,
        "POST",
        "/command",
        Some(json!({ "path": ["grants"], "user_id": "42" })),
    )
    .await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["callback"]["type"], 4);
    assert_eq!(ran["original"]["content"], "no grants");

    let (status, _) = call(&base, "POST", "/drop", None).await;
    assert_eq!(status, 200);
    assert!(sim.wait_for_sessions(|i, r| i == 1 && r == 1, WAIT).await);
    let (status, _) = call(&base, "POST", "/reconnect", None).await;
    assert_eq!(status, 200);
    assert!(sim.wait_for_sessions(|i, r| i == 1 && r == 2, WAIT).await);
    let (_, s) = call(&base, "GET", "/status", None).await;
    assert_eq!(s["resume_count"], 2);
}

#[tokio::test]
async fn rest_answers_garbage_like_discord() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let rest = sim.rest_url();
    let raw = |method: &'static str, path: String, auth: bool, body: &'static str| {
        let rest = rest.clone();
        let token = cfg.bot_token.clone();
        async move {
            let addr = rest.trim_start_matches("http://").to_owned();
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let auth = if auth {
                format!("Authorization: Bot {token}\r\n")
            } else {
                String::new()
            };
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            stream.read_to_string(&mut out).await.unwrap();
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
            (
                status,
                serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
            )
        }
    };
    let messages = format!("/api/v10/channels/{}/messages", cfg.channel_id);
    let (status, body) = raw("POST", messages.clone(), true, "{not json").await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(50109)));
    let (status, body) = raw("POST", messages.clone(), true, "{}").await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(50006)));
    let (status, body) = raw("POST", messages.clone(), false, r#"{"content":"x"}"#).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"message": "401: Unauthorized", "code": 0}));
    let (status, body) = raw(
        "POST",
        "/api/v10/channels/abc/messages".into(),
        true,
        r#"{"content":"x"}"#,
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(50035)));
    let (status, body) = raw(
        "POST",
        "/api/v10/interactions/1/x/callback".into(),
        false,
        r#"{"type":6}"#,
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(10062)));
    let (status, body) = raw("GET", "/somewhere".into(), true, "").await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"message": "404: Not Found", "code": 0}));
    let log = sim.rest_log();
    assert_eq!(log.len(), 6);
    assert_eq!(log[0].body, Value::String("{not json".into()));
}

/// `POST /rate-limit` makes the next calls to a route answer 429 exactly as Discord does:
/// the body twilight-http parses as a rate-limit error, and the headers its rate limiter
/// reads (`X-RateLimit-Scope: user` with bucket, limit, remaining and reset-after) plus
/// `Retry-After` in whole seconds. The call after the limit is served.
#[tokio::test]
async fn a_rate_limit_answers_429_the_way_discord_does() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let (status, _) = call(
        &sim.control_url(),
        "POST",
        "/rate-limit",
        Some(json!({"route": "get_current_user", "count": 1, "retry_after_ms": 1500})),
    )
    .await;
    assert_eq!(status, 200);
    let rest = sim.rest_url();
    let addr = rest.trim_start_matches("http://");
    let get = |addr: String, token: String| async move {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!(
            "GET /api/v10/users/@me HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bot {token}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        (status, headers, body.to_owned())
    };
    let (status, headers, body) = get(addr.to_owned(), cfg.bot_token.clone()).await;
    assert_eq!(status, 429);
    let header = |name: &str| {
        headers.iter().find(|(k, _)| k == name).map_or_else(
            || panic!("no {name} header in {headers:?}"),
            |(_, v)| v.as_str(),
        )
    };
    assert_eq!(header("retry-after"), "2");
    assert_eq!(header("x-ratelimit-scope"), "user");
    assert_eq!(header("x-ratelimit-remaining"), "0");
    assert_eq!(header("x-ratelimit-limit"), "5");
    assert_eq!(header("x-ratelimit-reset-after"), "1.500");
    assert!(!header("x-ratelimit-bucket").is_empty());
    let reset: f64 = header("x-ratelimit-reset").parse().unwrap();
    assert!(reset > 1.0e9, "a Unix time in seconds: {reset}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false})
    );
    let parsed: twilight_http::api_error::ApiError = serde_json::from_value(body).unwrap();
    assert!(
        matches!(parsed, twilight_http::api_error::ApiError::Ratelimited(_)),
        "{parsed:?}"
    );

    let (status, _, _) = get(addr.to_owned(), cfg.bot_token.clone()).await;
    assert_eq!(status, 200, "the limit covered one call");
    let log = sim.rest_log();
    assert_eq!(log.iter().map(|c| c.status).collect::<Vec<_>>(), [429, 200]);
}
