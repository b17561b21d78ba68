//! Who the bot is and where things are: the bot user, its application, the gateway
//! address, and the one text channel the simulator has.

use super::{Reply, Req, snowflake};
use crate::payloads::{self, ApiError};

/// `GET /users/@me`: how a bot checks its token at start.
pub(super) fn current_user(r: &Req<'_>) -> Reply {
    r.need_auth()?;
    Ok((200, Some(payloads::current_user(&r.shared.settings))))
}

/// `GET /applications/@me`.
pub(super) fn current_application(r: &Req<'_>) -> Reply {
    r.need_auth()?;
    Ok((200, Some(payloads::application(&r.shared.settings))))
}

/// `GET /gateway` (no token) and `GET /gateway/bot` (token).
pub(super) fn gateway(r: &Req<'_>, bot: bool) -> Reply {
    let s = &r.shared.settings;
    if bot {
        r.need_auth()?;
        Ok((200, Some(payloads::gateway_bot(s))))
    } else {
        Ok((200, Some(serde_json::json!({ "url": s.gateway_url }))))
    }
}

/// `GET /channels/{id}`: only the configured channel exists.
pub(super) fn channel(r: &Req<'_>, channel: &str) -> Reply {
    r.need_auth()?;
    let s = &r.shared.settings;
    if snowflake(channel, "channel_id")? != s.channel_id {
        return Err(ApiError::unknown_channel());
    }
    Ok((200, Some(payloads::guild_channel(s.channel_id, s.guild_id))))
}
