//! A real gate for the gate's unit tests: an empty policy, a memory store, and the audit
//! log and identities on a temp dir, with one agent (`ci-one`) added.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use keygate_policies::Policy;
use keygate_proto::AgentName;
use secrecy::ExposeSecret as _;

use super::Gate;
use crate::audit::AuditLog;
use crate::config::Limits;
use crate::grants::Ended;
use crate::identity::{Agent, Caller, Identities};
use crate::store::MemoryStore;

pub(super) struct TestGate {
    pub gate: Arc<Gate>,
    pub agent: Agent,
    /// Held so grant ends are not dropped on the floor, and the dir so it lasts.
    pub ended: tokio::sync::mpsc::UnboundedReceiver<Ended>,
    pub dir: tempfile::TempDir,
}

impl TestGate {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
        let ids = Identities::load(
            &dir.path().join("operator.token"),
            &dir.path().join("agents.json"),
        )
        .unwrap();
        let token = ids.add(&AgentName::new("ci-one").unwrap()).unwrap();
        let Some(Caller::Agent(agent)) = ids.authenticate(token.expose_secret()) else {
            panic!("the agent's own token")
        };
        let (gate, ended) = Gate::new(
            Policy::empty(),
            Arc::new(MemoryStore::new()),
            audit,
            ids,
            Limits::default(),
        );
        Self {
            gate,
            agent,
            ended,
            dir,
        }
    }
}
