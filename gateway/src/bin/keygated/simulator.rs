//! `keygated simulator`: a Discord stand-in on this machine, for trying keygate and
//! testing agents with no Discord account. It speaks Discord's real gateway and REST
//! protocols; a small HTTP control API presses buttons. See docs/discord-simulator.md.

use keygate_discord_sim::{SimConfig, Simulator};

pub async fn run(
    gateway_port: Option<u16>,
    rest_port: Option<u16>,
    control_port: Option<u16>,
) -> anyhow::Result<()> {
    let config = SimConfig {
        gateway_port,
        rest_port,
        control_port,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await?;
    let c = sim.config();
    println!("Discord simulator running.\n");
    println!("Point keygated at it:\n");
    println!("  export KEYGATE_DISCORD_API_URL={}", sim.rest_url());
    println!("  export KEYGATE_DISCORD_GATEWAY_URL={}", sim.gateway_url());
    println!("  export KEYGATE_DISCORD_TOKEN={}", c.bot_token);
    println!("  export KEYGATE_DISCORD_CHANNEL_ID={}", c.channel_id);
    println!("  export KEYGATE_DISCORD_GUILD_ID={}", c.guild_id);
    println!("  keygated serve\n");
    println!(
        "Watch the channel and press its buttons in your browser: {}",
        sim.page_url()
    );
    println!("  (the page presses as any user id you type; docs/discord-simulator.md)\n");
    println!("Control API: {}", sim.control_url());
    println!(
        "  curl -s {}/messages                     # what the channel shows",
        sim.control_url()
    );
    println!(
        "  curl -s -X POST {}/press -d '{{\"message_id\": \"<id>\", \"custom_id\": \"kg:a:<request id>\", \"user_id\": \"<approver id>\"}}'",
        sim.control_url()
    );
    println!("\nCtrl-C stops it.");
    tokio::signal::ctrl_c().await.ok();
    Ok(())
}
