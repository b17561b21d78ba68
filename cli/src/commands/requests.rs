//! `keygate requests` and `keygate cancel`.

use hyper::Method;
use keygate_proto::RequestId;
use keygate_proto::api::RequestView;

use crate::args::ListArgs;
use crate::client::Client;
use crate::failure::Outcome;
use crate::output::{json, relative, table};

pub async fn list(client: &Client, args: ListArgs) -> Outcome {
    let all: Vec<RequestView> = client.get("/v1/requests").await?;
    if args.json {
        json(&all);
        return Ok(());
    }
    if all.is_empty() {
        eprintln!("no requests");
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            let secrets: Vec<&str> = r
                .secrets
                .iter()
                .map(keygate_proto::SecretName::as_str)
                .collect();
            let progress = if r.quorum > 1 && r.status.as_str() == "pending" {
                format!(" ({}/{})", r.approvals.len(), r.quorum)
            } else {
                String::new()
            };
            vec![
                r.id.to_string(),
                r.agent.to_string(),
                secrets.join(","),
                format!("{}{progress}", r.status.as_str()),
                relative(r.created_at),
                r.reason.clone(),
            ]
        })
        .collect();
    table(
        &["ID", "AGENT", "SECRETS", "STATUS", "FILED", "REASON"],
        &rows,
    );
    Ok(())
}

pub async fn cancel(client: &Client, id: RequestId) -> Outcome {
    let view: RequestView = client
        .call(Method::DELETE, &format!("/v1/requests/{id}"), None::<&()>)
        .await?;
    eprintln!("request {} {}", view.id, view.status.as_str());
    Ok(())
}
