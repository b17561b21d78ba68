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

/// How long a leader waits before trying again to sign the bot in after a failure.
const RETRY_SIGN_IN: std::time::Duration = std::time::Duration::from_secs(5);

/// On a cluster: runs the bot only while this node holds the Discord lease, so the
/// cluster has one Discord session. On taking the lease the bot signs in and takes the
/// other nodes' messages over ([`Gate::took_over`]); on losing it (stepping down before
/// the lease could expire in Redis) the bot leaves at once. Ends once the lease is given
/// back ([`crate::cluster::Cluster::resign`]).
pub fn lead(
    config: DiscordConfig,
    gate: Arc<Gate>,
    cluster: &Arc<crate::cluster::Cluster>,
) -> tokio::task::JoinHandle<()> {
    let mut leading = cluster.start_leading();
    tokio::spawn(async move {
        let mut bot: Option<Arc<Discord>> = None;
        loop {
            let now = *leading.borrow_and_update();
            if now && bot.is_none() {
                match connect(&config, &gate).await {
                    Ok(d) => {
                        tracing::info!("this node holds the Discord lease: the bot is signed in");
                        bot = Some(d);
                        gate.took_over().await;
                    }
                    Err(e) => {
                        tracing::error!("Discord: {e}; trying again in {RETRY_SIGN_IN:?}");
                        tokio::select! {
                            () = tokio::time::sleep(RETRY_SIGN_IN) => continue,
                            changed = leading.changed() => if changed.is_err() { break },
                        }
                        continue;
                    }
                }
            } else if !now && let Some(d) = bot.take() {
                gate.remove_channel(keygate_bot::CHANNEL);
                d.shut_down();
                tracing::warn!("this node no longer holds the Discord lease: the bot left");
            }
            if leading.changed().await.is_err() {
                break;
            }
        }
        if let Some(d) = bot.take() {
            gate.remove_channel(keygate_bot::CHANNEL);
            d.shut_down();
        }
    })
}
