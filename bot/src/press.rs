//! Button presses. A press is checked — the configured guild and channel, not a DM, not a
//! bot, a button this bot made — then decided through the gatekeeper, which checks the
//! person against the rule's approvers: a decision on a pending request, or Revoke /
//! Extend on a live grant. Every press is answered within Discord's 3-second window: an
//! updated message, or a deferred update followed by an edit when the work takes longer,
//! or an ephemeral refusal that changes nothing.

use std::future::Future;
use std::time::Duration;

use keygate_proto::approval::{Approver, Gatekeeper, Refused, Verdict};
use keygate_proto::{GrantId, RequestId};
use twilight_model::application::interaction::Interaction;
use twilight_model::channel::message::MessageFlags;
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseType};
use twilight_util::builder::interaction_response::UpdateMessageBuilder;

use crate::approver::{anonymous, presser};
use crate::buttons::Pressed;
use crate::client::Client;
use crate::messages::Messages;
use crate::render::Rendered;
use crate::reply::{ephemeral, respond};

/// How long the work may take before the press is answered with a deferred update.
const ANSWER_BY: Duration = Duration::from_secs(2);

/// Handles a press of the button `custom_id`.
pub(crate) async fn handle(
    c: &Client,
    messages: &Messages,
    forms: &crate::form::Forms,
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
    match crate::buttons::parse(custom_id) {
        Some(Pressed::Decide(id, verdict)) => {
            decide(c, messages, gk, i, &approver, &id, verdict).await;
        }
        Some(Pressed::ApproveForm(id)) => {
            crate::form::open(c, forms, gk, i, &approver, crate::form::Form::Approve, &id).await;
        }
        Some(Pressed::DenyForm(id)) => {
            crate::form::open(c, forms, gk, i, &approver, crate::form::Form::Deny, &id).await;
        }
        Some(Pressed::Revoke(grant)) => {
            control(c, messages, gk, i, &approver, &grant, Control::Revoke).await;
        }
        Some(Pressed::Extend(grant)) => {
            control(c, messages, gk, i, &approver, &grant, Control::Extend).await;
        }
        None => {
            gk.refused(&approver, "button press", "unknown button");
            respond(
                c,
                i,
                &ephemeral("Not counted: keygate does not know this button."),
            )
            .await;
        }
    }
}

/// A decision on a pending request, from a press or a submitted form: the message shows
/// the outcome, or the person alone is told why nothing changed.
pub(crate) async fn decide(
    c: &Client,
    messages: &Messages,
    gk: &dyn Gatekeeper,
    i: &Interaction,
    approver: &Approver,
    id: &RequestId,
    verdict: Verdict,
) {
    messages.begin_update(id);
    let note = match &verdict {
        Verdict::ApproveFor { note, .. } => note.clone(),
        _ => None,
    };
    let (result, deferred) = in_time(c, i, gk.decide(id, verdict, approver)).await;
    match result {
        Ok(outcome) => {
            if let Some(note) = note {
                messages.noted(id, approver.label(), note);
            }
            let view = outcome.view().clone();
            show(c, i, deferred, messages.render(&view, None)).await;
            messages.end_update(&view);
        }
        Err(refused) => {
            refuse(c, i, deferred, &refusal(&refused, "request")).await;
            // The message still shows what it showed; let a normal edit correct it if
            // the request moved on.
            if let Some(view) = gk.request(id) {
                messages.end_update(&view);
            } else {
                messages.end_update_missing(id);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Revoke,
    Extend,
}

/// Revoke or Extend on a live grant's message. The gatekeeper checks the presser against
/// the grant's approvers and audits; the message shows the outcome at once.
async fn control(
    c: &Client,
    messages: &Messages,
    gk: &dyn Gatekeeper,
    i: &Interaction,
    approver: &Approver,
    grant: &GrantId,
    what: Control,
) {
    // The grant's message, while its grant lives (the bot forgets it when it ends). A
    // control is pressed on its own grant's message, or not counted (real Discord sends
    // only the ids a message carries; this keeps a forged one from editing another).
    let shown = match messages.by_grant(grant) {
        Some((message, view)) if i.message.as_ref().map(|m| m.id) == Some(message) => Some(view),
        Some(_) => {
            gk.refused(
                approver,
                "button press",
                "a grant's button on another message",
            );
            respond(
                c,
                i,
                &ephemeral("Not counted: this button is not on this grant's message."),
            )
            .await;
            return;
        }
        None => None,
    };
    let mentions = shown
        .as_ref()
        .and_then(|v| messages.mentions(&v.id))
        .unwrap_or_default();
    if let Some(v) = &shown {
        messages.begin_update(&v.id);
    }
    let work = async {
        match what {
            Control::Revoke => gk.revoke(grant, approver).await,
            Control::Extend => gk.extend(grant, approver).await,
        }
    };
    let (result, deferred) = in_time(c, i, work).await;
    match (result, shown) {
        (Ok(_), Some(view)) if what == Control::Revoke => {
            let rendered = messages.revoked_by_press(&view, approver.label(), &mentions);
            show(c, i, deferred, rendered).await;
            messages.end_update_missing(&view.id);
        }
        (Ok(g), Some(mut view)) => {
            if let Some(r) = view.grant.as_mut() {
                r.expires_at = g.expires_at;
            }
            show(c, i, deferred, messages.render(&view, None)).await;
            messages.end_update(&view);
        }
        (Ok(_), None) => {
            // Done, but the bot no longer shows this grant: say so to the presser only.
            let done = match what {
                Control::Revoke => "Revoked.",
                Control::Extend => "Extended.",
            };
            refuse(c, i, deferred, done).await;
        }
        (Err(refused), shown) => {
            refuse(c, i, deferred, &refusal(&refused, "grant")).await;
            if let Some(v) = shown {
                messages.end_update_missing(&v.id);
            }
        }
    }
}

/// What a refused press tells the presser (only them).
pub(crate) fn refusal(refused: &Refused, what: &str) -> String {
    match refused {
        Refused::AlreadyDecided(status) => format!("Already decided: the request is {status}."),
        Refused::NotAllowed => format!("You are not an approver for this {what}; nothing changed."),
        Refused::NotFound => format!("keygate no longer knows this {what}; nothing changed."),
        Refused::AtMaxTtl(_) => {
            "This grant already ends at the longest this rule allows; nothing changed.".into()
        }
        Refused::Failed(why) => format!("keygate could not record that: {why}"),
    }
}

/// Runs `work`, answering the press with a deferred update if it takes longer than
/// [`ANSWER_BY`]; returns its result and whether the press was deferred.
async fn in_time<T>(c: &Client, i: &Interaction, work: impl Future<Output = T>) -> (T, bool) {
    tokio::pin!(work);
    if let Ok(result) = tokio::time::timeout(ANSWER_BY, &mut work).await {
        (result, false)
    } else {
        let deferred = InteractionResponse {
            kind: InteractionResponseType::DeferredUpdateMessage,
            data: None,
        };
        respond(c, i, &deferred).await;
        (work.await, true)
    }
}

/// Shows `rendered` in the pressed message: the press's answer, or an edit of the
/// deferred answer.
async fn show(c: &Client, i: &Interaction, deferred: bool, rendered: Rendered) {
    if deferred {
        let edit = c
            .http
            .interaction(c.app_id)
            .update_response(&i.token)
            .embeds(Some(&rendered.embeds))
            .components(Some(&rendered.components))
            .allowed_mentions(Some(&rendered.allowed_mentions))
            .await;
        if let Err(e) = edit {
            tracing::warn!("Discord: cannot edit after a deferred update: {e}");
        }
    } else {
        let response = UpdateMessageBuilder::new()
            .embeds(rendered.embeds)
            .components(rendered.components)
            .allowed_mentions(rendered.allowed_mentions)
            .build();
        respond(c, i, &response).await;
    }
}

/// Tells the presser alone, changing nothing in the message.
async fn refuse(c: &Client, i: &Interaction, deferred: bool, text: &str) {
    if deferred {
        if let Err(e) = c
            .http
            .interaction(c.app_id)
            .create_followup(&i.token)
            .content(&crate::escape::cut(
                text,
                twilight_validate::message::MESSAGE_CONTENT_LENGTH_MAX,
            ))
            .flags(MessageFlags::EPHEMERAL)
            .await
        {
            tracing::warn!("Discord: cannot send a follow-up: {e}");
        }
    } else {
        respond(c, i, &ephemeral(text)).await;
    }
}
