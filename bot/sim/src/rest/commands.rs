//! Slash-command registration: bulk overwrite and list, guild or global. A command
//! keeps its id when overwritten under the same name, as on Discord; the interactions
//! side reads these to know which commands and options exist.

use serde_json::Value;

use super::{Reply, Req, snowflake};
use crate::messages::id_of;
use crate::payloads::{self, ApiError};

/// The application and (for guild commands) guild in the path, which must be ours.
fn scope(r: &Req<'_>, app: &str, guild: Option<&str>) -> Result<Option<u64>, ApiError> {
    r.need_auth()?;
    let s = &r.shared.settings;
    if snowflake(app, "application_id")? != s.application_id {
        return Err(ApiError::missing_access());
    }
    match guild {
        None => Ok(None),
        Some(g) if snowflake(g, "guild_id")? == s.guild_id => Ok(Some(s.guild_id)),
        Some(_) => Err(ApiError::missing_access()),
    }
}

fn in_scope(c: &Value, guild: Option<u64>) -> bool {
    c.get("guild_id").and_then(id_of) == guild
}

/// `PUT /applications/{app}[/guilds/{g}]/commands`.
pub(super) fn set(r: &Req<'_>, app: &str, guild: Option<&str>) -> Reply {
    let guild = scope(r, app, guild)?;
    let v = r.json()?;
    let Some(sent) = v.as_array() else {
        return Err(ApiError::invalid_form(
            "",
            "LIST_TYPE_CONVERT",
            "Must be an array.",
        ));
    };
    if sent.len() > 100 {
        return Err(ApiError::invalid_form(
            "",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 100 or fewer in length.",
        ));
    }
    for (i, c) in sent.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if !(1..=32).contains(&name.chars().count()) {
            return Err(ApiError::invalid_form(
                &format!("{i}.name"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 32 in length.",
            ));
        }
        if !c.is_object() {
            return Err(ApiError::invalid_form(
                &i.to_string(),
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            ));
        }
    }
    let s = &r.shared.settings;
    let ids = &r.shared.ids;
    let out = r.shared.update(|st| {
        let mut out = Vec::new();
        for c in sent.iter().filter_map(Value::as_object) {
            let name = c.get("name").and_then(Value::as_str);
            let existing = st
                .commands
                .iter()
                .find(|old| in_scope(old, guild) && old.get("name").and_then(Value::as_str) == name)
                .and_then(|old| old.get("id").and_then(id_of));
            let id = existing.unwrap_or_else(|| ids.next());
            out.push(payloads::command(s, c, id, ids.next(), guild));
        }
        st.commands.retain(|old| !in_scope(old, guild));
        st.commands.extend(out.iter().cloned());
        out
    });
    Ok((200, Some(out.into())))
}

/// `GET /applications/{app}[/guilds/{g}]/commands`.
pub(super) fn get(r: &Req<'_>, app: &str, guild: Option<&str>) -> Reply {
    let guild = scope(r, app, guild)?;
    let out = r.shared.read(|st| {
        st.commands
            .iter()
            .filter(|c| in_scope(c, guild))
            .cloned()
            .collect::<Vec<_>>()
    });
    Ok((200, Some(out.into())))
}
