//! How a request looks in Discord: one embed that names the agent, the secrets, the
//! reason, the TTL, where it came from, the request id and when it expires (as a Discord
//! timestamp), with Approve / Deny buttons while it is pending, and the outcome, who
//! decided (with the notes they wrote in the Approve… form) and when the grant ends
//! afterwards, with Revoke / Extend buttons while the grant lives. The embed's colour is
//! the state's (see [`AMBER`]). The approvers to notify are mentioned in the message's
//! content (mentions in embeds never notify), and `allowed_mentions` names exactly them.
//! Never a secret value: there is none to render.

use std::time::Duration;

use keygate_proto::Timestamp;
use keygate_proto::api::{GrantRef, RequestStatus, RequestView};
use keygate_proto::approval::Mentions;
use twilight_model::channel::message::component::{ActionRow, ButtonStyle, Component};
use twilight_model::channel::message::embed::EmbedField;
use twilight_model::channel::message::{AllowedMentions, Embed};
use twilight_model::id::Id;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder};
use twilight_util::builder::message::ButtonBuilder;
use twilight_validate::embed as embed_limits;

use crate::buttons;
use crate::escape::inert;

/// The embed's colour bar, one per state, so a phone's list of messages reads at a
/// glance: amber waits for someone, green is a live grant, orange a grant ending soon,
/// red denied, grey over (expired, revoked, cancelled).
pub const AMBER: u32 = 0x00F1_C40F;
pub const GREEN: u32 = 0x002E_CC71;
pub const ORANGE: u32 = 0x00E6_7E22;
pub const RED: u32 = 0x00E7_4C3C;
pub const GREY: u32 = 0x0095_A5A6;

pub use keygate_proto::approval::GrantEnd;

/// A message's embeds and components, and whom it may notify (set by whoever knows the
/// message's approvers; nobody by default).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub embeds: Vec<Embed>,
    pub components: Vec<Component>,
    pub allowed_mentions: AllowedMentions,
}

/// What a message shows beyond its request: who revoked the grant from Discord, whether
/// the live grant is ending soon, and the notes approvers wrote in the Approve… form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Note {
    pub revoked_by: Option<String>,
    pub ending_soon: bool,
    /// (who, what they wrote), in the order they approved.
    pub approval_notes: Vec<(String, String)>,
}

/// The content that notifies `m` (`<@user>` and `<@&role>`, nothing a requester wrote),
/// and the `allowed_mentions` that lets exactly those through: `parse` stays empty, so
/// `@everyone`, `@here` and any other mention stay silent. Nobody to notify: no content.
pub fn mentions(m: &Mentions) -> (String, AllowedMentions) {
    let users: Vec<_> = m
        .users
        .iter()
        .filter_map(|u| Id::new_checked(u.0))
        .collect();
    let roles: Vec<_> = m
        .roles
        .iter()
        .filter_map(|r| Id::new_checked(r.0))
        .collect();
    let tags: Vec<String> = users
        .iter()
        .map(|u| format!("<@{u}>"))
        .chain(roles.iter().map(|r| format!("<@&{r}>")))
        .collect();
    let content = if tags.is_empty() {
        String::new()
    } else {
        format!("Approvers: {}", tags.join(" "))
    };
    let allowed = AllowedMentions {
        users,
        roles,
        ..AllowedMentions::default()
    };
    (content, allowed)
}

/// `2026-01-01T00:00:00Z` → `<t:1767225600:R>` (Discord shows it in the reader's zone).
pub(crate) fn discord_time(t: Timestamp, style: char) -> String {
    format!("<t:{}:{style}>", t.unix_seconds())
}

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// Discord's limits on an embed (twilight-validate has the same numbers and checks them
/// before a message leaves; the tests below run every rendering through it).
const TITLE_MAX: usize = embed_limits::TITLE_LENGTH;
const FIELD_NAME_MAX: usize = embed_limits::FIELD_NAME_LENGTH;
const FIELD_VALUE_MAX: usize = embed_limits::FIELD_VALUE_LENGTH;
const FIELD_COUNT_MAX: usize = embed_limits::FIELD_COUNT;
const EMBED_MAX: usize = embed_limits::EMBED_TOTAL_LENGTH;

/// How much of each requester-supplied text is shown, in characters after escaping.
/// Together they leave most of the embed to the secret names (see [`secret_fields`]).
const AGENT_SHOWN: usize = 160;
const REASON_SHOWN: usize = FIELD_VALUE_MAX;
const COMMAND_SHOWN: usize = 500;
const HOST_SHOWN: usize = 200;
const RULE_SHOWN: usize = 200;
const PEOPLE_SHOWN: usize = 300;
const WHY_SHOWN: usize = 600;
/// An approver's note (at most 200 characters typed; escaping may double them).
const NOTE_SHOWN: usize = 400;

/// A secret name as code: names are `a-z 0-9 . _ - /` (no backtick can end the span
/// early), and inside a code span `_` needs no escape, so a name costs its length + 2.
/// Anything else (which a valid name never is) is escaped instead.
fn secret_shown(name: &str) -> String {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
    if plain && !name.is_empty() {
        format!("`{name}`")
    } else {
        inert(name, 2 * 128)
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Lines packed into fields of at most [`FIELD_VALUE_MAX`] characters each.
fn pack(lines: &[String], title: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in lines {
        match fields.last_mut() {
            Some((_, v)) if chars(v) + 1 + chars(line) <= FIELD_VALUE_MAX => {
                v.push('\n');
                v.push_str(line);
            }
            _ => {
                let name = if fields.is_empty() {
                    title.to_owned()
                } else {
                    format!("{title} (continued)")
                };
                fields.push((name, line.clone()));
            }
        }
    }
    fields
}

/// The secrets, one per line, in as many fields as the room left allows (`budget`
/// characters, at most `max_fields` fields). What does not fit is counted, never
/// silently dropped: the last line says how many more the request names.
fn secret_fields(names: &[String], budget: usize, max_fields: usize) -> Vec<EmbedField> {
    let title = if names.len() == 1 {
        "Secret"
    } else {
        "Secrets"
    };
    let more = |n: usize| format!("… and {n} more (`keygate requests` lists them all)");
    let fitting = (0..=names.len()).rev().find_map(|shown| {
        let mut lines: Vec<String> = names[..shown].iter().map(|n| secret_shown(n)).collect();
        if shown < names.len() {
            lines.push(more(names.len() - shown));
        }
        let fields = pack(&lines, title);
        let cost: usize = fields.iter().map(|(n, v)| chars(n) + chars(v)).sum();
        (fields.len() <= max_fields && cost <= budget).then_some(fields)
    });
    fitting
        .unwrap_or_else(|| vec![(title.to_owned(), more(names.len()))])
        .into_iter()
        .map(|(name, value)| EmbedFieldBuilder::new(name, value).inline().build())
        .collect()
}

/// Renders a request as it stands, and the end of its grant if it has ended.
///
/// Whatever the request holds — 32 names of 128 characters, a reason of 1000 markdown
/// characters, a long command — the result stays within Discord's limits: each text is
/// cut (after escaping, with a mark) to its share, the request id is never cut, and the
/// secret names get the room that is left.
pub fn request(view: &RequestView, ended: Option<&GrantEnd>) -> Rendered {
    request_with(view, ended, &Note::default())
}

/// [`request`], with what the message notes beyond the request.
pub fn request_with(view: &RequestView, ended: Option<&GrantEnd>, note: &Note) -> Rendered {
    let names: Vec<String> = view.secrets.iter().map(|s| s.as_str().to_owned()).collect();
    let ttl = human(Duration::from_secs(view.ttl_seconds));
    let (color, title) = match (view.status, ended) {
        (RequestStatus::Approved, Some(GrantEnd::Expired)) => (GREY, "⌛ Grant expired"),
        (RequestStatus::Approved, Some(GrantEnd::Revoked)) => (GREY, "🚫 Grant revoked"),
        (RequestStatus::Approved, None) if note.ending_soon => (ORANGE, "⏳ Approved, ending soon"),
        (RequestStatus::Approved, None) => (GREEN, "✅ Approved"),
        (RequestStatus::Pending, _) => (AMBER, "🔐 Approval needed"),
        (RequestStatus::Denied, _) => (RED, "⛔ Denied"),
        (RequestStatus::Expired, _) => (GREY, "⌛ Expired: no decision in time"),
        (RequestStatus::Cancelled, _) => (GREY, "↩️ Cancelled by the agent"),
    };
    let title = format!(
        "{title}: {}",
        inert(&names.join(", "), TITLE_MAX - chars(title) - 2)
    );
    let mut fields = vec![
        EmbedFieldBuilder::new("Agent", inert(view.agent.as_str(), AGENT_SHOWN))
            .inline()
            .build(),
        EmbedFieldBuilder::new("TTL", ttl).inline().build(),
        EmbedFieldBuilder::new("Reason", inert(&view.reason, REASON_SHOWN)).build(),
    ];
    let mut add = |name: &str, value: String, inline: bool| {
        let field = EmbedFieldBuilder::new(name, value);
        fields.push(if inline { field.inline() } else { field }.build());
    };
    if let Some(command) = &view.command {
        // Only as much of the argv as can be shown is joined (it may be 1 MiB).
        let mut joined = String::new();
        for arg in command {
            if joined.len() > 4 * COMMAND_SHOWN {
                break;
            }
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.extend(arg.chars().take(4 * COMMAND_SHOWN));
        }
        let shown = inert(&joined, COMMAND_SHOWN - 2).replace('`', "'");
        add("Command", format!("`{shown}`"), false);
    }
    if let Some(host) = &view.host {
        add("From", inert(host, HOST_SHOWN), true);
    }
    if let Some(rule) = &view.rule {
        add("Rule", inert(rule, RULE_SHOWN), true);
    }
    if view.status == RequestStatus::Pending {
        add("Expires", discord_time(view.expires_at, 'R'), true);
        if view.quorum > 1 {
            let so_far = if view.approvals.is_empty() {
                "none yet".to_owned()
            } else {
                inert(&view.approvals.join(", "), PEOPLE_SHOWN)
            };
            add(
                "Approvals",
                format!("{} of {} ({so_far})", view.approvals.len(), view.quorum),
                false,
            );
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
            add(label, inert(&who, PEOPLE_SHOWN), true);
        }
        if let Some(at) = view.decided_at {
            add("When", discord_time(at, 'f'), true);
        }
        if let Some(who) = note.revoked_by.as_deref()
            && ended == Some(&GrantEnd::Revoked)
        {
            add("Revoked by", inert(who, PEOPLE_SHOWN), true);
        }
        if let Some(grant) = &view.grant {
            let name = match ended {
                Some(GrantEnd::Expired) => "Grant ended",
                Some(GrantEnd::Revoked) => "Grant revoked",
                None if note.ending_soon => "Ending soon",
                None => "Grant ends",
            };
            let when = if ended == Some(&GrantEnd::Revoked) {
                "now".to_owned()
            } else {
                discord_time(grant.expires_at, 'R')
            };
            add(name, when, true);
        }
        if view.status == RequestStatus::Denied
            && let Some(m) = &view.message
        {
            add("Why", inert(m, WHY_SHOWN), false);
        }
    }
    // Last, beside who approved: what the approvers wrote.
    if !note.approval_notes.is_empty() {
        add(
            if note.approval_notes.len() == 1 {
                "Note"
            } else {
                "Notes"
            },
            approval_notes(&note.approval_notes),
            false,
        );
    }
    // Never cut: the request id is how a person finds the request elsewhere.
    let footer = format!("request {}", view.id);
    let used = chars(&title)
        + chars(&footer)
        + fields
            .iter()
            .map(|f| chars(&f.name) + chars(&f.value))
            .sum::<usize>();
    let secrets = secret_fields(
        &names,
        EMBED_MAX.saturating_sub(used),
        FIELD_COUNT_MAX.saturating_sub(fields.len()),
    );
    // Agent, then the secrets, then the rest, as before.
    let rest = fields.split_off(1);
    fields.extend(secrets);
    fields.extend(rest);
    let mut embed = EmbedBuilder::new().title(title).color(color);
    for field in fields {
        embed = embed.field(field);
    }
    let embed = embed.footer(EmbedFooterBuilder::new(footer)).build();
    debug_assert!(twilight_validate::embed::embed(&embed).is_ok());
    debug_assert!(chars(embed.title.as_deref().unwrap_or_default()) <= TITLE_MAX);
    debug_assert!(
        embed
            .fields
            .iter()
            .all(|f| chars(&f.name) <= FIELD_NAME_MAX)
    );
    Rendered {
        embeds: vec![embed],
        components: match (view.status, &view.grant, ended) {
            (RequestStatus::Pending, _, _) => buttons_for(view),
            (RequestStatus::Approved, Some(grant), None) => grant_buttons(grant),
            _ => Vec::new(),
        },
        allowed_mentions: AllowedMentions::default(),
    }
}

/// The approvers' notes, one a line as `who: note`, both made inert; within one field
/// (a quorum's worth of 200-character notes fits; more are counted, not dropped).
fn approval_notes(notes: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (who, text)) in notes.iter().enumerate() {
        let line = format!("{}: {}", inert(who, 80), inert(text, NOTE_SHOWN));
        // Room for this line, and for the count of any after it.
        let after = notes.len() - i - 1;
        let reserve = if after > 0 { 16 } else { 0 };
        if chars(&out) + 1 + chars(&line) + reserve > FIELD_VALUE_MAX {
            out.push_str("\n… and ");
            out.push_str(&(notes.len() - i).to_string());
            out.push_str(" more");
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&line);
    }
    out
}

/// A live grant's controls: a red Revoke and a grey Extend.
fn grant_buttons(grant: &GrantRef) -> Vec<Component> {
    let revoke = ButtonBuilder::new(ButtonStyle::Danger)
        .label("Revoke")
        .custom_id(buttons::revoke(&grant.id))
        .build();
    let extend = ButtonBuilder::new(ButtonStyle::Secondary)
        .label("Extend")
        .custom_id(buttons::extend(&grant.id))
        .build();
    vec![Component::ActionRow(ActionRow {
        id: None,
        components: vec![Component::Button(revoke), Component::Button(extend)],
    })]
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
    let approve_form = ButtonBuilder::new(ButtonStyle::Primary)
        .label("Approve…")
        .custom_id(buttons::approve_form(&view.id))
        .build();
    let deny_form = ButtonBuilder::new(ButtonStyle::Secondary)
        .label("Deny…")
        .custom_id(buttons::deny_form(&view.id))
        .build();
    let mut rows = vec![Component::ActionRow(ActionRow {
        id: None,
        components: vec![
            Component::Button(approve),
            Component::Button(approve_form),
            Component::Button(deny),
            Component::Button(deny_form),
        ],
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

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_proto::{AgentName, GrantId, RequestId, SecretName};
    use proptest::prelude::*;

    const STATUSES: [RequestStatus; 5] = [
        RequestStatus::Pending,
        RequestStatus::Approved,
        RequestStatus::Denied,
        RequestStatus::Expired,
        RequestStatus::Cancelled,
    ];

    /// A 128-character secret name that is nearly all `_` (each escapes to two).
    fn long_name(i: usize) -> SecretName {
        SecretName::new(format!("a{}{i:02}", "_".repeat(125))).unwrap()
    }

    fn view(secrets: Vec<SecretName>, status: RequestStatus, text: &str) -> RequestView {
        let long = |n: usize| text.chars().cycle().take(n).collect::<String>();
        let at = |s: &str| Timestamp::parse(s).unwrap();
        RequestView {
            id: RequestId::random(),
            agent: AgentName::new(format!("a{}", "_".repeat(63))).unwrap(),
            secrets,
            reason: long(1000),
            status,
            created_at: at("2026-01-01T00:00:00Z"),
            expires_at: at("2026-01-01T00:05:00Z"),
            ttl_seconds: 366 * 24 * 3600,
            quorum: 40,
            approvals: vec![long(100); 40],
            decided_by: Some(long(500)),
            decided_via: Some("discord".into()),
            decided_at: Some(at("2026-01-01T00:01:00Z")),
            message: Some(long(1000)),
            denial_reason: Some(long(400)),
            grant: Some(GrantRef {
                id: GrantId::random(),
                expires_at: at("2026-01-01T00:20:00Z"),
            }),
            rule: Some(long(1000)),
            posted_to: vec!["discord".into()],
            command: Some(vec![long(4096); 256]),
            host: Some(long(255)),
        }
    }

    /// Discord would take it: twilight-validate's checks, the ones twilight-http runs
    /// before sending, and the request id whole in the footer.
    fn assert_postable(v: &RequestView, ended: Option<&GrantEnd>) -> Rendered {
        let r = request(v, ended);
        twilight_validate::message::embeds(&r.embeds).unwrap();
        for e in &r.embeds {
            twilight_validate::embed::embed(e).unwrap();
        }
        twilight_validate::message::components(&r.components, false).unwrap();
        let footer = &r.embeds[0].footer.as_ref().unwrap().text;
        assert!(footer.contains(v.id.as_str()), "{footer}");
        r
    }

    fn all_text(r: &Rendered) -> String {
        let e = &r.embeds[0];
        let mut s = e.title.clone().unwrap_or_default();
        for f in &e.fields {
            s.push('\n');
            s.push_str(&f.name);
            s.push('\n');
            s.push_str(&f.value);
        }
        s
    }

    #[test]
    fn maximal_requests_fit_discords_limits() {
        for text in ["_", "@", "a_*`\\|~[]#>-", "\u{1F512}"] {
            for status in STATUSES {
                for n in [1, 8, 32] {
                    let v = view((0..n).map(long_name).collect(), status, text);
                    for ended in [None, Some(GrantEnd::Expired), Some(GrantEnd::Revoked)] {
                        assert_postable(&v, ended.as_ref());
                    }
                }
            }
        }
    }

    #[test]
    fn one_long_name_is_shown_whole_and_names_that_do_not_fit_are_counted() {
        let name = long_name(7);
        let v = view(vec![name.clone()], RequestStatus::Pending, "x");
        let r = assert_postable(&v, None);
        assert!(all_text(&r).contains(&format!("`{name}`")), "shown whole");
        let v = view(
            (0..32).map(long_name).collect(),
            RequestStatus::Pending,
            "_",
        );
        let text = all_text(&assert_postable(&v, None));
        let shown = (0..32)
            .filter(|i| text.contains(&format!("`{}`", long_name(*i))))
            .count();
        assert!(shown >= 16, "only {shown} shown");
        assert!(
            text.contains(&format!("… and {} more", 32 - shown)),
            "{shown} shown, the rest not counted"
        );
        // Short names all fit.
        let short: Vec<SecretName> = (0..32)
            .map(|i| SecretName::new(format!("team/app-{i}/token")).unwrap())
            .collect();
        let v = view(short.clone(), RequestStatus::Pending, "_");
        let text = all_text(&assert_postable(&v, None));
        assert!(short.iter().all(|s| text.contains(s.as_str())));
        assert!(!text.contains("more (`keygate requests`"));
    }

    #[test]
    fn a_live_grant_has_revoke_and_extend_and_an_ended_one_none() {
        let v = view(vec![long_name(1)], RequestStatus::Approved, "x");
        let gid = v.grant.as_ref().unwrap().id.clone();
        let r = assert_postable(&v, None);
        let Component::ActionRow(row) = &r.components[0] else {
            panic!("a row")
        };
        let ids: Vec<_> = row
            .components
            .iter()
            .map(|c| match c {
                Component::Button(b) => (b.style, b.custom_id.clone().unwrap()),
                _ => panic!("a button"),
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                (ButtonStyle::Danger, buttons::revoke(&gid)),
                (ButtonStyle::Secondary, buttons::extend(&gid))
            ]
        );
        for ended in [GrantEnd::Expired, GrantEnd::Revoked] {
            assert!(assert_postable(&v, Some(&ended)).components.is_empty());
        }
        let soon = Note {
            ending_soon: true,
            ..Note::default()
        };
        assert!(all_text(&request_with(&v, None, &soon)).contains("ending soon"));
        let by = Note {
            revoked_by: Some("@ops".into()),
            ..Note::default()
        };
        let text = all_text(&request_with(&v, Some(&GrantEnd::Revoked), &by));
        assert!(
            text.contains("Revoked by") && text.contains("ops"),
            "{text}"
        );
    }

    #[test]
    fn an_approvers_note_is_shown_inert_beside_them() {
        let v = view(vec![long_name(1)], RequestStatus::Approved, "x");
        let note = Note {
            approval_notes: vec![("@ops (1)".into(), "<@2> @everyone **now**".into())],
            ..Note::default()
        };
        let r = request_with(&v, None, &note);
        let field = r.embeds[0]
            .fields
            .iter()
            .find(|f| f.name == "Note")
            .expect("a Note field");
        assert_eq!(
            field.value,
            "@\u{200B}ops (1): <\u{200B}@\u{200B}2> @\u{200B}everyone \\*\\*now\\*\\*"
        );
        // Many long notes stay in one field, the rest counted.
        let many = Note {
            approval_notes: (0..10)
                .map(|i| (format!("@p{i}"), "_".repeat(200)))
                .collect(),
            ..Note::default()
        };
        let r = request_with(&v, None, &many);
        let field = r.embeds[0]
            .fields
            .iter()
            .find(|f| f.name == "Notes")
            .unwrap();
        assert!(field.value.chars().count() <= FIELD_VALUE_MAX);
        assert!(field.value.ends_with("… and 8 more"), "{}", field.value);
    }

    #[test]
    fn mentions_name_exactly_the_approvers() {
        use keygate_proto::{RoleId, UserId};
        let (content, allowed) = mentions(&Mentions {
            users: vec![UserId(1), UserId(2)],
            roles: vec![RoleId(3)],
        });
        assert_eq!(content, "Approvers: <@1> <@2> <@&3>");
        assert!(allowed.parse.is_empty());
        assert_eq!(allowed.users.len(), 2);
        assert_eq!(allowed.roles.len(), 1);
        let (content, allowed) = mentions(&Mentions::default());
        assert!(content.is_empty());
        assert_eq!(allowed, AllowedMentions::default());
    }

    fn names() -> impl Strategy<Value = Vec<SecretName>> {
        prop::collection::vec(
            "[a-z0-9][a-z0-9._/-]{0,127}".prop_filter_map("valid", |s| SecretName::new(s).ok()),
            1..=32,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_valid_request_is_postable(
            secrets in names(),
            text in "[_*@<`\\\\a-z é]{1,8}",
            status in 0..STATUSES.len(),
        ) {
            let v = view(secrets, STATUSES[status], &text);
            assert_postable(&v, None);
            assert_postable(&v, Some(&GrantEnd::Revoked));
            let note = Note {
                revoked_by: Some(text.repeat(200)),
                ending_soon: true,
                approval_notes: vec![(text.repeat(50), text.repeat(200)); 6],
            };
            for ended in [None, Some(GrantEnd::Revoked)] {
                let r = request_with(&v, ended.as_ref(), &note);
                twilight_validate::message::embeds(&r.embeds).unwrap();
                for e in &r.embeds {
                    twilight_validate::embed::embed(e).unwrap();
                }
            }
        }
    }
}
