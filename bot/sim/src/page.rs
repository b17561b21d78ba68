//! The channel as a web page: `GET /` of the control address shows the simulated
//! approval channel as a phone shows Discord (messages, embeds, text displays, buttons
//! in their colours, modals), kept live by an event stream (`GET /events`), with
//! buttons that press as a person picked on the page. It is what `keygated demo` points
//! a new user at, and what a developer testing agents offline watches.
//!
//! The page is plain HTML, CSS and JavaScript compiled into the binary (`page/`): no
//! build step, nothing fetched from elsewhere, so it works offline. Its script builds
//! the DOM with `textContent` only, and every answer here carries a
//! Content-Security-Policy that allows no inline script and no other origin, so a
//! reason or name holding markup is shown as text and can run nothing.

mod events;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::state::Shared;

pub(crate) use events::stream as event_stream;

/// What the control server answers with: a whole body, or the page's event stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The page may load its own script, style and event stream, and nothing else: no
/// inline script or style, no other origin, no framing, no form posts.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

const INDEX: &str = include_str!("page/index.html");
const CSS: &str = include_str!("page/page.css");
const JS: &str = include_str!("page/page.js");

/// A person the page can press buttons as (the demo's approver, an outsider, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPerson {
    pub user_id: u64,
    /// Shown on the page and sent as the presser's username.
    pub name: String,
    /// Their role ids in the guild.
    pub roles: Vec<u64>,
}

impl SimPerson {
    /// `name` with user id `user_id` and no roles.
    pub fn new(user_id: u64, name: impl Into<String>) -> Self {
        Self {
            user_id,
            name: name.into(),
            roles: Vec::new(),
        }
    }

    /// With these role ids.
    #[must_use]
    pub fn roles(mut self, roles: impl IntoIterator<Item = u64>) -> Self {
        self.roles = roles.into_iter().collect();
        self
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "user_id": self.user_id.to_string(),
            "name": self.name,
            "roles": self.roles.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }
}

/// Headers every answer of the control address carries: nothing is sniffed into
/// another type, framed, cached or told where it came from.
pub(crate) fn harden<B>(resp: &mut Response<B>) {
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn asset(content_type: &'static str, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The page's routes: `/` (also `/index.html`), `/page.css`, `/page.js`, `/events`.
/// `None` for any other request, which the control API answers.
pub(crate) fn route(
    shared: &std::sync::Arc<Shared>,
    method: &Method,
    path: &str,
) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let resp = match path {
        "/" | "/index.html" => asset("text/html; charset=utf-8", INDEX),
        "/page.css" => asset("text/css; charset=utf-8", CSS),
        "/page.js" => asset("text/javascript; charset=utf-8", JS),
        "/events" => {
            let mut resp = Response::new(event_stream(std::sync::Arc::clone(shared)));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
            resp
        }
        "/favicon.ico" => {
            let mut resp = Response::new(Full::new(Bytes::new()).boxed_unsync());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        _ => return None,
    };
    Some(resp)
}
