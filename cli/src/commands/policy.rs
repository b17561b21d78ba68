//! `keygate policy check AGENT SECRET`.

use keygate_proto::api::PolicyCheck;
use keygate_proto::{AgentName, SecretName};

use crate::client::Client;
use crate::failure::Outcome;
use crate::output::short;

pub async fn check(client: &Client, agent: AgentName, secret: SecretName) -> Outcome {
    let c: PolicyCheck = client
        .get(&format!("/v1/policy/check?agent={agent}&secret={secret}"))
        .await?;
    println!("decision: {}", c.decision);
    println!(
        "rule:     {}",
        c.rule.as_deref().unwrap_or("(no rule matched)")
    );
    println!("why:      {}", c.reason);
    if c.decision != "deny" {
        println!(
            "ttl:      {}{}",
            short(std::time::Duration::from_secs(c.ttl_seconds)),
            if c.reuse {
                ", reusable"
            } else {
                ", single use"
            }
        );
    }
    if let Some(q) = c.quorum {
        println!(
            "approval: {q} of [{}], request waits {}",
            c.approver_groups.join(", "),
            short(std::time::Duration::from_secs(c.request_timeout_seconds))
        );
    }
    Ok(())
}
