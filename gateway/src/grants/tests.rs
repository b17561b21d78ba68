//! Grants on their own (a read taken, given back, logged once, held against a
//! revocation) and in the table (found, revoked, expired, indexed by agent), and a
//! property over whole lives of a request and its grant: nothing is released after a
//! deny, a cancel or an expiry, after a revocation, or past the grant's TTL.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use keygate_proto::AgentName;
use keygate_proto::api::RequestStatus;
use keygate_proto::approval::DeciderId;
use proptest::prelude::*;

use super::*;
use crate::requests::tests::{actor, request, user};
use crate::requests::{Refusal, State};

fn secret(name: &str) -> SecretName {
    SecretName::new(name).unwrap()
}

/// A request for `github/token` and `npm/token`, approved: its grant of `ttl`.
fn grant(ttl: Duration, reuse: bool) -> Arc<Grant> {
    let mut r = request(1);
    r.secrets = vec![secret("github/token"), secret("npm/token")];
    r.reuse = reuse;
    r.command_sha256 = None;
    Arc::new(Grant::for_request(&r, ttl, vec!["@a (1)".into()]))
}

fn bound(command: &str) -> Arc<Grant> {
    let mut r = request(1);
    r.command_sha256 = Some(command.to_owned());
    Arc::new(Grant::for_request(&r, Duration::from_secs(600), Vec::new()))
}

fn other_agent() -> Agent {
    Agent {
        name: AgentName::new("ci-two").unwrap(),
        serial: 8,
    }
}

fn indexed(grants: &Grants, agent: &Agent) -> Option<usize> {
    grants.by_agent.read().unwrap().get(agent).map(Vec::len)
}

#[test]
fn a_grant_is_made_from_its_request_and_ends_a_ttl_later() {
    let mut r = request(1);
    r.approvers = Approvers::new([keygate_proto::UserId(5)], [], ["ops".to_owned()]);
    r.command_sha256 = Some("abc".into());
    r.reuse = false;
    let g = Grant::for_request(&r, Duration::from_secs(90), vec!["@a (1)".into()]);
    assert_eq!(g.request, r.id);
    assert_eq!(g.agent, r.agent);
    assert_eq!(g.secrets, r.secrets);
    assert_eq!(g.ttl, Duration::from_secs(90));
    assert_eq!(
        g.expires_at().duration_since(g.created_at).unwrap(),
        Duration::from_secs(90)
    );
    assert!(g.created_at >= r.created_at);
    assert_eq!(g.approved_by, ["@a (1)"]);
    assert!(!g.reuse);
    assert_eq!(g.approvers, r.approvers);
    assert_eq!(g.command_sha256.as_deref(), Some("abc"));
    assert_eq!(g.reference().id, g.id);
    assert_eq!(g.reference().expires_at, g.view().expires_at);
    let v = g.view();
    assert_eq!(v.id, g.id);
    assert_eq!(v.agent, r.agent.name);
    assert_eq!(v.secrets, r.secrets);
    assert_eq!(v.approved_by, ["@a (1)"]);
    assert!(!v.reuse);
    assert_eq!(v.request, r.id);
    assert_eq!(v.reads, 0);
    assert_ne!(v.created_at, v.expires_at);
}

#[test]
fn a_read_is_taken_only_while_the_grant_lasts_and_covers_the_secret() {
    let g = grant(Duration::from_secs(60), true);
    let (gh, npm) = (secret("github/token"), secret("npm/token"));
    let start = g.created_at;
    assert_eq!(g.take(&gh, start), Some(0));
    assert_eq!(g.take(&npm, start), Some(1));
    assert_eq!(g.take(&gh, start + Duration::from_secs(59)), Some(0));
    assert_eq!(g.take(&gh, g.expires_at()), None, "the TTL is up");
    assert_eq!(g.take(&gh, g.expires_at() + Duration::from_secs(1)), None);
    assert_eq!(g.take(&secret("other/token"), start), None);
    assert_eq!(g.reads(), 3);
    assert_eq!(g.view().reads, 3);
}

#[test]
fn a_single_use_grant_is_spent_per_secret_and_can_be_given_back() {
    let g = grant(Duration::from_secs(60), false);
    let (gh, npm) = (secret("github/token"), secret("npm/token"));
    let now = g.created_at;
    assert_eq!(g.take(&gh, now), Some(0));
    assert_eq!(g.take(&gh, now), None, "spent");
    assert_eq!(g.take(&npm, now), Some(1), "each secret once");
    assert_eq!(g.reads(), 2);
    g.give_back(&gh);
    assert_eq!(g.reads(), 1);
    assert_eq!(
        g.take(&gh, now),
        Some(0),
        "given back, it can be read again"
    );
    g.give_back(&secret("other/token"));
    assert_eq!(
        g.reads(),
        2,
        "giving back what it does not cover changes nothing"
    );
}

#[test]
fn the_first_read_of_each_secret_is_logged_once_and_a_failed_line_is_tried_again() {
    let g = grant(Duration::from_secs(60), true);
    let (gh, npm) = (secret("github/token"), secret("npm/token"));
    let mut writes = 0;
    let failed: Result<(), &str> = g.log_first_read(&gh, || Err("disk full"));
    assert_eq!(failed, Err("disk full"));
    for s in [&gh, &gh, &npm, &gh, &npm] {
        g.log_first_read(s, || {
            writes += 1;
            Ok::<(), ()>(())
        })
        .unwrap();
    }
    assert_eq!(writes, 2);
    g.log_first_read(&secret("other/token"), || -> Result<(), ()> {
        panic!("nothing to log for a secret it does not cover")
    })
    .unwrap();
}

#[tokio::test]
async fn a_closed_grant_starts_no_read_and_close_waits_for_those_in_flight() {
    let g = grant(Duration::from_secs(60), true);
    let reading = g.hold().await.unwrap();
    let closing = tokio::spawn({
        let g = Arc::clone(&g);
        async move { g.close().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!closing.is_finished(), "a read is still in flight");
    drop(reading);
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .unwrap()
        .unwrap();
    assert!(g.hold().await.is_none());
}

#[tokio::test]
async fn the_table_finds_a_live_grant_of_the_agent_that_covers_the_secret() {
    let (grants, mut ended) = Grants::new();
    let g = grant(Duration::from_secs(600), true);
    let agent = g.agent.clone();
    let gh = secret("github/token");
    assert!(grants.find(&agent, &gh, None).is_none());
    grants.insert(Arc::clone(&g)).await;
    assert!(format!("{grants:?}").contains("live"));
    assert_eq!(grants.get(&g.id).await.unwrap().id, g.id);
    assert_eq!(grants.find(&agent, &gh, None).unwrap().id, g.id);
    assert_eq!(g.reads(), 1, "finding takes the read");
    assert!(grants.find(&agent, &gh, Some("any")).is_some(), "unbound");
    assert!(grants.find(&other_agent(), &gh, None).is_none());
    let mut old = agent.clone();
    old.serial += 1;
    assert!(
        grants.find(&old, &gh, None).is_none(),
        "another registration"
    );
    assert!(grants.find(&agent, &secret("other/token"), None).is_none());
    assert!(
        grants
            .find_at(&agent, &gh, None, g.expires_at() + Duration::from_secs(1))
            .is_none()
    );
    assert_eq!(g.reads(), 2);
    grants.tick().await;
    assert!(ended.try_recv().is_err(), "nothing ended");
}

#[tokio::test]
async fn a_grant_bound_to_a_command_serves_only_that_command() {
    let (grants, _ended) = Grants::new();
    let g = bound("hash-of-argv");
    grants.insert(Arc::clone(&g)).await;
    let s = &g.secrets[0];
    assert!(grants.find(&g.agent, s, None).is_none());
    assert!(grants.find(&g.agent, s, Some("hash-of-other")).is_none());
    assert!(grants.find(&g.agent, s, Some("hash-of-argv")).is_some());
}

#[tokio::test]
async fn revoking_ends_a_grant_at_once_and_tells_watchers_but_not_the_expiry_path() {
    let (grants, mut ended) = Grants::new();
    let (one, two) = (
        grant(Duration::from_secs(600), true),
        grant(Duration::from_secs(600), true),
    );
    let agent = one.agent.clone();
    grants.insert(Arc::clone(&one)).await;
    grants.insert(Arc::clone(&two)).await;
    assert_eq!(indexed(&grants, &agent), Some(2));
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let w = grants
        .watch(&one.id, Some(&agent), 0, Duration::ZERO, stop.clone())
        .await
        .unwrap();
    assert_eq!(w.status, GrantStatus::Live);

    assert_eq!(grants.revoke(&one.id).await.unwrap().id, one.id);
    assert!(grants.revoke(&one.id).await.is_none(), "once");
    assert!(grants.get(&one.id).await.is_none());
    let w = grants
        .watch(&one.id, None, 0, Duration::ZERO, stop.clone())
        .await
        .unwrap();
    assert_eq!(w.status, GrantStatus::Revoked);
    grants.tick().await;
    assert!(ended.try_recv().is_err(), "a revocation is not an expiry");
    assert_eq!(
        indexed(&grants, &agent),
        Some(1),
        "only the revoked one leaves"
    );
    let gh = secret("github/token");
    assert_eq!(grants.find(&agent, &gh, None).unwrap().id, two.id);

    grants.revoke(&two.id).await.unwrap();
    grants.tick().await;
    assert_eq!(indexed(&grants, &agent), None, "no empty lists left behind");
    assert!(grants.find(&agent, &gh, None).is_none());
    let unknown = GrantId::random();
    assert!(grants.revoke(&unknown).await.is_none());
    assert!(matches!(
        grants.watch(&unknown, None, 0, Duration::ZERO, stop).await,
        Err(WatchError::NotFound)
    ));
}

#[tokio::test]
async fn a_grant_past_its_ttl_is_hidden_at_once_and_reported_once_noticed() {
    let (grants, mut ended) = Grants::new();
    let short = grant(Duration::from_millis(200), true);
    let long = grant(Duration::from_secs(3600), true);
    let agent = short.agent.clone();
    grants.insert(Arc::clone(&short)).await;
    grants.insert(Arc::clone(&long)).await;
    grants.tick().await;
    assert!(grants.get(&short.id).await.is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let gh = secret("github/token");
    // As of a time inside its TTL, the grant would still serve: the cache hides it.
    assert!(
        grants
            .find_at(&agent, &gh, None, short.created_at)
            .is_some_and(|g| g.id == long.id)
    );
    assert!(grants.get(&short.id).await.is_none());
    // moka's timer wheel notices an expiry within a second or two of it.
    let e = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            grants.tick().await;
            if let Ok(e) = ended.try_recv() {
                break e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(e.grant.id, short.id);
    assert!(ended.try_recv().is_err(), "the long one lives on");
    assert!(grants.get(&long.id).await.is_some());
    assert_eq!(indexed(&grants, &agent), Some(1));
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let w = grants
        .watch(&short.id, None, 0, Duration::ZERO, stop)
        .await
        .unwrap();
    assert_eq!(w.status, GrantStatus::Expired);
}

#[tokio::test]
async fn live_grants_are_listed_soonest_to_end_first() {
    let (grants, _ended) = Grants::new();
    let ttls = [300, 100, 200];
    let all: Vec<Arc<Grant>> = ttls
        .iter()
        .map(|s| grant(Duration::from_secs(*s), true))
        .collect();
    for g in &all {
        grants.insert(Arc::clone(g)).await;
    }
    let listed: Vec<Duration> = grants.list().iter().map(|g| g.ttl).collect();
    assert_eq!(
        listed,
        [100, 200, 300].map(Duration::from_secs),
        "{listed:?}"
    );
}

#[tokio::test]
async fn a_changed_secret_reaches_the_watchers_of_grants_that_cover_it() {
    let (grants, _ended) = Grants::new();
    let g = grant(Duration::from_secs(600), true);
    grants.insert(Arc::clone(&g)).await;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let before = grants
        .watch(&g.id, None, 0, Duration::ZERO, stop.clone())
        .await
        .unwrap();
    grants.secret_changed(secret("npm/token"));
    let w = grants
        .watch(&g.id, None, before.epoch, Duration::ZERO, stop)
        .await
        .unwrap();
    assert_eq!(w.changed, [secret("npm/token")]);
    grants.purge();
    assert!(grants.get(&g.id).await.is_some());
}

/// One thing that can happen to a request and its grant.
#[derive(Debug, Clone)]
enum Step {
    /// Decider 0-2 are people (by id), 3 the operator; `renamed` changes only the label.
    Approve {
        who: u8,
        renamed: bool,
        ttl: Option<u64>,
    },
    Deny,
    Cancel,
    Expire,
    Revoke,
    /// The clock moves on, in seconds.
    Advance(u64),
    /// The agent asks for secret 0 or 1 (covered) or 2 (not).
    Read(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..4, any::<bool>(), proptest::option::of(1u64..1200))
            .prop_map(|(who, renamed, ttl)| Step::Approve { who, renamed, ttl }),
        1 => Just(Step::Deny),
        1 => Just(Step::Cancel),
        1 => Just(Step::Expire),
        1 => Just(Step::Revoke),
        3 => (0u64..400).prop_map(Step::Advance),
        4 => (0u8..3).prop_map(Step::Read),
    ]
}

fn decider(who: u8) -> DeciderId {
    if who == 3 {
        DeciderId::Operator
    } else {
        user(u64::from(who) + 1)
    }
}

/// What the model expects of the grant, once there is one.
struct Live {
    grant: Arc<Grant>,
    ttl: Duration,
    /// Time since approval.
    elapsed: Duration,
    revoked: bool,
    spent: [bool; 2],
    served: u64,
}

fn run(quorum: u32, reuse: bool, steps: &[Step]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (grants, _ended) = Grants::new();
    let mut r = request(quorum);
    let names = [
        secret("github/token"),
        secret("npm/token"),
        secret("other/x"),
    ];
    r.secrets = names[..2].to_vec();
    r.reuse = reuse;
    let mut distinct: HashSet<DeciderId> = HashSet::new();
    let mut live: Option<Live> = None;
    for s in steps {
        let status = r.status();
        let settle = |t: Result<crate::requests::Transition, Refusal>| -> Result<_, TestCaseError> {
            match (status, t) {
                (RequestStatus::Pending, Ok(t)) => Ok(Some(t)),
                (RequestStatus::Pending, Err(e)) => Err(TestCaseError::fail(format!("{e}"))),
                (st, Ok(_)) => Err(TestCaseError::fail(format!("moved a {st:?} request"))),
                (st, Err(e)) => {
                    prop_assert_eq!(e, Refusal::AlreadyDecided(st));
                    Ok(None)
                }
            }
        };
        match s {
            Step::Approve { who, renamed, ttl } => {
                let label = format!("@p{who}{}", if *renamed { "-renamed" } else { "" });
                let ttl = ttl.map(Duration::from_secs);
                if let Some(t) = settle(r.approve(decider(*who), actor(&label), ttl))? {
                    distinct.insert(decider(*who));
                    let reached = distinct.len() >= quorum as usize;
                    prop_assert_eq!(t.grant.is_some(), reached);
                    if let Some(g) = t.grant.clone() {
                        let ttl = ttl.map_or(r.ttl, |t| t.min(r.ttl));
                        prop_assert_eq!(g.ttl, ttl);
                        prop_assert_eq!(g.approved_by.len(), distinct.len());
                        rt.block_on(grants.insert(Arc::clone(&g)));
                        live = Some(Live {
                            grant: g,
                            ttl,
                            elapsed: Duration::ZERO,
                            revoked: false,
                            spent: [false; 2],
                            served: 0,
                        });
                    }
                    r.state = t.next;
                    if let State::Pending { approvals } = &r.state {
                        prop_assert_eq!(approvals.len(), distinct.len());
                    }
                }
            }
            Step::Deny => {
                if let Some(t) = settle(r.deny(actor("@d"), "no".into()))? {
                    r.state = t.next;
                }
            }
            Step::Cancel => {
                if let Some(t) = settle(r.cancel(actor("ci-one"), "gone"))? {
                    r.state = t.next;
                }
            }
            Step::Expire => {
                if let Some(t) = settle(r.expire())? {
                    r.state = t.next;
                }
            }
            Step::Revoke => {
                if let Some(l) = live.as_mut() {
                    let gone = rt.block_on(grants.revoke(&l.grant.id));
                    prop_assert_eq!(gone.is_some(), !l.revoked);
                    rt.block_on(l.grant.close());
                    l.revoked = true;
                }
            }
            Step::Advance(secs) => {
                if let Some(l) = live.as_mut() {
                    l.elapsed += Duration::from_secs(*secs);
                }
            }
            Step::Read(i) => {
                let i = usize::from(*i);
                let now = live
                    .as_ref()
                    .map_or_else(SystemTime::now, |l| l.grant.created_at + l.elapsed);
                let found = grants.find_at(&r.agent, &names[i], None, now);
                let expected = live.as_ref().is_some_and(|l| {
                    !l.revoked && i < 2 && l.elapsed < l.ttl && (reuse || !l.spent[i])
                });
                prop_assert_eq!(found.is_some(), expected, "read {} in {:?}", i, r.status());
                if let (Some(l), true) = (live.as_mut(), expected) {
                    l.spent[i] = true;
                    l.served += 1;
                }
            }
        }
        // A request denied, cancelled or expired never has a grant; an approved one has
        // exactly one, made when the quorum of distinct deciders was reached.
        prop_assert_eq!(live.is_some(), r.status() == RequestStatus::Approved);
        if r.status() != RequestStatus::Approved {
            prop_assert!(distinct.len() < quorum as usize || r.status().is_final());
        }
    }
    if let Some(l) = &live {
        prop_assert_eq!(l.grant.reads(), l.served);
    }
    Ok(())
}

proptest! {
    #[test]
    fn no_sequence_releases_after_a_deny_a_revocation_or_the_ttl(
        quorum in 1u32..4,
        reuse in any::<bool>(),
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        run(quorum, reuse, &steps)?;
    }
}

#[tokio::test]
async fn a_watcher_wakes_when_its_grant_ends_and_not_for_others_changes() {
    let (grants, _ended) = Grants::new();
    let grants = Arc::new(grants);
    let g = grant(Duration::from_secs(600), true);
    grants.insert(Arc::clone(&g)).await;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let epoch = grants
        .watch(&g.id, None, 0, Duration::ZERO, stop.clone())
        .await
        .unwrap()
        .epoch;
    // A secret it does not cover changed: nothing for this watcher.
    grants.secret_changed(secret("other/token"));
    let w = grants
        .watch(&g.id, None, epoch, Duration::from_millis(50), stop.clone())
        .await
        .unwrap();
    assert_eq!(w.status, GrantStatus::Live);
    assert!(w.changed.is_empty());
    assert!(w.epoch > epoch);
    // Changes before `since` are old news.
    grants.secret_changed(secret("github/token"));
    let seen = grants
        .watch(&g.id, None, epoch, Duration::ZERO, stop.clone())
        .await
        .unwrap();
    assert_eq!(seen.changed, [secret("github/token")]);
    let later = grants
        .watch(&g.id, None, seen.epoch, Duration::ZERO, stop.clone())
        .await
        .unwrap();
    assert!(later.changed.is_empty());
    // Another agent cannot watch it.
    assert!(matches!(
        grants
            .watch(&g.id, Some(&other_agent()), 0, Duration::ZERO, stop.clone())
            .await,
        Err(WatchError::NotFound)
    ));
    let waiting = tokio::spawn({
        let (grants, id) = (Arc::clone(&grants), g.id.clone());
        async move {
            grants
                .watch(&id, None, seen.epoch, Duration::from_secs(30), stop)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished());
    grants.revoke(&g.id).await.unwrap();
    let w = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(w.status, GrantStatus::Revoked);
}

#[tokio::test]
async fn a_watch_ends_at_shutdown() {
    let (grants, _ended) = Grants::new();
    let g = grant(Duration::from_secs(600), true);
    grants.insert(Arc::clone(&g)).await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let stopping = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop_tx.send_replace(true);
    };
    let (w, ()) = tokio::join!(
        grants.watch(&g.id, None, 0, Duration::from_secs(30), stop),
        stopping
    );
    assert!(matches!(w, Err(WatchError::ShuttingDown)));
}

const MIN: Duration = Duration::from_secs(60);

mod extend;
mod kept;
