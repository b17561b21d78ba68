//! What the bot's unit tests share: interactions as Discord sends them (built from
//! JSON, as they arrive), a REST client that points at a port nobody listens on (every
//! answer fails at once and is only logged), and a gatekeeper that remembers what it was
//! asked.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]

use std::sync::Mutex;
use std::time::Duration;

use keygate_proto::api::{GrantView, RequestView};
use keygate_proto::approval::{Approver, BoxFuture, Gatekeeper, Outcome, Refused, Verdict};
use keygate_proto::{GrantId, RequestId};
use serde_json::{Value, json};
use twilight_model::application::interaction::Interaction;
use twilight_model::id::Id;

use crate::client::Client;

pub(crate) const GUILD: u64 = 10;
pub(crate) const CHANNEL: u64 = 20;

/// A client for guild [`GUILD`], channel [`CHANNEL`], that reaches nothing.
pub(crate) fn client() -> Client {
    Client {
        http: twilight_http::Client::builder()
            .token("Bot test".into())
            .proxy("127.0.0.1:9".into(), true)
            .ratelimiter(None)
            .timeout(Duration::from_secs(2))
            .build(),
        app_id: Id::new(1),
        channel: Id::new(CHANNEL),
        guild: Some(Id::new(GUILD)),
    }
}

/// Who acts.
pub(crate) struct Who {
    pub id: u64,
    pub name: &'static str,
    pub roles: Vec<u64>,
    pub bot: bool,
}

pub(crate) fn alice() -> Who {
    Who {
        id: 5,
        name: "alice",
        roles: vec![7],
        bot: false,
    }
}

/// Where: a guild channel, or a direct message.
#[derive(Clone, Copy)]
pub(crate) enum Place {
    Guild(u64, u64),
    Dm,
}

pub(crate) const HERE: Place = Place::Guild(GUILD, CHANNEL);

fn id(v: u64) -> Value {
    Value::String(v.to_string())
}

fn user(who: &Who) -> Value {
    let mut u = json!({
        "id": id(who.id),
        "username": who.name,
        "global_name": who.name,
        "discriminator": "0",
        "avatar": null,
        "public_flags": 0,
        "flags": 0,
    });
    if who.bot {
        u["bot"] = Value::Bool(true);
    }
    u
}

/// An INTERACTION_CREATE's payload of type `kind` (2 command, 3 component, 5 modal).
pub(crate) fn interaction(kind: u8, data: Value, who: &Who, place: Place) -> Interaction {
    let mut o = json!({
        "id": id(1000),
        "application_id": id(1),
        "type": kind,
        "data": data,
        "token": "interaction-token",
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 8_388_608,
        "authorizing_integration_owners": {},
    });
    match place {
        Place::Guild(guild, channel) => {
            o["guild_id"] = id(guild);
            o["channel_id"] = id(channel);
            o["channel"] = json!({ "id": id(channel), "type": 0, "guild_id": id(guild) });
            o["member"] = json!({
                "user": user(who),
                "roles": who.roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
                "joined_at": "2024-01-01T00:00:00.000000+00:00",
                "deaf": false,
                "mute": false,
                "flags": 0,
                "pending": false,
            });
        }
        Place::Dm => {
            o["channel_id"] = id(99);
            o["channel"] = json!({ "id": id(99), "type": 1 });
            o["user"] = user(who);
        }
    }
    serde_json::from_value(o).unwrap()
}

/// A press of the button `custom_id`.
pub(crate) fn press(custom_id: &str, who: &Who, place: Place) -> Interaction {
    let data = json!({ "custom_id": custom_id, "component_type": 2 });
    interaction(3, data, who, place)
}

/// `/keygate` with `options`.
pub(crate) fn command(options: Value, who: &Who, place: Place) -> Interaction {
    let data = json!({ "id": id(77), "name": "keygate", "type": 1, "options": options });
    interaction(2, data, who, place)
}

/// A request as the daemon shows it.
pub(crate) fn request(id: &RequestId, status: &str) -> RequestView {
    serde_json::from_value(json!({
        "id": id,
        "agent": "ci-one",
        "secrets": ["github/token"],
        "reason": "deploy",
        "status": status,
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:05:00Z",
        "ttl_seconds": 600,
        "quorum": 1,
    }))
    .unwrap()
}

/// A live grant as the daemon shows it.
pub(crate) fn grant(agent: &str, secrets: &[&str], reads: u64) -> GrantView {
    serde_json::from_value(json!({
        "id": GrantId::random(),
        "agent": agent,
        "secrets": secrets,
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:10:00Z",
        "approved_by": ["@a (1)"],
        "reuse": true,
        "request": RequestId::random(),
        "reads": reads,
    }))
    .unwrap()
}

/// A gatekeeper that answers as told and remembers what it was asked.
#[derive(Default)]
pub(crate) struct Keeper {
    pub decided: Mutex<Vec<(RequestId, Verdict, Approver)>>,
    pub refused: Mutex<Vec<(String, String, String)>>,
    /// What `decide` answers (default: the request, approved).
    pub decision: Option<Refused>,
    pub grants: Vec<GrantView>,
    pub asked_grants: Mutex<Vec<Approver>>,
    pub revoked: Mutex<Vec<GrantId>>,
    /// What `revoke` answers (default: the grant, revoked).
    pub revocation: Option<Refused>,
}

impl Gatekeeper for Keeper {
    fn decide<'a>(
        &'a self,
        id: &'a RequestId,
        verdict: Verdict,
        approver: &'a Approver,
    ) -> BoxFuture<'a, Result<Outcome, Refused>> {
        self.decided
            .lock()
            .unwrap()
            .push((id.clone(), verdict, approver.clone()));
        let answer = match &self.decision {
            Some(r) => Err(r.clone()),
            None => Ok(Outcome::Decided(request(id, "approved"))),
        };
        Box::pin(async move { answer })
    }

    fn may_decide(&self, _id: &RequestId, _approver: &Approver) -> Result<(), Refused> {
        match &self.decision {
            Some(r) => Err(r.clone()),
            None => Ok(()),
        }
    }

    fn request(&self, id: &RequestId) -> Option<RequestView> {
        Some(request(id, "denied"))
    }

    fn grants_for(&self, approver: &Approver) -> Vec<GrantView> {
        self.asked_grants.lock().unwrap().push(approver.clone());
        self.grants.clone()
    }

    fn refused(&self, approver: &Approver, what: &str, why: &str) {
        self.refused
            .lock()
            .unwrap()
            .push((approver.name.clone(), what.to_owned(), why.to_owned()));
    }

    fn revoke<'a>(
        &'a self,
        id: &'a GrantId,
        _approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>> {
        self.revoked.lock().unwrap().push(id.clone());
        let answer = if let Some(r) = &self.revocation {
            Err(r.clone())
        } else {
            let mut g = grant("ci_one", &["github/token"], 3);
            g.id = id.clone();
            Ok(g)
        };
        Box::pin(async move { answer })
    }

    fn extend<'a>(
        &'a self,
        id: &'a GrantId,
        _approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>> {
        let mut g = grant("ci_one", &["github/token"], 3);
        g.id = id.clone();
        Box::pin(async move { Ok(g) })
    }
}
