//! Button presses. A press is checked — the configured guild and channel, not a DM, not a
//! bot, a button this bot made — then decided through the gatekeeper, which checks the
//! person against the rule's approvers. Every press is answered within Discord's
//! 3-second window: an updated message, or a deferred update followed by an edit when
//! the decision takes longer, or an ephemeral refusal that changes nothing.

use std::time::Duration;

use keygate_proto::approval::{Gatekeeper, Refused};
use twilight_model::application::interaction::Interaction;
use twilight_model::channel::message::MessageFlags;
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseType};
use twilight_util::builder::interaction_response::UpdateMessageBuilder;

use crate::approver::{anonymous, presser};
use crate::client::{Client, no_mentions};
use crate::messages::Messages;
use crate::render;
use crate::reply::{ephemeral, respond};

/// How long a decision may take before the press is answered with a deferred update.
const ANSWER_BY: Duration = Duration::from_secs(2);

/// Handles a press of the button `custom_id`.
pub(crate) async fn handle(
    c: &Client,
    messages: &Messages,
    gk: &dyn Gatekeeper,
    i: &Interaction,
    custom_id: &str,
) {
    let approver = match presser(c, i) {
        Ok(a) => a,
        Err(why) => {
            gk.refused(&anonymous(i), "button press", why);
            respond(c, i, &ephemeral(&format!("Not counted: {why}."))).await;
            return;
        }
    };
    let Some((id, verdict)) = crate::buttons::parse(custom_id) else {
        gk.refused(&approver, "button press", "unknown button");
        respond(
            c,
            i,
            &ephemeral("Not counted: keygate does not know this button."),
        )
        .await;
        return;
    };
    messages.begin_update(&id);
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
            respond(c, i, &deferred).await;
            (decision.await, true)
        };
    match result {
        Ok(outcome) => {
            let view = outcome.view().clone();
            let rendered = render::request(&view, None);
            if deferred {
                let edit = c
                    .http
                    .interaction(c.app_id)
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
                respond(c, i, &response).await;
            }
            messages.end_update(&view);
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
                Refused::AtMaxTtl(why) | Refused::Failed(why) => {
                    format!("keygate could not record that: {why}")
                }
            };
            let reply = ephemeral(&text);
            if deferred {
                if let Err(e) = c
                    .http
                    .interaction(c.app_id)
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
                respond(c, i, &reply).await;
            }
            // The message still shows what it showed; let a normal edit correct it if
            // the request moved on.
            if let Some(view) = gk.request(&id) {
                messages.end_update(&view);
            } else {
                messages.end_update_missing(&id);
            }
        }
    }
}
