//! Extensions: a grant's end moved by its TTL up to its cap and never past it, moka
//! following the new end; and a kept answer's redacted `Debug`.

#![allow(clippy::unwrap_used)]

use super::*;

/// A grant whose rule caps it at `max_ttl`.
pub(super) fn extendable(ttl: Duration, max_ttl: Duration) -> Arc<Grant> {
    let eval = keygate_policies::Evaluation {
        decision: keygate_policies::Decision::Ask {
            approvers: Approvers::default(),
            quorum: 1,
        },
        rule: Some("r".into()),
        reason: "asks".into(),
        ttl,
        ttl_was_cut: false,
        max_ttl,
        request_timeout: Duration::from_secs(60),
        reuse: true,
    };
    let asked = crate::requests::Asked {
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
    let request = Request::pending(asked, &eval, Approvers::default(), 1);
    Arc::new(Grant::for_request(&request, ttl, vec!["a".into()]))
}

#[test]
fn an_extension_adds_up_to_the_cap_and_nothing_past_it() {
    let g = extendable(10 * MIN, 30 * MIN);
    let end = g.expires_at();
    assert_eq!(g.cap(), g.created_at + 30 * MIN);
    assert_eq!(g.extended_end(15 * MIN), Some(end + 15 * MIN));
    assert_eq!(g.extended_end(25 * MIN), Some(g.cap()), "cut to the cap");
    assert_eq!(g.extended_end(Duration::MAX), Some(g.cap()), "no overflow");
    g.ends.store(nanos(g.cap()), Ordering::Release);
    assert_eq!(g.extended_end(MIN), None, "at the cap: nothing to add");
    assert_eq!(g.reference().expires_at, Timestamp::from(g.cap()));

    let at_cap = extendable(30 * MIN, 30 * MIN);
    assert_eq!(at_cap.extended_end(MIN), None);
}

#[tokio::test]
async fn moka_follows_an_extended_end() {
    let (grants, mut ended) = Grants::new();
    let g = extendable(Duration::from_secs(1), MIN);
    let agent = g.agent.clone();
    let secret = g.secrets[0].clone();
    grants.insert(Arc::clone(&g)).await;
    let mut audited = None;
    let extended = grants
        .extend(
            &g.id,
            |_| Duration::from_secs(2),
            |_, end| {
                audited = Some(end);
                Ok::<_, std::io::Error>(())
            },
        )
        .await
        .unwrap();
    assert_eq!(audited, Some(extended.expires_at()));
    assert_eq!(extended.expires_at(), g.created_at + Duration::from_secs(3));

    // Past the old end it is still live, listed, found and indexed.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    grants.tick().await;
    assert!(ended.try_recv().is_err(), "it did not end at the old end");
    assert!(grants.get(&g.id).await.is_some());
    assert_eq!(grants.list().len(), 1);
    assert!(grants.find(&agent, &secret, None).is_some());

    // A failing commit changes nothing.
    let before = g.expires_at();
    let failed = grants
        .extend(
            &g.id,
            |_| MIN,
            |_, _| Err(std::io::Error::other("disk full")),
        )
        .await;
    assert!(matches!(failed, Err(ExtendError::Commit(_))));
    assert_eq!(g.expires_at(), before);

    // At the new end it ends, and is reported once.
    let ends = tokio::time::timeout(Duration::from_secs(5), async {
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
    assert_eq!(ends.grant.id, g.id);
    assert!(SystemTime::now() >= before, "not before its new end");
    assert!(grants.find(&agent, &secret, None).is_none());
    let gone = grants
        .extend(&g.id, |_| MIN, |_, _| Ok::<_, std::io::Error>(()))
        .await;
    assert!(matches!(gone, Err(ExtendError::NotFound)));
}

#[test]
fn a_kept_answer_never_shows_in_a_grants_debug() {
    let g = grant(MIN, true);
    let gh = secret("github/token");
    assert!(g.take(&gh, SystemTime::now()).is_some());
    g.logged[0].store(true, Ordering::Release);
    let body = Bytes::from_static(br#"{"value":"ghp_kept_answer_value"}"#);
    g.keep_answer(&gh, 7, &body);
    assert_eq!(g.answer(&gh, 7), Some(body), "the answer is kept");
    let shown = format!("{g:?}");
    assert!(!shown.contains("ghp_kept_answer_value"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}
