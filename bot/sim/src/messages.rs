//! What Discord does with a message body: checks it the way Discord does (so a bot that
//! would be refused by Discord is refused here too), stores it, merges edits, and works
//! out who would actually be pinged given `allowed_mentions`.

use std::time::SystemTime;

use serde_json::Value;

use super::payloads::ApiError;

mod checks;
use checks::{array_field, check_allowed_mentions, check_components, check_embeds};

/// Message flag: only the pressing user sees it.
pub(crate) const EPHEMERAL: u64 = 1 << 6;
/// Message flag: a deferred reply still "thinking".
pub(crate) const LOADING: u64 = 1 << 7;
/// Flags a bot may set when creating a message in a channel.
const CHANNEL_FLAGS: u64 = (1 << 2) | (1 << 12) | (1 << 15);
/// Components V2 layout: no content or embeds, components nest freely.
pub(crate) const COMPONENTS_V2: u64 = 1 << 15;
/// The most components a V2 message may hold, counting every nested one.
const V2_MAX_COMPONENTS: usize = 40;
/// The most text a V2 message's text displays may hold together.
const V2_MAX_TEXT: usize = 4000;

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
    /// Whom the message mentions as it reads now (content, or a V2 message's text
    /// displays; never embeds), filtered by `allowed_mentions`: what Discord renders as
    /// `mentions`, `mention_roles` and `mention_everyone`, recomputed on each edit.
    pub pings: Pings,
    /// Whom the message pushed a notification to: [`pings`](Self::pings) as it was
    /// when the message was created. Mentions an edit adds notify nobody.
    pub notified: Pings,
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

    /// Uses the components V2 layout (flag `1 << 15`).
    pub fn components_v2(&self) -> bool {
        self.flags & COMPONENTS_V2 != 0
    }

    /// The `content` of every text display (type 10), in reading order, however deeply
    /// containers and sections nest them: what a V2 message says.
    pub fn text_displays(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.components {
            walk(c, &mut |v| {
                if v.get("type").and_then(Value::as_u64) == Some(10)
                    && let Some(t) = v.get("content").and_then(Value::as_str)
                {
                    out.push(t.to_owned());
                }
            });
        }
        out
    }

    /// What a person reads, as text: for a V2 message its text displays joined by
    /// newlines; otherwise the content, then each embed's title, description, fields
    /// (`name: value`) and footer, one a line.
    pub fn display_text(&self) -> String {
        if self.components_v2() {
            return self.text_displays().join("\n");
        }
        let mut lines = Vec::new();
        if !self.content.is_empty() {
            lines.push(self.content.clone());
        }
        for e in &self.embeds {
            for key in ["title", "description"] {
                if let Some(t) = e.get(key).and_then(Value::as_str) {
                    lines.push(t.to_owned());
                }
            }
            for f in e
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                let value = f.get("value").and_then(Value::as_str).unwrap_or_default();
                lines.push(format!("{name}: {value}"));
            }
            if let Some(t) = e.pointer("/footer/text").and_then(Value::as_str) {
                lines.push(t.to_owned());
            }
        }
        lines.join("\n")
    }

    /// The text whose mentions can ping: the content, or for a V2 message its text
    /// displays. Embeds never ping.
    fn mention_text(&self) -> String {
        if self.components_v2() {
            self.text_displays().join("\n")
        } else {
            self.content.clone()
        }
    }

    /// A new message from a checked body: refused as Discord refuses it (a V2 message
    /// with content or embeds, a layout Discord would not take).
    pub(crate) fn create(
        id: u64,
        channel_id: u64,
        body: &MessageBody,
        allowed_flags: u64,
        now: SystemTime,
    ) -> Result<Self, ApiError> {
        let mut m = Self {
            id,
            channel_id,
            content: String::new(),
            embeds: Vec::new(),
            components: Vec::new(),
            flags: body.flags.unwrap_or(0) & allowed_flags,
            allowed_mentions: None,
            pings: Pings::default(),
            notified: Pings::default(),
            edited: 0,
            interaction_id: None,
            webhook: false,
            kind: 0,
            created_at: now,
            edited_at: None,
        };
        m.merge(body);
        m.check()?;
        m.notified = m.pings.clone();
        Ok(m)
    }

    /// Discord's rules for the message as a whole once a create or edit is applied.
    fn check(&self) -> Result<(), ApiError> {
        let v2 = self.components_v2();
        if v2 {
            for (field, present) in [
                ("content", !self.content.is_empty()),
                ("embeds", !self.embeds.is_empty()),
            ] {
                if present {
                    return Err(ApiError::invalid_form(
                        field,
                        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                        &format!(
                            "The '{field}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2"
                        ),
                    ));
                }
            }
        }
        check_components(&self.components, v2)
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
        self.pings = pings(&self.mention_text(), self.allowed_mentions.as_ref());
    }

    /// Record an edit made now, refused as Discord refuses it: IS_COMPONENTS_V2 may be
    /// set by an edit but never removed, and the edited message must still be valid.
    pub(crate) fn edit(&mut self, body: &MessageBody, now: SystemTime) -> Result<(), ApiError> {
        if let Some(f) = body.flags {
            if self.components_v2() && f & COMPONENTS_V2 == 0 {
                return Err(ApiError::invalid_form(
                    "flags",
                    "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG",
                    "The IS_COMPONENTS_V2 flag cannot be removed from a message",
                ));
            }
            // Only SUPPRESS_EMBEDS may change on an edit, and IS_COMPONENTS_V2 be set.
            self.flags = (self.flags & !(1 << 2)) | (f & ((1 << 2) | COMPONENTS_V2));
        }
        self.merge(body);
        self.check()?;
        self.flags &= !LOADING;
        self.edited = self.edited.saturating_add(1);
        self.edited_at = Some(now);
        Ok(())
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
            // A V2 layout edited without the flag in the body is checked once the
            // message's own flags are known (`SimMessage::edit`).
            let v2 = body.flags.unwrap_or(0) & COMPONENTS_V2 != 0;
            let rows_only = c
                .iter()
                .all(|r| r.get("type").and_then(Value::as_u64) == Some(1));
            if v2 || rows_only {
                check_components(c, v2)?;
            }
        }
        match obj.get("allowed_mentions") {
            None => {}
            Some(Value::Null) => body.allowed_mentions = Some(Value::Null),
            Some(a @ Value::Object(_)) => {
                check_allowed_mentions(a)?;
                body.allowed_mentions = Some(a.clone());
            }
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
