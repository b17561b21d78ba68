//! Answering an interaction: the one REST call every press and command ends with, and
//! the ephemeral reply (flag 64) that only the presser sees and that changes nothing.

use twilight_model::application::interaction::Interaction;
use twilight_model::channel::message::MessageFlags;
use twilight_model::http::interaction::InteractionResponse;
use twilight_util::builder::interaction_response::ChannelMessageBuilder;

use crate::client::{Client, no_mentions};

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

/// Answers `i`; a failure is logged (Discord shows the presser that it failed).
pub(crate) async fn respond(c: &Client, i: &Interaction, response: &InteractionResponse) {
    if let Err(e) = c
        .http
        .interaction(c.app_id)
        .create_response(i.id, &i.token, response)
        .await
    {
        tracing::warn!("Discord: cannot answer interaction {}: {e}", i.id);
    }
}
