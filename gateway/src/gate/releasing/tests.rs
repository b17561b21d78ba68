//! The release point through a real gate (memory store, audit log on a temp dir): a
//! reusable grant's repeated read gets the very bytes its first read built, counted as a
//! read; a change, removal or lock of the store, a revocation, an extension drop that
//! answer; a single-use grant never keeps one; an extension is audited, shown on the
//! request, and stops at the rule's `max_ttl`.

#![allow(clippy::unwrap_used)]

use keygate_proto::api::GrantRef;
use keygate_proto::approval::Decider;
use std::time::Duration;

use keygate_proto::{GrantId, RequestId, SecretValue, Timestamp};

use super::*;
use crate::audit::Actor;
use crate::gate::{Outcome, Selector, Verdict};
use crate::grants::Ended;
use crate::requests::tests::request;

struct Fixture {
    gate: Arc<Gate>,
    agent: Agent,
    gh: SecretName,
    npm: SecretName,
    _ended: tokio::sync::mpsc::UnboundedReceiver<Ended>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A gate whose store holds `github/token` and `npm/token`, and one agent.
    #[allow(clippy::unwrap_used)]
    async fn new() -> Self {
        let crate::gate::testing::TestGate {
            gate,
            agent,
            ended,
            dir,
        } = crate::gate::testing::TestGate::new();
        let f = Self {
            gate,
            agent,
            gh: SecretName::new("github/token").unwrap(),
            npm: SecretName::new("npm/token").unwrap(),
            _ended: ended,
            _dir: dir,
        };
        f.set(&f.gh, "ghp_one").await;
        f.set(&f.npm, "npm_one").await;
        f
    }

    #[allow(clippy::unwrap_used)]
    async fn set(&self, name: &SecretName, value: &str) {
        self.gate
            .set_secret(name.clone(), SecretValue::new(value.into()))
            .await
            .unwrap();
    }

    /// A request of the agent's for both secrets, approved by the operator: its grant.
    #[allow(clippy::unwrap_used)]
    async fn granted(&self, reuse: bool) -> (RequestId, Arc<Grant>) {
        let mut r = request(1);
        r.agent = self.agent.clone();
        r.secrets = vec![self.gh.clone(), self.npm.clone()];
        r.reuse = reuse;
        let id = r.id.clone();
        self.gate.requests.insert(r);
        let approve = Verdict::Approve { ttl: None };
        let Outcome::Decided(v) = self
            .gate
            .decide(&id, approve, &Decider::Operator)
            .await
            .unwrap()
        else {
            panic!("decided")
        };
        let grant = self.gate.live_grant(&v.grant.unwrap().id).await.unwrap();
        (id, grant)
    }

    /// What the API answers for `secret` the whole way (a read taken).
    #[allow(clippy::unwrap_used)]
    async fn read(&self, secret: &SecretName) -> Bytes {
        self.gate
            .release_json(&self.agent, secret, None)
            .await
            .unwrap()
    }

    /// What the API answers at once, if anything (a read taken when something is).
    fn kept(&self, secret: &SecretName) -> Option<Bytes> {
        self.gate.release_kept(&self.agent, secret, None)
    }

    /// A release built afresh, as JSON.
    #[allow(clippy::unwrap_used)]
    async fn fresh(&self, secret: &SecretName) -> Vec<u8> {
        let release = self.gate.release(&self.agent, secret, None).await.unwrap();
        serde_json::to_vec(&release).unwrap()
    }

    fn logged(&self, event: &str) -> usize {
        self.gate
            .audit
            .read_since(None)
            .unwrap()
            .iter()
            .filter(|v| v["event"] == event)
            .count()
    }
}

fn operator() -> Actor {
    Actor {
        who: "operator".into(),
        via: "terminal",
    }
}

/// The value and grant an answer carries.
fn parsed(body: &[u8]) -> (String, GrantRef) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let grant = serde_json::from_value(v["grant"].clone()).unwrap();
    (v["value"].as_str().unwrap().to_owned(), grant)
}

#[tokio::test]
async fn a_repeated_read_gets_the_bytes_a_fresh_release_would_build() {
    let f = Fixture::new().await;
    let (_, g) = f.granted(true).await;
    assert_eq!(f.kept(&f.gh), None, "nothing kept before the first read");
    assert_eq!(g.reads(), 0, "and nothing taken");
    let first = f.read(&f.gh).await;
    let (value, grant) = parsed(&first);
    assert_eq!(value, "ghp_one");
    assert_eq!(grant.id, g.id);
    assert_eq!(grant.expires_at, g.reference().expires_at);

    let kept = f.kept(&f.gh).unwrap();
    assert_eq!(kept, first, "the first read's answer");
    assert_eq!(f.read(&f.gh).await, first, "the whole way, too");
    assert_eq!(
        kept,
        f.fresh(&f.gh).await,
        "byte for byte what a fresh one is"
    );
    assert_eq!(g.reads(), 4, "every answer is a read");
    assert_eq!(f.logged("released"), 1, "sharing the first read's line");
    assert_eq!(f.kept(&f.npm), None, "each secret's own first read");
    assert_eq!(g.reads(), 4);
}

#[tokio::test]
async fn a_single_use_grant_keeps_no_answer() {
    let f = Fixture::new().await;
    let (_, g) = f.granted(false).await;
    let generation = f.gate.store.generation();
    f.read(&f.gh).await;
    assert_eq!(g.answer(&f.gh, generation), None);
    assert_eq!(f.kept(&f.gh), None);
    assert!(matches!(
        f.gate.release_json(&f.agent, &f.gh, None).await,
        Err(GateError::NoGrant)
    ));
    assert_eq!(g.reads(), 1);
}

#[tokio::test]
async fn a_new_value_drops_the_kept_answer_and_the_next_read_keeps_the_new_one() {
    let f = Fixture::new().await;
    let (_, g) = f.granted(true).await;
    let before = f.gate.store.generation();
    let old = f.read(&f.gh).await;
    f.read(&f.npm).await;
    f.set(&f.gh, "ghp_two").await;
    assert_eq!(g.answer(&f.gh, before), None, "dropped, not just stale");
    assert_eq!(f.kept(&f.gh), None);
    let new = f.read(&f.gh).await;
    assert_ne!(new, old);
    assert_eq!(parsed(&new).0, "ghp_two");
    assert_eq!(f.kept(&f.gh).unwrap(), new);
    assert_eq!(f.kept(&f.gh).unwrap(), f.fresh(&f.gh).await);
    // The other secret's answer is stale too (the store's generation moved), but its
    // next read builds the same bytes again.
    assert_eq!(f.kept(&f.npm), None);
    assert_eq!(parsed(&f.read(&f.npm).await).0, "npm_one");
    assert!(f.kept(&f.npm).is_some());
}

#[tokio::test]
async fn a_removed_secret_drops_the_kept_answer() {
    let f = Fixture::new().await;
    let (_, g) = f.granted(true).await;
    let before = f.gate.store.generation();
    f.read(&f.gh).await;
    assert!(f.gate.remove_secret(f.gh.clone()).await.unwrap());
    assert_eq!(g.answer(&f.gh, before), None);
    assert_eq!(f.kept(&f.gh), None);
    let reads = g.reads();
    let gone = f.gate.release_json(&f.agent, &f.gh, None).await;
    assert!(matches!(gone, Err(GateError::Conflict(_))), "{gone:?}");
    assert_eq!(g.reads(), reads, "the read is given back");
}

#[tokio::test]
async fn locking_the_store_drops_every_kept_answer() {
    let f = Fixture::new().await;
    let (_, g) = f.granted(true).await;
    let before = f.gate.store.generation();
    f.read(&f.gh).await;
    f.read(&f.npm).await;
    f.gate.lock_store().await.unwrap();
    assert_eq!(g.answer(&f.gh, before), None);
    assert_eq!(g.answer(&f.npm, before), None);
    assert_eq!(f.kept(&f.gh), None);
    assert_eq!(f.kept(&f.npm), None);
}

#[tokio::test]
async fn a_revoked_grant_answers_nothing_more() {
    let f = Fixture::new().await;
    let (_, g) = f.granted(true).await;
    let generation = f.gate.store.generation();
    f.read(&f.gh).await;
    let revoked = f
        .gate
        .revoke(&Selector::Grant(g.id.clone()), &operator())
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0], g.id);
    assert_eq!(g.answer(&f.gh, generation), None);
    assert_eq!(f.kept(&f.gh), None);
    assert!(matches!(
        f.gate.release_json(&f.agent, &f.gh, None).await,
        Err(GateError::NoGrant)
    ));
    assert_eq!(g.reads(), 1);
}

#[tokio::test]
async fn an_extension_drops_the_kept_answer_which_named_the_old_end() {
    let f = Fixture::new().await;
    let (id, g) = f.granted(true).await;
    let generation = f.gate.store.generation();
    let old = f.read(&f.gh).await;
    let view = f.gate.extend(&g.id, None, &operator()).await.unwrap();
    assert_eq!(g.answer(&f.gh, generation), None);
    assert_eq!(f.kept(&f.gh), None);
    let new = f.read(&f.gh).await;
    assert_eq!(parsed(&new).1.expires_at, view.expires_at);
    assert_ne!(parsed(&old).1.expires_at, view.expires_at);
    assert_eq!(f.kept(&f.gh).unwrap(), new);
    assert_eq!(
        f.gate.request_view(&id).unwrap().grant.unwrap().expires_at,
        view.expires_at,
        "the request shows the new end"
    );
}

#[tokio::test]
async fn an_extension_is_audited_and_stops_at_max_ttl() {
    let f = Fixture::new().await;
    let (_, g) = f.granted(true).await;
    let zero = f
        .gate
        .extend(&g.id, Some(Duration::ZERO), &operator())
        .await;
    assert!(matches!(zero, Err(GateError::BadRequest(_))), "{zero:?}");
    let unknown = f.gate.extend(&GrantId::random(), None, &operator()).await;
    assert!(
        matches!(unknown, Err(GateError::NotFound(_))),
        "{unknown:?}"
    );
    assert_eq!(f.logged("grant_extended"), 0);

    // By its own TTL (600 s), then as far as its rule's `max_ttl` (3600 s) allows.
    let view = f.gate.extend(&g.id, None, &operator()).await.unwrap();
    assert_eq!(
        view.expires_at,
        Timestamp::from(g.created_at + Duration::from_secs(1200))
    );
    let far = Some(Duration::from_secs(86_400));
    let view = f.gate.extend(&g.id, far, &operator()).await.unwrap();
    assert_eq!(view.expires_at, Timestamp::from(g.cap()));
    assert_eq!(g.cap(), g.created_at + Duration::from_secs(3600));
    let at_cap = f.gate.extend(&g.id, far, &operator()).await;
    assert!(matches!(at_cap, Err(GateError::AtMaxTtl(_))), "{at_cap:?}");
    assert_eq!(f.logged("grant_extended"), 2);
    assert_eq!(g.expires_at(), g.cap());
}
