//! Where each interaction the gateway brings goes: a button press to [`crate::press`], a
//! submitted form to [`crate::form`], a slash command to [`crate::commands`], anything else to a polite ephemeral refusal.

use std::sync::Arc;

use keygate_proto::approval::Gatekeeper;
use twilight_model::application::interaction::{Interaction, InteractionData};

use crate::client::Client;
use crate::messages::Messages;
use crate::reply::{ephemeral, respond};

/// What handling an interaction needs: the REST client, the posted messages (a press
/// updates its own), and the gatekeeper that decides.
#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) client: Arc<Client>,
    pub(crate) messages: Arc<Messages>,
    pub(crate) gatekeeper: Arc<dyn Gatekeeper>,
    /// The Approve… and Deny… forms opened and not yet submitted.
    pub(crate) forms: Arc<crate::form::Forms>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Handler {
    /// Handles one interaction.
    pub(crate) async fn handle(&self, i: Interaction) {
        let (c, gk) = (self.client.as_ref(), self.gatekeeper.as_ref());
        match &i.data {
            Some(InteractionData::MessageComponent(data)) => {
                crate::press::handle(c, &self.messages, &self.forms, gk, &i, &data.custom_id).await;
            }
            Some(InteractionData::ModalSubmit(data)) => {
                crate::form::submitted(c, &self.messages, &self.forms, gk, &i, data).await;
            }
            Some(InteractionData::ApplicationCommand(data)) => {
                crate::commands::handle(c, gk, &i, data).await;
            }
            _ => {
                respond(c, &i, &ephemeral("keygate does not know this interaction.")).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
