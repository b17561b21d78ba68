//! What Discord does with a message body: checks it the way Discord does (so a bot that
//! would be refused by Discord is refused here too), stores it, merges edits, and works
//! out who would actually be pinged given `allowed_mentions`.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::payloads::ApiError;

/// Message flag: only the pressing user sees it.
pub(crate) const EPHEMERAL: u64 = 1 << 6;
/// Message flag: a deferred reply still "thinking".
pub(crate) const LOADING: u64 = 1 << 7;
/// Flags a bot may set when creating a message in a channel.
const CHANNEL_FLAGS: u64 = (1 << 2) | (1 << 12) | (1 << 15);
/// Components V2 layout: no content or embeds, components nest freely.
const COMPONENTS_V2: u64 = 1 << 15;

/// A message as the simulator stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMessage {
    pub id: u64,
    pub channel_id: u64,
    pub content: String,
    /// The embeds as sent (each given `"type": "rich"` if it had no type, as Discord does).
    pub embeds: Vec<Value>,
    /// The components as sent: action rows holding buttons, or a V2 layout.
    pub components: Vec<Value>,
    pub flags: u64,
    /// `allowed_mentions` as last sent; `None` when the bot sent none (everything
    /// pings).
    pub allowed_mentions: Option<Value>,
    /// Who this message actually notified.
    pub pings: Pings,
    /// How many times it was edited.
    pub edited: u32,
    /// The interaction this message answers (a reply or follow-up), if any.
    pub interaction_id: Option<u64>,
    /// Sent through an interaction webhook rather than by the bot user.
    pub webhook: bool,
    /// Discord's message type: 0 default, 19 reply, 20 slash-command response.
    pub kind: u8,
    pub created_at: SystemTime,
    pub edited_at: Option<SystemTime>,
}

/// Who a message notifies once `allowed_mentions` is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pings {
    /// `@everyone` or `@here` went off.
    pub everyone: bool,
    pub users: Vec<u64>,
    pub roles: Vec<u64>,
}

impl Pings {
    /// Nobody was notified.
    pub fn is_empty(&self) -> bool {
        !self.everyone && self.users.is_empty() && self.roles.is_empty()
    }
}

/// A button found in a message's components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimButton {
    pub custom_id: Option<String>,
    pub label: Option<String>,
    /// 1 primary, 2 secondary, 3 success (green), 4 danger (red), 5 link, 6 premium.
    pub style: u8,
    pub disabled: bool,
    pub url: Option<String>,
}

impl SimMessage {
    /// Only the user who pressed sees it.
    pub fn ephemeral(&self) -> bool {
        self.flags & EPHEMERAL != 0
    }

    /// Every button, in reading order, however deeply the layout nests them.
    pub fn buttons(&self) -> Vec<SimButton> {
        let mut out = Vec::new();
        for c in &self.components {
            walk(c, &mut |v| {
                if v.get("type").and_then(Value::as_u64) == Some(2) {
                    out.push(SimButton {
                        custom_id: str_field(v, "custom_id"),
                        label: str_field(v, "label"),
                        style: v
                            .get("style")
                            .and_then(Value::as_u64)
                            .and_then(|s| u8::try_from(s).ok())
                            .unwrap_or(0),
                        disabled: v.get("disabled").and_then(Value::as_bool).unwrap_or(false),
                        url: str_field(v, "url"),
                    });
                }
            });
        }
        out
    }

    /// Buttons a user could still press.
    pub fn live_buttons(&self) -> Vec<SimButton> {
        self.buttons()
            .into_iter()
            .filter(|b| !b.disabled && b.custom_id.is_some())
            .collect()
    }

    /// The component carrying `custom_id`, if any.
    pub fn component(&self, custom_id: &str) -> Option<Value> {
        let mut found = None;
        for c in &self.components {
            walk(c, &mut |v| {
                if found.is_none() && v.get("custom_id").and_then(Value::as_str) == Some(custom_id)
                {
                    found = Some(v.clone());
                }
            });
        }
        found
    }

    /// All the text a person would read: content, then every string inside embeds and
    /// components. Handy for "does the message mention X" assertions.
    pub fn text(&self) -> String {
        let mut out = self.content.clone();
        for v in self.embeds.iter().chain(&self.components) {
            walk_strings(v, &mut |s| {
                out.push('\n');
                out.push_str(s);
            });
        }
        out
    }

    /// A new message from a checked body.
    pub(crate) fn create(
        id: u64,
        channel_id: u64,
        body: &MessageBody,
        allowed_flags: u64,
        now: SystemTime,
    ) -> Self {
        let mut m = Self {
            id,
            channel_id,
            content: String::new(),
            embeds: Vec::new(),
            components: Vec::new(),
            flags: body.flags.unwrap_or(0) & allowed_flags,
            allowed_mentions: None,
            pings: Pings::default(),
            edited: 0,
            interaction_id: None,
            webhook: false,
            kind: 0,
            created_at: now,
            edited_at: None,
        };
        m.merge(body);
        m
    }

    /// Apply an edit: fields present replace, absent ones stay, `null` clears. The
    /// caller counts it as an edit (a callback that only acknowledges does not).
    pub(crate) fn merge(&mut self, body: &MessageBody) {
        if let Some(c) = &body.content {
            c.clone_into(&mut self.content);
        }
        if let Some(e) = &body.embeds {
            self.embeds.clone_from(e);
        }
        if let Some(c) = &body.components {
            self.components.clone_from(c);
        }
        if let Some(a) = &body.allowed_mentions {
            self.allowed_mentions = (!a.is_null()).then(|| a.clone());
        }
        self.pings = pings(&self.content, self.allowed_mentions.as_ref());
    }

    /// Record an edit made now.
    pub(crate) fn edit(&mut self, body: &MessageBody, now: SystemTime) {
        self.merge(body);
        if let Some(f) = body.flags {
            // Only SUPPRESS_EMBEDS may change on an edit.
            self.flags = (self.flags & !(1 << 2)) | (f & (1 << 2));
        }
        self.flags &= !LOADING;
        self.edited = self.edited.saturating_add(1);
        self.edited_at = Some(now);
    }

    /// Discord refuses a message with nothing to show.
    pub(crate) fn is_empty(&self) -> bool {
        self.content.trim().is_empty() && self.embeds.is_empty() && self.components.is_empty()
    }
}

/// Flags allowed on a message the bot creates in a channel.
pub(crate) const fn channel_flags() -> u64 {
    CHANNEL_FLAGS
}

/// Flags allowed on an interaction reply or follow-up.
pub(crate) const fn reply_flags() -> u64 {
    CHANNEL_FLAGS | EPHEMERAL
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Visit `v` and every object nested in its `components`, `accessory` or `component`.
fn walk(v: &Value, f: &mut impl FnMut(&Value)) {
    f(v);
    if let Some(children) = v.get("components").and_then(Value::as_array) {
        for c in children {
            walk(c, f);
        }
    }
    for key in ["accessory", "component"] {
        if let Some(c) = v.get(key) {
            walk(c, f);
        }
    }
}

fn walk_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(o) => o.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

/// The message fields of a create or edit body, as sent.
#[derive(Debug, Default, Clone)]
pub(crate) struct MessageBody {
    /// `Some("")` when sent as `null`.
    pub content: Option<String>,
    pub embeds: Option<Vec<Value>>,
    pub components: Option<Vec<Value>>,
    /// `Some(Value::Null)` when sent as `null`.
    pub allowed_mentions: Option<Value>,
    pub flags: Option<u64>,
}

impl MessageBody {
    /// Read and check a body the way Discord's form validation does.
    pub(crate) fn from_json(v: &Value) -> Result<Self, ApiError> {
        let Some(obj) = v.as_object() else {
            return Err(ApiError::invalid_form(
                "",
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            ));
        };
        let mut body = Self::default();
        match obj.get("content") {
            None => {}
            Some(Value::Null) => body.content = Some(String::new()),
            Some(Value::String(s)) => {
                if s.chars().count() > 2000 {
                    return Err(ApiError::invalid_form(
                        "content",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 2000 or fewer in length.",
                    ));
                }
                body.content = Some(s.clone());
            }
            Some(_) => {
                return Err(ApiError::invalid_form(
                    "content",
                    "BASE_TYPE_STRING",
                    "Must be a string.",
                ));
            }
        }
        body.embeds = array_field(obj, "embeds")?;
        if let Some(embeds) = &mut body.embeds {
            check_embeds(embeds)?;
        }
        body.components = array_field(obj, "components")?;
        match obj.get("flags") {
            None | Some(Value::Null) => {}
            Some(f) => match f.as_u64() {
                Some(f) => body.flags = Some(f),
                None => {
                    return Err(ApiError::invalid_form(
                        "flags",
                        "NUMBER_TYPE_COERCE",
                        "Value is not int.",
                    ));
                }
            },
        }
        if let Some(c) = &body.components {
            check_components(c, body.flags.unwrap_or(0) & COMPONENTS_V2 != 0)?;
        }
        match obj.get("allowed_mentions") {
            None => {}
            Some(a @ (Value::Null | Value::Object(_))) => body.allowed_mentions = Some(a.clone()),
            Some(_) => {
                return Err(ApiError::invalid_form(
                    "allowed_mentions",
                    "DICT_TYPE_CONVERT",
                    "Only dictionaries may be used in a DictType",
                ));
            }
        }
        Ok(body)
    }
}

fn array_field(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Array(a)) => Ok(Some(a.clone())),
        Some(_) => Err(ApiError::invalid_form(
            key,
            "LIST_TYPE_CONVERT",
            "Must be an array.",
        )),
    }
}

fn too_long(v: &Value, key: &str, max: usize) -> bool {
    v.get(key)
        .and_then(Value::as_str)
        .is_some_and(|s| s.chars().count() > max)
}

/// Discord's embed limits, and the `"type": "rich"` it fills in.
fn check_embeds(embeds: &mut [Value]) -> Result<(), ApiError> {
    if embeds.len() > 10 {
        return Err(ApiError::invalid_form(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    let mut total = 0usize;
    for (i, e) in embeds.iter_mut().enumerate() {
        let Some(obj) = e.as_object_mut() else {
            return Err(ApiError::invalid_form(
                &format!("embeds.{i}"),
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            ));
        };
        obj.entry("type")
            .or_insert_with(|| Value::String("rich".into()));
        let e = &*e;
        for (key, max) in [("title", 256), ("description", 4096)] {
            if too_long(e, key, max) {
                return Err(ApiError::invalid_form(
                    &format!("embeds.{i}.{key}"),
                    "BASE_TYPE_MAX_LENGTH",
                    &format!("Must be {max} or fewer in length."),
                ));
            }
        }
        if e.get("fields")
            .and_then(Value::as_array)
            .is_some_and(|f| f.len() > 25)
        {
            return Err(ApiError::invalid_form(
                &format!("embeds.{i}.fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        let fields = e.get("fields").and_then(Value::as_array);
        for (f, field) in fields.into_iter().flatten().enumerate() {
            for (key, max) in [("name", 256), ("value", 1024)] {
                if too_long(field, key, max) {
                    return Err(ApiError::invalid_form(
                        &format!("embeds.{i}.fields.{f}.{key}"),
                        "BASE_TYPE_MAX_LENGTH",
                        &format!("Must be {max} or fewer in length."),
                    ));
                }
            }
        }
        for (part, key, max) in [("footer", "text", 2048), ("author", "name", 256)] {
            if e.get(part).is_some_and(|p| too_long(p, key, max)) {
                return Err(ApiError::invalid_form(
                    &format!("embeds.{i}.{part}.{key}"),
                    "BASE_TYPE_MAX_LENGTH",
                    &format!("Must be {max} or fewer in length."),
                ));
            }
        }
        let mut n = 0;
        walk_strings(e, &mut |s| n += s.chars().count());
        total += n;
    }
    if total > 6000 {
        return Err(ApiError::invalid_form(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        ));
    }
    Ok(())
}

/// Discord's component rules: at most 5 rows of at most 5 buttons, custom ids of at
/// most 100 characters and unique within the message, labels of at most 80.
fn check_components(rows: &[Value], v2: bool) -> Result<(), ApiError> {
    if !v2 && rows.len() > 5 {
        return Err(ApiError::invalid_form(
            "components",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let kind = row.get("type").and_then(Value::as_u64);
        if !v2 {
            if kind != Some(1) {
                return Err(ApiError::invalid_form(
                    &format!("components.{r}.type"),
                    "UNION_TYPE_CHOICES",
                    "Value of field \"type\" must be one of (1,).",
                ));
            }
            let n = row
                .get("components")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if !(1..=5).contains(&n) {
                return Err(ApiError::invalid_form(
                    &format!("components.{r}.components"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                ));
            }
        }
        let mut err = None;
        walk(row, &mut |c| {
            if err.is_some() {
                return;
            }
            if c.get("type").and_then(Value::as_u64) == Some(2) {
                let style = c.get("style").and_then(Value::as_u64).unwrap_or(0);
                let link = style == 5 || style == 6;
                if !(1..=6).contains(&style) {
                    err = Some((
                        "style",
                        "BASE_TYPE_CHOICES",
                        "Value must be one of {1, 2, 3, 4, 5, 6}.",
                    ));
                } else if !link && c.get("custom_id").and_then(Value::as_str).is_none() {
                    err = Some(("custom_id", "BASE_TYPE_REQUIRED", "This field is required"));
                } else if style == 5 && c.get("url").and_then(Value::as_str).is_none() {
                    err = Some(("url", "BASE_TYPE_REQUIRED", "This field is required"));
                } else if too_long(c, "label", 80) {
                    err = Some((
                        "label",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 80 or fewer in length.",
                    ));
                }
            }
            if let Some(id) = c.get("custom_id").and_then(Value::as_str) {
                if id.is_empty() || id.chars().count() > 100 {
                    err = Some((
                        "custom_id",
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    ));
                } else if seen.iter().any(|s| s == id) {
                    err = Some((
                        "custom_id",
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    ));
                } else {
                    seen.push(id.to_owned());
                }
            }
        });
        if let Some((field, code, message)) = err {
            return Err(ApiError::invalid_form(
                &format!("components.{r}.{field}"),
                code,
                message,
            ));
        }
    }
    Ok(())
}

/// Who `content` notifies under `allowed` (Discord parses everything when it is absent).
pub(crate) fn pings(content: &str, allowed: Option<&Value>) -> Pings {
    let parse = |what: &str| {
        allowed.is_none_or(|a| {
            a.get("parse")
                .and_then(Value::as_array)
                .is_some_and(|p| p.iter().any(|x| x.as_str() == Some(what)))
        })
    };
    let listed = |what: &str, id: u64| {
        allowed
            .and_then(|a| a.get(what))
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|x| id_of(x) == Some(id)))
    };
    let mut out = Pings {
        everyone: (content.contains("@everyone") || content.contains("@here")) && parse("everyone"),
        ..Pings::default()
    };
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let (role, body) = match rest.strip_prefix('&') {
            Some(b) => (true, b),
            None => (false, rest.strip_prefix('!').unwrap_or(rest)),
        };
        let Some(end) = body.find('>') else { break };
        let Ok(id) = body[..end].parse::<u64>() else {
            continue;
        };
        let (list, key) = if role {
            (&mut out.roles, "roles")
        } else {
            (&mut out.users, "users")
        };
        if (parse(key) || listed(key, id)) && !list.contains(&id) {
            list.push(id);
        }
    }
    out
}

/// A snowflake sent as a string (Discord's way) or a number.
pub(crate) fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{MessageBody, pings};
    use serde_json::json;

    #[test]
    fn allowed_mentions_decide_pings() {
        let text = "hi <@1> <@!2> <@&3> @everyone";
        let all = pings(text, None);
        assert!(all.everyone);
        assert_eq!(all.users, vec![1, 2]);
        assert_eq!(all.roles, vec![3]);
        assert!(pings(text, Some(&json!({"parse": []}))).is_empty());
        let one = pings(text, Some(&json!({"parse": [], "users": ["2"]})));
        assert_eq!(one.users, vec![2]);
        assert!(!one.everyone);
    }

    #[test]
    fn duplicate_custom_ids_are_refused() {
        let b = json!({"type": 2, "style": 1, "custom_id": "x", "label": "A"});
        let body = json!({"components": [{"type": 1, "components": [b, b]}]});
        assert!(MessageBody::from_json(&body).is_err());
    }
}
