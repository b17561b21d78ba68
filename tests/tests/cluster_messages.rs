//! Which message shows a request, in the cluster's Redis (a real `redis-server`): one
//! node records the message its bot posted, another reads it back to take it over; the
//! record expires `keep` after its last write, and bad input changes nothing.

use std::sync::Arc;
use std::time::Duration;

use keygate_cluster::{ClusterError, Health, Link, Shared};
use keygate_tests::redis::RedisServer;

#[allow(clippy::unwrap_used)]
async fn node(redis: &RedisServer) -> Shared {
    let link: Arc<Link> = Link::open(&redis.url()).unwrap();
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

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_message_recorded_on_one_node_is_read_on_another_until_it_expires() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    assert_eq!(b.messages("r1").await.unwrap(), vec![]);

    a.set_message("r1", "discord", 1_300_000_000_000_000_042, HOUR)
        .await
        .unwrap();
    a.set_message("r1", "chat", 7, HOUR).await.unwrap();
    assert_eq!(
        b.messages("r1").await.unwrap(),
        vec![
            ("chat".to_owned(), 7),
            ("discord".to_owned(), 1_300_000_000_000_000_042)
        ]
    );
    // A channel's message posted again replaces its old one; other requests are apart.
    b.set_message("r1", "discord", 99, HOUR).await.unwrap();
    assert_eq!(
        a.messages("r1").await.unwrap(),
        vec![("chat".to_owned(), 7), ("discord".to_owned(), 99)]
    );
    assert_eq!(a.messages("r2").await.unwrap(), vec![]);
    let pttl = redis.command(&["PTTL", "{keygate}:msg:r1"]).unwrap();
    let ms: i64 = pttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(ms > 3_590_000 && ms <= 3_600_000, "{pttl:?}");

    // Bad input: refused, nothing changed.
    for refused in [
        a.set_message("r1", "discord", 0, HOUR).await,
        a.set_message("r1", "discord", 5, Duration::ZERO).await,
    ] {
        assert!(
            matches!(refused, Err(ClusterError::Invalid(_))),
            "{refused:?}"
        );
    }
    assert_eq!(
        a.messages("r1").await.unwrap(),
        vec![("chat".to_owned(), 7), ("discord".to_owned(), 99)]
    );

    // Redis drops the record `keep` after its last write.
    a.set_message("r3", "discord", 3, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        b.messages("r3").await.unwrap(),
        vec![("discord".to_owned(), 3)]
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !b.messages("r3").await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the record outlived its keep"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
