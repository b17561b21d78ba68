//! Discord, wired in: the daemon's `[discord]` settings are the bot's configuration, and
//! the bot joins the gate as one more approval channel. The only place the daemon
//! meets `keygate-bot`; the library under `gateway/src/` knows it only as an
//! `ApprovalChannel`.

use std::sync::Arc;

use anyhow::Context as _;
use keygate_bot::Discord;
use keygate_gateway::config::DiscordConfig;
use keygate_gateway::gate::Gate;
use keygate_proto::approval::{ApprovalChannel, Gatekeeper};

/// Signs the bot in (a wrong token stops the daemon here), and adds it to the gate's
/// approval channels. People's presses come back to the gate as its `Gatekeeper`.
pub async fn connect(config: &DiscordConfig, gate: &Arc<Gate>) -> anyhow::Result<Arc<Discord>> {
    let keeper: Arc<dyn Gatekeeper> = Arc::clone(gate) as Arc<dyn Gatekeeper>;
    let discord = Discord::connect(config.clone(), keeper)
        .await
        .context("Discord")?;
    gate.add_channel(Arc::clone(&discord) as Arc<dyn ApprovalChannel>);
    Ok(discord)
}
