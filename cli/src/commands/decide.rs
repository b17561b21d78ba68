//! `keygate approve` and `keygate deny`: the operator decides from the terminal.

use std::time::Duration;

use hyper::Method;
use keygate_proto::RequestId;
use keygate_proto::api::{ApproveBody, DenyBody, ErrorCode, RequestView};

use crate::client::Client;
use crate::failure::{Failure, Outcome};
use crate::output::relative;

fn already(e: crate::client::CallError) -> Failure {
    if e.code == Some(ErrorCode::AlreadyDecided) {
        Failure::error(e.failure.message)
    } else {
        e.into()
    }
}

pub async fn approve(client: &Client, id: RequestId, ttl: Option<Duration>) -> Outcome {
    let view: RequestView = client
        .call(
            Method::POST,
            &format!("/v1/requests/{id}/approve"),
            Some(&ApproveBody {
                ttl: ttl.map(keygate_proto::duration::format),
            }),
        )
        .await
        .map_err(already)?;
    match &view.grant {
        Some(g) => eprintln!(
            "approved {}: grant {} ends {}",
            view.id,
            g.id,
            relative(g.expires_at)
        ),
        None => eprintln!(
            "approval recorded for {}: {} of {} so far",
            view.id,
            view.approvals.len(),
            view.quorum
        ),
    }
    Ok(())
}

pub async fn deny(client: &Client, id: RequestId, reason: Option<String>) -> Outcome {
    let view: RequestView = client
        .call(
            Method::POST,
            &format!("/v1/requests/{id}/deny"),
            Some(&DenyBody { reason }),
        )
        .await
        .map_err(already)?;
    eprintln!("denied {}", view.id);
    Ok(())
}
