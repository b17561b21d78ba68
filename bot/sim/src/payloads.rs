//! Discord's JSON, built by hand in the shapes Discord sends (ids as strings, timestamps
//! with `+00:00`, the fields twilight-model insists on), so a real client cannot tell
//! the simulator from Discord. Tests deserialize every builder's output with
//! twilight-model to keep these honest.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::clock::rfc3339;
use super::messages::SimMessage;
use super::state::Settings;

/// Bytes a bot may attach to an interaction reply (8 MiB, an unboosted guild's limit).
const ATTACHMENT_SIZE_LIMIT: u64 = 8_388_608;
/// View, send, embed, attach, history, external emoji, reactions, application
/// commands, threads: what a freshly invited bot usually holds.
const BOT_PERMISSIONS: u64 = (1 << 6)
    | (1 << 10)
    | (1 << 11)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 18)
    | (1 << 31)
    | (1 << 38);
/// What an ordinary member may do in the channel.
const MEMBER_PERMISSIONS: u64 =
    (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 31);
/// When every simulated member joined.
const JOINED_AT: &str = "2024-01-01T00:00:00.000000+00:00";

/// An id the way Discord writes it.
pub(crate) fn id(v: u64) -> Value {
    Value::String(v.to_string())
}

/// An error response: HTTP status plus Discord's `{"message", "code"}` body, and the
/// headers that go with it (a 429's rate-limit headers).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(status: u16, message: &str, code: u64) -> Self {
        Self {
            status,
            body: json!({ "message": message, "code": code }),
            headers: Vec::new(),
        }
    }

    /// 429 as Discord sends it for a per-route ("user") limit: the body says how long
    /// to wait in seconds (a float); the headers say it again the ways clients read it
    /// (`Retry-After` in whole seconds, rounded up; `X-RateLimit-Reset-After` with
    /// milliseconds, which twilight-http uses to hold the bucket) and name the bucket.
    pub(crate) fn rate_limited(bucket: &str, retry_after: Duration, now: SystemTime) -> Self {
        // Rounded up to the millisecond, so no header says "sooner" than was asked.
        let ms = u64::try_from(retry_after.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        let secs = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
        let reset = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let reset = u64::try_from(reset).unwrap_or(u64::MAX).saturating_add(ms);
        Self {
            status: 429,
            body: json!({
                "message": "You are being rate limited.",
                "retry_after": retry_after.as_secs_f64(),
                "global": false,
            }),
            headers: vec![
                ("retry-after", ms.div_ceil(1000).to_string()),
                ("x-ratelimit-limit", "5".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", secs(reset)),
                ("x-ratelimit-reset-after", secs(ms)),
                ("x-ratelimit-bucket", bucket.to_owned()),
                ("x-ratelimit-scope", "user".into()),
            ],
        }
    }

    /// 400 Invalid Form Body, with Discord's nested `errors` naming the field
    /// (`path` is dotted: `components.0.custom_id`).
    pub(crate) fn invalid_form(path: &str, code: &str, message: &str) -> Self {
        let mut errors = json!({ "_errors": [{ "code": code, "message": message }] });
        for part in path.rsplit('.').filter(|p| !p.is_empty()) {
            errors = json!({ part: errors });
        }
        Self {
            status: 400,
            body: json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors }),
            headers: Vec::new(),
        }
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(401, "401: Unauthorized", 0)
    }
    pub(crate) fn no_route() -> Self {
        Self::new(404, "404: Not Found", 0)
    }
    pub(crate) fn invalid_json() -> Self {
        Self::new(400, "The request body contains invalid JSON.", 50109)
    }
    pub(crate) fn unknown_channel() -> Self {
        Self::new(404, "Unknown Channel", 10003)
    }
    pub(crate) fn unknown_message() -> Self {
        Self::new(404, "Unknown Message", 10008)
    }
    pub(crate) fn unknown_webhook() -> Self {
        Self::new(404, "Unknown Webhook", 10015)
    }
    pub(crate) fn unknown_interaction() -> Self {
        Self::new(404, "Unknown interaction", 10062)
    }
    pub(crate) fn already_acknowledged() -> Self {
        Self::new(400, "Interaction has already been acknowledged.", 40060)
    }
    pub(crate) fn invalid_webhook_token() -> Self {
        Self::new(401, "Invalid Webhook Token", 50027)
    }
    pub(crate) fn empty_message() -> Self {
        Self::new(400, "Cannot send an empty message", 50006)
    }
    pub(crate) fn not_author() -> Self {
        Self::new(403, "Cannot edit a message authored by another user", 50005)
    }
    pub(crate) fn missing_access() -> Self {
        Self::new(403, "Missing Access", 50001)
    }
}

/// A user object as Discord embeds it in members, messages and interactions.
pub(crate) fn user(user_id: u64, username: &str, bot: bool) -> Value {
    let mut u = json!({
        "id": id(user_id),
        "username": username,
        "global_name": if bot { Value::Null } else { Value::String(username.to_owned()) },
        "discriminator": "0",
        "avatar": null,
        "avatar_decoration_data": null,
        "banner": null,
        "accent_color": null,
        "clan": null,
        "primary_guild": null,
        "collectibles": null,
        "public_flags": 0,
        "flags": 0,
    });
    if bot {
        u["bot"] = Value::Bool(true);
    }
    u
}

/// The bot user as `GET /users/@me` and READY describe it.
pub(crate) fn current_user(s: &Settings) -> Value {
    let mut u = user(s.bot_user_id(), BOT_USERNAME, true);
    if let Some(o) = u.as_object_mut() {
        o.insert("verified".into(), Value::Bool(true));
        o.insert("mfa_enabled".into(), Value::Bool(false));
        o.insert("email".into(), Value::Null);
        o.insert("locale".into(), Value::String("en-US".into()));
        o.insert("premium_type".into(), json!(0));
    }
    u
}

/// The bot user's name everywhere.
pub(crate) const BOT_USERNAME: &str = "keygate-sim-bot";

/// `GET /applications/@me`.
pub(crate) fn application(s: &Settings) -> Value {
    json!({
        "id": id(s.application_id),
        "name": "keygate-sim",
        "icon": null,
        "description": "A simulated Discord application (keygate's Discord simulator).",
        "summary": "",
        "type": null,
        "is_monetized": false,
        "bot_public": false,
        "bot_require_code_grant": false,
        "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
        "flags": 0,
        "hook": true,
        "team": null,
        "owner": user(1, "keygate-sim-owner", false),
        "bot": user(s.bot_user_id(), BOT_USERNAME, true),
        "redirect_uris": [],
        "rpc_origins": [],
        "tags": [],
        "interactions_endpoint_url": null,
        "approximate_guild_count": 1,
        "integration_types_config": { "0": {} },
    })
}

/// `GET /gateway/bot`, for clients that ask where to connect.
pub(crate) fn gateway_bot(s: &Settings) -> Value {
    json!({
        "url": s.gateway_url,
        "shards": 1,
        "session_start_limit": { "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1 },
    })
}

/// The configured text channel (`GET /channels/{id}` and interactions' `channel`).
pub(crate) fn guild_channel(channel_id: u64, guild_id: u64) -> Value {
    json!({
        "id": id(channel_id),
        "type": 0,
        "guild_id": id(guild_id),
        "name": "keygate",
        "position": 0,
        "parent_id": null,
        "topic": null,
        "nsfw": false,
        "rate_limit_per_user": 0,
        "last_message_id": null,
        "flags": 0,
        "permission_overwrites": [],
        "permissions": BOT_PERMISSIONS.to_string(),
    })
}

/// A DM channel between the bot and `recipient`.
pub(crate) fn dm_channel(channel_id: u64, recipient: &Value) -> Value {
    json!({
        "id": id(channel_id),
        "type": 1,
        "flags": 0,
        "last_message_id": null,
        "recipients": [recipient],
    })
}

/// A stored message as Discord renders it.
pub(crate) fn message(m: &SimMessage, s: &Settings) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), id(m.id));
    o.insert("type".into(), json!(m.kind));
    o.insert("content".into(), Value::String(m.content.clone()));
    o.insert("channel_id".into(), id(m.channel_id));
    o.insert("author".into(), user(s.bot_user_id(), BOT_USERNAME, true));
    o.insert("attachments".into(), json!([]));
    o.insert("embeds".into(), Value::Array(m.embeds.clone()));
    o.insert(
        "mentions".into(),
        Value::Array(
            m.pings
                .users
                .iter()
                .map(|u| user(*u, &format!("user{u}"), false))
                .collect(),
        ),
    );
    o.insert(
        "mention_roles".into(),
        Value::Array(m.pings.roles.iter().map(|r| id(*r)).collect()),
    );
    o.insert("mention_everyone".into(), Value::Bool(m.pings.everyone));
    o.insert("pinned".into(), Value::Bool(false));
    o.insert("tts".into(), Value::Bool(false));
    o.insert("timestamp".into(), Value::String(rfc3339(m.created_at)));
    o.insert(
        "edited_timestamp".into(),
        m.edited_at
            .map_or(Value::Null, |t| Value::String(rfc3339(t))),
    );
    o.insert("flags".into(), json!(m.flags));
    o.insert("components".into(), Value::Array(m.components.clone()));
    if m.webhook {
        o.insert("webhook_id".into(), id(s.application_id));
        o.insert("application_id".into(), id(s.application_id));
    }
    Value::Object(o)
}

/// Who did something: the user behind a press or a command.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub user_id: u64,
    pub username: String,
    pub roles: Vec<u64>,
    pub bot: bool,
}

/// Where it happened.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    Guild { guild_id: u64, channel_id: u64 },
    Dm { channel_id: u64 },
}

impl Place {
    pub(crate) fn channel_id(self) -> u64 {
        match self {
            Self::Guild { channel_id, .. } | Self::Dm { channel_id } => channel_id,
        }
    }
}

/// A guild member as interactions carry it.
pub(crate) fn member(a: &Actor) -> Value {
    json!({
        "user": user(a.user_id, &a.username, a.bot),
        "roles": a.roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
        "nick": null,
        "avatar": null,
        "banner": null,
        "premium_since": null,
        "joined_at": JOINED_AT,
        "communication_disabled_until": null,
        "unusual_dm_activity_until": null,
        "pending": false,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "permissions": MEMBER_PERMISSIONS.to_string(),
    })
}

/// The parts of an interaction that differ between presses and commands.
#[derive(Debug, Clone)]
pub(crate) struct InteractionParts {
    pub id: u64,
    pub token: String,
    /// 2 application command, 3 message component.
    pub kind: u8,
    pub data: Value,
    pub actor: Actor,
    pub place: Place,
    /// The message a component belongs to, rendered.
    pub message: Option<Value>,
}

/// An INTERACTION_CREATE's `d`, for a guild (member) or a DM (user).
pub(crate) fn interaction(s: &Settings, p: &InteractionParts) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), id(p.id));
    o.insert("application_id".into(), id(s.application_id));
    o.insert("type".into(), json!(p.kind));
    o.insert("data".into(), p.data.clone());
    o.insert("token".into(), Value::String(p.token.clone()));
    o.insert("version".into(), json!(1));
    o.insert(
        "app_permissions".into(),
        Value::String(BOT_PERMISSIONS.to_string()),
    );
    o.insert("locale".into(), Value::String("en-US".into()));
    o.insert("entitlements".into(), json!([]));
    o.insert("entitlement_sku_ids".into(), json!([]));
    o.insert("attachment_size_limit".into(), json!(ATTACHMENT_SIZE_LIMIT));
    o.insert("channel_id".into(), id(p.place.channel_id()));
    match p.place {
        Place::Guild {
            guild_id,
            channel_id,
        } => {
            o.insert("guild_id".into(), id(guild_id));
            o.insert("guild_locale".into(), Value::String("en-US".into()));
            o.insert(
                "guild".into(),
                json!({ "id": id(guild_id), "locale": "en-US", "features": [] }),
            );
            o.insert("channel".into(), guild_channel(channel_id, guild_id));
            o.insert("member".into(), member(&p.actor));
            o.insert("context".into(), json!(0));
            o.insert(
                "authorizing_integration_owners".into(),
                json!({ "0": id(guild_id) }),
            );
        }
        Place::Dm { channel_id } => {
            let u = user(p.actor.user_id, &p.actor.username, p.actor.bot);
            o.insert("channel".into(), dm_channel(channel_id, &u));
            o.insert("user".into(), u);
            o.insert("context".into(), json!(1));
            // A guild-installed app used in the bot's DM: Discord sends "0".
            o.insert("authorizing_integration_owners".into(), json!({ "0": "0" }));
        }
    }
    if let Some(m) = &p.message {
        o.insert("message".into(), m.clone());
    }
    Value::Object(o)
}

/// A registered command as Discord returns it, from what the bot sent.
pub(crate) fn command(
    s: &Settings,
    sent: &Map<String, Value>,
    command_id: u64,
    version: u64,
    guild_id: Option<u64>,
) -> Value {
    let mut o = sent.clone();
    o.insert("id".into(), id(command_id));
    o.insert("application_id".into(), id(s.application_id));
    o.insert("version".into(), id(version));
    o.entry("type").or_insert(json!(1));
    o.entry("description")
        .or_insert(Value::String(String::new()));
    o.entry("default_member_permissions").or_insert(Value::Null);
    o.entry("nsfw").or_insert(Value::Bool(false));
    o.entry("integration_types").or_insert(json!([0]));
    o.entry("contexts").or_insert(Value::Null);
    match guild_id {
        Some(g) => {
            o.insert("guild_id".into(), id(g));
        }
        None => {
            o.remove("guild_id");
        }
    }
    Value::Object(o)
}

/// READY's `d`.
pub(crate) fn ready(s: &Settings, session_id: &str, shard: Option<&Value>) -> Value {
    let mut d = json!({
        "v": 10,
        "user": current_user(s),
        "guilds": [{ "id": id(s.guild_id), "unavailable": true }],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": s.gateway_url,
        "application": { "id": id(s.application_id), "flags": 0 },
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "user_settings": {},
        "auth": {},
        "geo_ordered_rtc_regions": [],
        "_trace": ["[\"keygate-sim\",{\"micros\":0}]"],
    });
    if let (Some(shard), Some(o)) = (shard, d.as_object_mut()) {
        o.insert("shard".into(), shard.clone());
    }
    d
}

/// op 10 HELLO.
pub(crate) fn hello(heartbeat_ms: u64) -> String {
    json!({
        "op": 10, "s": null, "t": null,
        "d": { "heartbeat_interval": heartbeat_ms, "_trace": ["[\"keygate-sim\",{\"micros\":0}]"] },
    })
    .to_string()
}

/// op 0 DISPATCH.
pub(crate) fn dispatch(name: &str, seq: u64, d: &Value) -> String {
    json!({ "op": 0, "t": name, "s": seq, "d": d }).to_string()
}

/// op 11 HEARTBEAT_ACK.
pub(crate) fn heartbeat_ack() -> String {
    json!({ "op": 11, "s": null, "t": null, "d": null }).to_string()
}

/// op 7 RECONNECT.
pub(crate) fn reconnect() -> String {
    json!({ "op": 7, "s": null, "t": null, "d": null }).to_string()
}

/// op 9 INVALID_SESSION.
pub(crate) fn invalid_session(resumable: bool) -> String {
    json!({ "op": 9, "s": null, "t": null, "d": resumable }).to_string()
}
