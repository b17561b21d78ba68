//! The `/keygate` slash commands, registered in the configured guild:
//! `/keygate grants` lists the live grants the caller could approve (ephemeral), and
//! `/keygate revoke <grant>` revokes one, for approvers.

use keygate_proto::GrantId;
use keygate_proto::approval::{Approver, Gatekeeper, Refused};
use twilight_model::application::command::CommandType;
use twilight_model::application::interaction::Interaction;
use twilight_model::application::interaction::application_command::{
    CommandData, CommandOptionValue,
};
use twilight_model::id::Id;
use twilight_model::id::marker::GuildMarker;
use twilight_util::builder::command::{CommandBuilder, StringBuilder, SubCommandBuilder};

use crate::approver::person;
use crate::client::{Client, with_retry};
use crate::reply::{ephemeral, respond};

/// Registers `/keygate` in the guild (a bulk overwrite: idempotent).
pub(crate) async fn register(
    c: &Client,
    guild: Id<GuildMarker>,
) -> Result<(), twilight_http::Error> {
    let command = CommandBuilder::new(
        "keygate",
        "keygate secret approvals",
        CommandType::ChatInput,
    )
    .option(SubCommandBuilder::new(
        "grants",
        "List the live grants you could approve",
    ))
    .option(
        SubCommandBuilder::new("revoke", "Revoke a live grant")
            .option(StringBuilder::new("grant", "The grant's id (gnt_…)").required(true)),
    )
    .build();
    let commands = [command];
    with_retry("registering /keygate", || async {
        c.http
            .interaction(c.app_id)
            .set_guild_commands(guild, &commands)
            .await
    })
    .await?;
    Ok(())
}

pub(crate) async fn handle(c: &Client, gk: &dyn Gatekeeper, i: &Interaction, data: &CommandData) {
    let text = match person(c, i) {
        Ok(approver) => answer(gk, &approver, data).await,
        Err(why) => format!("Not allowed: {why}."),
    };
    respond(c, i, &ephemeral(&text)).await;
}

/// What `/keygate <sub>` answers `approver` (ephemerally).
async fn answer(gk: &dyn Gatekeeper, approver: &Approver, data: &CommandData) -> String {
    let sub = data.options.first();
    match sub.map(|o| (o.name.as_str(), &o.value)) {
        Some(("grants", _)) => {
            let grants = gk.grants_for(approver);
            if grants.is_empty() {
                "No live grants that you could approve.".to_owned()
            } else {
                let lines: Vec<String> = grants
                    .iter()
                    .map(|g| {
                        let secrets: Vec<&str> = g
                            .secrets
                            .iter()
                            .map(keygate_proto::SecretName::as_str)
                            .collect();
                        let ends = crate::render::discord_time(g.expires_at, 'R');
                        format!(
                            "`{}` **{}** → {} (ends {ends}, {} reads)",
                            g.id,
                            crate::escape::inert(g.agent.as_str(), 64),
                            crate::escape::inert(&secrets.join(", "), 300),
                            g.reads
                        )
                    })
                    .collect();
                // Whole lines only, within Discord's 2000 characters (a cut inside a
                // line could split an escape, and counting bytes split characters).
                let mut text = String::new();
                let mut count = 0;
                for (i, line) in lines.iter().enumerate() {
                    let n = line.chars().count() + usize::from(i > 0);
                    if count + n > 1990 {
                        text.push_str("\n… and ");
                        text.push_str(&(lines.len() - i).to_string());
                        text.push_str(" more");
                        break;
                    }
                    if i > 0 {
                        text.push('\n');
                    }
                    text.push_str(line);
                    count += n;
                }
                text
            }
        }
        Some(("revoke", CommandOptionValue::SubCommand(options))) => {
            let raw = options
                .iter()
                .find(|o| o.name == "grant")
                .and_then(|o| match &o.value {
                    CommandOptionValue::String(s) => Some(s.as_str()),
                    _ => None,
                });
            match raw.map(GrantId::parse) {
                Some(Ok(id)) => match gk.revoke(&id, approver).await {
                    Ok(g) => format!(
                        "Revoked `{}` ({}).",
                        g.id,
                        crate::escape::inert(g.agent.as_str(), 64)
                    ),
                    Err(Refused::NotFound) => "No live grant with that id.".into(),
                    Err(Refused::NotAllowed) => {
                        "You are not an approver for that grant; nothing changed.".into()
                    }
                    Err(e) => format!("Could not revoke: {e}"),
                },
                _ => "That is not a grant id (they look like `gnt_…`).".into(),
            }
        }
        _ => "Unknown /keygate command.".into(),
    }
}

#[cfg(test)]
mod tests;
