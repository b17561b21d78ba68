//! The HTTP control API: the simulator's buttons for people and scripts. `keygated
//! demo` and anyone testing an agent offline press buttons, run slash commands and cut
//! the connection here with curl; the JSON mirrors the in-process API on
//! [`Simulator`](super::Simulator). It listens on loopback only and has no
//! authentication: whoever can reach it can approve requests, which is the point of a
//! simulator and the reason it must never face a network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::messages::{Pings, SimMessage, id_of};
use super::modals::SimModal;
use super::rest::{respond, serve_with};
use super::state::{Settings, Shared, State};
use super::{
    Callback, CommandSpec, GuildMode, InteractionHandle, ModalSubmitSpec, PressSpec, SimError,
    gateway, interactions, page, payloads,
};

/// How long `/press` and `/command` wait for the bot unless told otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// The longest wait a caller may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Serve the control API and the page until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, rest: SocketAddr) {
    serve_with(listener, shared, move |shared, req| async move {
        let mut resp = match guard(&shared.settings, &req) {
            Err((status, why)) => error(status, why).map(BodyExt::boxed_unsync),
            Ok(()) => match page::route(&shared, req.method(), req.uri().path()) {
                Some(page) => page,
                None => handle(shared, req, rest).await.map(BodyExt::boxed_unsync),
            },
        };
        page::harden(&mut resp);
        resp
    })
    .await;
}

/// Only this address, by its own name: a request whose `Host` names another (a DNS
/// rebinding page) or whose `Origin` is another site (a page elsewhere posting to
/// `/press` in the visitor's browser) is refused, since pressing here approves
/// requests. curl and scripts send no `Origin`; the simulator's own page sends its own.
fn guard<B>(settings: &Settings, req: &Request<B>) -> Result<(), (u16, &'static str)> {
    let port = settings.control.port();
    let ours =
        |host: &str| host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}");
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    if let Some(host) = header(hyper::header::HOST)
        && !ours(&host)
    {
        return Err((
            421,
            "this is the Discord simulator's control address; it answers only to 127.0.0.1 or localhost with its port",
        ));
    }
    if let Some(origin) = header(hyper::header::ORIGIN)
        && !origin.strip_prefix("http://").is_some_and(ours)
    {
        return Err((
            403,
            "a request from another site's page is refused: the control API presses buttons",
        ));
    }
    Ok(())
}

fn error(status: u16, message: &str) -> Response<Full<Bytes>> {
    respond(status, Some(&json!({ "error": message })))
}

fn ok(body: &Value) -> Response<Full<Bytes>> {
    respond(200, Some(body))
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    rest: SocketAddr,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(raw) = Limited::new(body, 1024 * 1024)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        return error(413, "body too large");
    };
    let body: Value = if raw.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&raw) {
            Ok(v) => v,
            Err(e) => return error(400, &format!("the body is not JSON: {e}")),
        }
    };
    let path = parts.uri.path().trim_end_matches('/');
    let m = &parts.method;
    match path {
        "/status" if m == Method::GET => ok(&status(&shared, rest)),
        "/messages" if m == Method::GET => {
            let all = shared.read(|st| {
                st.messages
                    .values()
                    .map(|m| render(m, &shared.settings, st))
                    .collect::<Vec<_>>()
            });
            ok(&Value::Array(all))
        }
        "/press" if m == Method::POST => press(&shared, &body).await,
        "/modal-submit" if m == Method::POST => modal_submit(&shared, &body).await,
        "/modals" if m == Method::GET => {
            let all: Vec<Value> = shared.read(|st| st.modals.iter().map(SimModal::json).collect());
            ok(&Value::Array(all))
        }
        "/command" if m == Method::POST => command(&shared, &body).await,
        "/drop" if m == Method::POST => {
            gateway::drop_connections(&shared);
            ok(&json!({ "dropped": true }))
        }
        "/reconnect" if m == Method::POST => {
            gateway::send_reconnect(&shared);
            ok(&json!({ "sent": "RECONNECT" }))
        }
        "/invalid-session" if m == Method::POST => {
            let resumable = body
                .get("resumable")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            gateway::send_invalid_session(&shared, resumable);
            ok(&json!({ "sent": "INVALID_SESSION", "resumable": resumable }))
        }
        "/refuse-posts" if m == Method::POST => {
            let Some(n) = count(&body) else {
                return error(400, "count (a number of posts) is required");
            };
            shared.update(|st| st.refuse_posts = n);
            ok(&json!({ "refusing": n }))
        }
        "/rate-limit" if m == Method::POST => rate_limit(&shared, &body),
        "/rest-log" if m == Method::GET => {
            let log = shared.read(|st| {
                st.rest_log
                    .iter()
                    .map(|c| {
                        json!({
                            "method": c.method, "path": c.path, "status": c.status,
                            "route": c.route, "authorized": c.authorized, "body": c.body,
                            "at": crate::clock::rfc3339(c.at),
                        })
                    })
                    .collect::<Vec<_>>()
            });
            ok(&Value::Array(log))
        }
        "/commands" if m == Method::GET => ok(&Value::Array(shared.read(|st| st.commands.clone()))),
        _ => {
            if let Some(id) = path.strip_prefix("/messages/")
                && m == Method::GET
            {
                let Ok(id) = id.parse::<u64>() else {
                    return error(400, "message ids are numbers");
                };
                return match shared.read(|st| {
                    st.messages
                        .get(&id)
                        .map(|m| render(m, &shared.settings, st))
                }) {
                    Some(v) => ok(&v),
                    None => error(404, "no such message"),
                };
            }
            error(404, "no such control route; see docs/discord-simulator.md")
        }
    }
}

fn count(body: &Value) -> Option<u32> {
    body.get("count")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// `POST /rate-limit {"count", "retry_after_ms", "route"?}`: the next `count` calls (to
/// `route`, or to any route) get Discord's 429.
fn rate_limit(shared: &Shared, body: &Value) -> Response<Full<Bytes>> {
    let Some(n) = count(body) else {
        return error(400, "count (a number of calls) is required");
    };
    let Some(ms) = body.get("retry_after_ms").and_then(Value::as_u64) else {
        return error(400, "retry_after_ms (milliseconds) is required");
    };
    let route = match body.get("route") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(_) => return error(400, "route is a route name, e.g. \"create_message\""),
    };
    let retry_after = Duration::from_millis(ms).min(MAX_WAIT);
    if n > 0 {
        shared.update(|st| {
            st.rate_limits.push(crate::state::RateLimit {
                route: route.clone(),
                left: n,
                retry_after,
            });
        });
    }
    let ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
    ok(&json!({ "route": route, "count": n, "retry_after_ms": ms }))
}

fn status(shared: &Shared, rest: SocketAddr) -> Value {
    let s = &shared.settings;
    shared.read(|st| {
        json!({
            "connected": st.connected(),
            "identify_count": st.identify_count,
            "resume_count": st.resume_count,
            "heartbeat_count": st.heartbeat_count,
            "messages": st.messages.len(),
            "gateway_url": s.gateway_url,
            "rest_url": format!("http://{rest}"),
            "control_url": format!("http://{}", s.control),
            "page_url": format!("http://{}/", s.control),
            "application_id": s.application_id.to_string(),
            "guild_id": s.guild_id.to_string(),
            "channel_id": s.channel_id.to_string(),
        })
    })
}

/// A message as Discord renders it, plus what only the simulator knows under `sim`.
pub(crate) fn render(m: &SimMessage, settings: &Settings, st: &State) -> Value {
    let mut v = payloads::message(m, settings);
    let buttons: Vec<Value> = m
        .buttons()
        .into_iter()
        .map(|b| {
            json!({ "custom_id": b.custom_id, "label": b.label, "style": b.style, "disabled": b.disabled })
        })
        .collect();
    // Called with the state already locked: never lock it again here.
    let modals: Vec<Value> = st
        .modals
        .iter()
        .filter(|x| x.open && x.message_id == Some(m.id))
        .map(SimModal::json)
        .collect();
    v["sim"] = json!({
        "edited": m.edited,
        "ephemeral": m.ephemeral(),
        // The one person who sees an ephemeral message: whoever made the interaction.
        "for_user": m.ephemeral().then(|| m.interaction_id.and_then(|i| st.interactions.get(&i)))
            .flatten()
            .map(|i| i.user_id.to_string()),
        "interaction_id": m.interaction_id.map(|i| i.to_string()),
        "buttons": buttons,
        "components_v2": m.components_v2(),
        "text": m.display_text(),
        "text_displays": m.text_displays(),
        "allowed_mentions": m.allowed_mentions,
        "pings": pings_json(&m.pings),
        "notified": pings_json(&m.notified),
        "open_modals": modals,
    });
    v
}

fn pings_json(p: &Pings) -> Value {
    json!({
        "everyone": p.everyone,
        "users": p.users.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "roles": p.roles.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn callback_json(c: &Callback) -> Value {
    json!({
        "type": c.kind,
        "data": c.data,
        "ephemeral": c.ephemeral,
        "elapsed_ms": u64::try_from(c.elapsed.as_millis()).unwrap_or(u64::MAX),
    })
}

/// The fields a press and a command share: who, where, how long to wait.
struct Who {
    user_id: u64,
    username: String,
    roles: Vec<u64>,
    guild: GuildMode,
    channel_id: Option<u64>,
    bot: bool,
    wait: Duration,
}

fn who(shared: &Shared, body: &Value) -> Result<Who, String> {
    let user_id = body
        .get("user_id")
        .or_else(|| body.get("user"))
        .and_then(id_of)
        .ok_or("user_id (a snowflake) is required")?;
    let roles = match body.get("roles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|r| id_of(r).ok_or("roles must be snowflakes"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("roles must be a list of snowflakes".into()),
    };
    let guild = if body.get("dm").and_then(Value::as_bool) == Some(true) {
        GuildMode::Dm
    } else {
        match body.get("guild_id").and_then(id_of) {
            Some(g) if g != shared.settings.guild_id => GuildMode::OtherGuild(g),
            _ => GuildMode::InGuild,
        }
    };
    let wait = body
        .get("timeout_ms")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(MAX_WAIT);
    Ok(Who {
        user_id,
        username: body
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        roles,
        guild,
        channel_id: body.get("channel_id").and_then(id_of),
        bot: body.get("bot").and_then(Value::as_bool).unwrap_or(false),
        wait,
    })
}

fn sim_error(e: &SimError) -> Response<Full<Bytes>> {
    let status = match e {
        SimError::UnknownMessage(_) => 404,
        SimError::NoSession => 409,
        _ => 400,
    };
    error(status, &e.to_string())
}

/// Wait for the bot's answer and report it with the messages it touched.
async fn answer(
    shared: &Shared,
    handle: &InteractionHandle,
    wait: Duration,
) -> Response<Full<Bytes>> {
    let callback = handle.response(wait).await;
    let original = handle
        .original_message()
        .map(|m| shared.read(|st| render(&m, &shared.settings, st)));
    let followups: Vec<Value> = handle
        .followups()
        .iter()
        .map(|m| shared.read(|st| render(m, &shared.settings, st)))
        .collect();
    let body = json!({
        "interaction_id": handle.id().to_string(),
        "callback": callback.as_ref().map(callback_json),
        "original": original,
        "followups": followups,
        "modal": handle.modal().as_ref().map(SimModal::json),
        "submitted_modal": handle.submitted_modal().as_ref().map(SimModal::json),
    });
    if callback.is_some() {
        ok(&body)
    } else {
        let mut body = body;
        body["error"] = json!(format!(
            "the bot did not answer within {} ms (Discord would show \"This interaction failed\")",
            wait.as_millis()
        ));
        respond(504, Some(&body))
    }
}

async fn press(shared: &Arc<Shared>, body: &Value) -> Response<Full<Bytes>> {
    let who = match who(shared, body) {
        Ok(w) => w,
        Err(e) => return error(400, &e),
    };
    let Some(message_id) = body.get("message_id").and_then(id_of) else {
        return error(400, "message_id (a snowflake) is required");
    };
    let Some(custom_id) = body.get("custom_id").and_then(Value::as_str) else {
        return error(400, "custom_id is required");
    };
    let spec = PressSpec {
        message_id,
        custom_id: custom_id.to_owned(),
        user_id: who.user_id,
        username: who.username,
        roles: who.roles,
        guild: who.guild,
        channel_id: who.channel_id,
        bot: who.bot,
        forged: body.get("forged").and_then(Value::as_bool) == Some(true),
    };
    match interactions::press(shared, &spec) {
        Ok(handle) => answer(shared, &handle, who.wait).await,
        Err(e) => sim_error(&e),
    }
}

async fn command(shared: &Arc<Shared>, body: &Value) -> Response<Full<Bytes>> {
    let who = match who(shared, body) {
        Ok(w) => w,
        Err(e) => return error(400, &e),
    };
    let path: Vec<String> = match body.get("path") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => return error(400, "path is a list of names, e.g. [\"revoke\"]"),
    };
    let options: Vec<(String, String)> = match body.get("options") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect(),
        Some(_) => return error(400, "options is an object, e.g. {\"grant\": \"gnt_…\"}"),
    };
    let spec = CommandSpec {
        name: body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("keygate")
            .to_owned(),
        path,
        options,
        user_id: who.user_id,
        username: who.username,
        roles: who.roles,
        guild: who.guild,
        channel_id: who.channel_id,
        bot: who.bot,
    };
    match interactions::command(shared, &spec) {
        Ok(handle) => answer(shared, &handle, who.wait).await,
        Err(e) => sim_error(&e),
    }
}

/// `POST /modal-submit {"message_id", "user_id", "values": {key: text}, "custom_id"?,
/// "roles"?, "forged"?, "timeout_ms"?}`: submit the modal open for that user on that
/// message.
async fn modal_submit(shared: &Arc<Shared>, body: &Value) -> Response<Full<Bytes>> {
    let who = match who(shared, body) {
        Ok(w) => w,
        Err(e) => return error(400, &e),
    };
    let message_id = match body.get("message_id").or_else(|| body.get("message")) {
        None | Some(Value::Null) => None,
        Some(v) => match id_of(v) {
            Some(id) => Some(id),
            None => return error(400, "message_id is a snowflake"),
        },
    };
    let values: Vec<(String, String)> = match body.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(o)) => {
            let mut out = Vec::new();
            for (k, v) in o {
                let Some(v) = v.as_str() else {
                    return error(400, "values are strings: {\"ttl\": \"2h\"}");
                };
                out.push((k.clone(), v.to_owned()));
            }
            out
        }
        Some(_) => {
            return error(
                400,
                "values is an object: {\"<custom_id or its end>\": \"text\"}",
            );
        }
    };
    let spec = ModalSubmitSpec {
        message_id,
        custom_id: body
            .get("custom_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        values,
        user_id: who.user_id,
        username: who.username,
        roles: who.roles,
        guild: who.guild,
        channel_id: who.channel_id,
        bot: who.bot,
        forged: body.get("forged").and_then(Value::as_bool) == Some(true),
    };
    match crate::modals::submit(shared, &spec) {
        Ok(handle) => answer(shared, &handle, who.wait).await,
        Err(e) => sim_error(&e),
    }
}
