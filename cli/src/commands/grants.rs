//! `keygate grants`, `keygate revoke` and `keygate extend`.

use std::time::Duration;

use hyper::Method;
use keygate_proto::GrantId;
use keygate_proto::api::{ExtendBody, GrantView, RevokeBody, Revoked};

use crate::args::{ListArgs, RevokeArgs};
use crate::client::Client;
use crate::failure::Outcome;
use crate::output::{json, relative, table};

pub async fn list(client: &Client, args: ListArgs) -> Outcome {
    let all: Vec<GrantView> = client.get("/v1/grants").await?;
    if args.json {
        json(&all);
        return Ok(());
    }
    if all.is_empty() {
        eprintln!("no live grants");
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|g| {
            let secrets: Vec<&str> = g
                .secrets
                .iter()
                .map(keygate_proto::SecretName::as_str)
                .collect();
            vec![
                g.id.to_string(),
                g.agent.to_string(),
                secrets.join(","),
                relative(g.expires_at),
                if g.reuse { "reusable" } else { "single use" }.into(),
                g.reads.to_string(),
                g.approved_by.join(","),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "AGENT",
            "SECRETS",
            "ENDS",
            "KIND",
            "READS",
            "APPROVED BY",
        ],
        &rows,
    );
    Ok(())
}

pub async fn revoke(client: &Client, args: RevokeArgs) -> Outcome {
    let body = RevokeBody {
        grant: args.grant,
        agent: args.agent,
        secret: args.secret,
        all: args.all,
    };
    let revoked: Revoked = client
        .call(Method::POST, "/v1/grants/revoke", Some(&body))
        .await?;
    match revoked.revoked.len() {
        0 => eprintln!("no live grant matched"),
        n => {
            for id in &revoked.revoked {
                println!("{id}");
            }
            eprintln!("revoked {n} grant{}", if n == 1 { "" } else { "s" });
        }
    }
    Ok(())
}

pub async fn extend(client: &Client, id: GrantId, by: Option<Duration>) -> Outcome {
    let grant: GrantView = client
        .call(
            Method::POST,
            &format!("/v1/grants/{id}/extend"),
            Some(&ExtendBody {
                by: by.map(keygate_proto::duration::format),
            }),
        )
        .await?;
    println!("{}", grant.expires_at);
    eprintln!(
        "grant {} now ends {} ({})",
        grant.id,
        relative(grant.expires_at),
        grant.expires_at
    );
    Ok(())
}
