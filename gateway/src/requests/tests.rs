//! The request state machine, transition by transition, and the table around it.

#![allow(clippy::unwrap_used)]

use keygate_policies::Decision;
use keygate_proto::{AgentName, UserId};

use super::*;

pub(crate) fn actor(who: &str) -> Actor {
    Actor {
        who: who.into(),
        via: "discord",
    }
}

pub(crate) fn user(id: u64) -> DeciderId {
    DeciderId::User {
        channel: "discord",
        id: UserId(id),
    }
}

pub(crate) fn request(quorum: u32) -> Request {
    let eval = Evaluation {
        decision: Decision::Ask {
            approvers: Approvers::default(),
            quorum,
        },
        rule: Some("r".into()),
        reason: "asks".into(),
        ttl: Duration::from_secs(600),
        ttl_was_cut: false,
        max_ttl: Duration::from_secs(3600),
        request_timeout: Duration::from_secs(60),
        reuse: true,
    };
    let asked = Asked {
        agent: Agent {
            name: AgentName::new("ci-one").unwrap(),
            serial: 7,
        },
        secrets: vec![SecretName::new("github/token").unwrap()],
        reason: "why".into(),
        command: None,
        command_sha256: None,
        host: None,
    };
    Request::pending(asked, &eval, Approvers::default(), quorum)
}

fn applied(r: &mut Request, t: Transition) {
    r.state = t.next;
}

#[test]
fn below_the_quorum_each_account_counts_once() {
    let mut r = request(2);
    let t = r.approve(user(1), actor("@a (1)"), None).unwrap();
    assert!(t.grant.is_none());
    assert!(matches!(
        t.event(),
        Event::RequestApproval {
            approvals: 1,
            quorum: 2,
            ..
        }
    ));
    applied(&mut r, t);
    // The same account again, under another name: still one approval.
    let t = r.approve(user(1), actor("@renamed (1)"), None).unwrap();
    assert!(t.grant.is_none());
    applied(&mut r, t);
    assert_eq!(r.status(), RequestStatus::Pending);
    assert_eq!(r.view().approvals, vec!["@a (1)".to_owned()]);
    // A second account completes it, with a grant named after both.
    let t = r.approve(user(2), actor("@b (2)"), None).unwrap();
    let grant = t.grant.clone().unwrap();
    assert_eq!(
        grant.approved_by,
        vec!["@a (1)".to_owned(), "@b (2)".to_owned()]
    );
    assert!(matches!(
        t.event(),
        Event::RequestDecided {
            outcome: "approved",
            ..
        }
    ));
    applied(&mut r, t);
    assert_eq!(r.status(), RequestStatus::Approved);
    assert_eq!(r.view().grant.unwrap().id, grant.id);
}

#[test]
fn a_repeated_approval_is_logged_under_who_pressed() {
    let mut r = request(3);
    for (id, who) in [(1, "@a (1)"), (2, "@b (2)")] {
        let t = r.approve(user(id), actor(who), None).unwrap();
        applied(&mut r, t);
    }
    let t = r.approve(user(1), actor("@a (1)"), None).unwrap();
    assert!(
        matches!(t.event(), Event::RequestApproval { by, approvals: 2, .. } if by.who == "@a (1)"),
        "{:?}",
        t.event()
    );
}

#[test]
fn the_operator_is_one_decider_and_policy_another() {
    let mut r = request(3);
    for _ in 0..3 {
        let t = r
            .approve(DeciderId::Operator, actor("operator"), None)
            .unwrap();
        applied(&mut r, t);
    }
    assert_eq!(r.status(), RequestStatus::Pending);
    let t = r.approve(DeciderId::Policy, actor("policy"), None).unwrap();
    applied(&mut r, t);
    assert_eq!(r.view().approvals.len(), 2);
}

#[test]
fn a_shorter_ttl_is_kept_and_a_longer_one_cut_to_the_requests() {
    let r = request(1);
    let t = r
        .approve(user(1), actor("a"), Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(t.grant.unwrap().ttl, Duration::from_secs(60));
    let t = r
        .approve(user(1), actor("a"), Some(Duration::from_secs(6000)))
        .unwrap();
    assert_eq!(t.grant.unwrap().ttl, Duration::from_secs(600));
    let t = r.approve(user(1), actor("a"), None).unwrap();
    assert!(matches!(t.next, State::Approved { ttl, .. } if ttl == Duration::from_secs(600)));
}

#[test]
fn deny_expire_and_cancel_say_why() {
    let r = request(1);
    let t = r.deny(actor("@a (1)"), "not today".into()).unwrap();
    assert!(matches!(
        t.event(),
        Event::RequestDecided {
            outcome: "denied",
            message: Some("not today"),
            ..
        }
    ));
    let mut denied = r.clone();
    applied(&mut denied, t);
    let v = denied.view();
    assert_eq!(v.status, RequestStatus::Denied);
    assert_eq!(v.message.as_deref(), Some("not today"));
    assert_eq!(v.decided_by.as_deref(), Some("@a (1)"));
    assert_eq!(v.decided_via.as_deref(), Some("discord"));

    let t = r.expire().unwrap();
    assert!(matches!(t.event(), Event::RequestExpired { .. }));
    let mut expired = r.clone();
    applied(&mut expired, t);
    assert_eq!(expired.view().status, RequestStatus::Expired);
    assert!(expired.view().decided_by.is_none());
    assert!(expired.view().decided_at.is_some());

    let t = r
        .cancel(actor("ci-one"), "cancelled by the requester")
        .unwrap();
    assert!(matches!(t.event(), Event::RequestCancelled { .. }));
    let mut cancelled = r.clone();
    applied(&mut cancelled, t);
    assert_eq!(
        cancelled.view().message.as_deref(),
        Some("cancelled by the requester")
    );
}

#[test]
fn nothing_moves_a_settled_request() {
    let r = request(1);
    let settled: Vec<Request> = [
        r.approve(user(1), actor("a"), None).unwrap(),
        r.deny(actor("a"), "no".into()).unwrap(),
        r.expire().unwrap(),
        r.cancel(actor("a"), "gone").unwrap(),
    ]
    .into_iter()
    .map(|t| {
        let mut s = r.clone();
        applied(&mut s, t);
        s
    })
    .collect();
    for s in &settled {
        let already = Refusal::AlreadyDecided(s.status());
        assert_eq!(s.approve(user(2), actor("b"), None).unwrap_err(), already);
        assert_eq!(s.deny(actor("b"), "x".into()).unwrap_err(), already);
        assert_eq!(s.expire().unwrap_err(), already);
        assert_eq!(s.cancel(actor("b"), "x").unwrap_err(), already);
    }
}

#[test]
fn the_table_applies_a_planned_transition_and_purges_nothing_pending() {
    let table = Requests::default();
    let r = request(1);
    let id = r.id.clone();
    let agent = r.agent.clone();
    table.insert(r);
    assert_eq!(table.pending_of(Some(&agent)), 1);
    let t = table.get(&id).unwrap().expire().unwrap();
    let view = table.apply(t).unwrap();
    assert_eq!(view.status, RequestStatus::Expired);
    assert_eq!(table.pending_of(Some(&agent)), 0);
    table.purge();
    assert!(table.get(&id).is_some(), "finished requests stay an hour");
}

fn settled_all(r: &Request) -> Vec<Request> {
    [
        r.approve(user(1), actor("a"), None).unwrap(),
        r.deny(actor("a"), "no".into()).unwrap(),
        r.expire().unwrap(),
        r.cancel(actor("a"), "gone").unwrap(),
    ]
    .into_iter()
    .map(|t| {
        let mut s = r.clone();
        applied(&mut s, t);
        s
    })
    .collect()
}

#[test]
fn a_new_request_is_pending_with_what_the_policy_said() {
    let r = request(2);
    assert_eq!(r.status(), RequestStatus::Pending);
    assert_eq!(
        r.expires_at.duration_since(r.created_at).unwrap(),
        Duration::from_secs(60)
    );
    assert!(r.created_at <= SystemTime::now());
    assert_eq!(r.ttl, Duration::from_secs(600));
    assert!(r.reuse);
    assert_eq!(r.rule.as_deref(), Some("r"));
    assert_eq!(r.quorum, 2);
    assert!(r.posted_to.is_empty());
    let v = r.view();
    assert_eq!(v.status, RequestStatus::Pending);
    assert_eq!(v.ttl_seconds, 600);
    assert_eq!(v.quorum, 2);
    assert!(v.approvals.is_empty());
    assert!(v.decided_by.is_none() && v.decided_via.is_none() && v.decided_at.is_none());
    assert!(v.message.is_none() && v.grant.is_none());
    assert_eq!(v.rule.as_deref(), Some("r"));
    assert_eq!(v.agent.as_str(), "ci-one");
    assert_eq!(v.reason, "why");
    assert_eq!(v.secrets, r.secrets);
    assert_ne!(v.created_at, v.expires_at);
}

#[test]
fn each_state_has_its_own_status() {
    let r = request(1);
    let statuses: Vec<RequestStatus> = settled_all(&r).iter().map(Request::status).collect();
    assert_eq!(
        statuses,
        [
            RequestStatus::Approved,
            RequestStatus::Denied,
            RequestStatus::Expired,
            RequestStatus::Cancelled
        ]
    );
    for s in settled_all(&r) {
        assert_eq!(s.view().status, s.status());
        assert_eq!(s.state.status(), s.status());
    }
}

#[test]
fn a_settled_request_says_who_settled_it_and_when() {
    let before = SystemTime::now();
    let r = request(1);
    for s in settled_all(&r) {
        let (by, at) = s.state.decided().unwrap();
        assert!(at >= before && at <= SystemTime::now());
        let v = s.view();
        assert!(v.decided_at.is_some());
        if s.status() == RequestStatus::Expired {
            assert!(by.is_none());
            assert!(v.decided_by.is_none() && v.decided_via.is_none());
        } else {
            assert_eq!(by.unwrap().who, "a");
            assert_eq!(v.decided_by.as_deref(), Some("a"));
            assert_eq!(v.decided_via.as_deref(), Some("discord"));
        }
    }
    assert!(r.state.decided().is_none());
}

#[test]
fn an_approved_request_shows_its_grant_and_everyone_who_approved() {
    let mut r = request(2);
    r.posted_to = vec!["discord".into()];
    r.command = Some(vec!["git".into(), "push".into()]);
    r.host = Some("build-7".into());
    let t = r.approve(user(1), actor("@a (1)"), None).unwrap();
    applied(&mut r, t);
    let t = r
        .approve(user(2), actor("@b (2)"), Some(Duration::from_secs(120)))
        .unwrap();
    let grant = t.grant.clone().unwrap();
    assert_eq!(grant.ttl, Duration::from_secs(120));
    assert_eq!(grant.request, r.id);
    applied(&mut r, t);
    let v = r.view();
    assert_eq!(v.status, RequestStatus::Approved);
    assert_eq!(v.approvals, ["@a (1)", "@b (2)"]);
    assert_eq!(v.ttl_seconds, 120, "the grant's TTL, not the request's");
    assert_eq!(v.grant.as_ref().unwrap().id, grant.id);
    assert_eq!(v.decided_by.as_deref(), Some("@b (2)"));
    assert!(v.message.is_none());
    assert_eq!(v.posted_to, ["discord"]);
    assert_eq!(v.command, r.command);
    assert_eq!(v.host.as_deref(), Some("build-7"));
    let State::Approved {
        by, approvals, at, ..
    } = &r.state
    else {
        panic!("{:?}", r.state)
    };
    assert_eq!(by.who, "@b (2)");
    assert_eq!(approvals.len(), 2);
    assert!(*at <= SystemTime::now() && *at >= r.created_at);
}

#[test]
fn a_quorum_of_one_is_reached_by_the_first_approval() {
    let r = request(1);
    let t = r.approve(user(9), actor("@z (9)"), None).unwrap();
    assert!(t.grant.is_some());
    assert_eq!(t.next.status(), RequestStatus::Approved);
}

#[test]
fn each_transition_names_its_audit_line() {
    let mut r = request(2);
    let t = r.approve(user(1), actor("@a (1)"), None).unwrap();
    match t.event() {
        Event::RequestApproval {
            request,
            by,
            approvals,
            quorum,
        } => {
            assert_eq!(request, &r.id);
            assert_eq!(by.who, "@a (1)");
            assert_eq!((approvals, quorum), (1, 2));
        }
        other => panic!("{other:?}"),
    }
    applied(&mut r, t);
    let t = r
        .approve(user(2), actor("@b (2)"), Some(Duration::from_secs(30)))
        .unwrap();
    let gid = t.grant.as_ref().unwrap().id.clone();
    match t.event() {
        Event::RequestDecided {
            request,
            outcome,
            by,
            message,
            grant,
            ttl_seconds,
        } => {
            assert_eq!(request, &r.id);
            assert_eq!(outcome, "approved");
            assert_eq!(by.who, "@b (2)");
            assert!(message.is_none());
            assert_eq!(grant, Some(&gid));
            assert_eq!(ttl_seconds, Some(30));
        }
        other => panic!("{other:?}"),
    }
    let t = r.deny(actor("@c (3)"), "no".into()).unwrap();
    match t.event() {
        Event::RequestDecided {
            request,
            by,
            grant,
            ttl_seconds,
            ..
        } => {
            assert_eq!(request, &r.id);
            assert_eq!(by.who, "@c (3)");
            assert!(grant.is_none() && ttl_seconds.is_none());
        }
        other => panic!("{other:?}"),
    }
    let t = r.expire().unwrap();
    assert!(matches!(t.event(), Event::RequestExpired { request } if request == &r.id));
    assert_eq!(t.cause.who, "daemon");
    assert_eq!(t.cause.via, "daemon");
    assert!(t.grant.is_none());
    let t = r.cancel(actor("ci-one"), "gone").unwrap();
    assert!(
        matches!(t.event(), Event::RequestCancelled { request, by } if request == &r.id && by.who == "ci-one")
    );
    assert!(t.grant.is_none());
    let t = r.deny(actor("x"), "no".into()).unwrap();
    assert!(t.grant.is_none());
    assert_eq!(t.request, r.id);
    assert_eq!(t.quorum, 2);
}

#[test]
fn only_a_settled_request_shows_why_it_ended() {
    let r = request(1);
    let messages: Vec<Option<String>> = settled_all(&r).iter().map(|s| s.view().message).collect();
    assert_eq!(
        messages,
        [
            None,
            Some("no".to_owned()),
            Some("no decision before the request expired".to_owned()),
            Some("gone".to_owned())
        ]
    );
    for s in &settled_all(&r)[1..] {
        let v = s.view();
        assert!(v.approvals.is_empty() && v.grant.is_none());
        assert_eq!(v.ttl_seconds, 600);
    }
}

#[test]
fn the_table_finds_watches_and_lists() {
    let table = Requests::default();
    assert!(format!("{table:?}").contains("Requests"));
    let first = request(1);
    std::thread::sleep(Duration::from_millis(5));
    let second = request(1);
    let (a, b) = (first.id.clone(), second.id.clone());
    table.insert(first);
    table.insert(second);
    let unknown = RequestId::random();
    assert!(table.get(&unknown).is_none());
    assert!(table.watch(&unknown).is_none());
    assert!(table.decision_lock(&unknown).is_none());
    assert_eq!(table.get(&a).unwrap().id, a);
    let listed: Vec<RequestId> = table.list().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, [b.clone(), a.clone()], "newest first");

    let one = table.decision_lock(&a).unwrap();
    let again = table.decision_lock(&a).unwrap();
    assert!(Arc::ptr_eq(&one, &again), "one lock per request");
    assert!(!Arc::ptr_eq(&one, &table.decision_lock(&b).unwrap()));

    table.set_posted_to(&a, vec!["terminal".into()]);
    assert_eq!(table.get(&a).unwrap().posted_to, ["terminal"]);
    table.set_posted_to(&unknown, vec!["x".into()]);

    let (seen, mut rx) = table.watch(&a).unwrap();
    assert_eq!(seen.id, a);
    assert_eq!(*rx.borrow_and_update(), RequestStatus::Pending);
    let t = seen.deny(actor("a"), "no".into()).unwrap();
    assert_eq!(table.apply(t).unwrap().status, RequestStatus::Denied);
    assert!(!rx.has_changed().unwrap(), "apply does not wake");
    table.wake(&a);
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), RequestStatus::Denied);
    table.wake(&unknown);

    let (_, mut rx) = table.watch(&b).unwrap();
    rx.borrow_and_update();
    table.wake_all();
    assert!(rx.has_changed().unwrap());

    let gone = request(1).expire().unwrap();
    assert!(table.apply(gone).is_none());
}

#[test]
fn pending_counts_are_per_agent_and_only_pending() {
    let table = Requests::default();
    let mine = request(1);
    let me = mine.agent.clone();
    let mut theirs = request(1);
    theirs.agent = Agent {
        name: AgentName::new("ci-two").unwrap(),
        serial: 8,
    };
    // The same name, another registration: another agent.
    let mut old = request(1);
    old.agent.serial = 1;
    let decided = {
        let mut r = request(1);
        let t = r.expire().unwrap();
        applied(&mut r, t);
        r
    };
    let mine_id = mine.id.clone();
    for r in [mine, theirs, old, decided] {
        table.insert(r);
    }
    assert_eq!(table.pending_of(Some(&me)), 1);
    assert_eq!(table.pending_of(None), 3);
    assert_eq!(table.pending_ids_of(&me), [mine_id]);
}

#[test]
fn purge_forgets_only_what_finished_over_an_hour_ago() {
    let table = Requests::default();
    let long_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let mut old = request(1);
    old.state = State::Denied {
        by: actor("a"),
        at: long_ago,
        reason: "no".into(),
        given: None,
    };
    let mut recent = request(1);
    recent.state = State::Expired {
        at: SystemTime::now() - Duration::from_secs(60),
    };
    let mut pending = request(1);
    pending.created_at = long_ago;
    let ids = [old.id.clone(), recent.id.clone(), pending.id.clone()];
    for r in [old, recent, pending] {
        table.insert(r);
    }
    table.purge();
    assert!(table.get(&ids[0]).is_none(), "finished two hours ago");
    assert!(table.get(&ids[1]).is_some(), "finished a minute ago");
    assert!(table.get(&ids[2]).is_some(), "still pending");
}

#[test]
fn a_refusal_says_why() {
    assert_eq!(
        Refusal::AlreadyDecided(RequestStatus::Denied).to_string(),
        "already decided: the request is denied"
    );
    assert!(
        Refusal::NotAnApprover
            .to_string()
            .contains("not an approver")
    );
}
