//! The serde shape of `policies.toml`, exactly as written, before any meaning is given to it.
//!
//! Every struct refuses unknown keys: a misspelt `max_tll` that was silently ignored would
//! hand out grants longer than the operator meant. Values stay strings (durations, Discord
//! ids) and are wrapped in [`Spanned`] so that [`crate::compile`] can point at the exact
//! place in the file when it refuses them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file. Every table is optional: an empty file is a valid policy that denies
/// everything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a policy file")]
pub(crate) struct PolicyFile {
    #[serde(default)]
    pub defaults: Option<Spanned<DefaultsFile>>,
    #[serde(default)]
    pub approvers: BTreeMap<Spanned<String>, Spanned<GroupFile>>,
    /// `[[rule]]`, in file order: the order is the meaning (first match wins).
    #[serde(default)]
    pub rule: Vec<Spanned<RuleFile>>,
}

/// `[defaults]`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table of `request_timeout`, `ttl` and `max_ttl`"
)]
pub(crate) struct DefaultsFile {
    pub request_timeout: Option<Spanned<String>>,
    pub ttl: Option<Spanned<String>>,
    pub max_ttl: Option<Spanned<String>>,
}

/// `[approvers.NAME]`. Ids are strings because Discord's snowflakes are, and because many
/// tools that write TOML or JSON lose precision on integers this large.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of `users` and `roles`")]
pub(crate) struct GroupFile {
    pub users: Option<Spanned<Vec<Spanned<String>>>>,
    pub roles: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[rule]] table")]
pub(crate) struct RuleFile {
    pub name: Spanned<String>,
    pub agents: Spanned<Vec<Spanned<String>>>,
    pub secrets: Spanned<Vec<Spanned<String>>>,
    pub action: Spanned<ActionFile>,
    pub approvers: Option<Spanned<Vec<Spanned<String>>>>,
    /// Read wide so that `quorum = -1` gets our message rather than a type error.
    pub quorum: Option<Spanned<i64>>,
    pub ttl: Option<Spanned<String>>,
    pub max_ttl: Option<Spanned<String>>,
    pub request_timeout: Option<Spanned<String>>,
    pub reuse: Option<Spanned<bool>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ActionFile {
    Ask,
    Allow,
    Deny,
}
