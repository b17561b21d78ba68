//! Requests and their first clock: a request is `pending` until an approver decides, its
//! request timeout passes (`expired`) or the agent gives up (`cancelled`). The first
//! decision wins; a quorum needs that many distinct approvers.
//!
//! The table is a plain map behind a mutex that is never held across an await; each
//! request has a `watch` channel that long-polls wait on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use keygate_policies::{Approvers, Evaluation};
use keygate_proto::api::{GrantRef, RequestStatus, RequestView};
use keygate_proto::approval::DeciderId;
use keygate_proto::duration::rfc3339;
use keygate_proto::{RequestId, SecretName};
use tokio::sync::watch;

use crate::audit::Actor;
use crate::identity::Agent;

/// How long a finished request stays visible to `keygate requests` and to pollers.
const KEEP_FINISHED: Duration = Duration::from_secs(3600);

/// One approval towards a quorum: who it counts as, and how people read their name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub by: DeciderId,
    pub label: String,
}

/// A request as filed.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: RequestId,
    pub agent: Agent,
    pub secrets: Vec<SecretName>,
    pub reason: String,
    pub command: Option<Vec<String>>,
    /// The hash of the full argv, taken before `command` was cut for display.
    pub command_sha256: Option<String>,
    pub host: Option<String>,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    /// The grant's TTL if approved (policy default, requested, cut to max_ttl).
    pub ttl: Duration,
    pub reuse: bool,
    pub rule: Option<String>,
    pub approvers: Approvers,
    pub quorum: u32,
    pub status: RequestStatus,
    pub approvals: Vec<Approval>,
    pub decided_by: Option<Actor>,
    pub decided_at: Option<SystemTime>,
    pub message: Option<String>,
    pub grant: Option<GrantRef>,
    pub posted_to: Vec<String>,
}

impl Request {
    /// A new pending request from a policy evaluation that asked for approval.
    #[allow(clippy::too_many_arguments)] // every field is a distinct part of what was asked
    pub fn pending(
        agent: Agent,
        secrets: Vec<SecretName>,
        reason: String,
        command: Option<Vec<String>>,
        host: Option<String>,
        eval: &Evaluation,
        approvers: Approvers,
        quorum: u32,
    ) -> Self {
        let now = SystemTime::now();
        Self {
            id: RequestId::random(),
            agent,
            secrets,
            reason,
            command,
            command_sha256: None,
            host,
            created_at: now,
            expires_at: now + eval.request_timeout,
            ttl: eval.ttl,
            reuse: eval.reuse,
            rule: eval.rule.clone(),
            approvers,
            quorum,
            status: RequestStatus::Pending,
            approvals: Vec::new(),
            decided_by: None,
            decided_at: None,
            message: None,
            grant: None,
            posted_to: Vec::new(),
        }
    }

    /// The approvers so far, as people read them.
    pub fn labels(&self) -> Vec<String> {
        self.approvals.iter().map(|a| a.label.clone()).collect()
    }

    pub fn view(&self) -> RequestView {
        RequestView {
            id: self.id.clone(),
            agent: self.agent.name.clone(),
            secrets: self.secrets.clone(),
            reason: self.reason.clone(),
            status: self.status,
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
            ttl_seconds: self.ttl.as_secs(),
            quorum: self.quorum,
            approvals: self.labels(),
            decided_by: self.decided_by.as_ref().map(|a| a.who.clone()),
            decided_via: self.decided_by.as_ref().map(|a| a.via.to_owned()),
            decided_at: self.decided_at.map(rfc3339),
            message: self.message.clone(),
            grant: self.grant.clone(),
            rule: self.rule.clone(),
            posted_to: self.posted_to.clone(),
            command: self.command.clone(),
            host: self.host.clone(),
        }
    }
}

struct Entry {
    request: Request,
    changed: watch::Sender<RequestStatus>,
}

/// The request table.
#[derive(Default)]
pub struct Requests {
    entries: Mutex<HashMap<RequestId, Entry>>,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests").finish_non_exhaustive()
    }
}

impl Requests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn insert(&self, request: Request) {
        let (changed, _) = watch::channel(request.status);
        self.lock()
            .insert(request.id.clone(), Entry { request, changed });
    }

    pub fn get(&self, id: &RequestId) -> Option<Request> {
        self.lock().get(id).map(|e| e.request.clone())
    }

    /// The request and a receiver that wakes when it changes.
    pub fn watch(&self, id: &RequestId) -> Option<(Request, watch::Receiver<RequestStatus>)> {
        self.lock()
            .get(id)
            .map(|e| (e.request.clone(), e.changed.subscribe()))
    }

    /// Runs `f` on the request under the table's lock. `f` must not block for long: it may
    /// write one audit line. Waiters are not woken: call [`Requests::wake`] once the
    /// change's effects (a grant) are in place.
    pub fn update<T, E>(
        &self,
        id: &RequestId,
        f: impl FnOnce(&mut Request) -> Result<T, E>,
    ) -> Option<Result<T, E>> {
        let mut entries = self.lock();
        let entry = entries.get_mut(id)?;
        Some(f(&mut entry.request))
    }

    /// Wakes the request's waiters.
    pub fn wake(&self, id: &RequestId) {
        if let Some(e) = self.lock().get(id) {
            e.changed.send_replace(e.request.status);
        }
    }

    /// Every request, newest first.
    pub fn list(&self) -> Vec<Request> {
        let mut all: Vec<Request> = self.lock().values().map(|e| e.request.clone()).collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        all
    }

    /// Pending requests of one agent.
    pub fn pending_of(&self, agent: &Agent) -> usize {
        self.pending_ids_of(agent).len()
    }

    /// The ids of one agent's pending requests.
    pub fn pending_ids_of(&self, agent: &Agent) -> Vec<RequestId> {
        self.lock()
            .values()
            .filter(|e| e.request.status == RequestStatus::Pending && &e.request.agent == agent)
            .map(|e| e.request.id.clone())
            .collect()
    }

    pub fn pending(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.request.status == RequestStatus::Pending)
            .count()
    }

    /// Forgets finished requests older than an hour.
    pub fn purge(&self) {
        let now = SystemTime::now();
        self.lock().retain(|_, e| {
            !e.request.status.is_final()
                || e.request
                    .decided_at
                    .is_none_or(|t| now.duration_since(t).unwrap_or_default() < KEEP_FINISHED)
        });
    }

    /// Wakes every waiter (at shutdown, so long-polls answer at once).
    pub fn wake_all(&self) {
        for e in self.lock().values() {
            e.changed.send_modify(|_| {});
        }
    }
}
