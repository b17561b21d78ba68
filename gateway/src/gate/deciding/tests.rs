//! Settling a request through the gate: who may decide, what a quorum counts, what the
//! log and the channels hear, and how the daemon and a waiting agent end a request.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use keygate_policies::Approvers;
use keygate_proto::api::RequestStatus;
use keygate_proto::approval::{Approver, BoxFuture, ChannelError};
use keygate_proto::{AgentName, RoleId, UserId};

use super::*;
use crate::grants::Ended;
use crate::identity::Agent;
use crate::requests::tests::request;

/// A call whose work on one node never waits, run to its end.
fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(f).expect("one node's cancel never waits")
}

/// An approval channel that remembers what it was told.
#[derive(Debug, Default)]
struct Heard(Mutex<Vec<RequestStatus>>);

impl keygate_proto::approval::ApprovalChannel for Heard {
    fn name(&self) -> &'static str {
        "test"
    }
    fn post<'a>(
        &'a self,
        _: &'a RequestView,
        _: &'a keygate_proto::approval::Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async { Ok(()) })
    }
    fn notify(&self, change: &Change) {
        if let Change::Request(v) = change {
            self.0.lock().unwrap().push(v.status);
        }
    }
}

struct Fixture {
    gate: Arc<Gate>,
    agent: Agent,
    heard: Arc<Heard>,
    _ended: tokio::sync::mpsc::UnboundedReceiver<Ended>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let crate::gate::testing::TestGate {
            gate,
            agent,
            ended,
            dir,
        } = crate::gate::testing::TestGate::new();
        let heard = Arc::new(Heard::default());
        gate.add_channel(Arc::clone(&heard) as Arc<dyn keygate_proto::approval::ApprovalChannel>);
        Self {
            gate,
            agent,
            heard,
            _ended: ended,
            _dir: dir,
        }
    }

    /// A pending request of the agent's, approvable by users 1-3 and role 7.
    fn file(&self, quorum: u32) -> RequestId {
        let mut r = request(quorum);
        r.agent = self.agent.clone();
        r.approvers = Approvers::new([1, 2, 3].map(UserId), [RoleId(7)], []);
        let id = r.id.clone();
        self.gate.requests.insert(r);
        id
    }

    fn status(&self, id: &RequestId) -> RequestStatus {
        self.gate.request_view(id).unwrap().status
    }

    fn heard(&self) -> Vec<RequestStatus> {
        self.heard.0.lock().unwrap().clone()
    }

    /// The audit log's event names, after the daemon's own.
    fn logged(&self) -> Vec<String> {
        self.gate
            .audit
            .read_since(None)
            .unwrap()
            .iter()
            .map(|v| v["event"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn person(id: u64, roles: &[u64]) -> Decider {
    Decider::Person(Approver {
        channel: "discord",
        id: UserId(id),
        name: format!("p{id}"),
        roles: roles.iter().copied().map(RoleId).collect(),
    })
}

const APPROVE: Verdict = Verdict::Approve { ttl: None };

#[tokio::test]
async fn a_quorum_of_distinct_approvers_makes_one_live_grant() {
    let f = Fixture::new();
    let id = f.file(2);
    let gate = &f.gate;
    let Outcome::Progress(v) = gate.decide(&id, APPROVE, &person(1, &[])).await.unwrap() else {
        panic!("one of two")
    };
    assert_eq!(v.approvals, ["@p1 (1)"]);
    // The same account again counts once.
    let again = gate.decide(&id, APPROVE, &person(1, &[])).await.unwrap();
    assert!(matches!(again, Outcome::Progress(ref v) if v.approvals.len() == 1));
    assert!(gate.live_grants().is_empty());
    let Outcome::Decided(v) = gate.decide(&id, APPROVE, &person(2, &[])).await.unwrap() else {
        panic!("two of two")
    };
    assert_eq!(v.status, RequestStatus::Approved);
    assert_eq!(v.decided_by.as_deref(), Some("@p2 (2)"));
    assert_eq!(v.decided_via.as_deref(), Some("discord"));
    let grant = v.grant.unwrap();
    assert_eq!(gate.live_grant(&grant.id).await.unwrap().id, grant.id);
    let secret = v.secrets[0].clone();
    assert!(gate.grants.find(&f.agent, &secret, None).is_some());
    assert_eq!(
        f.heard(),
        [
            RequestStatus::Pending,
            RequestStatus::Pending,
            RequestStatus::Approved
        ]
    );
    assert_eq!(
        f.logged(),
        ["request_approval", "request_approval", "request_decided"]
    );
}

#[tokio::test]
async fn a_role_holder_may_decide_and_anyone_else_is_refused_and_logged() {
    let f = Fixture::new();
    let id = f.file(1);
    let err = f.gate.decide(&id, APPROVE, &person(9, &[8])).await;
    assert!(matches!(err, Err(GateError::Forbidden(_))), "{err:?}");
    assert_eq!(f.status(&id), RequestStatus::Pending);
    assert!(f.heard().is_empty(), "nothing changed");
    assert_eq!(f.logged(), ["refused"]);
    let denial = Verdict::Deny { reason: None };
    let err = f.gate.decide(&id, denial, &person(9, &[])).await;
    assert!(matches!(err, Err(GateError::Forbidden(_))), "{err:?}");
    let ok = f.gate.decide(&id, APPROVE, &person(9, &[8, 7])).await;
    assert!(matches!(ok, Ok(Outcome::Decided(_))), "{ok:?}");
}

#[tokio::test]
async fn the_operator_may_decide_any_request_and_shorten_its_grant() {
    let f = Fixture::new();
    let mut r = request(1);
    r.agent = f.agent.clone();
    let id = r.id.clone();
    f.gate.requests.insert(r);
    let shorter = Verdict::Approve {
        ttl: Some(Duration::from_secs(60)),
    };
    let Outcome::Decided(v) = f
        .gate
        .decide(&id, shorter, &Decider::Operator)
        .await
        .unwrap()
    else {
        panic!("decided")
    };
    assert_eq!(v.ttl_seconds, 60);
    assert_eq!(v.decided_by.as_deref(), Some("operator"));
    assert_eq!(v.decided_via.as_deref(), Some("terminal"));
}

#[tokio::test]
async fn a_chosen_ttl_may_be_longer_but_never_past_max_ttl() {
    for (asked, granted) in [(120, 120), (100_000, 0)] {
        let f = Fixture::new();
        let mut r = request(1);
        r.agent = f.agent.clone();
        let id = r.id.clone();
        let max = r.max_ttl.as_secs();
        let granted = if granted == 0 { max } else { granted };
        f.gate.requests.insert(r);
        let chosen = Verdict::ApproveFor {
            ttl: Duration::from_secs(asked),
            note: Some("for the deploy".into()),
        };
        let Outcome::Decided(v) = f
            .gate
            .decide(&id, chosen, &Decider::Operator)
            .await
            .unwrap()
        else {
            panic!("decided")
        };
        assert_eq!(v.ttl_seconds, granted, "asked {asked}");
        assert!(
            f.logged().contains(&"decision_note".to_owned()),
            "{:?}",
            f.logged()
        );
    }
}

#[tokio::test]
async fn a_denial_says_why_or_who_denied() {
    let f = Fixture::new();
    let (a, b) = (f.file(2), f.file(1));
    let plain = Verdict::Deny { reason: None };
    let Outcome::Decided(v) = f.gate.decide(&a, plain, &person(1, &[])).await.unwrap() else {
        panic!("decided")
    };
    assert_eq!(v.status, RequestStatus::Denied);
    assert_eq!(v.message.as_deref(), Some("denied by @p1 (1)"));
    assert!(f.gate.live_grants().is_empty());
    let too_long = Verdict::Deny {
        reason: Some("x".repeat(MAX_DENIAL_REASON + 1)),
    };
    let refused = f.gate.decide(&b, too_long, &person(2, &[])).await;
    assert!(
        matches!(refused, Err(GateError::BadRequest(_))),
        "{refused:?}"
    );
    assert_eq!(
        f.gate.request_view(&b).unwrap().status,
        RequestStatus::Pending
    );
    let longest = Verdict::Deny {
        reason: Some("x".repeat(MAX_DENIAL_REASON)),
    };
    let v = f.gate.decide(&b, longest, &person(2, &[])).await.unwrap();
    let view = v.view();
    assert_eq!(
        view.message.as_deref(),
        Some("x".repeat(MAX_DENIAL_REASON).as_str())
    );
    assert_eq!(view.denial_reason, view.message);
    assert_eq!(f.heard(), [RequestStatus::Denied, RequestStatus::Denied]);
}

#[tokio::test]
async fn a_settled_or_unknown_request_cannot_be_decided() {
    let f = Fixture::new();
    let id = f.file(1);
    f.gate.decide(&id, APPROVE, &person(1, &[])).await.unwrap();
    let denial = Verdict::Deny { reason: None };
    for d in [person(1, &[]), person(9, &[]), Decider::Operator] {
        let err = f.gate.decide(&id, denial.clone(), &d).await;
        assert!(
            matches!(err, Err(GateError::AlreadyDecided("approved"))),
            "{err:?}"
        );
    }
    assert!(matches!(
        now(f.gate.cancel(&id, &Caller::Operator)),
        Err(GateError::AlreadyDecided("approved"))
    ));
    let unknown = RequestId::random();
    assert!(matches!(
        f.gate.decide(&unknown, APPROVE, &Decider::Operator).await,
        Err(GateError::NotFound("request"))
    ));
    assert!(matches!(
        now(f.gate.cancel(&unknown, &Caller::Operator)),
        Err(GateError::NotFound("request"))
    ));
    assert_eq!(f.heard(), [RequestStatus::Approved]);
}

#[test]
fn an_agent_cancels_its_own_request_and_cannot_see_anothers() {
    let f = Fixture::new();
    let (mine, also_mine) = (f.file(1), f.file(1));
    let stranger = Caller::Agent(Agent {
        name: AgentName::new("ci-two").unwrap(),
        serial: 1,
    });
    assert!(matches!(
        now(f.gate.cancel(&mine, &stranger)),
        Err(GateError::NotFound("request"))
    ));
    assert_eq!(f.status(&mine), RequestStatus::Pending);
    let v = now(f.gate.cancel(&mine, &Caller::Agent(f.agent.clone()))).unwrap();
    assert_eq!(v.status, RequestStatus::Cancelled);
    assert_eq!(v.decided_by.as_deref(), Some("ci-one"));
    assert_eq!(v.decided_via.as_deref(), Some("agent"));
    assert_eq!(v.message.as_deref(), Some("cancelled by the requester"));
    let v = now(f.gate.cancel(&also_mine, &Caller::Operator)).unwrap();
    assert_eq!(v.decided_by.as_deref(), Some("operator"));
    assert_eq!(v.decided_via.as_deref(), Some("terminal"));
    assert_eq!(
        f.heard(),
        [RequestStatus::Cancelled, RequestStatus::Cancelled]
    );
    assert_eq!(f.logged(), ["request_cancelled", "request_cancelled"]);
}

#[test]
fn the_daemon_ends_a_pending_request_and_leaves_a_settled_one() {
    let f = Fixture::new();
    let (a, b, c) = (f.file(1), f.file(1), f.file(1));
    f.gate.expire(&a);
    f.gate.cancel_for_removal(&b);
    f.gate.refuse_unseen(&c);
    let (va, vb, vc) = (
        f.gate.request_view(&a).unwrap(),
        f.gate.request_view(&b).unwrap(),
        f.gate.request_view(&c).unwrap(),
    );
    assert_eq!(va.status, RequestStatus::Expired);
    assert_eq!(vb.status, RequestStatus::Cancelled);
    assert_eq!(
        vb.message.as_deref(),
        Some("cancelled: the agent was removed")
    );
    assert_eq!(vb.decided_by.as_deref(), Some("operator"));
    assert_eq!(vc.status, RequestStatus::Denied);
    assert_eq!(
        vc.message.as_deref(),
        Some("no approval channel could show it")
    );
    assert_eq!(vc.decided_by.as_deref(), Some("daemon"));
    assert_eq!(vc.decided_via.as_deref(), Some("daemon"));
    let heard = f.heard().len();
    f.gate.expire(&c);
    f.gate.refuse_unseen(&a);
    f.gate.expire(&RequestId::random());
    assert_eq!(f.status(&c), RequestStatus::Denied);
    assert_eq!(f.status(&a), RequestStatus::Expired);
    assert_eq!(f.heard().len(), heard, "nothing more to tell");
    assert_eq!(
        f.logged(),
        ["request_expired", "request_cancelled", "request_decided"]
    );
}

#[tokio::test]
async fn a_wait_answers_at_once_when_there_is_nothing_to_wait_for() {
    let f = Fixture::new();
    let me = Caller::Agent(f.agent.clone());
    let (pending, settled) = (f.file(1), f.file(1));
    f.gate.expire(&settled);
    let long = Duration::from_secs(30);
    let v = tokio::time::timeout(Duration::from_secs(5), f.gate.wait(&settled, &me, long))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.status, RequestStatus::Expired);
    let v = f.gate.wait(&pending, &me, Duration::ZERO).await.unwrap();
    assert_eq!(v.status, RequestStatus::Pending);
    let v = f
        .gate
        .wait(&pending, &me, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(v.status, RequestStatus::Pending, "the wait ran out");
    let stranger = Caller::Agent(Agent {
        name: AgentName::new("ci-two").unwrap(),
        serial: 1,
    });
    assert!(matches!(
        f.gate.wait(&pending, &stranger, Duration::ZERO).await,
        Err(GateError::NotFound("request"))
    ));
    assert!(matches!(
        f.gate.wait(&RequestId::random(), &me, Duration::ZERO).await,
        Err(GateError::NotFound("request"))
    ));
    assert_eq!(f.status(&pending), RequestStatus::Pending);
}

#[tokio::test]
async fn a_wait_ends_with_the_decision_and_only_with_the_decision() {
    let f = Fixture::new();
    let me = Caller::Agent(f.agent.clone());
    let id = f.file(2);
    let gate = Arc::clone(&f.gate);
    let deciding = {
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Progress towards the quorum does not end the wait; the decision does.
            gate.decide(&id, APPROVE, &person(1, &[])).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            gate.decide(&id, APPROVE, &person(2, &[])).await.unwrap();
        })
    };
    let v = tokio::time::timeout(
        Duration::from_secs(10),
        f.gate.wait(&id, &me, Duration::from_secs(30)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(v.status, RequestStatus::Approved);
    deciding.await.unwrap();
}

#[tokio::test]
async fn an_agent_that_hangs_up_cancels_and_a_shutdown_cancels_nothing() {
    let f = Fixture::new();
    let me = Caller::Agent(f.agent.clone());
    let (dropped, by_operator, at_shutdown) = (f.file(1), f.file(1), f.file(1));
    let long = Duration::from_secs(30);
    let gone = tokio::time::timeout(Duration::from_millis(50), f.gate.wait(&dropped, &me, long));
    assert!(gone.await.is_err());
    assert_eq!(f.status(&dropped), RequestStatus::Cancelled);
    let gone = tokio::time::timeout(
        Duration::from_millis(50),
        f.gate.wait(&by_operator, &Caller::Operator, long),
    );
    assert!(gone.await.is_err());
    assert_eq!(f.status(&by_operator), RequestStatus::Pending);

    let gate = Arc::clone(&f.gate);
    let stopping = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.shut_down();
    });
    let stopped = tokio::time::timeout(
        Duration::from_secs(10),
        f.gate.wait(&at_shutdown, &me, long),
    )
    .await
    .unwrap();
    assert!(
        matches!(stopped, Err(GateError::ShuttingDown)),
        "{stopped:?}"
    );
    assert_eq!(f.status(&at_shutdown), RequestStatus::Pending);
    stopping.await.unwrap();
}

#[test]
fn a_denial_reason_is_trimmed_blank_is_none_and_too_long_is_refused() {
    assert_eq!(denial_reason(None).ok().flatten(), None);
    assert_eq!(denial_reason(Some("  \n ")).ok().flatten(), None);
    assert_eq!(
        denial_reason(Some(" not today ")).ok().flatten().as_deref(),
        Some("not today")
    );
    let most = "é".repeat(MAX_DENIAL_REASON);
    assert_eq!(
        denial_reason(Some(&most)).ok().flatten(),
        Some(most.clone())
    );
    let err = denial_reason(Some(&format!("{most}x"))).unwrap_err();
    assert!(matches!(err, GateError::BadRequest(_)), "{err:?}");
    assert!(err.to_string().contains("at most 400"), "{err}");
}
