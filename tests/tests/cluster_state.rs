//! The cluster's shared state against a real `redis-server`, driven from several "nodes"
//! (each its own link, as separate keygated would be): limits counted cluster-wide, two
//! nodes racing to decide one request (exactly one decides), a single-use grant read by
//! two nodes at once (exactly one gets it), a revocation refused everywhere the moment
//! it returns, a grant's end kept by Redis, changes announced to other nodes and a
//! re-read asked for after every reconnection, and Redis down failing closed at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keygate_cluster::events::{self, Event};
use keygate_cluster::state::{Decided, Decision, Filed, Limits, NewGrant, NewRequest, Read};
use keygate_cluster::{ClusterError, Health, Link, Shared};
use keygate_tests::redis::RedisServer;

const LIMITS: Limits = Limits {
    pending_per_agent: 5,
    requests_per_minute: 8,
};

/// For tests about something else than limits.
const ROOMY: Limits = Limits {
    pending_per_agent: 1000,
    requests_per_minute: 1000,
};

#[allow(clippy::unwrap_used)]
async fn node(redis: &RedisServer) -> Shared {
    let link = Link::open(&redis.url()).unwrap();
    let mut health = link.watch_health();
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| *h == Health::Connected),
    )
    .await
    .expect("Redis never answered")
    .unwrap();
    Shared::new(link)
}

fn request<'a>(id: &'a str, agent: &'a str) -> NewRequest<'a> {
    NewRequest {
        id,
        agent,
        json: r#"{"reason":"open PR #12"}"#,
        deadline: SystemTime::now() + Duration::from_secs(60),
    }
}

#[allow(clippy::unwrap_used)]
async fn approved_with_grant(shared: &Shared, id: &str, grant: &str, ends: SystemTime) {
    assert_eq!(
        shared.file(&request(id, "ci-1"), ROOMY).await.unwrap(),
        Filed::Filed
    );
    let d = Decision {
        id,
        agent: "ci-1",
        version: 1,
        json: r#"{"state":"approved"}"#,
        settles: true,
        grant: Some(NewGrant {
            id: grant,
            json: r#"{"secrets":["github/token"]}"#,
            ends,
        }),
    };
    assert_eq!(shared.decide(&d).await.unwrap(), Decided::Applied(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    // Ten filings from two nodes at once: exactly `pending_per_agent` get in.
    let ids: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let filings: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let n = if i % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            tokio::spawn(async move { n.file(&request(&id, "ci-1"), LIMITS).await.unwrap() })
        })
        .collect();
    let mut results = Vec::new();
    for f in filings {
        results.push(f.await.unwrap());
    }
    let filed = results.iter().filter(|r| **r == Filed::Filed).count();
    assert_eq!(filed, 5, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Filed::Filed | Filed::TooManyPending))
    );
    assert_eq!(a.pending().await.unwrap().len(), 5);
    // Another agent is not held back by this one's count.
    assert_eq!(
        b.file(&request("x0", "ci-2"), LIMITS).await.unwrap(),
        Filed::Filed
    );
    // A taken id is refused.
    assert_eq!(
        b.file(&request("x0", "ci-2"), LIMITS).await.unwrap(),
        Filed::Exists
    );

    // Settling frees a pending place; the per-minute window still counts every filing.
    for id in &ids {
        if let Some(s) = a.request(id).await.unwrap() {
            let d = Decision {
                id,
                agent: "ci-1",
                version: s.version,
                json: "{}",
                settles: true,
                grant: None,
            };
            a.decide(&d).await.unwrap();
        }
    }
    let mut outcomes = Vec::new();
    for i in 0..4 {
        outcomes.push(
            a.file(&request(&format!("y{i}"), "ci-1"), LIMITS)
                .await
                .unwrap(),
        );
    }
    // 5 filed before, 3 more fit the minute's 8, then the window refuses with a wait.
    assert_eq!(outcomes[..3], [Filed::Filed, Filed::Filed, Filed::Filed]);
    let Filed::RateLimited(retry) = outcomes[3] else {
        panic!("{outcomes:?}")
    };
    assert!(
        retry >= Duration::from_secs(1) && retry <= Duration::from_secs(60),
        "{retry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_to_decide_one_request_decide_it_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    for round in 0..20 {
        let id = format!("race{round}");
        assert_eq!(
            a.file(&request(&id, "ci-1"), ROOMY).await.unwrap(),
            Filed::Filed
        );
        let planned = a.request(&id).await.unwrap().unwrap().version;
        let decide = |n: Shared, id: String, who: &'static str| {
            tokio::spawn(async move {
                let grant_id = format!("g-{id}-{who}");
                let d = Decision {
                    id: &id,
                    agent: "ci-1",
                    version: planned,
                    json: who,
                    settles: true,
                    grant: Some(NewGrant {
                        id: &grant_id,
                        json: who,
                        ends: SystemTime::now() + Duration::from_secs(60),
                    }),
                };
                n.decide(&d).await.unwrap()
            })
        };
        let (x, y) = (
            decide(a.clone(), id.clone(), "a"),
            decide(b.clone(), id.clone(), "b"),
        );
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        let wins = [&x, &y]
            .iter()
            .filter(|d| matches!(d, Decided::Applied(_)))
            .count();
        assert_eq!(wins, 1, "round {round}: {x:?} {y:?}");
        assert!(matches!(x, Decided::Stale(_)) || matches!(y, Decided::Stale(_)));
        // Exactly the winner's grant exists, and the request holds the winner's record.
        let stored = b.request(&id).await.unwrap().unwrap();
        assert!(stored.settled);
        let winner = stored.json;
        let loser = if winner == "a" { "b" } else { "a" };
        assert!(
            a.grant(&format!("g-{id}-{winner}"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(a.grant(&format!("g-{id}-{loser}")).await.unwrap().is_none());
        // A settled request refuses every later change, whatever version is named.
        let late = Decision {
            id: &id,
            agent: "ci-1",
            version: stored.version,
            json: "late",
            settles: true,
            grant: None,
        };
        assert!(matches!(b.decide(&late).await.unwrap(), Decided::Stale(_)));
    }
    let missing = Decision {
        id: "nope",
        agent: "ci-1",
        version: 1,
        json: "{}",
        settles: true,
        grant: None,
    };
    assert_eq!(a.decide(&missing).await.unwrap(), Decided::Missing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_use_grant_read_by_two_nodes_at_once_serves_one() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    for round in 0..20 {
        let (id, grant) = (format!("su{round}"), format!("gsu{round}"));
        approved_with_grant(&a, &id, &grant, SystemTime::now() + Duration::from_secs(60)).await;
        let read = |n: Shared, grant: String, who: &'static str| {
            tokio::spawn(async move { n.read(&grant, "db/password", true, who).await.unwrap() })
        };
        let (x, y) = (
            read(a.clone(), grant.clone(), "a"),
            read(b.clone(), grant.clone(), "b"),
        );
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        let mut got = [x, y];
        got.sort_by_key(|r| matches!(r, Read::Taken));
        assert_eq!(got, [Read::Served(1), Read::Taken], "round {round}");
        // Another secret of the same grant is its own single read.
        assert_eq!(
            b.read(&grant, "db/user", true, "b").await.unwrap(),
            Read::Served(2)
        );
        // A secret given back (the store failed mid-read) may be read once more.
        b.give_back(&grant, "db/user").await.unwrap();
        assert_eq!(
            a.read(&grant, "db/user", true, "a").await.unwrap(),
            Read::Served(3)
        );
        assert_eq!(
            b.read(&grant, "db/user", true, "b").await.unwrap(),
            Read::Taken
        );
    }
    // A reusable grant counts every read, from every node.
    approved_with_grant(
        &a,
        "reuse",
        "greuse",
        SystemTime::now() + Duration::from_secs(60),
    )
    .await;
    for i in 1..=6u64 {
        let n = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            n.read("greuse", "github/token", false, "n").await.unwrap(),
            Read::Served(i)
        );
    }
}

#[tokio::test]
async fn a_revocation_holds_on_every_node_once_it_returns() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    approved_with_grant(
        &a,
        "rv",
        "grv",
        SystemTime::now() + Duration::from_secs(600),
    )
    .await;
    assert_eq!(b.grants_of("ci-1").await.unwrap(), vec!["grv".to_owned()]);
    assert!(matches!(
        b.read("grv", "github/token", false, "b").await.unwrap(),
        Read::Served(_)
    ));
    assert!(a.revoke("grv", "ci-1").await.unwrap());
    assert_eq!(
        b.read("grv", "github/token", false, "b").await.unwrap(),
        Read::Gone
    );
    assert!(b.was_revoked("grv").await.unwrap());
    assert!(b.grants_of("ci-1").await.unwrap().is_empty());
    assert!(
        !b.extend("grv", "{}", SystemTime::now() + Duration::from_secs(900))
            .await
            .unwrap()
    );
    assert!(!b.revoke("grv", "ci-1").await.unwrap(), "revoked twice");
    // The marker lasts as long as the grant would have, and no longer.
    let pttl = redis.command(&["PTTL", "{keygate}:revoked:grv"]).unwrap();
    let ms: i64 = pttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(ms > 590_000 && ms <= 600_000, "{pttl:?}");
}

#[tokio::test]
async fn a_grant_ends_in_redis_at_its_end_and_an_extension_moves_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis).await;
    let soon = SystemTime::now() + Duration::from_millis(400);
    approved_with_grant(&a, "ex", "gex", soon).await;
    assert!(matches!(
        a.read("gex", "s", false, "a").await.unwrap(),
        Read::Served(1)
    ));
    let later = SystemTime::now() + Duration::from_millis(1500);
    assert!(
        a.extend("gex", r#"{"extended":true}"#, later)
            .await
            .unwrap()
    );
    assert_eq!(
        a.grant("gex").await.unwrap().as_deref(),
        Some(r#"{"extended":true}"#)
    );
    keygate_tests::poll(Duration::from_secs(1), "the old end to pass", || {
        (SystemTime::now() > soon + Duration::from_millis(100)).then_some(())
    });
    assert!(matches!(
        a.read("gex", "s", false, "a").await.unwrap(),
        Read::Served(2)
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while a.read("gex", "s", false, "a").await.unwrap() != Read::Gone {
        assert!(
            std::time::Instant::now() < deadline,
            "the grant outlived its end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(SystemTime::now() >= later - Duration::from_millis(5));
    // An ended grant is not a revoked one.
    assert!(!a.was_revoked("gex").await.unwrap());
}

#[allow(clippy::unwrap_used)]
async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no event came")
        .unwrap()
}

#[tokio::test]
async fn changes_reach_other_nodes_and_a_reconnect_asks_for_a_reread() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut seen = events::subscribe(b.link());
    assert_eq!(next_event(&mut seen).await, Event::Resync);
    approved_with_grant(&a, "ev", "gev", SystemTime::now() + Duration::from_secs(60)).await;
    assert_eq!(next_event(&mut seen).await, Event::Request("ev".into()));
    assert_eq!(next_event(&mut seen).await, Event::Grant("gev".into()));
    assert_eq!(next_event(&mut seen).await, Event::Request("ev".into()));
    a.revoke("gev", "ci-1").await.unwrap();
    assert_eq!(next_event(&mut seen).await, Event::Grant("gev".into()));

    // Redis restarts: whatever was announced meanwhile is lost, so the subscriber says
    // to re-read before anything else.
    redis.restart();
    assert_eq!(next_event(&mut seen).await, Event::Resync);
    let a = node(&redis).await;
    a.file(&request("after", "ci-1"), ROOMY).await.unwrap();
    assert_eq!(next_event(&mut seen).await, Event::Request("after".into()));
}

#[tokio::test]
async fn redis_down_fails_closed_at_once_and_comes_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis).await;
    approved_with_grant(
        &a,
        "down",
        "gdown",
        SystemTime::now() + Duration::from_secs(60),
    )
    .await;
    redis.stop();
    let mut health = a.link().watch_health();
    tokio::time::timeout(
        Duration::from_secs(5),
        health.wait_for(|h| *h == Health::Unreachable),
    )
    .await
    .unwrap()
    .unwrap();
    let started = std::time::Instant::now();
    let refused = a.read("gdown", "s", false, "a").await;
    assert!(
        matches!(refused, Err(ClusterError::Unreachable(_))),
        "{refused:?}"
    );
    assert!(matches!(
        a.file(&request("d2", "ci-1"), ROOMY).await,
        Err(ClusterError::Unreachable(_))
    ));
    assert!(matches!(
        a.revoke("gdown", "ci-1").await,
        Err(ClusterError::Unreachable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "waited {:?}",
        started.elapsed()
    );

    redis.restart();
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| *h == Health::Connected),
    )
    .await
    .unwrap()
    .unwrap();
    // Redis came back empty (it keeps nothing on disk here): the grant is gone, which
    // fails closed.
    assert_eq!(a.read("gdown", "s", false, "a").await.unwrap(), Read::Gone);
    assert_eq!(
        a.file(&request("d3", "ci-1"), ROOMY).await.unwrap(),
        Filed::Filed
    );
    let _ = Arc::clone(a.link());
}
