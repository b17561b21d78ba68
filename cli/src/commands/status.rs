//! `keygate status`: exits 0 whenever the daemon answers.

use keygate_proto::api::Status;

use crate::args::ListArgs;
use crate::client::Client;
use crate::failure::Outcome;
use crate::output::{json, short};

pub async fn run(client: &Client, args: ListArgs) -> Outcome {
    let s: Status = client.get("/v1/status").await?;
    if args.json {
        json(&s);
        return Ok(());
    }
    println!(
        "keygated {}, up {}",
        s.version,
        short(std::time::Duration::from_secs(s.uptime_seconds))
    );
    if let Some(backend) = &s.store_backend {
        let locked = if s.store_locked == Some(true) {
            " (locked: run `keygate unlock`)"
        } else {
            ""
        };
        println!("secret store:      {backend}{locked}");
    }
    if s.channels.is_empty() {
        // A daemon from before `channels`.
        println!("approvals from:    {}", s.approval_channels.join(", "));
        println!("discord:           {}", s.discord);
    }
    // One line per channel, under one label: `terminal  ready`, `discord   connected`.
    let width = s.channels.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for (i, c) in s.channels.iter().enumerate() {
        let label = if i == 0 { "approvals from:" } else { "" };
        println!("{label:<19}{:<width$}  {}", c.name, c.state);
    }
    // An agent's token gets its own counts only.
    let own = if s.agents.is_none() { " (yours)" } else { "" };
    println!("pending requests:  {}{own}", s.pending_requests);
    println!("live grants:       {}{own}", s.live_grants);
    if let Some(agents) = s.agents {
        println!("agents:            {agents}");
    }
    if let Some(rules) = s.policy_rules {
        println!("policy rules:      {rules}");
    }
    if let Some(c) = &s.cluster {
        let leads = if c.discord_leader {
            ", runs the Discord bot"
        } else {
            ""
        };
        println!("cluster node:      {} (Redis {}){leads}", c.node, c.redis);
    }
    Ok(())
}
