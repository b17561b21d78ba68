//! Modals: the form a bot opens with interaction callback type 9, and the MODAL_SUBMIT
//! (interaction type 5) a person sends by filling it in.
//!
//! The callback is checked as Discord checks it (title, custom ids, at most 5
//! components, text inputs in action rows or Labels, their styles and length limits)
//! and the form is remembered as open for the user who pressed, on the message the
//! button was on. A submit is built from that open form the way Discord builds it:
//! every top-level component with its numeric `id`, each text input as
//! `{type: 4, id, custom_id, value}`, in an action row or a Label as it was opened. What
//! Discord's client would not let a person submit (a required input left empty, a value
//! outside the input's lengths, a form that is not open) is an error for the test.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::interactions::{actor, place, send};
use super::payloads::{self, ApiError, InteractionParts};
use super::snowflake::random_hex;
use super::state::{InteractionRecord, Shared};
use super::{InteractionHandle, ModalSubmitSpec, SimError};

/// One input of a modal, as opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTextInput {
    /// The numeric component id Discord gives it (the bot's own, or assigned in order).
    pub id: i32,
    pub custom_id: String,
    /// 4 text input; 3, 5–8 a select menu inside a Label (submitted with no values).
    pub kind: u8,
    /// The text input's own label (action-row form) or its Label's.
    pub label: Option<String>,
    /// The Label's description, if any.
    pub description: Option<String>,
    /// 1 short, 2 paragraph.
    pub style: u8,
    /// Pre-filled text.
    pub value: Option<String>,
    pub placeholder: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    /// Discord's default is `true`.
    pub required: bool,
}

/// A modal the bot opened for someone.
#[derive(Debug, Clone, PartialEq)]
pub struct SimModal {
    /// The interaction (a press or a command) it answered.
    pub interaction_id: u64,
    /// Who it is open for.
    pub user_id: u64,
    /// The message whose button opened it (`None` for a slash command).
    pub message_id: Option<u64>,
    pub channel_id: u64,
    pub custom_id: String,
    pub title: String,
    pub inputs: Vec<SimTextInput>,
    /// The components as the bot sent them, each given its numeric `id`.
    pub components: Vec<Value>,
    /// Still open: not yet submitted (a newer modal for the same user and message
    /// replaces it, as a person sees only one at a time).
    pub open: bool,
    pub opened_at: SystemTime,
}

impl SimModal {
    /// The input whose custom_id is `key` or, failing that, the one input whose
    /// custom_id ends with `key`.
    pub fn input(&self, key: &str) -> Option<&SimTextInput> {
        if let Some(i) = self.inputs.iter().find(|i| i.custom_id == key) {
            return Some(i);
        }
        let mut found = self.inputs.iter().filter(|i| i.custom_id.ends_with(key));
        match (found.next(), found.next()) {
            (Some(i), None) => Some(i),
            _ => None,
        }
    }

    /// As the control API shows it.
    pub(crate) fn json(&self) -> Value {
        let inputs: Vec<Value> = self
            .inputs
            .iter()
            .map(|i| {
                json!({
                    "id": i.id, "custom_id": i.custom_id, "type": i.kind, "label": i.label,
                    "description": i.description, "style": i.style, "value": i.value,
                    "placeholder": i.placeholder, "min_length": i.min_length,
                    "max_length": i.max_length, "required": i.required,
                })
            })
            .collect();
        json!({
            "interaction_id": self.interaction_id.to_string(),
            "user_id": self.user_id.to_string(),
            "message_id": self.message_id.map(|m| m.to_string()),
            "custom_id": self.custom_id,
            "title": self.title,
            "open": self.open,
            "inputs": inputs,
            "components": self.components,
        })
    }
}

fn err(path: &str, code: &str, message: &str) -> ApiError {
    ApiError::invalid_form(&format!("data.{path}"), code, message)
}

fn required(path: &str) -> ApiError {
    err(path, "BASE_TYPE_REQUIRED", "This field is required")
}

fn bad_length(path: &str, lo: usize, hi: usize) -> ApiError {
    err(
        path,
        "BASE_TYPE_BAD_LENGTH",
        &format!("Must be between {lo} and {hi} in length."),
    )
}

/// A string field of `lo..=hi` characters; `None` when absent and not `needed`.
fn text(
    v: &Value,
    key: &str,
    path: &str,
    lo: usize,
    hi: usize,
    needed: bool,
) -> Result<Option<String>, ApiError> {
    let p = format!("{path}{key}");
    match v.get(key) {
        None | Some(Value::Null) if needed => Err(required(&p)),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if (lo..=hi).contains(&n) {
                Ok(Some(s.clone()))
            } else {
                Err(bad_length(&p, lo, hi))
            }
        }
        Some(_) => Err(err(&p, "BASE_TYPE_STRING", "Must be a string.")),
    }
}

fn length(v: &Value, key: &str, path: &str, lo: u64) -> Result<Option<u64>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => match n.as_u64() {
            Some(n) if (lo..=4000).contains(&n) => Ok(Some(n)),
            _ => Err(err(
                &format!("{path}{key}"),
                "NUMBER_TYPE_MAX",
                &format!("int value should be <= 4000 and >= {lo}."),
            )),
        },
    }
}

/// A text input (or a Label's select) at `path`; `label` is the Label's when it has one.
fn input(
    c: &Value,
    path: &str,
    outer: Option<(&str, Option<&str>)>,
) -> Result<SimTextInput, ApiError> {
    let kind = c.get("type").and_then(Value::as_u64).unwrap_or(0);
    let custom_id = text(c, "custom_id", path, 1, 100, true)?.unwrap_or_default();
    if kind != 4 {
        return Ok(SimTextInput {
            id: 0,
            custom_id,
            kind: u8::try_from(kind).unwrap_or(0),
            label: outer.map(|(l, _)| l.to_owned()),
            description: outer.and_then(|(_, d)| d.map(str::to_owned)),
            style: 0,
            value: None,
            placeholder: None,
            min_length: None,
            max_length: None,
            required: c.get("required").and_then(Value::as_bool).unwrap_or(true),
        });
    }
    let style = c.get("style").and_then(Value::as_u64);
    if !matches!(style, Some(1 | 2)) {
        return Err(err(
            &format!("{path}style"),
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2}.",
        ));
    }
    // The row form needs the input's own label; in a Label the Label has it.
    let own_label = text(c, "label", path, 1, 45, outer.is_none())?;
    let min_length = length(c, "min_length", path, 0)?;
    let max_length = length(c, "max_length", path, 1)?;
    if let (Some(lo), Some(hi)) = (min_length, max_length)
        && lo > hi
    {
        return Err(err(
            &format!("{path}min_length"),
            "TEXT_INPUT_MIN_LENGTH_GREATER_THAN_MAX",
            "min_length must be less than or equal to max_length.",
        ));
    }
    let value = text(c, "value", path, 0, 4000, false)?;
    if let (Some(v), Some(hi)) = (&value, max_length)
        && v.chars().count() as u64 > hi
    {
        return Err(err(
            &format!("{path}value"),
            "BASE_TYPE_MAX_LENGTH",
            &format!("Must be {hi} or fewer in length."),
        ));
    }
    Ok(SimTextInput {
        id: 0,
        custom_id,
        kind: 4,
        label: outer.map(|(l, _)| l.to_owned()).or(own_label),
        description: outer.and_then(|(_, d)| d.map(str::to_owned)),
        style: u8::try_from(style.unwrap_or(1)).unwrap_or(1),
        value,
        placeholder: text(c, "placeholder", path, 0, 100, false)?,
        min_length,
        max_length,
        required: c.get("required").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// Give every component the numeric `id` Discord gives it: the bot's own where it set
/// one, otherwise the next unused number, depth first.
fn assign_ids(components: &mut [Value]) {
    fn collect(v: &Value, used: &mut Vec<i64>) {
        if let Some(i) = v.get("id").and_then(Value::as_i64) {
            used.push(i);
        }
        for c in v
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect(c, used);
        }
        if let Some(c) = v.get("component") {
            collect(c, used);
        }
    }
    fn fill(v: &mut Value, used: &[i64], next: &mut i64) {
        if v.get("id").and_then(Value::as_i64).is_none() {
            while used.contains(next) {
                *next += 1;
            }
            v["id"] = json!(*next);
            *next += 1;
        }
        if let Some(cs) = v.get_mut("components").and_then(Value::as_array_mut) {
            for c in cs {
                fill(c, used, next);
            }
        }
        if let Some(c) = v.get_mut("component") {
            fill(c, used, next);
        }
    }
    let mut used = Vec::new();
    for c in components.iter() {
        collect(c, &mut used);
    }
    let mut next = 1;
    for c in components.iter_mut() {
        fill(c, &used, &mut next);
    }
}

fn id_i32(v: &Value) -> i32 {
    v.get("id")
        .and_then(Value::as_i64)
        .and_then(|i| i32::try_from(i).ok())
        .unwrap_or(0)
}

/// Check a type 9 callback's `data` as Discord does and make the open modal.
pub(crate) fn open(data: &Value, rec: &InteractionRecord) -> Result<SimModal, ApiError> {
    if !data.is_object() {
        return Err(required("title"));
    }
    let title = text(data, "title", "", 1, 45, true)?.unwrap_or_default();
    let custom_id = text(data, "custom_id", "", 1, 100, true)?.unwrap_or_default();
    let mut components = match data.get("components") {
        Some(Value::Array(a)) if (1..=5).contains(&a.len()) => a.clone(),
        Some(Value::Array(_)) => return Err(bad_length("components", 1, 5)),
        _ => return Err(required("components")),
    };
    assign_ids(&mut components);
    let mut inputs = Vec::new();
    for (i, c) in components.iter().enumerate() {
        let path = format!("components.{i}.");
        match c.get("type").and_then(Value::as_u64) {
            Some(1) => {
                let kids = c.get("components").and_then(Value::as_array);
                let [k] = kids.map(Vec::as_slice).unwrap_or_default() else {
                    return Err(bad_length(&format!("{path}components"), 1, 1));
                };
                if k.get("type").and_then(Value::as_u64) != Some(4) {
                    return Err(err(
                        &format!("{path}components.0.type"),
                        "UNION_TYPE_CHOICES",
                        "Value of field \"type\" must be one of (4,).",
                    ));
                }
                let mut t = input(k, &format!("{path}components.0."), None)?;
                t.id = id_i32(k);
                inputs.push(t);
            }
            Some(18) => {
                let label = text(c, "label", &path, 1, 45, true)?.unwrap_or_default();
                let description = text(c, "description", &path, 1, 100, false)?;
                let Some(k) = c.get("component") else {
                    return Err(required(&format!("{path}component")));
                };
                if !matches!(k.get("type").and_then(Value::as_u64), Some(3..=8)) {
                    return Err(err(
                        &format!("{path}component.type"),
                        "UNION_TYPE_CHOICES",
                        "Value of field \"type\" must be one of (3, 4, 5, 6, 7, 8).",
                    ));
                }
                let mut t = input(
                    k,
                    &format!("{path}component."),
                    Some((&label, description.as_deref())),
                )?;
                t.id = id_i32(k);
                inputs.push(t);
            }
            Some(10) => {
                text(c, "content", &path, 1, 4000, true)?;
            }
            _ => {
                return Err(err(
                    &format!("{path}type"),
                    "UNION_TYPE_CHOICES",
                    "Value of field \"type\" must be one of (1, 10, 18).",
                ));
            }
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, t) in inputs.iter().enumerate() {
        if seen.contains(&t.custom_id.as_str()) {
            return Err(err(
                &format!("components.{i}"),
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            ));
        }
        seen.push(&t.custom_id);
    }
    Ok(SimModal {
        interaction_id: rec.id,
        user_id: rec.user_id,
        message_id: rec.message_id,
        channel_id: rec.channel_id,
        custom_id,
        title,
        inputs,
        components,
        open: true,
        opened_at: SystemTime::now(),
    })
}

/// The value each input is submitted with: what the spec gave (by custom_id or
/// suffix), else what was pre-filled, else empty; checked as Discord's client checks
/// it before letting the form be sent.
fn values(modal: &SimModal, spec: &ModalSubmitSpec) -> Result<Vec<String>, SimError> {
    for (key, _) in &spec.values {
        if modal.input(key).is_none() {
            return Err(SimError::UnknownModalInput {
                custom_id: modal.custom_id.clone(),
                key: key.clone(),
            });
        }
    }
    modal
        .inputs
        .iter()
        .map(|i| {
            let given = spec
                .values
                .iter()
                .rev()
                .find(|(k, _)| modal.input(k).is_some_and(|f| f.custom_id == i.custom_id))
                .map(|(_, v)| v.clone());
            let v = given.or_else(|| i.value.clone()).unwrap_or_default();
            if i.kind != 4 {
                return Ok(v);
            }
            let n = v.chars().count() as u64;
            let bad = |why: String| SimError::BadModalValue {
                custom_id: i.custom_id.clone(),
                why,
            };
            if n == 0 && i.required {
                return Err(bad("it is required and empty".into()));
            }
            if n > 0
                && let Some(lo) = i.min_length
                && n < lo
            {
                return Err(bad(format!(
                    "it is {n} characters, fewer than min_length {lo}"
                )));
            }
            let hi = i.max_length.unwrap_or(4000);
            if n > hi {
                return Err(bad(format!(
                    "it is {n} characters, more than max_length {hi}"
                )));
            }
            Ok(v)
        })
        .collect()
}

/// The submitted `components`, in the form the modal was opened with.
fn submitted(modal: &SimModal, values: &[String]) -> Vec<Value> {
    let mut n = 0;
    let mut leaf = |k: &Value| {
        let i = n;
        n += 1;
        let v = values.get(i).cloned().unwrap_or_default();
        let custom_id = k.get("custom_id").cloned().unwrap_or(Value::Null);
        match k.get("type").and_then(Value::as_u64) {
            Some(4) => json!({ "type": 4, "id": id_i32(k), "custom_id": custom_id, "value": v }),
            kind => json!({ "type": kind, "id": id_i32(k), "custom_id": custom_id, "values": [] }),
        }
    };
    modal
        .components
        .iter()
        .map(|c| match c.get("type").and_then(Value::as_u64) {
            Some(1) => {
                let kids: Vec<Value> = c
                    .get("components")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(&mut leaf)
                    .collect();
                json!({ "type": 1, "id": id_i32(c), "components": kids })
            }
            Some(18) => {
                let k = c.get("component").cloned().unwrap_or(Value::Null);
                json!({ "type": 18, "id": id_i32(c), "component": leaf(&k) })
            }
            _ => json!({ "type": 10, "id": id_i32(c) }),
        })
        .collect()
}

/// A modal that was never opened, as a forged MODAL_SUBMIT would carry it: each value
/// in an action row under its key as custom_id.
fn forged(spec: &ModalSubmitSpec, channel_id: u64) -> SimModal {
    let mut components = Vec::new();
    let mut inputs = Vec::new();
    for (n, (key, value)) in (1..).step_by(2).zip(&spec.values) {
        components.push(json!({
            "type": 1, "id": n,
            "components": [{ "type": 4, "id": n + 1, "custom_id": key, "style": 1, "label": key, "value": value }],
        }));
        inputs.push(SimTextInput {
            id: n + 1,
            custom_id: key.clone(),
            kind: 4,
            label: Some(key.clone()),
            description: None,
            style: 1,
            value: Some(value.clone()),
            placeholder: None,
            min_length: None,
            max_length: None,
            required: false,
        });
    }
    SimModal {
        interaction_id: 0,
        user_id: spec.user_id,
        message_id: spec.message_id,
        channel_id,
        custom_id: spec.custom_id.clone().unwrap_or_else(|| "forged".into()),
        title: String::new(),
        inputs,
        components,
        open: false,
        opened_at: SystemTime::now(),
    }
}

/// Submit the modal open for `spec.user_id` on `spec.message_id`.
pub(crate) fn submit(
    shared: &Arc<Shared>,
    spec: &ModalSubmitSpec,
) -> Result<InteractionHandle, SimError> {
    let s = &shared.settings;
    let id = shared.ids.next();
    let token = random_hex(32);
    shared.update(|st| {
        if st.current_session.is_none() {
            return Err(SimError::NoSession);
        }
        let message = match spec.message_id {
            Some(m) => Some(st.messages.get(&m).ok_or(SimError::UnknownMessage(m))?),
            None => None,
        };
        let found = st.modals.iter().rposition(|m| {
            m.open
                && m.user_id == spec.user_id
                && m.message_id == spec.message_id
                && spec.custom_id.as_ref().is_none_or(|c| *c == m.custom_id)
        });
        let default_channel = message.map_or(s.channel_id, |m| m.channel_id);
        let modal = match found {
            Some(i) => st.modals[i].clone(),
            None if spec.forged => forged(spec, default_channel),
            None => {
                return Err(SimError::NoOpenModal {
                    user_id: spec.user_id,
                    message_id: spec.message_id,
                });
            }
        };
        let values = if found.is_some() {
            values(&modal, spec)?
        } else {
            spec.values.iter().map(|(_, v)| v.clone()).collect()
        };
        let data = json!({
            "custom_id": modal.custom_id,
            "components": submitted(&modal, &values),
        });
        let parts = InteractionParts {
            id,
            token: token.clone(),
            kind: 5,
            data,
            actor: actor(spec.user_id, &spec.username, &spec.roles, spec.bot),
            place: place(shared, spec.guild, spec.channel_id, modal.channel_id),
            message: message.map(|m| payloads::message(m, s)),
        };
        let d = payloads::interaction(s, &parts);
        send(st, &parts, &d, spec.message_id)?;
        if let Some(i) = found {
            st.modals[i].open = false;
        }
        if let Some(rec) = st.interactions.get_mut(&id) {
            rec.submitted = Some(modal);
        }
        Ok(())
    })?;
    Ok(InteractionHandle::new(Arc::clone(shared), id, token))
}
