//! Button presses. A press is checked — the configured guild and channel, not a DM, not a
//! bot, a button this bot made — then decided through the gatekeeper, which checks the
//! person against the rule's approvers. Every press is answered within Discord's
//! 3-second window: an updated message, or a deferred update followed by an edit when
//! the decision takes longer, or an ephemeral refusal that changes nothing.

use std::sync::Arc;
use std::time::Duration;

use keygate_proto::approval::{Approver, Gatekeeper, Refused};
use keygate_proto::{RoleId, UserId};
use twilight_model::application::interaction::{Interaction, InteractionData};
use twilight_model::channel::message::MessageFlags;
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseType};
use twilight_util::builder::interaction_response::{ChannelMessageBuilder, UpdateMessageBuilder};

use crate::channel::{Discord, no_mentions};
use crate::render;

/// How long a decision may take before the press is answered with a deferred update.
const ANSWER_BY: Duration = Duration::from_secs(2);

/// The person behind an interaction in keygate's guild, or why they cannot act: no
/// bots, no direct messages, no other servers.
pub(crate) fn person(d: &Discord, i: &Interaction) -> Result<Approver, &'static str> {
    let user = i.author().ok_or("no user on the interaction")?;
    if user.bot {
        return Err("bots cannot decide");
    }
    let Some(guild) = i.guild_id else {
        return Err("keygate takes decisions in its server, not in direct messages");
    };
    if d.guild.is_some_and(|g| g != guild) {
        return Err("this server is not the one keygate is configured for");
    }
    Ok(Approver {
        channel: crate::CHANNEL,
        id: UserId(user.id.get()),
        name: user.name.clone(),
        roles: i
            .member
            .as_ref()
            .map(|m| m.roles.iter().map(|r| RoleId(r.get())).collect())
            .unwrap_or_default(),
    })
}

/// Who pressed, or why the press cannot count: [`person`], in the approval channel.
fn presser(d: &Discord, i: &Interaction) -> Result<Approver, &'static str> {
    let approver = person(d, i)?;
    if i.channel.as_ref().map(|c| c.id) != Some(d.channel) {
        return Err("decisions are taken in keygate's approval channel");
    }
    Ok(approver)
}

/// An ephemeral reply only the presser sees (flag 64).
pub(crate) fn ephemeral(text: &str) -> InteractionResponse {
    ChannelMessageBuilder::new()
        .content(crate::escape::cut(
            text,
            twilight_validate::message::MESSAGE_CONTENT_LENGTH_MAX,
        ))
        .flags(MessageFlags::EPHEMERAL)
        .allowed_mentions(no_mentions())
        .build()
}

pub(crate) async fn respond(d: &Discord, i: &Interaction, response: &InteractionResponse) {
    if let Err(e) = d
        .http
        .interaction(d.app_id)
        .create_response(i.id, &i.token, response)
        .await
    {
        tracing::warn!("Discord: cannot answer interaction {}: {e}", i.id);
    }
}

/// Handles one interaction.
pub async fn handle(d: Arc<Discord>, gk: Arc<dyn Gatekeeper>, i: Interaction) {
    match &i.data {
        Some(InteractionData::MessageComponent(data)) => {
            let custom_id = data.custom_id.clone();
            press(&d, gk.as_ref(), &i, &custom_id).await;
        }
        Some(InteractionData::ApplicationCommand(data)) => {
            crate::commands::handle(&d, gk.as_ref(), &i, data).await;
        }
        _ => {
            respond(
                &d,
                &i,
                &ephemeral("keygate does not know this interaction."),
            )
            .await;
        }
    }
}

fn anonymous(i: &Interaction) -> Approver {
    let user = i.author();
    Approver {
        channel: crate::CHANNEL,
        id: UserId(user.map_or(0, |u| u.id.get())),
        name: user.map_or_else(|| "unknown".into(), |u| u.name.clone()),
        roles: Vec::new(),
    }
}

async fn press(d: &Arc<Discord>, gk: &dyn Gatekeeper, i: &Interaction, custom_id: &str) {
    let approver = match presser(d, i) {
        Ok(a) => a,
        Err(why) => {
            gk.refused(&anonymous(i), "button press", why);
            respond(d, i, &ephemeral(&format!("Not counted: {why}."))).await;
            return;
        }
    };
    let Some((id, verdict)) = crate::buttons::parse(custom_id) else {
        gk.refused(&approver, "button press", "unknown button");
        respond(
            d,
            i,
            &ephemeral("Not counted: keygate does not know this button."),
        )
        .await;
        return;
    };
    d.begin_update(&id);
    let decision = gk.decide(&id, verdict, &approver);
    tokio::pin!(decision);
    let (result, deferred) =
        if let Ok(result) = tokio::time::timeout(ANSWER_BY, &mut decision).await {
            (result, false)
        } else {
            let deferred = InteractionResponse {
                kind: InteractionResponseType::DeferredUpdateMessage,
                data: None,
            };
            respond(d, i, &deferred).await;
            (decision.await, true)
        };
    match result {
        Ok(outcome) => {
            let view = outcome.view().clone();
            let rendered = render::request(&view, None);
            if deferred {
                let edit = d
                    .http
                    .interaction(d.app_id)
                    .update_response(&i.token)
                    .embeds(Some(&rendered.embeds))
                    .components(Some(&rendered.components))
                    .await;
                if let Err(e) = edit {
                    tracing::warn!("Discord: cannot edit after a deferred update: {e}");
                }
            } else {
                let response = UpdateMessageBuilder::new()
                    .embeds(rendered.embeds)
                    .components(rendered.components)
                    .allowed_mentions(no_mentions())
                    .build();
                respond(d, i, &response).await;
            }
            d.end_update(&view);
        }
        Err(refused) => {
            let text = match &refused {
                Refused::AlreadyDecided(status) => {
                    format!("Already decided: the request is {status}.")
                }
                Refused::NotAllowed => {
                    "You are not an approver for this request; nothing changed.".into()
                }
                Refused::NotFound => "keygate no longer knows this request.".into(),
                Refused::Failed(why) => format!("keygate could not record that: {why}"),
            };
            let reply = ephemeral(&text);
            if deferred {
                if let Err(e) = d
                    .http
                    .interaction(d.app_id)
                    .create_followup(&i.token)
                    .content(&crate::escape::cut(
                        &text,
                        twilight_validate::message::MESSAGE_CONTENT_LENGTH_MAX,
                    ))
                    .flags(MessageFlags::EPHEMERAL)
                    .await
                {
                    tracing::warn!("Discord: cannot send a follow-up: {e}");
                }
            } else {
                respond(d, i, &reply).await;
            }
            // The message still shows what it showed; let a normal edit correct it if
            // the request moved on.
            if let Some(view) = gk.request(&id) {
                d.end_update(&view);
            } else {
                d.end_update_missing(&id);
            }
        }
    }
}
