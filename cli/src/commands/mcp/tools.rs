//! The tools `keygate mcp` offers, their input schemas, and the three that only read:
//! `list_secrets`, `list_grants`, `request_status`. None of them returns a value; the
//! daemon would not give one on these routes anyway.

use std::sync::Arc;

use keygate_proto::api::{AskableSecret, GrantView, RequestView};
use keygate_proto::{RequestId, SecretName};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::client::Client;
use crate::failure::Failure;

/// Every tool, as `tools/list` shows them.
pub fn all() -> Vec<Tool> {
    let read_only = || {
        let mut a = ToolAnnotations::new();
        a.read_only_hint = Some(true);
        a.open_world_hint = Some(false);
        a
    };
    vec![
        Tool::new(
            "run_with_secrets",
            "Run a command with secrets in its environment, after a human approves (this can take minutes). \
             You never see a value: the command gets them as environment variables, and every value in its \
             stdout and stderr comes back as <keygate:NAME>. Returns the approval decision (who denied it \
             and why, when denied) apart from the command's exit code, and each output stream cut at 64 KiB. \
             The approval is bound to this exact argv.",
            schema(json!({
                "type": "object",
                "properties": {
                    "command": {
                        "type": "array", "items": {"type": "string"}, "minItems": 1,
                        "description": "The argv to run, such as [\"gh\", \"pr\", \"list\"]; no shell unless you name one."
                    },
                    "secrets": {
                        "type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1,
                        "description": "Environment variable → secret name, such as {\"GH_TOKEN\": \"github/token\"}."
                    },
                    "reason": {
                        "type": "string", "minLength": 1,
                        "description": "Why you need it; shown to the human who approves."
                    },
                    "ttl": {"type": "string", "description": "How long the grant should live, such as \"10m\" (cut to the policy's maximum)."},
                    "timeout": {"type": "string", "description": "Give up waiting for approval after this long, such as \"5m\"."},
                    "cwd": {"type": "string", "description": "The directory to run the command in."}
                },
                "required": ["command", "secrets", "reason"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "list_secrets",
            "The names of the secrets you may ask for, each with what the policy says: `allow` (no approval \
             needed) or `ask` (a human approves each request). Never a value.",
            no_input(),
        )
        .with_annotations(read_only()),
        Tool::new(
            "list_grants",
            "Your live grants: id, secrets, when each ends (expires_at) and who approved it.",
            no_input(),
        )
        .with_annotations(read_only()),
        Tool::new(
            "request_status",
            "The status of one of your requests (pending, approved, denied, expired, cancelled), and who decided.",
            schema(json!({
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The request's id, req_…"}},
                "required": ["id"],
                "additionalProperties": false
            })),
        )
        .with_annotations(read_only()),
    ]
}

fn schema(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(o) => Arc::new(o),
        _ => Arc::new(JsonObject::new()),
    }
}

fn no_input() -> Arc<JsonObject> {
    schema(json!({"type": "object", "properties": {}, "additionalProperties": false}))
}

/// A tool error the model can act on: the result has `isError`, its text says what
/// went wrong, and its structured content names the kind (`invalid_input`,
/// `unreachable`, …).
pub fn error(kind: &str, message: &str) -> CallToolResult {
    let mut r = CallToolResult::structured_error(json!({"error": kind, "message": message}));
    r.content = vec![ContentBlock::text(format!("error: {message}"))];
    r
}

/// A failure of a call to the daemon, as a tool error.
pub fn failed(f: &Failure) -> CallToolResult {
    use crate::failure::Exit;
    let kind = match f.exit {
        Exit::Unreachable => "unreachable",
        Exit::Auth => "not_allowed",
        Exit::Usage => "invalid_input",
        Exit::Denied => "denied",
        Exit::Timeout => "timeout",
        Exit::Interrupted => "cancelled",
        Exit::Error => "error",
    };
    error(kind, &f.message)
}

/// Refuses arguments other than `allowed`.
pub fn only(args: &JsonObject, allowed: &[&str]) -> Result<(), String> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) if allowed.is_empty() => Err(format!("this tool takes no arguments (got `{k}`)")),
        Some(k) => Err(format!(
            "unknown argument `{k}`; this tool takes {}",
            allowed.join(", ")
        )),
    }
}

/// A result whose structured content is `value` and whose text is `text`.
fn ok(text: String, value: Value) -> CallToolResult {
    let mut r = CallToolResult::structured(value);
    r.content = vec![ContentBlock::text(text)];
    r
}

pub async fn list_secrets(client: &Client, args: &JsonObject) -> CallToolResult {
    if let Err(m) = only(args, &[]) {
        return error("invalid_input", &m);
    }
    match client.get::<Vec<AskableSecret>>("/v1/policy/secrets").await {
        Ok(list) => {
            let text = if list.is_empty() {
                "no secret you may ask for".to_owned()
            } else {
                list.iter()
                    .map(|s| format!("{} ({})", s.name, s.decision))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let items: Vec<Value> = list
                .iter()
                .map(|s| json!({"name": s.name, "decision": s.decision}))
                .collect();
            ok(text, json!({ "secrets": items }))
        }
        Err(e) => failed(&e.failure),
    }
}

pub async fn list_grants(client: &Client, args: &JsonObject) -> CallToolResult {
    if let Err(m) = only(args, &[]) {
        return error("invalid_input", &m);
    }
    match client.get::<Vec<GrantView>>("/v1/grants").await {
        Ok(list) => {
            let text = if list.is_empty() {
                "no live grant".to_owned()
            } else {
                list.iter()
                    .map(|g| {
                        let secrets: Vec<&str> = g.secrets.iter().map(SecretName::as_str).collect();
                        format!(
                            "{}: {} until {}, approved by {}",
                            g.id,
                            secrets.join(", "),
                            g.expires_at,
                            g.approved_by.join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let items: Vec<Value> = list
                .iter()
                .map(|g| {
                    json!({
                        "id": g.id, "secrets": g.secrets, "expires_at": g.expires_at,
                        "approved_by": g.approved_by,
                    })
                })
                .collect();
            ok(text, json!({ "grants": items }))
        }
        Err(e) => failed(&e.failure),
    }
}

pub async fn request_status(client: &Client, args: &JsonObject) -> CallToolResult {
    if let Err(m) = only(args, &["id"]) {
        return error("invalid_input", &m);
    }
    let id = match args.get("id") {
        Some(Value::String(s)) => match RequestId::parse(s) {
            Ok(id) => id,
            Err(e) => return error("invalid_input", &format!("id: {e}")),
        },
        Some(_) => return error("invalid_input", "id must be a string, such as \"req_…\""),
        None => return error("invalid_input", "name the request: {\"id\": \"req_…\"}"),
    };
    match client
        .get::<RequestView>(&format!("/v1/requests/{id}"))
        .await
    {
        Ok(view) => {
            let value = request_json(&view);
            let status = value["status"].as_str().unwrap_or_default().to_owned();
            let text = match &view.decided_by {
                Some(by) => format!("{id}: {status} by {}", crate::output::harmless(by)),
                None => format!("{id}: {status}"),
            };
            ok(text, value)
        }
        Err(e) => failed(&e.failure),
    }
}

/// What a tool tells of a request.
pub fn request_json(view: &RequestView) -> Value {
    let mut v = json!({
        "id": view.id,
        "status": view.status,
        "secrets": view.secrets,
        "created_at": view.created_at,
        "expires_at": view.expires_at,
    });
    if let Some(by) = &view.decided_by {
        v["decided_by"] = json!(by);
    }
    if let Some(reason) = &view.denial_reason {
        v["denial_reason"] = json!(reason);
    }
    if let Some(m) = &view.message {
        v["message"] = json!(m);
    }
    if let Some(g) = &view.grant {
        v["grant"] = json!({"id": g.id, "expires_at": g.expires_at});
    }
    v
}
