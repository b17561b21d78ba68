//! Answering interactions: the callback (within Discord's 3-second window, once only)
//! and the interaction webhook that edits the original response and sends follow-ups
//! (for 15 minutes). The callback's effect is applied as Discord would: an
//! UPDATE_MESSAGE edits the message the button is on, a reply becomes a message (only
//! the presser sees an ephemeral one).

use std::time::{Instant, SystemTime};

use hyper::Method;
use serde_json::{Value, json};

use super::{Reply, Req, snowflake};
use crate::messages::{EPHEMERAL, LOADING, MessageBody, SimMessage, reply_flags};
use crate::payloads::{self, ApiError};
use crate::state::{InteractionRecord, State};
use crate::{Callback, modals};

/// A reply or follow-up message for interaction `rec`.
fn reply_message(
    id: u64,
    rec: &InteractionRecord,
    body: &MessageBody,
    extra_flags: u64,
    now: SystemTime,
) -> Result<SimMessage, ApiError> {
    let mut m = SimMessage::create(id, rec.channel_id, body, reply_flags(), now)?;
    m.flags |= extra_flags;
    m.webhook = true;
    m.interaction_id = Some(rec.id);
    // Discord's message types: 20 answers a slash command, 19 a component's reply.
    m.kind = if rec.kind == 2 { 20 } else { 19 };
    Ok(m)
}

/// `POST /interactions/{id}/{token}/callback[?with_response=true]`.
pub(super) fn callback(r: &Req<'_>, id: &str, token: &str) -> Reply {
    let with_response = r.param("with_response") == Some("true");
    let v = r.json()?;
    let kind = v.get("type").and_then(Value::as_u64).ok_or_else(|| {
        ApiError::invalid_form("type", "BASE_TYPE_REQUIRED", "This field is required")
    })?;
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let ephemeral = data
        .get("flags")
        .and_then(Value::as_u64)
        .is_some_and(|f| f & EPHEMERAL != 0);
    let now = Instant::now();
    let wall = SystemTime::now();
    let shared = r.shared;
    let s = &shared.settings;
    let new_id = shared.ids.next();
    shared.update(|st| {
        let id = id
            .parse::<u64>()
            .map_err(|_| ApiError::unknown_interaction())?;
        let rec = st
            .interactions
            .get(&id)
            .filter(|i| i.token == token)
            .cloned()
            .ok_or_else(ApiError::unknown_interaction)?;
        let delivered = rec.delivered_at.ok_or_else(ApiError::unknown_interaction)?;
        if rec.callback.is_some() {
            return Err(ApiError::already_acknowledged());
        }
        let elapsed = now.saturating_duration_since(delivered);
        if elapsed > s.interaction_window {
            return Err(ApiError::unknown_interaction());
        }
        let (original, message) = match (kind, rec.kind) {
            // CHANNEL_MESSAGE_WITH_SOURCE
            (4, _) => {
                let body = MessageBody::from_json(&data)?;
                let m = reply_message(new_id, &rec, &body, 0, wall)?;
                if m.is_empty() {
                    return Err(ApiError::empty_message());
                }
                let json = payloads::message(&m, s);
                st.messages.insert(m.id, m);
                (Some(new_id), Some(json))
            }
            // DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: a "thinking…" placeholder.
            (5, _) => {
                let flags = LOADING | if ephemeral { EPHEMERAL } else { 0 };
                let m = reply_message(new_id, &rec, &MessageBody::default(), flags, wall)?;
                let json = payloads::message(&m, s);
                st.messages.insert(m.id, m);
                (Some(new_id), Some(json))
            }
            // DEFERRED_UPDATE_MESSAGE: nothing visible yet. A modal submit may update
            // the message whose button opened the modal.
            (6, 3 | 5) if rec.message_id.is_some() => (rec.message_id, None),
            // UPDATE_MESSAGE: edit the message the component is on.
            (7, 3 | 5) if rec.message_id.is_some() => {
                let body = MessageBody::from_json(&data)?;
                let target = rec.message_id.ok_or_else(ApiError::unknown_message)?;
                let m = st
                    .messages
                    .get_mut(&target)
                    .ok_or_else(ApiError::unknown_message)?;
                let mut edited = m.clone();
                edited.edit(&body, wall)?;
                if edited.is_empty() {
                    return Err(ApiError::empty_message());
                }
                let json = payloads::message(&edited, s);
                *m = edited;
                (Some(target), Some(json))
            }
            // MODAL: only as the first answer to a press or a command (never to a
            // modal submit); the form opens for the user who pressed.
            (9, 2 | 3) => {
                let modal = modals::open(&data, &rec)?;
                for m in &mut st.modals {
                    if m.user_id == modal.user_id && m.message_id == modal.message_id {
                        m.open = false;
                    }
                }
                st.modals.push(modal);
                (None, None)
            }
            _ => {
                return Err(ApiError::invalid_form(
                    "type",
                    "INTERACTION_RESPONSE_TYPE_INVALID",
                    "Invalid interaction response type for this interaction",
                ));
            }
        };
        let kind_u8 = u8::try_from(kind).unwrap_or(u8::MAX);
        if let Some(rec) = st.interactions.get_mut(&id) {
            rec.callback = Some(Callback {
                kind: kind_u8,
                data: data.clone(),
                ephemeral,
                elapsed,
            });
            rec.original = original;
        }
        if !with_response {
            return Ok((204, None));
        }
        let mut interaction = json!({ "id": payloads::id(id), "type": rec.kind });
        if let (Some(m), Some(o)) = (&message, interaction.as_object_mut()) {
            o.insert("response_message_id".into(), m["id"].clone());
            o.insert("response_message_loading".into(), json!(kind == 5));
            o.insert("response_message_ephemeral".into(), json!(ephemeral));
        }
        let mut resource = json!({ "type": kind });
        if let Some(m) = message {
            resource["message"] = m;
        }
        Ok((
            200,
            Some(json!({ "interaction": interaction, "resource": resource })),
        ))
    })
}

/// The interaction behind a webhook path, if its token is still valid.
fn interaction<'s>(
    st: &'s mut State,
    r: &Req<'_>,
    app: &str,
    token: &str,
) -> Result<&'s mut InteractionRecord, ApiError> {
    let s = &r.shared.settings;
    if snowflake(app, "webhook_id")? != s.application_id {
        return Err(ApiError::unknown_webhook());
    }
    let rec = st
        .interaction_by_token(token)
        .ok_or_else(ApiError::unknown_webhook)?;
    let alive = rec
        .delivered_at
        .is_some_and(|t| t.elapsed() <= s.token_lifetime);
    if !alive {
        return Err(ApiError::invalid_webhook_token());
    }
    Ok(rec)
}

/// `POST /webhooks/{app}/{token}`: a follow-up message, once the interaction has been
/// answered.
pub(super) fn followup(r: &Req<'_>, app: &str, token: &str) -> Reply {
    let body = MessageBody::from_json(&r.json()?)?;
    let s = &r.shared.settings;
    let new_id = r.shared.ids.next();
    r.shared.update(|st| {
        let rec = interaction(st, r, app, token)?;
        if rec.callback.is_none() {
            return Err(ApiError::unknown_webhook());
        }
        let m = reply_message(new_id, rec, &body, 0, SystemTime::now())?;
        if m.is_empty() {
            return Err(ApiError::empty_message());
        }
        rec.followups.push(new_id);
        let json = payloads::message(&m, s);
        st.messages.insert(new_id, m);
        Ok((200, Some(json)))
    })
}

/// `GET|PATCH|DELETE /webhooks/{app}/{token}/messages/{@original|id}`.
pub(super) fn message(r: &Req<'_>, app: &str, token: &str, which: &str) -> Reply {
    let body = if r.method == Method::PATCH {
        Some(MessageBody::from_json(&r.json()?)?)
    } else {
        None
    };
    let s = &r.shared.settings;
    r.shared.update(|st| {
        let rec = interaction(st, r, app, token)?;
        let target = if which == "@original" {
            rec.original.ok_or_else(ApiError::unknown_message)?
        } else {
            let id = snowflake(which, "message_id")?;
            if rec.followups.contains(&id) || rec.original == Some(id) {
                id
            } else {
                return Err(ApiError::unknown_message());
            }
        };
        if r.method == Method::DELETE {
            st.messages
                .remove(&target)
                .ok_or_else(ApiError::unknown_message)?;
            return Ok((204, None));
        }
        let m = st
            .messages
            .get_mut(&target)
            .ok_or_else(ApiError::unknown_message)?;
        if let Some(body) = &body {
            let mut edited = m.clone();
            edited.edit(body, SystemTime::now())?;
            if edited.is_empty() {
                return Err(ApiError::empty_message());
            }
            *m = edited;
        }
        Ok((200, Some(payloads::message(m, s))))
    })
}
