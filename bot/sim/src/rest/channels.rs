//! Messages in the channel: create, read, list, edit, delete, with Discord's checks (an
//! unknown channel, an empty message, someone else's message).

use std::time::SystemTime;

use super::{Reply, Req, snowflake};
use crate::messages::{MessageBody, SimMessage, channel_flags};
use crate::payloads::{self, ApiError};

/// The channel in the path, which must be the configured one.
fn channel_of(r: &Req<'_>, seg: &str) -> Result<u64, ApiError> {
    r.need_auth()?;
    let c = snowflake(seg, "channel_id")?;
    if c == r.shared.settings.channel_id {
        Ok(c)
    } else {
        Err(ApiError::unknown_channel())
    }
}

/// `POST /channels/{c}/messages`.
pub(super) fn create(r: &Req<'_>, channel: &str) -> Reply {
    let channel = channel_of(r, channel)?;
    let body = MessageBody::from_json(&r.json()?)?;
    let refused = r.shared.update(|st| {
        let refuse = st.refuse_posts > 0;
        st.refuse_posts = st.refuse_posts.saturating_sub(1);
        refuse
    });
    if refused {
        return Err(ApiError::invalid_form(
            "content",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        ));
    }
    let m = SimMessage::create(
        r.shared.ids.next(),
        channel,
        &body,
        channel_flags(),
        SystemTime::now(),
    )?;
    if m.is_empty() {
        return Err(ApiError::empty_message());
    }
    let json = payloads::message(&m, &r.shared.settings);
    r.shared.update(|st| st.messages.insert(m.id, m));
    Ok((200, Some(json)))
}

/// `GET /channels/{c}/messages?limit=N`: newest first, as Discord lists them.
pub(super) fn list(r: &Req<'_>, channel: &str) -> Reply {
    let channel = channel_of(r, channel)?;
    let limit = match r.param("limit") {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| {
                ApiError::invalid_form(
                    "limit",
                    "NUMBER_TYPE_MAX",
                    "int value should be <= 100 and >= 1.",
                )
            })?,
    };
    let s = &r.shared.settings;
    let out = r.shared.read(|st| {
        st.messages
            .values()
            .rev()
            .filter(|m| m.channel_id == channel && !m.ephemeral())
            .take(limit)
            .map(|m| payloads::message(m, s))
            .collect::<Vec<_>>()
    });
    Ok((200, Some(out.into())))
}

/// The message `id` in `channel`, as the bot can see it (ephemeral replies are not).
fn visible(r: &Req<'_>, channel: &str, id: &str) -> Result<u64, ApiError> {
    let channel = channel_of(r, channel)?;
    let id = snowflake(id, "message_id")?;
    r.shared
        .read(|st| {
            st.messages
                .get(&id)
                .is_some_and(|m| m.channel_id == channel && !m.ephemeral())
        })
        .then_some(id)
        .ok_or_else(ApiError::unknown_message)
}

/// `GET /channels/{c}/messages/{id}`.
pub(super) fn get(r: &Req<'_>, channel: &str, id: &str) -> Reply {
    let id = visible(r, channel, id)?;
    let s = &r.shared.settings;
    r.shared
        .read(|st| st.messages.get(&id).map(|m| payloads::message(m, s)))
        .map(|m| (200, Some(m)))
        .ok_or_else(ApiError::unknown_message)
}

/// `PATCH /channels/{c}/messages/{id}`: fields present replace, `null` clears.
pub(super) fn edit(r: &Req<'_>, channel: &str, id: &str) -> Reply {
    let id = visible(r, channel, id)?;
    let body = MessageBody::from_json(&r.json()?)?;
    let s = &r.shared.settings;
    r.shared.update(|st| {
        let m = st
            .messages
            .get_mut(&id)
            .ok_or_else(ApiError::unknown_message)?;
        // Interaction replies belong to the webhook, not the bot user.
        if m.webhook {
            return Err(ApiError::not_author());
        }
        let mut edited = m.clone();
        edited.edit(&body, SystemTime::now())?;
        if edited.is_empty() {
            return Err(ApiError::empty_message());
        }
        let json = payloads::message(&edited, s);
        *m = edited;
        Ok((200, Some(json)))
    })
}

/// `DELETE /channels/{c}/messages/{id}`.
pub(super) fn delete(r: &Req<'_>, channel: &str, id: &str) -> Reply {
    let id = visible(r, channel, id)?;
    r.shared.update(|st| st.messages.remove(&id));
    Ok((204, None))
}
