//! How a request looks in Discord: one embed that names the agent, the secrets, the
//! reason, the TTL, where it came from, the request id and when it expires (as a Discord
//! timestamp), with Approve / Deny buttons while it is pending, and colour-coded outcome,
//! who decided and when the grant ends afterwards. Never a secret value: there is none
//! to render.

use std::time::Duration;

use keygate_proto::api::{RequestStatus, RequestView};
use twilight_model::channel::message::Embed;
use twilight_model::channel::message::component::{ActionRow, ButtonStyle, Component};
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder};
use twilight_util::builder::message::ButtonBuilder;

use crate::buttons;
use crate::escape::inert;

const AMBER: u32 = 0x00F1_C40F;
const GREEN: u32 = 0x002E_CC71;
const RED: u32 = 0x00E7_4C3C;
const GREY: u32 = 0x0095_A5A6;

/// A grant's end, once it has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantEnd {
    Expired,
    Revoked,
}

/// A message's embeds and components.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub embeds: Vec<Embed>,
    pub components: Vec<Component>,
}

/// `2026-01-01T00:00:00Z` → `<t:1767225600:R>` (Discord shows it in the reader's zone).
fn discord_time(rfc3339: &str, style: char) -> String {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(
            || inert(rfc3339, 40),
            |d| format!("<t:{}:{style}>", d.as_secs()),
        )
}

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// Renders a request as it stands, and the end of its grant if it has ended.
pub fn request(view: &RequestView, ended: Option<&GrantEnd>) -> Rendered {
    let secrets: Vec<String> = view
        .secrets
        .iter()
        .map(|s| inert(s.as_str(), 128))
        .collect();
    let ttl = human(Duration::from_secs(view.ttl_seconds));
    let (color, title) = match (view.status, ended) {
        (RequestStatus::Approved, Some(GrantEnd::Expired)) => (GREY, "⌛ Grant expired"),
        (RequestStatus::Approved, Some(GrantEnd::Revoked)) => (GREY, "🚫 Grant revoked"),
        (RequestStatus::Approved, None) => (GREEN, "✅ Approved"),
        (RequestStatus::Pending, _) => (AMBER, "🔐 Approval needed"),
        (RequestStatus::Denied, _) => (RED, "⛔ Denied"),
        (RequestStatus::Expired, _) => (GREY, "⌛ Expired: no decision in time"),
        (RequestStatus::Cancelled, _) => (GREY, "↩️ Cancelled by the agent"),
    };
    let mut embed = EmbedBuilder::new()
        .title(format!("{title}: {}", secrets.join(", ")))
        .color(color)
        .field(EmbedFieldBuilder::new("Agent", inert(view.agent.as_str(), 64)).inline())
        .field(
            EmbedFieldBuilder::new(
                if secrets.len() == 1 {
                    "Secret"
                } else {
                    "Secrets"
                },
                secrets.join("\n"),
            )
            .inline(),
        )
        .field(EmbedFieldBuilder::new("TTL", ttl).inline())
        .field(EmbedFieldBuilder::new("Reason", inert(&view.reason, 500)));
    if let Some(command) = &view.command {
        embed = embed.field(EmbedFieldBuilder::new(
            "Command",
            format!("`{}`", inert(&command.join(" "), 400).replace('`', "'")),
        ));
    }
    if let Some(host) = &view.host {
        embed = embed.field(EmbedFieldBuilder::new("From", inert(host, 100)).inline());
    }
    if let Some(rule) = &view.rule {
        embed = embed.field(EmbedFieldBuilder::new("Rule", inert(rule, 100)).inline());
    }
    if view.status == RequestStatus::Pending {
        embed = embed
            .field(EmbedFieldBuilder::new("Expires", discord_time(&view.expires_at, 'R')).inline());
        if view.quorum > 1 {
            let so_far = if view.approvals.is_empty() {
                "none yet".to_owned()
            } else {
                view.approvals
                    .iter()
                    .map(|a| inert(a, 80))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            embed = embed.field(EmbedFieldBuilder::new(
                "Approvals",
                format!("{} of {} ({so_far})", view.approvals.len(), view.quorum),
            ));
        }
    } else {
        let who = match (view.status, view.approvals.is_empty()) {
            (RequestStatus::Approved, false) => view.approvals.join(", "),
            _ => view.decided_by.clone().unwrap_or_else(|| "keygate".into()),
        };
        let label = match view.status {
            RequestStatus::Approved => "Approved by",
            RequestStatus::Denied => "Denied by",
            RequestStatus::Cancelled => "Cancelled by",
            _ => "Ended by",
        };
        if view.status != RequestStatus::Expired {
            embed = embed.field(EmbedFieldBuilder::new(label, inert(&who, 200)).inline());
        }
        if let Some(at) = &view.decided_at {
            embed = embed.field(EmbedFieldBuilder::new("When", discord_time(at, 'f')).inline());
        }
        if let Some(grant) = &view.grant {
            let name = match ended {
                Some(GrantEnd::Expired) => "Grant ended",
                Some(GrantEnd::Revoked) => "Grant revoked",
                None => "Grant ends",
            };
            let when = if ended == Some(&GrantEnd::Revoked) {
                "now".to_owned()
            } else {
                discord_time(&grant.expires_at, 'R')
            };
            embed = embed.field(EmbedFieldBuilder::new(name, when).inline());
        }
        if view.status == RequestStatus::Denied
            && let Some(m) = &view.message
        {
            embed = embed.field(EmbedFieldBuilder::new("Why", inert(m, 300)));
        }
    }
    let footer = format!("request {}", view.id);
    let embed = embed.footer(EmbedFooterBuilder::new(footer)).build();
    Rendered {
        embeds: vec![embed],
        components: if view.status == RequestStatus::Pending {
            buttons_for(view)
        } else {
            Vec::new()
        },
    }
}

fn buttons_for(view: &RequestView) -> Vec<Component> {
    let approve = ButtonBuilder::new(ButtonStyle::Success)
        .label("Approve")
        .custom_id(buttons::approve(&view.id, None))
        .build();
    let deny = ButtonBuilder::new(ButtonStyle::Danger)
        .label("Deny")
        .custom_id(buttons::deny(&view.id))
        .build();
    let mut rows = vec![Component::ActionRow(ActionRow {
        id: None,
        components: vec![Component::Button(approve), Component::Button(deny)],
    })];
    let shorter: Vec<Component> = buttons::SHORTER_TTLS
        .iter()
        .filter(|t| t.as_secs() < view.ttl_seconds)
        .map(|t| {
            Component::Button(
                ButtonBuilder::new(ButtonStyle::Secondary)
                    .label(format!("Approve for {}", human(*t)))
                    .custom_id(buttons::approve(&view.id, Some(*t)))
                    .build(),
            )
        })
        .collect();
    if !shorter.is_empty() {
        rows.push(Component::ActionRow(ActionRow {
            id: None,
            components: shorter,
        }));
    }
    rows
}
