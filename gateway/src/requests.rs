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
        let mut approvals = self.pending_approvals()?.to_vec();
        if !approvals.iter().any(|a| a.id == id) {
            approvals.push(Approval { id, by: by.clone() });
        }
        if (approvals.len() as u64) < u64::from(self.quorum) {
            return Ok(self.to(State::Pending { approvals }, by));
        }
        let ttl = ttl.map_or(self.ttl, |t| t.min(self.ttl));
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
#[allow(clippy::unwrap_used)]
mod tests {
    use keygate_policies::Decision;
    use keygate_proto::{AgentName, UserId};

    use super::*;

    fn actor(who: &str) -> Actor {
        Actor {
            who: who.into(),
            via: "discord",
        }
    }

    fn user(id: u64) -> DeciderId {
        DeciderId::User {
            channel: "discord",
            id: UserId(id),
        }
    }

    fn request(quorum: u32) -> Request {
        let eval = Evaluation {
            decision: Decision::Ask {
                approvers: Approvers::default(),
                quorum,
            },
            rule: Some("r".into()),
            reason: "asks".into(),
            ttl: Duration::from_secs(600),
            ttl_was_cut: false,
            max_ttl: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(60),
            reuse: true,
        };
        let asked = Asked {
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
        Request::pending(asked, &eval, Approvers::default(), quorum)
    }

    fn applied(r: &mut Request, t: Transition) {
        r.state = t.next;
    }

    #[test]
    fn below_the_quorum_each_account_counts_once() {
        let mut r = request(2);
        let t = r.approve(user(1), actor("@a (1)"), None).unwrap();
        assert!(t.grant.is_none());
        assert!(matches!(
            t.event(),
            Event::RequestApproval {
                approvals: 1,
                quorum: 2,
                ..
            }
        ));
        applied(&mut r, t);
        // The same account again, under another name: still one approval.
        let t = r.approve(user(1), actor("@renamed (1)"), None).unwrap();
        assert!(t.grant.is_none());
        applied(&mut r, t);
        assert_eq!(r.status(), RequestStatus::Pending);
        assert_eq!(r.view().approvals, vec!["@a (1)".to_owned()]);
        // A second account completes it, with a grant named after both.
        let t = r.approve(user(2), actor("@b (2)"), None).unwrap();
        let grant = t.grant.clone().unwrap();
        assert_eq!(
            grant.approved_by,
            vec!["@a (1)".to_owned(), "@b (2)".to_owned()]
        );
        assert!(matches!(
            t.event(),
            Event::RequestDecided {
                outcome: "approved",
                ..
            }
        ));
        applied(&mut r, t);
        assert_eq!(r.status(), RequestStatus::Approved);
        assert_eq!(r.view().grant.unwrap().id, grant.id);
    }

    #[test]
    fn a_repeated_approval_is_logged_under_who_pressed() {
        let mut r = request(3);
        for (id, who) in [(1, "@a (1)"), (2, "@b (2)")] {
            let t = r.approve(user(id), actor(who), None).unwrap();
            applied(&mut r, t);
        }
        let t = r.approve(user(1), actor("@a (1)"), None).unwrap();
        assert!(
            matches!(t.event(), Event::RequestApproval { by, approvals: 2, .. } if by.who == "@a (1)"),
            "{:?}",
            t.event()
        );
    }

    #[test]
    fn the_operator_is_one_decider_and_policy_another() {
        let mut r = request(3);
        for _ in 0..3 {
            let t = r
                .approve(DeciderId::Operator, actor("operator"), None)
                .unwrap();
            applied(&mut r, t);
        }
        assert_eq!(r.status(), RequestStatus::Pending);
        let t = r.approve(DeciderId::Policy, actor("policy"), None).unwrap();
        applied(&mut r, t);
        assert_eq!(r.view().approvals.len(), 2);
    }

    #[test]
    fn a_shorter_ttl_is_kept_and_a_longer_one_cut_to_the_requests() {
        let r = request(1);
        let t = r
            .approve(user(1), actor("a"), Some(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(t.grant.unwrap().ttl, Duration::from_secs(60));
        let t = r
            .approve(user(1), actor("a"), Some(Duration::from_secs(6000)))
            .unwrap();
        assert_eq!(t.grant.unwrap().ttl, Duration::from_secs(600));
        let t = r.approve(user(1), actor("a"), None).unwrap();
        assert!(matches!(t.next, State::Approved { ttl, .. } if ttl == Duration::from_secs(600)));
    }

    #[test]
    fn deny_expire_and_cancel_say_why() {
        let r = request(1);
        let t = r.deny(actor("@a (1)"), "not today".into()).unwrap();
        assert!(matches!(
            t.event(),
            Event::RequestDecided {
                outcome: "denied",
                message: Some("not today"),
                ..
            }
        ));
        let mut denied = r.clone();
        applied(&mut denied, t);
        let v = denied.view();
        assert_eq!(v.status, RequestStatus::Denied);
        assert_eq!(v.message.as_deref(), Some("not today"));
        assert_eq!(v.decided_by.as_deref(), Some("@a (1)"));
        assert_eq!(v.decided_via.as_deref(), Some("discord"));

        assert_eq!(
            v.denial_reason, None,
            "the daemon's own words are no reason given"
        );
        let t = r.deny_because(actor("@a (1)"), "ask Bob".into()).unwrap();
        let mut given = r.clone();
        applied(&mut given, t);
        assert_eq!(given.view().denial_reason.as_deref(), Some("ask Bob"));
        assert_eq!(given.view().message.as_deref(), Some("ask Bob"));

        let t = r.expire().unwrap();
        assert!(matches!(t.event(), Event::RequestExpired { .. }));
        let mut expired = r.clone();
        applied(&mut expired, t);
        assert_eq!(expired.view().status, RequestStatus::Expired);
        assert!(expired.view().decided_by.is_none());
        assert!(expired.view().decided_at.is_some());

        let t = r
            .cancel(actor("ci-one"), "cancelled by the requester")
            .unwrap();
        assert!(matches!(t.event(), Event::RequestCancelled { .. }));
        let mut cancelled = r.clone();
        applied(&mut cancelled, t);
        assert_eq!(
            cancelled.view().message.as_deref(),
            Some("cancelled by the requester")
        );
    }

    #[test]
    fn nothing_moves_a_settled_request() {
        let r = request(1);
        let settled: Vec<Request> = [
            r.approve(user(1), actor("a"), None).unwrap(),
            r.deny(actor("a"), "no".into()).unwrap(),
            r.expire().unwrap(),
            r.cancel(actor("a"), "gone").unwrap(),
        ]
        .into_iter()
        .map(|t| {
            let mut s = r.clone();
            applied(&mut s, t);
            s
        })
        .collect();
        for s in &settled {
            let already = Refusal::AlreadyDecided(s.status());
            assert_eq!(s.approve(user(2), actor("b"), None).unwrap_err(), already);
            assert_eq!(s.deny(actor("b"), "x".into()).unwrap_err(), already);
            assert_eq!(s.expire().unwrap_err(), already);
            assert_eq!(s.cancel(actor("b"), "x").unwrap_err(), already);
        }
    }

    #[test]
    fn the_table_applies_a_planned_transition_and_purges_nothing_pending() {
        let table = Requests::default();
        let r = request(1);
        let id = r.id.clone();
        let agent = r.agent.clone();
        table.insert(r);
        assert_eq!(table.pending_of(Some(&agent)), 1);
        let t = table.get(&id).unwrap().expire().unwrap();
        let view = table.apply(t).unwrap();
        assert_eq!(view.status, RequestStatus::Expired);
        assert_eq!(table.pending_of(Some(&agent)), 0);
        table.purge();
        assert!(table.get(&id).is_some(), "finished requests stay an hour");
    }
}
