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
    println!(
        "secret store:      {}{}",
        s.store_backend,
        if s.store_locked {
            " (locked: run `keygate unlock`)"
        } else {
            ""
        }
    );
    println!("approvals from:    {}", s.approval_channels.join(", "));
    println!("discord:           {}", s.discord);
    println!("pending requests:  {}", s.pending_requests);
    println!("live grants:       {}", s.live_grants);
    println!("agents:            {}", s.agents);
    println!("policy rules:      {}", s.policy_rules);
    Ok(())
}
