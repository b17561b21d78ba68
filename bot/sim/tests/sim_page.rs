//! The channel as a web page (`GET /` of the control address): its files served with
//! the right types and a Content-Security-Policy that allows no inline script, its
//! event stream sending the channel live (markup in a message carried as text), and
//! pages on other sites kept from pressing. The page in a real browser is tested in
//! `tests/tests/browser.rs`.
// Helpers outside #[test] fns fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::sync::Arc;

use keygate_discord_sim::{CSP, SimConfig, SimPerson, Simulator};
use serde_json::Value;
use sim_support::{Bot, WAIT, client, start};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use twilight_http::Client;
use twilight_model::application::interaction::InteractionData;
use twilight_model::channel::message::MessageFlags;
use twilight_model::channel::message::component::{ActionRow, Button, ButtonStyle, Component};
use twilight_model::http::interaction::{
    InteractionResponse, InteractionResponseData, InteractionResponseType,
};
use twilight_model::id::Id;

const REASON: &str = "<script>alert('pwned')</script><img src=x onerror=alert(1)> & \"quotes\"";

/// A GET with `Connection: close` and extra header lines; (status, headers, body).
async fn get(base: &str, path: &str, extra: &str) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A POST of a JSON body with `host` and extra header lines; the status.
async fn post(base: &str, path: &str, host: &str, extra: &str, body: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out.split(' ').nth(1).unwrap().parse().unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

/// An open `/events` stream, read snapshot by snapshot.
struct Events {
    stream: TcpStream,
    buf: String,
    head: String,
}

impl Events {
    async fn open(base: &str) -> Self {
        let addr = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req =
            format!("GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut e = Self {
            stream,
            buf: String::new(),
            head: String::new(),
        };
        while !e.buf.contains("\r\n\r\n") {
            e.fill().await;
        }
        let (head, rest) = e.buf.split_once("\r\n\r\n").unwrap();
        e.head = head.to_ascii_lowercase();
        e.buf = rest.to_owned();
        e
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("the event stream went quiet")
            .unwrap();
        assert!(n > 0, "the event stream ended");
        self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }

    /// The next snapshot (each event is one chunk, so its `data:` line arrives whole).
    async fn snapshot(&mut self) -> Value {
        loop {
            const START: &str = "event: snapshot\ndata: ";
            if let Some(at) = self.buf.find(START) {
                let from = at + START.len();
                if let Some(len) = self.buf[from..].find("\n\n") {
                    let v = serde_json::from_str(&self.buf[from..from + len]).unwrap();
                    self.buf.drain(..from + len);
                    return v;
                }
            }
            self.fill().await;
        }
    }

    /// Snapshots until one satisfies `want`.
    async fn until(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            let s = self.snapshot().await;
            if want(&s) {
                return s;
            }
        }
    }
}

/// Answers every press with an ephemeral reply naming the presser, as keygate's bot
/// refuses someone who is not an approver.
fn refuser(mut bot: Bot, http: Arc<Client>, app: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(i) = bot.interaction().await {
            if !matches!(i.data, Some(InteractionData::MessageComponent(_))) {
                continue;
            }
            let who = i.author_id().map_or(0, Id::get);
            let response = InteractionResponse {
                kind: InteractionResponseType::ChannelMessageWithSource,
                data: Some(InteractionResponseData {
                    content: Some(format!("You are not an approver, {who}.")),
                    flags: Some(MessageFlags::EPHEMERAL),
                    ..InteractionResponseData::default()
                }),
            };
            let _ = http
                .interaction(Id::new(app))
                .create_response(i.id, &i.token, &response)
                .await;
        }
    })
}

async fn setup() -> (Simulator, Arc<Client>, tokio::task::JoinHandle<()>) {
    let sim = start(SimConfig {
        people: vec![
            SimPerson::new(42, "approver <b>bold</b>").roles([7]),
            SimPerson::new(43, "outsider"),
        ],
        ..SimConfig::default()
    })
    .await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = Arc::new(client(&sim, &cfg.bot_token));
    let task = refuser(bot, Arc::clone(&http), cfg.application_id);
    (sim, http, task)
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_types_and_the_csp() {
    let (sim, _http, _task) = setup().await;
    let base = sim.control_url();
    assert_eq!(sim.page_url(), format!("{base}/"));
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/page.css", "text/css; charset=utf-8"),
        ("/page.js", "text/javascript; charset=utf-8"),
    ] {
        let (status, head, body) = get(&base, path, "").await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&head, "content-type"), Some(kind), "{path}: {head}");
        assert_eq!(
            header(&head, "content-security-policy"),
            Some(CSP),
            "{path}"
        );
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
        assert!(!body.is_empty());
    }
    // The policy forbids inline script and every other origin.
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(CSP.contains(part), "{part}");
    }
    assert!(!CSP.contains("unsafe"));
    let (_, _, html) = get(&base, "/", "").await;
    assert!(html.contains("<meta name=\"viewport\" content=\"width=device-width"));
    // Every script is a file of its own; no inline script, style or handler attribute,
    // and nothing from another origin (the page works offline).
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains("<script src=\"/page.js\" defer></script>"));
    for banned in [
        "<style",
        " style=",
        " onclick=",
        " onload=",
        "http://",
        "https://",
        "//cdn",
    ] {
        assert!(!html.contains(banned), "{banned} in the page");
    }
    // The script never parses data as HTML.
    let (_, _, js) = get(&base, "/page.js", "").await;
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(sink), "page.js uses {sink}");
    }
    assert!(js.contains("textContent"));
    // The control API keeps its own routes and JSON, with the same headers.
    let (status, head, body) = get(&base, "/status", "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    assert_eq!(header(&head, "content-security-policy"), Some(CSP));
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["page_url"], sim.page_url());
}

#[tokio::test]
async fn the_event_stream_sends_the_channel_live_and_markup_as_text() {
    let (sim, http, _task) = setup().await;
    let cfg = sim.config().clone();
    let mut events = Events::open(&sim.control_url()).await;
    assert!(events.head.starts_with("http/1.1 200"), "{}", events.head);
    assert_eq!(
        header(&events.head, "content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(header(&events.head, "content-security-policy"), Some(CSP));
    let first = events.snapshot().await;
    assert_eq!(first["channel_id"], cfg.channel_id.to_string());
    assert_eq!(first["messages"], Value::Array(Vec::new()));
    assert_eq!(first["people"][0]["user_id"], "42");
    assert_eq!(first["people"][0]["name"], "approver <b>bold</b>");
    assert_eq!(first["people"][0]["roles"][0], "7");
    assert_eq!(first["people"][1]["name"], "outsider");

    // A message posted now reaches the open stream, its markup as the text it is.
    let row = Component::ActionRow(ActionRow {
        id: None,
        components: vec![Component::Button(Button {
            id: None,
            custom_id: Some("kg:a:req_1".into()),
            disabled: false,
            emoji: None,
            label: Some("Approve".into()),
            style: ButtonStyle::Success,
            url: None,
            sku_id: None,
        })],
    });
    let posted = http
        .create_message(Id::new(cfg.channel_id))
        .content(&format!("Reason: {REASON}"))
        .components(&[row])
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let snap = events
        .until(|s| s["messages"].as_array().is_some_and(|m| !m.is_empty()))
        .await;
    let m = &snap["messages"][0];
    assert_eq!(m["id"], posted.id.get().to_string());
    assert_eq!(m["content"], format!("Reason: {REASON}"));
    assert_eq!(m["sim"]["buttons"][0]["label"], "Approve");
    assert_eq!(m["sim"]["buttons"][0]["style"], 3);
    assert_eq!(m["sim"]["for_user"], Value::Null);

    // The outsider presses: the bot's ephemeral refusal is marked as theirs alone.
    let body = format!(
        r#"{{"message_id": "{}", "custom_id": "kg:a:req_1", "user_id": "43"}}"#,
        posted.id
    );
    let host = sim.control_url().trim_start_matches("http://").to_owned();
    assert_eq!(
        post(&sim.control_url(), "/press", &host, "", &body).await,
        200
    );
    let snap = events
        .until(|s| s["messages"].as_array().is_some_and(|m| m.len() == 2))
        .await;
    let reply = &snap["messages"][1];
    assert_eq!(reply["sim"]["ephemeral"], true);
    assert_eq!(reply["sim"]["for_user"], "43");
    assert_eq!(reply["content"], "You are not an approver, 43.");
}

#[tokio::test]
async fn pages_on_other_sites_cannot_press() {
    let (sim, _http, _task) = setup().await;
    let base = sim.control_url();
    let host = base.trim_start_matches("http://").to_owned();
    let port = host.rsplit(':').next().unwrap().to_owned();
    let body = r#"{"message_id": "1", "custom_id": "x", "user_id": "42"}"#;
    // Another site's page posting from the visitor's browser.
    let evil = "Origin: http://evil.example\r\n";
    assert_eq!(post(&base, "/press", &host, evil, body).await, 403);
    let evil = format!("Origin: http://evil.example:{port}\r\n");
    assert_eq!(post(&base, "/press", &host, &evil, body).await, 403);
    // A DNS-rebound name for this address, reading or pressing.
    let rebound = format!("evil.example:{port}");
    assert_eq!(post(&base, "/press", &rebound, "", body).await, 421);
    let (status, _, _) = get(&base, "/messages", "").await;
    assert_eq!(status, 200);
    // The page itself (same origin), localhost, and curl (no Origin) get through to
    // the control API, which answers the unknown message.
    let own = format!("Origin: http://{host}\r\n");
    assert_eq!(post(&base, "/press", &host, &own, body).await, 404);
    let local = format!("localhost:{port}");
    let own = format!("Origin: http://{local}\r\n");
    assert_eq!(post(&base, "/press", &local, &own, body).await, 404);
    assert_eq!(post(&base, "/press", &host, "", body).await, 404);
    assert!(sim.messages().is_empty());
}
