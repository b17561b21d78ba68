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

/// `allowed_mentions` as Discord checks it: `parse` names only `users`, `roles` and
/// `everyone`; `users` and `roles` are lists of at most 100 snowflakes; and `parse`
/// naming `users` (or `roles`) excludes a `users` (or `roles`) list.
fn check_allowed_mentions(a: &Value) -> Result<(), ApiError> {
    let parse = match a.get("parse") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(p)) => p.clone(),
        Some(_) => {
            return Err(ApiError::invalid_form(
                "allowed_mentions.parse",
                "LIST_TYPE_CONVERT",
                "Must be an array.",
            ));
        }
    };
    for (i, p) in parse.iter().enumerate() {
        if !matches!(p.as_str(), Some("users" | "roles" | "everyone")) {
            return Err(ApiError::invalid_form(
                &format!("allowed_mentions.parse.{i}"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {'everyone', 'roles', 'users'}.",
            ));
        }
    }
    for key in ["users", "roles"] {
        let list = match a.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(l)) => l,
            Some(_) => {
                return Err(ApiError::invalid_form(
                    &format!("allowed_mentions.{key}"),
                    "LIST_TYPE_CONVERT",
                    "Must be an array.",
                ));
            }
        };
        if list.len() > 100 {
            return Err(ApiError::invalid_form(
                &format!("allowed_mentions.{key}"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.",
            ));
        }
        if let Some(i) = list.iter().position(|x| id_of(x).is_none()) {
            return Err(ApiError::invalid_form(
                &format!("allowed_mentions.{key}.{i}"),
                "NUMBER_TYPE_COERCE",
                "Value is not snowflake.",
            ));
        }
        if !list.is_empty() && parse.iter().any(|p| p.as_str() == Some(key)) {
            return Err(ApiError::invalid_form(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                &format!("parse:[\"{key}\"] and {key}: [ids...] are mutually exclusive."),
            ));
        }
    }
    Ok(())
}

/// Where a V2 component sits, which decides what it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Top,
    Container,
    Section,
    Accessory,
    Row,
}

fn form_err(path: &str, code: &str, message: &str) -> ApiError {
    ApiError::invalid_form(path, code, message)
}

/// One V2 component and what it holds: sections hold 1–3 text displays and a button
/// or thumbnail accessory; containers hold rows, sections, text displays, media and
/// separators; rows hold 1–5 buttons or one select; Labels belong in modals only.
fn check_v2(c: &Value, slot: Slot, path: &str) -> Result<(), ApiError> {
    let kind = c.get("type").and_then(Value::as_u64).unwrap_or(0);
    let allowed: &[u64] = match slot {
        Slot::Top => &[1, 9, 10, 12, 13, 14, 17],
        Slot::Container => &[1, 9, 10, 12, 13, 14],
        Slot::Section => &[10],
        Slot::Accessory => &[2, 11],
        Slot::Row => &[2, 3, 5, 6, 7, 8],
    };
    if !allowed.contains(&kind) {
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        return Err(form_err(
            &format!("{path}.type"),
            "UNION_TYPE_CHOICES",
            &format!(
                "Value of field \"type\" must be one of ({}).",
                list.join(", ")
            ),
        ));
    }
    let children = |key: &str| {
        c.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let bad_len = |key: &str, lo: usize, hi: usize| {
        form_err(
            &format!("{path}.{key}"),
            "BASE_TYPE_BAD_LENGTH",
            &format!("Must be between {lo} and {hi} in length."),
        )
    };
    match kind {
        1 => {
            let kids = children("components");
            let selects = kids
                .iter()
                .filter(|k| k.get("type").and_then(Value::as_u64) != Some(2))
                .count();
            if kids.is_empty() || kids.len() > 5 || (selects > 0 && kids.len() > 1) {
                return Err(bad_len("components", 1, 5));
            }
            for (i, k) in kids.iter().enumerate() {
                check_v2(k, Slot::Row, &format!("{path}.components.{i}"))?;
            }
        }
        9 => {
            let kids = children("components");
            if !(1..=3).contains(&kids.len()) {
                return Err(bad_len("components", 1, 3));
            }
            for (i, k) in kids.iter().enumerate() {
                check_v2(k, Slot::Section, &format!("{path}.components.{i}"))?;
            }
            let Some(acc) = c.get("accessory") else {
                return Err(form_err(
                    &format!("{path}.accessory"),
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ));
            };
            check_v2(acc, Slot::Accessory, &format!("{path}.accessory"))?;
        }
        10 => {
            let ok = c
                .get("content")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
            if !ok {
                return Err(form_err(
                    &format!("{path}.content"),
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ));
            }
        }
        11 if c.pointer("/media/url").and_then(Value::as_str).is_none() => {
            return Err(form_err(
                &format!("{path}.media.url"),
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ));
        }
        14 => {
            if let Some(sp) = c.get("spacing")
                && !matches!(sp.as_u64(), Some(1 | 2))
            {
                return Err(form_err(
                    &format!("{path}.spacing"),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {1, 2}.",
                ));
            }
        }
        17 => {
            if let Some(a) = c.get("accent_color").filter(|a| !a.is_null())
                && a.as_u64().is_none_or(|a| a > 0xFF_FFFF)
            {
                return Err(form_err(
                    &format!("{path}.accent_color"),
                    "NUMBER_TYPE_MAX",
                    "int value should be <= 16777215 and >= 0.",
                ));
            }
            let kids = children("components");
            if kids.is_empty() {
                return Err(bad_len("components", 1, 40));
            }
            for (i, k) in kids.iter().enumerate() {
                check_v2(k, Slot::Container, &format!("{path}.components.{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Discord's component rules: at most 5 rows of at most 5 buttons, custom ids of at
/// most 100 characters and unique within the message, labels of at most 80. A V2
/// layout instead holds at most 40 components in all (nested ones counted), each where
/// Discord allows it, with at most 4000 characters of text displays.
fn check_components(rows: &[Value], v2: bool) -> Result<(), ApiError> {
    if v2 {
        let (mut n, mut text) = (0usize, 0usize);
        for (i, c) in rows.iter().enumerate() {
            check_v2(c, Slot::Top, &format!("components.{i}"))?;
            walk(c, &mut |v| {
                n += 1;
                if v.get("type").and_then(Value::as_u64) == Some(10) {
                    text += v
                        .get("content")
                        .and_then(Value::as_str)
                        .map_or(0, |t| t.chars().count());
                }
            });
        }
        if n > V2_MAX_COMPONENTS {
            return Err(form_err(
                "components",
                "BASE_TYPE_MAX_LENGTH",
                &format!("Must be {V2_MAX_COMPONENTS} or fewer in length."),
            ));
        }
        if text > V2_MAX_TEXT {
            return Err(form_err(
                "components",
                "COMPONENT_MAX_TEXT_LENGTH_EXCEEDED",
                &format!(
                    "The total text of text displays must be {V2_MAX_TEXT} or fewer in length."
                ),
            ));
        }
    }
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
            let kids = row.get("components").and_then(Value::as_array);
            for (i, k) in kids.into_iter().flatten().enumerate() {
                if !matches!(k.get("type").and_then(Value::as_u64), Some(2 | 3 | 5..=8)) {
                    return Err(ApiError::invalid_form(
                        &format!("components.{r}.components.{i}.type"),
                        "UNION_TYPE_CHOICES",
                        "Value of field \"type\" must be one of (2, 3, 5, 6, 7, 8).",
                    ));
                }
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
