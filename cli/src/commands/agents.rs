//! `keygate agents add|list|rm` (operator). `add` prints the token once, alone on stdout.

use hyper::Method;
use keygate_proto::AgentName;
use keygate_proto::api::{AddAgentBody, AgentInfo, NewAgent};

use crate::args::ListArgs;
use crate::client::Client;
use crate::failure::Outcome;
use crate::output::{json, relative, table};

pub async fn add(client: &Client, name: AgentName) -> Outcome {
    let agent: NewAgent = client
        .call(Method::POST, "/v1/agents", Some(&AddAgentBody { name }))
        .await?;
    println!("{}", agent.token);
    eprintln!(
        "added agent {}: this token is shown only now; give it to the agent as KEYGATE_TOKEN",
        agent.name
    );
    Ok(())
}

pub async fn list(client: &Client, args: ListArgs) -> Outcome {
    let all: Vec<AgentInfo> = client.get("/v1/agents").await?;
    if args.json {
        json(&all);
        return Ok(());
    }
    if all.is_empty() {
        eprintln!("no agents: add one with `keygate agents add NAME`");
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|a| vec![a.name.to_string(), relative(a.created_at)])
        .collect();
    table(&["NAME", "ADDED"], &rows);
    Ok(())
}

pub async fn rm(client: &Client, name: AgentName) -> Outcome {
    let _: serde_json::Value = client
        .call(Method::DELETE, &format!("/v1/agents/{name}"), None::<&()>)
        .await?;
    eprintln!("removed agent {name}; its token no longer works and its grants are revoked");
    Ok(())
}
