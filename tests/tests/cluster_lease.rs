//! The cluster's lease on its one Discord session, against a real `redis-server`: exactly
//! one holder; only the holder renews or releases; a holder that dies without letting go
//! is replaced once the lease expires; a holder that loses Redis stops leading before
//! its lease could have expired; everything comes back by itself when Redis does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate_cluster::{Health, Leadership, Lease, Link, NodeName, Timing};
use keygate_tests::redis::RedisServer;

/// A short lease, so the tests wait well under a second or two per takeover.
const FAST: Timing = Timing {
    ttl: Duration::from_millis(1500),
    renew_every: Duration::from_millis(200),
    retry_every: Duration::from_millis(100),
};

#[allow(clippy::unwrap_used)]
fn node(name: &str) -> NodeName {
    NodeName::parse(name).unwrap()
}

#[allow(clippy::unwrap_used)]
async fn connected(link: &Link) {
    let mut health = link.watch_health();
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| *h == Health::Connected),
    )
    .await
    .expect("Redis never answered")
    .unwrap();
}

#[allow(clippy::unwrap_used)]
async fn until_leading(l: &Leadership, want: bool, within: Duration) -> Duration {
    let started = Instant::now();
    let mut rx = l.watch();
    tokio::time::timeout(within, rx.wait_for(|v| *v == want))
        .await
        .unwrap_or_else(|_| panic!("leadership never became {want} within {within:?}"))
        .unwrap();
    started.elapsed()
}

#[tokio::test]
async fn only_the_holder_renews_or_releases() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let link = Link::open(&redis.url()).unwrap();
    connected(&link).await;
    let mut conn = link.conn().unwrap();
    let a = Lease::named("lease:test", &node("a"), Duration::from_secs(30));
    let b = Lease::named("lease:test", &node("b"), Duration::from_secs(30));

    assert!(a.acquire(&mut conn).await.unwrap());
    assert!(!b.acquire(&mut conn).await.unwrap(), "two holders");
    assert!(
        a.acquire(&mut conn).await.unwrap(),
        "the holder takes its own lease again"
    );
    assert!(!b.renew(&mut conn).await.unwrap());
    assert!(!b.release(&mut conn).await.unwrap());
    assert_eq!(a.holder(&mut conn).await.unwrap().as_deref(), Some("a"));
    assert!(a.renew(&mut conn).await.unwrap());
    assert!(a.release(&mut conn).await.unwrap());
    assert_eq!(a.holder(&mut conn).await.unwrap(), None);
    assert!(b.acquire(&mut conn).await.unwrap());
    assert_eq!(b.holder(&mut conn).await.unwrap().as_deref(), Some("b"));
    // The same node name restarted is a different holder: it cannot touch the old lease.
    let b_again = Lease::named("lease:test", &node("b"), Duration::from_secs(30));
    assert!(!b_again.acquire(&mut conn).await.unwrap());
    assert!(!b_again.release(&mut conn).await.unwrap());
}

#[tokio::test]
async fn a_lease_nobody_renews_expires_in_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let link = Link::open(&redis.url()).unwrap();
    connected(&link).await;
    let mut conn = link.conn().unwrap();
    let a = Lease::named("lease:test", &node("a"), Duration::from_millis(300));
    assert!(a.acquire(&mut conn).await.unwrap());
    let pttl = redis.command(&["PTTL", a.key()]).unwrap();
    let ms: i64 = pttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(ms > 0 && ms <= 300, "{pttl:?}");
    let b = Lease::named("lease:test", &node("b"), Duration::from_secs(5));
    let mut conn_b = link.conn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.acquire(&mut conn_b).await.unwrap() {
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !a.renew(&mut conn).await.unwrap(),
        "an expired holder renewed another's lease"
    );
}

#[tokio::test]
async fn exactly_one_of_three_leads_and_a_dead_leader_is_replaced() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let link = Link::open(&redis.url()).unwrap();
        connected(&link).await;
        let lease = Lease::discord(&node(name), FAST.ttl);
        nodes.push(Leadership::spawn(Arc::clone(&link), lease, FAST));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let leader = loop {
        let leaders: Vec<usize> = (0..3).filter(|i| nodes[*i].is_leader()).collect();
        assert!(leaders.len() <= 1, "two leaders: {leaders:?}");
        if let [one] = leaders[..] {
            break one;
        }
        assert!(Instant::now() < deadline, "nobody took the lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // It stays the only one over several renewals.
    let until = Instant::now() + FAST.ttl * 2;
    while Instant::now() < until {
        let leaders = (0..3).filter(|i| nodes[*i].is_leader()).count();
        assert_eq!(leaders, 1);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The leader dies without letting go: another takes over after the lease expires,
    // not before.
    let dead = nodes.remove(leader);
    let died = Instant::now();
    dead.vanish();
    let deadline = died + FAST.ttl + FAST.retry_every * 5 + Duration::from_secs(2);
    let next = loop {
        if let Some(i) = (0..2).find(|i| nodes[*i].is_leader()) {
            break i;
        }
        assert!(Instant::now() < deadline, "nobody took over");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = died.elapsed();
    // The lease was last renewed at most `renew_every` before the leader died.
    assert!(
        took >= FAST.ttl.saturating_sub(FAST.renew_every),
        "took over after {took:?}, before the lease could expire"
    );
    assert!(!nodes[1 - next].is_leader());

    // A clean stop gives the lease back at once.
    let resigned = nodes.remove(next);
    let at = Instant::now();
    resigned.resign().await;
    until_leading(&nodes[0], true, FAST.ttl).await;
    assert!(
        at.elapsed() < FAST.ttl,
        "waited for the lease to expire after a resignation"
    );
}

#[tokio::test]
async fn losing_redis_steps_down_in_time_and_recovers() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let link = Link::open(&redis.url()).unwrap();
    connected(&link).await;
    let leader = Leadership::spawn(
        Arc::clone(&link),
        Lease::discord(&node("a"), FAST.ttl),
        FAST,
    );
    until_leading(&leader, true, Duration::from_secs(5)).await;

    redis.stop();
    let lost = Instant::now();
    let took = until_leading(&leader, false, FAST.ttl * 2).await;
    // It steps down before the lease would have run out in Redis.
    assert!(lost.elapsed() < FAST.ttl, "stepped down after {took:?}");
    let mut health = link.watch_health();
    tokio::time::timeout(
        Duration::from_secs(5),
        health.wait_for(|h| *h == Health::Unreachable),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        link.conn().is_err(),
        "a command offered while Redis is down"
    );
    let why = link.conn().unwrap_err().to_string();
    assert!(why.contains("unreachable"), "{why}");

    redis.restart();
    connected(&link).await;
    until_leading(&leader, true, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_node_starts_while_redis_is_down() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    redis.stop();
    let link = Link::open(&redis.url()).unwrap();
    let leader = Leadership::spawn(
        Arc::clone(&link),
        Lease::discord(&node("a"), FAST.ttl),
        FAST,
    );
    assert!(link.conn().is_err());
    assert!(!leader.is_leader());
    redis.restart();
    connected(&link).await;
    until_leading(&leader, true, Duration::from_secs(10)).await;
}

#[test]
fn a_url_that_is_not_redis_is_refused_without_repeating_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let err = Link::open("http://user:hunter2@example.invalid/")
            .unwrap_err()
            .to_string();
        assert!(err.contains("KEYGATE_CLUSTER_REDIS_URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    });
}
