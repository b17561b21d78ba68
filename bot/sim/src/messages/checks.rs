//! The checks Discord makes on a message body's parts (embeds, `allowed_mentions`,
//! components in rows or in the V2 layout), with Discord's own error codes and paths.

use serde_json::{Map, Value};

use super::{ApiError, V2_MAX_COMPONENTS, V2_MAX_TEXT, id_of, walk, walk_strings};

pub(super) fn array_field(
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<Value>>, ApiError> {
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
pub(super) fn check_embeds(embeds: &mut [Value]) -> Result<(), ApiError> {
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
pub(super) fn check_allowed_mentions(a: &Value) -> Result<(), ApiError> {
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
pub(super) fn check_components(rows: &[Value], v2: bool) -> Result<(), ApiError> {
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
