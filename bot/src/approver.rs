//! Who is behind an interaction, as the gatekeeper sees them: an [`Approver`] with their
//! Discord id and roles, or why they cannot act at all (a bot, a direct message, another
//! server, another channel).

use keygate_proto::approval::Approver;
use keygate_proto::{RoleId, UserId};
use twilight_model::application::interaction::Interaction;

use crate::client::Client;

/// The person behind an interaction in keygate's guild, or why they cannot act: no
/// bots, no direct messages, no other servers.
pub(crate) fn person(c: &Client, i: &Interaction) -> Result<Approver, &'static str> {
    let user = i.author().ok_or("no user on the interaction")?;
    if user.bot {
        return Err("bots cannot decide");
    }
    let Some(guild) = i.guild_id else {
        return Err("keygate takes decisions in its server, not in direct messages");
    };
    if c.guild.is_some_and(|g| g != guild) {
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
pub(crate) fn presser(c: &Client, i: &Interaction) -> Result<Approver, &'static str> {
    let approver = person(c, i)?;
    if i.channel.as_ref().map(|ch| ch.id) != Some(c.channel) {
        return Err("decisions are taken in keygate's approval channel");
    }
    Ok(approver)
}

/// Whoever it was, with no roles: how a refused press is recorded.
pub(crate) fn anonymous(i: &Interaction) -> Approver {
    let user = i.author();
    Approver {
        channel: crate::CHANNEL,
        id: UserId(user.map_or(0, |u| u.id.get())),
        name: user.map_or_else(|| "unknown".into(), |u| u.name.clone()),
        roles: Vec::new(),
    }
}
