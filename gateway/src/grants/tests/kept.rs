//! Kept answers: what a reusable grant keeps of its first read, for whom, and every way
//! that goes (a value change, removal, lock, revocation, extension, the grant's end); a
//! connection's remembered grant; extensions at and past the cap.

#![allow(clippy::unwrap_used)]

use super::extend::extendable;
use super::*;

#[tokio::test]
async fn a_remembered_grant_serves_a_connection_only_while_the_table_would() {
    let (grants, _ended) = Grants::new();
    let g = grant(Duration::from_secs(600), true);
    let agent = g.agent.clone();
    let gh = secret("github/token");
    grants.insert(Arc::clone(&g)).await;
    let body = Bytes::from_static(b"{\"value\":\"v\"}");
    g.log_first_read(&gh, || Ok::<_, ()>(())).unwrap();
    g.keep_answer(&gh, 3, &body);
    let mut last = LastGrant::default();
    let hit = |last: &mut LastGrant, who: &Agent, generation: u64| {
        grants.take_kept_where(who, |s| *s == gh, None, generation, Instant::now(), last)
    };
    assert_eq!(
        hit(&mut last, &agent, 3),
        Some(body.clone()),
        "through the index"
    );
    assert!(last.0.is_some(), "remembered");
    assert_eq!(hit(&mut last, &agent, 3), Some(body.clone()), "remembered");
    assert_eq!(g.reads(), 2, "each counted");
    // Another agent on the same connection is not served by what it remembers.
    assert_eq!(hit(&mut last, &other_agent(), 3), None);
    hit(&mut last, &agent, 3).unwrap();
    // A changed value: nothing, and the kept answer goes.
    assert_eq!(hit(&mut last, &agent, 4), None);
    g.keep_answer(&gh, 4, &body);
    hit(&mut last, &agent, 4).unwrap();
    // Revoked: the remembered grant serves no more.
    grants.revoke(&g.id).await.unwrap();
    assert_eq!(hit(&mut last, &agent, 4), None);
    let reads = g.reads();
    g.close().await;
    assert_eq!(hit(&mut last, &agent, 4), None);
    assert_eq!(g.reads(), reads, "nothing counted after");
}

/// How many answers `g` keeps: its `Debug` shows each one only as its size, "redacted".
fn kept(g: &Grant) -> usize {
    format!("{g:?}").matches("redacted").count()
}

/// A reusable grant's first read of `s` as the gate makes it: taken, logged, and its
/// answer (`body`) kept as built in store generation `generation`.
fn first_read(g: &Grant, s: &SecretName, generation: u64, body: &'static str) -> Bytes {
    assert!(g.take(s, SystemTime::now()).is_some());
    g.log_first_read(s, || Ok::<(), ()>(())).unwrap();
    let body = Bytes::from_static(body.as_bytes());
    g.keep_answer(s, generation, &body);
    body
}

#[tokio::test]
async fn a_single_use_grant_never_keeps_an_answer() {
    let (grants, _ended) = Grants::new();
    let g = grant(MIN, false);
    grants.insert(Arc::clone(&g)).await;
    let gh = secret("github/token");
    first_read(&g, &gh, 1, r#"{"value":"once"}"#);
    assert_eq!(kept(&g), 0, "{g:?}");
    assert_eq!(g.answer(&gh, 1), None);
    assert_eq!(grants.take_kept(&g.agent, &gh, None, 1), None);
    assert_eq!(g.reads(), 1, "a refused kept read takes nothing");
}

#[test]
fn a_kept_answer_is_served_once_its_read_is_logged_and_only_in_its_generation() {
    let g = grant(MIN, true);
    let (gh, npm) = (secret("github/token"), secret("npm/token"));
    assert!(g.take(&gh, SystemTime::now()).is_some());
    let body = Bytes::from_static(br#"{"value":"v1"}"#);
    g.keep_answer(&gh, 1, &body);
    assert_eq!(g.answer(&gh, 1), None, "its audit line is not written yet");
    g.log_first_read(&gh, || Ok::<(), ()>(())).unwrap();
    assert_eq!(g.answer(&gh, 1), Some(body.clone()));
    assert_eq!(g.answer(&gh, 1), Some(body), "and again");
    assert_eq!(g.answer(&npm, 1), None, "nothing kept for the other secret");
    assert_eq!(g.answer(&secret("other/token"), 1), None, "not covered");
    g.keep_answer(&secret("other/token"), 1, &Bytes::from_static(b"x"));
    assert_eq!(kept(&g), 1, "nothing kept for a secret it does not cover");
    // The value changed since: the answer is stale, and dropped at once.
    assert_eq!(g.answer(&gh, 2), None);
    assert_eq!(kept(&g), 0);
    assert_eq!(g.answer(&gh, 1), None, "gone, not just hidden");
}

#[tokio::test]
async fn the_table_serves_a_kept_answer_only_to_the_grant_that_would_serve_the_read() {
    let (grants, _ended) = Grants::new();
    let g = grant(MIN, true);
    let b = bound("hash-of-argv");
    let agent = g.agent.clone();
    grants.insert(Arc::clone(&g)).await;
    let gh = secret("github/token");
    assert_eq!(
        grants.take_kept(&agent, &gh, None, 3),
        None,
        "nothing kept yet"
    );
    assert_eq!(g.reads(), 0, "and nothing taken");
    assert!(grants.find(&agent, &gh, None).is_some());
    g.log_first_read(&gh, || Ok::<(), ()>(())).unwrap();
    let body = Bytes::from_static(br#"{"value":"v3"}"#);
    g.keep_answer(&gh, 3, &body);
    assert_eq!(g.reads(), 1);

    assert_eq!(grants.take_kept(&agent, &gh, None, 3), Some(body.clone()));
    assert_eq!(g.reads(), 2, "a kept answer is a read, counted");
    assert_eq!(grants.take_kept(&other_agent(), &gh, None, 3), None);
    let mut old = agent.clone();
    old.serial += 1;
    assert_eq!(
        grants.take_kept(&old, &gh, None, 3),
        None,
        "another registration"
    );
    assert_eq!(
        grants.take_kept(&agent, &secret("npm/token"), None, 3),
        None
    );
    assert_eq!(g.reads(), 2);

    // A grant bound to a command keeps its answer for that command only.
    let (grants_b, _ended_b) = Grants::new();
    grants_b.insert(Arc::clone(&b)).await;
    let s = b.secrets[0].clone();
    assert!(grants_b.find(&b.agent, &s, Some("hash-of-argv")).is_some());
    b.log_first_read(&s, || Ok::<(), ()>(())).unwrap();
    b.keep_answer(&s, 3, &body);
    let before = b.reads();
    assert_eq!(
        grants_b.take_kept(&b.agent, &s, Some("hash-of-other"), 3),
        None
    );
    assert_eq!(b.reads(), before);
    assert!(
        grants_b
            .take_kept(&b.agent, &s, Some("hash-of-argv"), 3)
            .is_some()
    );
    assert_eq!(b.reads(), before + 1);

    // The value changed: stale, nothing taken, and the read goes the whole way.
    assert_eq!(grants.take_kept(&agent, &gh, None, 4), None);
    assert_eq!(g.reads(), 2);
    assert_eq!(g.answer(&gh, 3), None, "the stale answer is gone");
}

#[tokio::test]
async fn a_grant_being_closed_serves_no_kept_answer() {
    let (grants, _ended) = Grants::new();
    let g = grant(MIN, true);
    grants.insert(Arc::clone(&g)).await;
    let gh = secret("github/token");
    let body = first_read(&g, &gh, 1, r#"{"value":"v"}"#);
    assert_eq!(grants.take_kept(&g.agent, &gh, None, 1), Some(body));
    // A read in flight holds the grant open; a revocation then waits for it to finish,
    // and from the moment it starts no kept answer goes out.
    let reading = g.hold().await.unwrap();
    let closing = tokio::spawn({
        let g = Arc::clone(&g);
        async move { g.close().await }
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while !g.closed.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(grants.take_kept(&g.agent, &gh, None, 1), None);
    assert_eq!(g.reads(), 2, "nothing taken");
    drop(reading);
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept(&g), 0, "closed, it keeps nothing");
    assert_eq!(grants.take_kept(&g.agent, &gh, None, 1), None);
    g.keep_answer(&gh, 1, &Bytes::from_static(b"late"));
    assert_eq!(
        kept(&g),
        0,
        "a read that finishes after the close keeps nothing"
    );
}

#[tokio::test]
async fn a_changed_secret_drops_the_answers_kept_for_it_and_no_others() {
    let (grants, _ended) = Grants::new();
    let (one, two) = (grant(MIN, true), grant(MIN, true));
    let mut r = request(1);
    r.agent = other_agent();
    r.secrets = vec![secret("npm/token")];
    let theirs = Arc::new(Grant::for_request(&r, MIN, Vec::new()));
    for g in [&one, &two, &theirs] {
        grants.insert(Arc::clone(g)).await;
    }
    let (gh, npm) = (secret("github/token"), secret("npm/token"));
    let body = first_read(&one, &gh, 1, r#"{"value":"gh"}"#);
    first_read(&one, &npm, 1, r#"{"value":"npm"}"#);
    first_read(&two, &npm, 1, r#"{"value":"npm"}"#);
    first_read(&theirs, &npm, 1, r#"{"value":"npm"}"#);
    grants.secret_changed(npm.clone());
    assert_eq!(one.answer(&npm, 1), None);
    assert_eq!(two.answer(&npm, 1), None);
    assert_eq!(theirs.answer(&npm, 1), None, "every agent's grants");
    assert_eq!(one.answer(&gh, 1), Some(body), "another secret's stays");
    assert_eq!([kept(&one), kept(&two), kept(&theirs)], [1, 0, 0]);
}

#[tokio::test]
async fn locking_the_store_drops_every_kept_answer() {
    let (grants, _ended) = Grants::new();
    let mut r = request(1);
    r.agent = other_agent();
    let theirs = Arc::new(Grant::for_request(&r, MIN, Vec::new()));
    let mine = grant(MIN, true);
    grants.insert(Arc::clone(&mine)).await;
    grants.insert(Arc::clone(&theirs)).await;
    let (gh, npm) = (secret("github/token"), secret("npm/token"));
    first_read(&mine, &gh, 1, "a");
    first_read(&mine, &npm, 1, "b");
    first_read(&theirs, &gh, 1, "c");
    assert_eq!(kept(&mine) + kept(&theirs), 3);
    grants.forget_answers(None);
    assert_eq!(kept(&mine) + kept(&theirs), 0);
    assert_eq!(mine.answer(&gh, 1), None);
}

#[tokio::test]
async fn a_revoked_grant_drops_its_kept_answers_and_keeps_no_more() {
    let (grants, _ended) = Grants::new();
    let g = grant(MIN, true);
    grants.insert(Arc::clone(&g)).await;
    let gh = secret("github/token");
    first_read(&g, &gh, 1, "a");
    first_read(&g, &secret("npm/token"), 1, "b");
    grants.revoke(&g.id).await.unwrap();
    assert_eq!(kept(&g), 0, "revoked, before it is even closed");
    assert_eq!(g.answer(&gh, 1), None);
    g.keep_answer(&gh, 1, &Bytes::from_static(b"late"));
    assert_eq!(
        kept(&g),
        0,
        "a read that finishes after the end keeps nothing"
    );
    assert_eq!(grants.take_kept(&g.agent, &gh, None, 1), None);
}

#[tokio::test]
async fn an_extension_drops_the_kept_answers_and_a_refused_one_does_not() {
    let (grants, _ended) = Grants::new();
    let g = extendable(10 * MIN, 30 * MIN);
    grants.insert(Arc::clone(&g)).await;
    let s = g.secrets[0].clone();
    let body = first_read(&g, &s, 1, r#"{"expires_at":"old"}"#);
    let failed = grants
        .extend(
            &g.id,
            |_| MIN,
            |_, _| Err(std::io::Error::other("disk full")),
        )
        .await;
    assert!(matches!(failed, Err(ExtendError::Commit(_))));
    assert_eq!(g.answer(&s, 1), Some(body), "nothing changed");
    grants
        .extend(&g.id, |_| MIN, |_, _| Ok::<_, std::io::Error>(()))
        .await
        .unwrap();
    assert_eq!(kept(&g), 0, "the kept answer named the old end");
    assert_eq!(grants.take_kept(&g.agent, &s, None, 1), None);
}

#[tokio::test]
async fn a_grant_that_runs_out_drops_its_kept_answers_and_keeps_no_more() {
    let (grants, mut ended) = Grants::new();
    let g = grant(Duration::from_millis(200), true);
    grants.insert(Arc::clone(&g)).await;
    let gh = secret("github/token");
    first_read(&g, &gh, 1, "a");
    assert_eq!(kept(&g), 1);
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
    assert_eq!(e.grant.id, g.id);
    assert_eq!(kept(&g), 0, "{g:?}");
    assert_eq!(g.answer(&gh, 1), None);
    g.keep_answer(&gh, 1, &Bytes::from_static(b"late"));
    assert_eq!(
        kept(&g),
        0,
        "a read that finishes after the end keeps nothing"
    );
}

#[tokio::test]
async fn an_extension_at_its_cap_is_refused_and_changes_nothing() {
    let (grants, _ended) = Grants::new();
    let g = extendable(10 * MIN, 30 * MIN);
    grants.insert(Arc::clone(&g)).await;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    // Its own TTL, as `by` is asked of the grant.
    let e = grants
        .extend(&g.id, |g| g.ttl, |_, _| Ok::<_, std::io::Error>(()))
        .await
        .unwrap();
    assert_eq!(e.expires_at(), g.created_at + 20 * MIN);
    let w = grants
        .watch(&g.id, None, 0, Duration::ZERO, stop.clone())
        .await
        .unwrap();
    assert_eq!(w.expires_at, Some(Timestamp::from(g.created_at + 20 * MIN)));
    grants
        .extend(&g.id, |_| 60 * MIN, |_, _| Ok::<_, std::io::Error>(()))
        .await
        .unwrap();
    assert_eq!(g.expires_at(), g.cap(), "cut to the cap");
    let mut committed = false;
    let refused = grants
        .extend(
            &g.id,
            |_| MIN,
            |_, _| {
                committed = true;
                Ok::<_, std::io::Error>(())
            },
        )
        .await;
    assert!(
        matches!(refused, Err(ExtendError::AtCap(cap)) if cap == g.cap()),
        "{refused:?}"
    );
    assert!(!committed, "nothing to audit");
    assert_eq!(g.expires_at(), g.cap());
    assert!(grants.get(&g.id).await.is_some(), "still live");
    let w = grants
        .watch(&g.id, None, 0, Duration::ZERO, stop)
        .await
        .unwrap();
    assert_eq!(w.expires_at, Some(Timestamp::from(g.cap())));
}

#[tokio::test]
async fn a_closed_grant_cannot_be_extended() {
    let (grants, _ended) = Grants::new();
    let g = extendable(10 * MIN, 30 * MIN);
    grants.insert(Arc::clone(&g)).await;
    let end = g.expires_at();
    // Being revoked: closed, not yet out of the table.
    g.close().await;
    let mut committed = false;
    let refused = grants
        .extend(
            &g.id,
            |_| MIN,
            |_, _| {
                committed = true;
                Ok::<_, std::io::Error>(())
            },
        )
        .await;
    assert!(matches!(refused, Err(ExtendError::NotFound)), "{refused:?}");
    assert!(!committed);
    assert_eq!(g.expires_at(), end);
    let unknown = grants
        .extend(
            &GrantId::random(),
            |_| MIN,
            |_, _| Ok::<_, std::io::Error>(()),
        )
        .await;
    assert!(matches!(unknown, Err(ExtendError::NotFound)));
}
