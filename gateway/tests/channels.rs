//! Approval channels through the gate's public API: a request that no channel could
//! show is refused with `channel_failed` (502) and never waits for a decision (it is
//! recorded as denied by the daemon), and each channel's failure is in the audit log. (With the daemon the terminal always shows a request, so
//! this can only be seen by building a gate without it; `tests/tests/discord.rs`
//! shows a refused Discord post leaving the request to the terminal.)
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use keygate_gateway::api::ApiError;
use keygate_gateway::audit::AuditLog;
use keygate_gateway::config::Limits;
use keygate_gateway::gate::Gate;
use keygate_gateway::identity::{Caller, Identities};
use keygate_gateway::store::MemoryStore;
use keygate_policies::Policy;
use keygate_proto::api::{FileRequest, RequestStatus, RequestView};
use keygate_proto::approval::{ApprovalChannel, BoxFuture, Change, ChannelError, Mentions};
use keygate_proto::{AgentName, SecretName};

const POLICY: &str = r#"
[approvers.ops]
users = ["111111111111111111"]

[[rule]]
name = "ask"
agents = ["*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]
"#;

/// A channel that cannot show anything, as Discord refusing every post.
#[derive(Debug)]
struct Refusing;

impl ApprovalChannel for Refusing {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn post<'a>(
        &'a self,
        _: &'a RequestView,
        _: &'a Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async {
            Err(ChannelError {
                channel: "discord",
                message: "cannot post the approval message: 400 Invalid Form Body".into(),
            })
        })
    }

    fn notify(&self, _: &Change) {}
}

#[tokio::test]
async fn a_request_no_channel_could_show_answers_channel_failed_and_never_waits() {
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
    let identities = Identities::load(
        &dir.path().join("operator.token"),
        &dir.path().join("agents"),
    )
    .unwrap();
    let token = identities.add(&AgentName::new("ci-one").unwrap()).unwrap();
    let Some(Caller::Agent(agent)) =
        identities.authenticate(secrecy::ExposeSecret::expose_secret(&token))
    else {
        panic!("the new agent's token does not authenticate");
    };
    let (gate, _ended) = Gate::new(
        Policy::parse(POLICY, "policies.toml").unwrap(),
        Arc::new(MemoryStore::new()),
        audit,
        identities,
        Limits::default(),
    );
    gate.add_channel(Arc::new(Refusing));

    let body = FileRequest {
        secrets: vec![SecretName::new("github/token").unwrap()],
        reason: "open PR #12".into(),
        ttl: None,
        command: None,
        host: None,
    };
    let err = gate.file(&agent, body).await.unwrap_err();
    let resp = ApiError::from(err).into_response();
    assert_eq!(resp.status(), 502);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "channel_failed", "{body}");

    // Not filed: nothing waits for a decision. The refusal stays on record, denied by
    // the daemon, so the operator can see what happened.
    let listed = gate.list_requests(&Caller::Operator);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].status, RequestStatus::Denied, "{listed:?}");
    assert_eq!(
        listed[0].decided_by.as_deref(),
        Some("daemon"),
        "{listed:?}"
    );
    assert!(listed[0].grant.is_none());
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"post_failed\""), "{audit}");
}
