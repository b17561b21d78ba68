//! Discord, wired in: the `[discord]` settings are the bot's configuration, and the bot
//! joins the gate as one more approval channel. With [`crate::runtime`], the only place
//! the library meets `keygate-bot`; the gate itself knows it only as an
//! `ApprovalChannel`.

use std::sync::Arc;

use keygate_bot::Discord;
use keygate_proto::approval::{ApprovalChannel, Gatekeeper};

use crate::config::DiscordConfig;
use crate::gate::Gate;

/// Signs the bot in (a wrong token stops here), and adds it to the gate's approval
/// channels. People's presses come back to the gate as its `Gatekeeper`.
pub async fn connect(
    config: &DiscordConfig,
    gate: &Arc<Gate>,
) -> Result<Arc<Discord>, keygate_bot::BotError> {
    let keeper: Arc<dyn Gatekeeper> = Arc::clone(gate) as Arc<dyn Gatekeeper>;
    let discord = Discord::connect(config.clone(), keeper).await?;
    gate.add_channel(Arc::clone(&discord) as Arc<dyn ApprovalChannel>);
    Ok(discord)
}
