//! `Gatekeeper::extend`, as Discord's Extend button calls it: the grant's approvers only
//! (a refusal is audited), the grant's own TTL each time, never past its rule's
//! `max_ttl`, and every channel told. Also: a post names the rule's approvers to ping.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keygate_gateway::audit::AuditLog;
use keygate_gateway::config::Limits;
use keygate_gateway::gate::{Gate, Outcome, Verdict};
use keygate_gateway::identity::Identities;
use keygate_gateway::store::MemoryStore;
use keygate_policies::Policy;
use keygate_proto::api::FileRequest;
use keygate_proto::approval::{
    ApprovalChannel, Approver, BoxFuture, Change, ChannelError, Decider, Gatekeeper, Mentions,
    Refused,
};
use keygate_proto::{AgentName, RoleId, SecretName, UserId};
use secrecy::ExposeSecret as _;

const POLICY: &str = r#"
[approvers.ops]
users = ["111111111111111111"]
roles = ["222222222222222222"]

[[rule]]
name = "github"
agents = ["ci-*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]
ttl = "10m"
max_ttl = "25m"
"#;

/// A channel that remembers whom it was asked to notify and what it was told.
#[derive(Debug, Default)]
struct Told {
    mentions: Mutex<Vec<Mentions>>,
    changes: Mutex<Vec<Change>>,
}

impl ApprovalChannel for Told {
    fn name(&self) -> &'static str {
        "terminal"
    }
    fn post<'a>(
        &'a self,
        _: &'a keygate_proto::api::RequestView,
        mentions: &'a Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        self.mentions.lock().unwrap().push(mentions.clone());
        Box::pin(async { Ok(()) })
    }
    fn notify(&self, change: &Change) {
        self.changes.lock().unwrap().push(change.clone());
    }
}

fn person(id: u64, roles: &[u64]) -> Approver {
    Approver {
        channel: "discord",
        id: UserId(id),
        name: format!("user{id}"),
        roles: roles.iter().copied().map(RoleId).collect(),
    }
}

#[tokio::test]
async fn only_the_grants_approvers_extend_it_up_to_max_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let identities = Identities::load(
        &dir.path().join("operator.token"),
        &dir.path().join("agents.json"),
    )
    .unwrap();
    let (gate, _ended) = Gate::new(
        Policy::parse(POLICY, "policies.toml").unwrap(),
        Arc::new(MemoryStore::new()),
        AuditLog::open(&audit_path).unwrap(),
        identities,
        Limits::default(),
    );
    let told = Arc::new(Told::default());
    gate.add_channel(Arc::clone(&told) as Arc<dyn ApprovalChannel>);

    let token = gate
        .add_agent(&AgentName::new("ci-one").unwrap())
        .await
        .unwrap();
    let caller = gate.authenticate(token.expose_secret()).unwrap();
    let filed = gate
        .file(
            caller.agent().unwrap(),
            FileRequest {
                secrets: vec![SecretName::new("github/token").unwrap()],
                reason: "why".into(),
                ttl: None,
                command: None,
                host: None,
            },
        )
        .await
        .unwrap();
    let Outcome::Decided(view) = gate
        .decide(
            &filed.id,
            Verdict::Approve { ttl: None },
            &Decider::Operator,
        )
        .await
        .unwrap()
    else {
        panic!("not decided")
    };
    let grant = view.grant.unwrap();
    // The post named whom to ping: the rule's approvers, by user and by role.
    assert_eq!(
        *told.mentions.lock().unwrap(),
        vec![Mentions {
            users: vec![UserId(111_111_111_111_111_111)],
            roles: vec![RoleId(222_222_222_222_222_222)],
        }]
    );
    let start = grant.expires_at.system_time() - Duration::from_secs(600);

    // Someone who may not approve its kind: refused, audited, nothing changes.
    let stranger = person(999, &[]);
    let refused = Gatekeeper::extend(&*gate, &grant.id, &stranger).await;
    assert!(matches!(refused, Err(Refused::NotAllowed)), "{refused:?}");
    let log = std::fs::read_to_string(&audit_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("\"refused\"") && l.contains("\"extend\"")),
        "{log}"
    );
    assert!(!log.contains("grant_extended"));

    // An approver by role: the grant's own TTL more.
    let by_role = person(555, &[222_222_222_222_222_222]);
    let extended = Gatekeeper::extend(&*gate, &grant.id, &by_role)
        .await
        .unwrap();
    let secs = |t: keygate_proto::Timestamp| {
        t.system_time()
            .duration_since(start)
            .map_or(0, |d| d.as_secs())
    };
    assert!((1199..=1201).contains(&secs(extended.expires_at)));
    assert!(told.changes.lock().unwrap().iter().any(
        |c| matches!(c, Change::GrantExtended(g) if g.id == grant.id && g.expires_at == extended.expires_at)
    ));

    // By user id: cut to approval + 25m, then nothing more to add.
    let by_user = person(111_111_111_111_111_111, &[]);
    let capped = Gatekeeper::extend(&*gate, &grant.id, &by_user)
        .await
        .unwrap();
    assert!((1499..=1501).contains(&secs(capped.expires_at)));
    let again = Gatekeeper::extend(&*gate, &grant.id, &by_user).await;
    assert!(matches!(again, Err(Refused::AtMaxTtl(_))), "{again:?}");
    let log = std::fs::read_to_string(&audit_path).unwrap();
    assert_eq!(log.matches("grant_extended").count(), 2, "{log}");
    assert!(log.contains("@user555 (555)"), "{log}");

    // A grant that is gone cannot be extended.
    gate.revoke(
        &keygate_gateway::gate::Selector::Grant(grant.id.clone()),
        &keygate_gateway::audit::Actor {
            who: "operator".into(),
            via: "terminal",
        },
    )
    .await
    .unwrap();
    let gone = Gatekeeper::extend(&*gate, &grant.id, &by_user).await;
    assert!(matches!(gone, Err(Refused::NotFound)), "{gone:?}");
}
