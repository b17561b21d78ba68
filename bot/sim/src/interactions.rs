//! Making interactions happen: a person pressing a button on a stored message, or
//! running a registered slash command. Each becomes an INTERACTION_CREATE in the shape
//! Discord sends, and a record the REST side checks the bot's callback against.
//!
//! Only what Discord's client would allow can be dispatched: the message and the button
//! must exist and the button must be enabled; the command must be registered where it
//! is run and its options must fit the registered schema. Anything else is an error
//! for the test, not a strange payload for the bot.

use std::sync::Arc;

use serde_json::{Value, json};

use super::gateway;
use super::payloads::{self, Actor, InteractionParts, Place};
use super::snowflake::random_hex;
use super::state::{InteractionRecord, Shared, State};
use super::{CommandSpec, GuildMode, InteractionHandle, PressSpec, SimError};

pub(crate) fn place(
    shared: &Shared,
    mode: GuildMode,
    channel_id: Option<u64>,
    default_channel: u64,
) -> Place {
    match mode {
        GuildMode::InGuild => Place::Guild {
            guild_id: shared.settings.guild_id,
            channel_id: channel_id.unwrap_or(default_channel),
        },
        GuildMode::OtherGuild(guild_id) => Place::Guild {
            guild_id,
            channel_id: channel_id.unwrap_or(default_channel),
        },
        GuildMode::Dm => Place::Dm {
            channel_id: channel_id.unwrap_or_else(|| shared.ids.next()),
        },
    }
}

pub(crate) fn actor(user_id: u64, username: &str, roles: &[u64], bot: bool) -> Actor {
    Actor {
        user_id,
        username: if username.is_empty() {
            format!("user{user_id}")
        } else {
            username.to_owned()
        },
        roles: roles.to_vec(),
        bot,
    }
}

/// Record the interaction and send it to the current session.
pub(crate) fn send(
    st: &mut State,
    parts: &InteractionParts,
    d: &Value,
    message_id: Option<u64>,
) -> Result<(), SimError> {
    st.interactions.insert(
        parts.id,
        InteractionRecord {
            id: parts.id,
            token: parts.token.clone(),
            kind: parts.kind,
            user_id: parts.actor.user_id,
            message_id,
            channel_id: parts.place.channel_id(),
            delivered_at: None,
            callback: None,
            original: None,
            followups: Vec::new(),
            submitted: None,
        },
    );
    if let Err(e) = gateway::dispatch(st, "INTERACTION_CREATE", d, Some(parts.id)) {
        st.interactions.remove(&parts.id);
        return Err(e);
    }
    Ok(())
}

/// Press the button `spec.custom_id` on message `spec.message_id`.
pub(crate) fn press(shared: &Arc<Shared>, spec: &PressSpec) -> Result<InteractionHandle, SimError> {
    let s = &shared.settings;
    let id = shared.ids.next();
    let token = random_hex(32);
    shared.update(|st| {
        if st.current_session.is_none() {
            return Err(SimError::NoSession);
        }
        let msg = st
            .messages
            .get(&spec.message_id)
            .ok_or(SimError::UnknownMessage(spec.message_id))?;
        let forged = json!({"type": 2, "custom_id": spec.custom_id});
        let component = match msg.component(&spec.custom_id) {
            Some(c) => c,
            None if spec.forged => forged,
            None => {
                return Err(SimError::UnknownComponent {
                    message_id: spec.message_id,
                    custom_id: spec.custom_id.clone(),
                });
            }
        };
        if component.get("disabled").and_then(Value::as_bool) == Some(true) {
            return Err(SimError::ComponentDisabled {
                message_id: spec.message_id,
                custom_id: spec.custom_id.clone(),
            });
        }
        let mut data = json!({
            "custom_id": spec.custom_id,
            "component_type": component.get("type").cloned().unwrap_or(json!(2)),
        });
        if component.get("type").and_then(Value::as_u64) != Some(2) {
            data["values"] = json!([]);
        }
        let parts = InteractionParts {
            id,
            token: token.clone(),
            kind: 3,
            data,
            actor: actor(spec.user_id, &spec.username, &spec.roles, spec.bot),
            place: place(shared, spec.guild, spec.channel_id, msg.channel_id),
            message: Some(payloads::message(msg, s)),
        };
        let d = payloads::interaction(s, &parts);
        send(st, &parts, &d, Some(spec.message_id))
    })?;
    Ok(InteractionHandle::new(Arc::clone(shared), id, token))
}

/// Run the slash command `spec.name` with the subcommand path and options given.
pub(crate) fn command(
    shared: &Arc<Shared>,
    spec: &CommandSpec,
) -> Result<InteractionHandle, SimError> {
    let s = &shared.settings;
    let id = shared.ids.next();
    let token = random_hex(32);
    let place = place(shared, spec.guild, spec.channel_id, s.channel_id);
    let guild_id = match place {
        Place::Guild { guild_id, .. } => Some(guild_id),
        Place::Dm { .. } => None,
    };
    shared.update(|st| {
        if st.current_session.is_none() {
            return Err(SimError::NoSession);
        }
        // Guild commands exist only in their guild; global ones everywhere.
        let registered = st
            .commands
            .iter()
            .find(|c| {
                c.get("name").and_then(Value::as_str) == Some(spec.name.as_str())
                    && match c.get("guild_id").and_then(super::messages::id_of) {
                        Some(g) => Some(g) == guild_id,
                        None => true,
                    }
            })
            .ok_or_else(|| SimError::UnknownCommand(spec.name.clone()))?;
        let schema = registered
            .get("options")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let options = build_options(&spec.name, &spec.path, &spec.options, &schema)?;
        let mut data = json!({
            "id": registered.get("id").cloned().unwrap_or(Value::Null),
            "name": spec.name,
            "type": registered.get("type").cloned().unwrap_or(json!(1)),
            "options": options,
        });
        if let Some(g) = registered.get("guild_id") {
            data["guild_id"] = g.clone();
        }
        let parts = InteractionParts {
            id,
            token: token.clone(),
            kind: 2,
            data,
            actor: actor(spec.user_id, &spec.username, &spec.roles, spec.bot),
            place,
            message: None,
        };
        let d = payloads::interaction(s, &parts);
        send(st, &parts, &d, None)
    })?;
    Ok(InteractionHandle::new(Arc::clone(shared), id, token))
}

/// The `options` tree Discord sends for `path` (subcommand group / subcommand) and
/// `values`, typed by the registered schema.
fn build_options(
    command: &str,
    path: &[String],
    values: &[(String, String)],
    schema: &[Value],
) -> Result<Vec<Value>, SimError> {
    let find = |name: &str| {
        schema
            .iter()
            .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
    };
    if let Some((first, rest)) = path.split_first() {
        let sub = find(first)
            .filter(|o| matches!(o.get("type").and_then(Value::as_u64), Some(1 | 2)))
            .ok_or_else(|| SimError::UnknownOption {
                command: command.to_owned(),
                option: first.clone(),
            })?;
        let inner_schema = sub
            .get("options")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let inner = build_options(command, rest, values, &inner_schema)?;
        return Ok(vec![json!({
            "name": first,
            "type": sub.get("type").cloned().unwrap_or(json!(1)),
            "options": inner,
        })]);
    }
    let mut out = Vec::new();
    for (name, raw) in values {
        let opt = find(name).ok_or_else(|| SimError::UnknownOption {
            command: command.to_owned(),
            option: name.clone(),
        })?;
        let kind = opt.get("type").and_then(Value::as_u64).unwrap_or(3);
        let bad = || SimError::BadOptionValue {
            option: name.clone(),
            value: raw.clone(),
        };
        let value = match kind {
            4 => json!(raw.parse::<i64>().map_err(|_| bad())?),
            5 => json!(raw.parse::<bool>().map_err(|_| bad())?),
            10 => json!(raw.parse::<f64>().map_err(|_| bad())?),
            // user, channel, role, mentionable: snowflakes as strings
            6..=9 => {
                raw.parse::<u64>().map_err(|_| bad())?;
                json!(raw)
            }
            1 | 2 => return Err(bad()),
            _ => json!(raw),
        };
        out.push(json!({ "name": name, "type": kind, "value": value }));
    }
    for opt in schema {
        let required = opt.get("required").and_then(Value::as_bool) == Some(true);
        let name = opt.get("name").and_then(Value::as_str).unwrap_or_default();
        if required && !values.iter().any(|(n, _)| n == name) {
            return Err(SimError::MissingOption(name.to_owned()));
        }
    }
    Ok(out)
}
