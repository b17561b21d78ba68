//! Requests and their first clock: a request is pending until a decider settles it, its
//! request timeout passes or the agent gives up. Its [`State`] carries what is true in
//! each stage and nothing else. A change is made in two steps: a [`Transition`] is
//! planned from the request as it stands (and refused if it cannot happen), its audit
//! line is written and synced, and only then is it applied.
//!
//! The table is a plain map behind a mutex held only for short, non-blocking sections;
//! each request also has its own decision lock, held from planning to applying, so two
//! decisions on one request never interleave while decisions on different requests (and
//! their audit syncs) run side by side. Each request has a `watch` channel that
//! long-polls wait on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use keygate_policies::{Approvers, Evaluation};
use keygate_proto::api::{GrantRef, RequestStatus, RequestView};
use keygate_proto::approval::DeciderId;
use keygate_proto::{RequestId, SecretName, Timestamp};
use tokio::sync::watch;

use crate::audit::{Actor, Event};
use crate::grants::Grant;
use crate::identity::Agent;

/// How long a finished request stays visible to `keygate requests` and to pollers.
const KEEP_FINISHED: Duration = Duration::from_secs(3600);

/// One approval towards a quorum: who it counts as, and who they were to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: DeciderId,
    pub by: Actor,
}

/// Where a request stands.
#[derive(Debug, Clone)]
pub enum State {
    /// Waiting; `approvals` counts towards the quorum.
    Pending {
        approvals: Vec<Approval>,
    },
    Approved {
        by: Actor,
        at: SystemTime,
        approvals: Vec<Approval>,
        /// The grant's TTL, which may be shorter than the request's.
        ttl: Duration,
        grant: GrantRef,
    },
    Denied {
        by: Actor,
        at: SystemTime,
        /// Why, for people: the reason given, else who or what denied it.
        reason: String,
        /// The reason the person who denied it gave, if they gave one: it reaches the
        /// agent as `denial_reason`.
        given: Option<String>,
    },
    Expired {
        at: SystemTime,
    },
    Cancelled {
        by: Actor,
        at: SystemTime,
        why: String,
    },
}

impl State {
    pub fn status(&self) -> RequestStatus {
        match self {
            Self::Pending { .. } => RequestStatus::Pending,
            Self::Approved { .. } => RequestStatus::Approved,
            Self::Denied { .. } => RequestStatus::Denied,
            Self::Expired { .. } => RequestStatus::Expired,
            Self::Cancelled { .. } => RequestStatus::Cancelled,
        }
    }

    fn decided(&self) -> Option<(Option<&Actor>, SystemTime)> {
        match self {
            Self::Pending { .. } => None,
            Self::Approved { by, at, .. }
            | Self::Denied { by, at, .. }
            | Self::Cancelled { by, at, .. } => Some((Some(by), *at)),
            Self::Expired { at } => Some((None, *at)),
        }
    }
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
    /// The longest its grant may live from approval, extensions included.
    pub max_ttl: Duration,
    pub reuse: bool,
    pub rule: Option<String>,
    pub approvers: Approvers,
    pub quorum: u32,
    pub posted_to: Vec<String>,
    pub state: State,
}

/// What a request is asked for, as the agent sent it (cut and checked).
#[derive(Debug)]
pub struct Asked {
    pub agent: Agent,
    pub secrets: Vec<SecretName>,
    pub reason: String,
    pub command: Option<Vec<String>>,
    pub command_sha256: Option<String>,
    pub host: Option<String>,
}

/// Why a transition cannot happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("already decided: the request is {}", .0.as_str())]
    AlreadyDecided(RequestStatus),
    #[error("you are not an approver for this request")]
    NotAnApprover,
}

/// A change to one request, planned and checked but not made: its audit line is written
/// first ([`Transition::event`]), then [`Requests::apply`] makes it.
#[derive(Debug)]
pub struct Transition {
    pub request: RequestId,
    pub next: State,
    /// Who made this change (the daemon for an expiry): an approval towards the quorum
    /// is logged under them, even when they had approved before.
    cause: Actor,
    quorum: u32,
    /// The grant an approval makes; it goes live once the transition is applied.
    pub grant: Option<Arc<Grant>>,
}

impl Transition {
    /// The audit line this transition needs before it takes effect.
    pub fn event(&self) -> Event<'_> {
        let request = &self.request;
        match &self.next {
            State::Pending { approvals } => Event::RequestApproval {
                request,
                by: &self.cause,
                approvals: approvals.len(),
                quorum: self.quorum,
            },
            State::Approved { by, ttl, grant, .. } => Event::RequestDecided {
                request,
                outcome: "approved",
                by,
                message: None,
                grant: Some(&grant.id),
                ttl_seconds: Some(ttl.as_secs()),
            },
            State::Denied { by, reason, .. } => Event::RequestDecided {
                request,
                outcome: "denied",
                by,
                message: Some(reason),
                grant: None,
                ttl_seconds: None,
            },
            State::Expired { .. } => Event::RequestExpired { request },
            State::Cancelled { by, .. } => Event::RequestCancelled { request, by },
        }
    }
}

impl Request {
    /// A new pending request, as the policy evaluated it.
    pub fn pending(asked: Asked, eval: &Evaluation, approvers: Approvers, quorum: u32) -> Self {
        let now = SystemTime::now();
        Self {
            id: RequestId::random(),
            agent: asked.agent,
            secrets: asked.secrets,
            reason: asked.reason,
            command: asked.command,
            command_sha256: asked.command_sha256,
            host: asked.host,
            created_at: now,
            expires_at: now + eval.request_timeout,
            ttl: eval.ttl,
            max_ttl: eval.max_ttl,
            reuse: eval.reuse,
            rule: eval.rule.clone(),
            approvers,
            quorum,
            posted_to: Vec::new(),
            state: State::Pending {
                approvals: Vec::new(),
            },
        }
    }

    pub fn status(&self) -> RequestStatus {
        self.state.status()
    }

    fn pending_approvals(&self) -> Result<&[Approval], Refusal> {
        match &self.state {
            State::Pending { approvals } => Ok(approvals),
            other => Err(Refusal::AlreadyDecided(other.status())),
        }
    }

    fn to(&self, next: State, cause: Actor) -> Transition {
        Transition {
            request: self.id.clone(),
            next,
            cause,
            quorum: self.quorum,
            grant: None,
        }
    }

    /// One approval by `id` (named `by` in the log). Below the quorum it is counted (once
    /// per decider); at the quorum the request is approved with a grant of `ttl` (never
    /// longer than the request's), starting now.
    pub fn approve(
        &self,
        id: DeciderId,
        by: Actor,
        ttl: Option<Duration>,
    ) -> Result<Transition, Refusal> {
        self.approved(id, by, ttl.map_or(self.ttl, |t| t.min(self.ttl)))
    }

    /// One approval with a TTL the approver chose: as [`Self::approve`], but the grant
    /// may outlive the request's TTL, up to its `max_ttl`.
    pub fn approve_for(
        &self,
        id: DeciderId,
        by: Actor,
        ttl: Duration,
    ) -> Result<Transition, Refusal> {
        self.approved(id, by, ttl.min(self.max_ttl.max(self.ttl)))
    }

    fn approved(&self, id: DeciderId, by: Actor, ttl: Duration) -> Result<Transition, Refusal> {
        let mut approvals = self.pending_approvals()?.to_vec();
        if !approvals.iter().any(|a| a.id == id) {
            approvals.push(Approval { id, by: by.clone() });
        }
        if (approvals.len() as u64) < u64::from(self.quorum) {
            return Ok(self.to(State::Pending { approvals }, by));
        }
        let labels = approvals.iter().map(|a| a.by.who.clone()).collect();
        let grant = Arc::new(Grant::for_request(self, ttl, labels));
        let mut t = self.to(
            State::Approved {
                by: by.clone(),
                at: SystemTime::now(),
                approvals,
                ttl,
                grant: grant.reference(),
            },
            by,
        );
        t.grant = Some(grant);
        Ok(t)
    }

    /// Denied by the policy or the daemon, saying why.
    pub fn deny(&self, by: Actor, reason: String) -> Result<Transition, Refusal> {
        self.denied(by, reason, None)
    }

    /// Denied by a person who gave a reason (checked for length by the caller): the
    /// agent is told it as they wrote it.
    pub fn deny_because(&self, by: Actor, given: String) -> Result<Transition, Refusal> {
        self.denied(by, given.clone(), Some(given))
    }

    fn denied(
        &self,
        by: Actor,
        reason: String,
        given: Option<String>,
    ) -> Result<Transition, Refusal> {
        self.pending_approvals()?;
        Ok(self.to(
            State::Denied {
                by: by.clone(),
                at: SystemTime::now(),
                reason,
                given,
            },
            by,
        ))
    }

    pub fn expire(&self) -> Result<Transition, Refusal> {
        self.pending_approvals()?;
        let clock = Actor {
            who: "daemon".into(),
            via: "daemon",
        };
        Ok(self.to(
            State::Expired {
                at: SystemTime::now(),
            },
            clock,
        ))
    }

    pub fn cancel(&self, by: Actor, why: &str) -> Result<Transition, Refusal> {
        self.pending_approvals()?;
        Ok(self.to(
            State::Cancelled {
                by: by.clone(),
                at: SystemTime::now(),
                why: why.to_owned(),
            },
            by,
        ))
    }

    pub fn view(&self) -> RequestView {
        let decided = self.state.decided();
        let denial_reason = match &self.state {
            State::Denied { given, .. } => given.clone(),
            _ => None,
        };
        let (approvals, ttl, grant, message) = match &self.state {
            State::Pending { approvals } => (approvals.as_slice(), self.ttl, None, None),
            State::Approved {
                approvals,
                ttl,
                grant,
                ..
            } => (approvals.as_slice(), *ttl, Some(grant.clone()), None),
            State::Denied { reason, .. } => (&[][..], self.ttl, None, Some(reason.clone())),
            State::Expired { .. } => (
                &[][..],
                self.ttl,
                None,
                Some("no decision before the request expired".to_owned()),
            ),
            State::Cancelled { why, .. } => (&[][..], self.ttl, None, Some(why.clone())),
        };
        RequestView {
            id: self.id.clone(),
            agent: self.agent.name.clone(),
            secrets: self.secrets.clone(),
            reason: self.reason.clone(),
            status: self.status(),
            created_at: Timestamp::from(self.created_at),
            expires_at: Timestamp::from(self.expires_at),
            ttl_seconds: ttl.as_secs(),
            quorum: self.quorum,
            approvals: approvals.iter().map(|a| a.by.who.clone()).collect(),
            decided_by: decided.and_then(|(by, _)| by.map(|a| a.who.clone())),
            decided_via: decided.and_then(|(by, _)| by.map(|a| a.via.to_owned())),
            decided_at: decided.map(|(_, at)| Timestamp::from(at)),
            message,
            denial_reason,
            grant,
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
    /// Held from planning a transition to applying it.
    deciding: Arc<Mutex<()>>,
}

impl Entry {
    fn pending_for(&self, agent: Option<&Agent>) -> bool {
        self.request.status() == RequestStatus::Pending
            && agent.is_none_or(|a| &self.request.agent == a)
    }
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
        let (changed, _) = watch::channel(request.status());
        self.lock().insert(
            request.id.clone(),
            Entry {
                request,
                changed,
                deciding: Arc::default(),
            },
        );
    }

    /// Puts `request` in as it stands now (a cluster node's copy of a change made in
    /// Redis): a new one is added, a known one replaced, its waiters and decision lock
    /// kept. Waiters are not woken: call [`Requests::wake`].
    pub fn upsert(&self, request: Request) {
        let mut entries = self.lock();
        if let Some(e) = entries.get_mut(&request.id) {
            e.request = request;
            return;
        }
        let (changed, _) = watch::channel(request.status());
        entries.insert(
            request.id.clone(),
            Entry {
                request,
                changed,
                deciding: Arc::default(),
            },
        );
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

    /// The request's decision lock: hold it from planning a transition to applying it.
    pub fn decision_lock(&self, id: &RequestId) -> Option<Arc<Mutex<()>>> {
        self.lock().get(id).map(|e| Arc::clone(&e.deciding))
    }

    /// Makes a planned transition (its audit line written). Waiters are not woken: call
    /// [`Requests::wake`] once the change's effects (a grant) are in place.
    pub fn apply(&self, t: Transition) -> Option<RequestView> {
        let mut entries = self.lock();
        let entry = entries.get_mut(&t.request)?;
        entry.request.state = t.next;
        Some(entry.request.view())
    }

    /// Its grant was extended: the request shows the new end.
    pub fn set_grant_end(&self, id: &RequestId, expires_at: Timestamp) {
        if let Some(e) = self.lock().get_mut(id)
            && let State::Approved { grant, .. } = &mut e.request.state
        {
            grant.expires_at = expires_at;
        }
    }

    /// Sets where the request was shown.
    pub fn set_posted_to(&self, id: &RequestId, posted_to: Vec<String>) {
        if let Some(e) = self.lock().get_mut(id) {
            e.request.posted_to = posted_to;
        }
    }

    /// Wakes the request's waiters.
    pub fn wake(&self, id: &RequestId) {
        if let Some(e) = self.lock().get(id) {
            e.changed.send_replace(e.request.status());
        }
    }

    /// Every request, newest first.
    pub fn list(&self) -> Vec<Request> {
        let mut all: Vec<Request> = self.lock().values().map(|e| e.request.clone()).collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        all
    }

    /// The ids of one agent's pending requests.
    pub fn pending_ids_of(&self, agent: &Agent) -> Vec<RequestId> {
        self.lock()
            .values()
            .filter(|e| e.pending_for(Some(agent)))
            .map(|e| e.request.id.clone())
            .collect()
    }

    /// Pending requests of one agent (`None`: of every agent).
    pub fn pending_of(&self, agent: Option<&Agent>) -> usize {
        self.lock()
            .values()
            .filter(|e| e.pending_for(agent))
            .count()
    }

    /// Forgets finished requests older than an hour.
    pub fn purge(&self) {
        let now = SystemTime::now();
        self.lock().retain(|_, e| {
            e.request
                .state
                .decided()
                .is_none_or(|(_, at)| now.duration_since(at).unwrap_or_default() < KEEP_FINISHED)
        });
    }

    /// Wakes every waiter (at shutdown, so long-polls answer at once).
    pub fn wake_all(&self) {
        for e in self.lock().values() {
            e.changed.send_modify(|_| {});
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
