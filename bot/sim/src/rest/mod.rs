//! The REST API: Discord's routes under `/api/v10/` over plain HTTP/1.1 on loopback,
//! answering with Discord's JSON and Discord's errors. Bot routes check
//! `Authorization: Bot <token>`; interaction callbacks and webhooks, like Discord's, need
//! only the interaction token. Every call, known route or not, is logged with its body
//! so tests can check what the bot told Discord (and what it never did).

mod channels;
mod commands;
mod identity;
mod webhooks;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::RestCall;
use super::payloads::ApiError;
use super::state::Shared;

/// Discord refuses request bodies over 25 MiB (attachments included).
const MAX_BODY: usize = 25 * 1024 * 1024;

/// A route's answer: a status and a JSON body (`None` for 204), or a Discord error.
pub(crate) type Reply = Result<(u16, Option<Value>), ApiError>;

/// Serve HTTP until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    serve_with(listener, shared, |shared, req| async move {
        handle(shared, req).await
    })
    .await;
}

/// The accept loop shared by the REST and control servers; `B` is the body type their
/// answers have (the control server's can stream, for the page's event stream).
pub(crate) async fn serve_with<F, Fut, B>(listener: TcpListener, shared: Arc<Shared>, handler: F)
where
    F: Fn(Arc<Shared>, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let handler = handler.clone();
                    conns.spawn(async move {
                        let service = service_fn(move |req| {
                            let fut = handler(Arc::clone(&shared), req);
                            async move { Ok::<_, Infallible>(fut.await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(e) => {
                    tracing::warn!("discord simulator: http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// A JSON response (or an empty 204).
pub(crate) fn respond(status: u16, body: Option<&Value>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(
        body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
    ));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if body.is_some() {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    resp
}

/// A request's body: JSON if it parses, the text otherwise, `Null` if empty.
pub(crate) fn body_value(raw: &[u8]) -> Value {
    if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let received_at = Instant::now();
    let (parts, body) = req.into_parts();
    let Ok(collected) = Limited::new(body, MAX_BODY).collect().await else {
        let e = ApiError::new(413, "Request entity too large", 40005);
        return respond(e.status, Some(&e.body));
    };
    let raw = collected.to_bytes();
    let expected = format!("Bot {}", shared.settings.token);
    let authorized = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    let path = parts.uri.path();
    let query = parts.uri.query();
    let (route, reply) = match path.strip_prefix("/api/v10/") {
        Some(rest) => {
            let req = Req {
                shared: &shared,
                method: &parts.method,
                segs: rest.split('/').collect(),
                query,
                body: &raw,
                authorized,
            };
            route(&req)
        }
        None => (None, Err(ApiError::no_route())),
    };
    let (status, out, headers) = match reply {
        Ok((status, out)) => (status, out, Vec::new()),
        Err(e) => (e.status, Some(e.body), e.headers),
    };
    if route.is_none() {
        tracing::warn!(method = %parts.method, path, "discord simulator: no such route");
    }
    shared.update(|st| {
        st.rest_log.push(RestCall {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| path.to_owned(), ToString::to_string),
            status,
            body: body_value(&raw),
            raw_body: String::from_utf8_lossy(&raw).into_owned(),
            route,
            authorized,
            at: SystemTime::now(),
            received_at,
        });
    });
    let mut resp = respond(status, out.as_ref());
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

/// One request, taken apart.
pub(crate) struct Req<'a> {
    pub shared: &'a Shared,
    pub method: &'a Method,
    /// The path after `/api/v10/`, split on `/`.
    pub segs: Vec<&'a str>,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    pub authorized: bool,
}

impl Req<'_> {
    /// Bot routes need the bot token.
    pub(crate) fn need_auth(&self) -> Result<(), ApiError> {
        if self.authorized {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
        }
    }

    /// The body as JSON (`{}` when empty).
    pub(crate) fn json(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_slice(self.body).map_err(|_| ApiError::invalid_json())
    }

    /// A query parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A snowflake in the path.
pub(crate) fn snowflake(seg: &str, field: &str) -> Result<u64, ApiError> {
    seg.parse().map_err(|_| {
        ApiError::invalid_form(
            field,
            "NUMBER_TYPE_COERCE",
            &format!("Value \"{seg}\" is not snowflake."),
        )
    })
}

/// A known route: its name goes in the log, and a rate limit set on it answers 429
/// before the route runs (so a refused post creates nothing, as on Discord).
fn guarded(
    r: &Req<'_>,
    name: &'static str,
    run: impl FnOnce() -> Reply,
) -> (Option<&'static str>, Reply) {
    let limited = r.shared.update_if(|st| {
        let wait = st.take_rate_limit(name);
        let taken = wait.is_some();
        (wait, taken)
    });
    let reply = match limited {
        Some(wait) => Err(ApiError::rate_limited(
            &hex::encode(name),
            wait,
            SystemTime::now(),
        )),
        None => run(),
    };
    (Some(name), reply)
}

/// Find the route; its name goes in the log (`None`: no such route).
fn route(r: &Req<'_>) -> (Option<&'static str>, Reply) {
    let m = r.method;
    let named = |name: &'static str, run: &dyn Fn() -> Reply| guarded(r, name, run);
    match r.segs.as_slice() {
        ["users", "@me"] if m == Method::GET => {
            named("get_current_user", &|| identity::current_user(r))
        }
        ["applications", "@me"] if m == Method::GET => named("get_current_application", &|| {
            identity::current_application(r)
        }),
        ["gateway"] if m == Method::GET => named("get_gateway", &|| identity::gateway(r, false)),
        ["gateway", "bot"] if m == Method::GET => {
            named("get_gateway_bot", &|| identity::gateway(r, true))
        }
        ["channels", c] if m == Method::GET => named("get_channel", &|| identity::channel(r, c)),
        ["channels", c, "messages"] if m == Method::POST => {
            named("create_message", &|| channels::create(r, c))
        }
        ["channels", c, "messages"] if m == Method::GET => {
            named("get_messages", &|| channels::list(r, c))
        }
        ["channels", c, "messages", id] if m == Method::GET => {
            named("get_message", &|| channels::get(r, c, id))
        }
        ["channels", c, "messages", id] if m == Method::PATCH => {
            named("update_message", &|| channels::edit(r, c, id))
        }
        ["channels", c, "messages", id] if m == Method::DELETE => {
            named("delete_message", &|| channels::delete(r, c, id))
        }
        ["interactions", id, token, "callback"] if m == Method::POST => {
            named("interaction_callback", &|| webhooks::callback(r, id, token))
        }
        ["webhooks", app, token] if m == Method::POST => {
            named("create_followup", &|| webhooks::followup(r, app, token))
        }
        ["webhooks", app, token, "messages", which] if m == Method::GET => {
            named("get_webhook_message", &|| {
                webhooks::message(r, app, token, which)
            })
        }
        ["webhooks", app, token, "messages", which] if m == Method::PATCH => {
            named("update_webhook_message", &|| {
                webhooks::message(r, app, token, which)
            })
        }
        ["webhooks", app, token, "messages", which] if m == Method::DELETE => {
            named("delete_webhook_message", &|| {
                webhooks::message(r, app, token, which)
            })
        }
        ["applications", app, "guilds", g, "commands"] if m == Method::PUT => {
            named("set_guild_commands", &|| commands::set(r, app, Some(g)))
        }
        ["applications", app, "guilds", g, "commands"] if m == Method::GET => {
            named("get_guild_commands", &|| commands::get(r, app, Some(g)))
        }
        ["applications", app, "commands"] if m == Method::PUT => {
            named("set_global_commands", &|| commands::set(r, app, None))
        }
        ["applications", app, "commands"] if m == Method::GET => {
            named("get_global_commands", &|| commands::get(r, app, None))
        }
        _ => (None, Err(ApiError::no_route())),
    }
}
