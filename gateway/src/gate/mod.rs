//! The gate: every operation of the daemon. The API layer only authenticates and
//! translates HTTP; everything that matters happens here, one file per step of a
//! request's way:
//!
//! 1. [`filing`]: an agent files a request; rate limits; the policy decides at once or
//!    the request is posted to every approval channel;
//! 2. [`deciding`]: a person, the operator, the clock or the agent settles it — every
//!    change a typed [`Transition`](crate::requests::Transition), audited before it is
//!    applied;
//! 3. [`releasing`]: the value, under a live grant or a rule that allows it;
//! 4. [`revoking`]: grants end early, or on their own (maintenance); [`extending`]: a
//!    live grant ends later, up to its rule's `max_ttl`;
//! 5. [`admin`]: secrets, the store, status; [`agents`]: agents, on one node or shared
//!    by a cluster.

mod admin;
mod agents;
mod deciding;
mod extending;
mod filing;
mod mirror;
mod releasing;
mod revoking;
#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use keygate_policies::Policy;
use keygate_proto::api::{GrantWatch, RequestView};
use keygate_proto::approval::{ApprovalChannel, Change};
use keygate_proto::{AgentName, GrantId, RequestId, SecretName};
use tokio::sync::{mpsc, watch};

use crate::audit::{Actor, AuditLog, Event};
use crate::auth_failures::AuthFailures;
use crate::config::Limits;
use crate::grants::watch::WatchError;
use crate::grants::{Ended, Grant, Grants};
use crate::identity::{Agent, Caller, Identities};
use crate::requests::{Refusal, Request, Requests};
use crate::store::{CachedStore, CallError, SecretStore};
pub use filing::{MAX_COMMAND_SHOWN, MAX_REASON, MAX_SECRETS};
pub use keygate_proto::approval::{Outcome, Verdict};

/// What went wrong, in terms the API maps onto HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no {0} with that id")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("already decided: the request is {0}")]
    AlreadyDecided(&'static str),
    #[error("no live grant for this secret: file a request first")]
    NoGrant,
    #[error("too many requests: {0}")]
    RateLimited(String, Duration),
    #[error("{0}")]
    Conflict(String),
    /// An extension that cannot add anything.
    #[error("{0}")]
    AtMaxTtl(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// The blocking task that talked to the store panicked or was cancelled.
    #[error("the secret store's task failed")]
    StoreTask(#[source] tokio::task::JoinError),
    #[error("the audit log cannot be written, so nothing was done: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("the request could not be shown to approvers, so it was not filed: {0}")]
    Channel(#[from] keygate_proto::approval::ChannelError),
    #[error("{0}")]
    Identity(#[from] crate::identity::IdentityError),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("cannot encode the answer: {0}")]
    Encode(#[source] serde_json::Error),
    /// The cluster's Redis does not answer (or answered wrongly): nothing was decided
    /// or released.
    #[error("{0}")]
    Cluster(#[from] keygate_cluster::ClusterError),
    #[error("{0}")]
    Record(#[from] crate::cluster::record::RecordError),
}

impl From<CallError> for GateError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Store(e) => Self::Store(e),
            CallError::Task(e) => Self::StoreTask(e),
        }
    }
}

impl From<Refusal> for GateError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::AlreadyDecided(status) => Self::AlreadyDecided(status.as_str()),
            Refusal::NotAnApprover => Self::Forbidden(r.to_string()),
        }
    }
}

/// Which grants to revoke.
#[derive(Debug, Clone)]
pub enum Selector {
    Grant(GrantId),
    Agent(AgentName),
    /// One registration of an agent (its removal), not whoever holds the name now.
    Registration(Agent),
    Secret(SecretName),
    All,
}

/// The daemon's state and operations.
pub struct Gate {
    policy: RwLock<Arc<Policy>>,
    store: CachedStore,
    requests: Requests,
    grants: Grants,
    pub(crate) audit: AuditLog,
    pub(crate) identities: Identities,
    auth_failures: AuthFailures,
    channels: RwLock<Vec<Arc<dyn ApprovalChannel>>>,
    limits: Limits,
    windows: Mutex<HashMap<AgentName, filing::RateWindow>>,
    started: Instant,
    shutting_down: watch::Sender<bool>,
    /// What `GET /metrics` counts as it happens.
    pub(crate) metrics: crate::metrics::Metrics,
    /// This node's cluster, when it is one of several on one Redis.
    cluster: OnceLock<Arc<crate::cluster::Cluster>>,
    /// The gate itself, for work that outlives a borrowed call (a hang-up's cancel).
    me: Weak<Gate>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("store", &self.store)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

fn actor(who: impl Into<String>, via: &'static str) -> Actor {
    Actor {
        who: who.into(),
        via,
    }
}

/// `text`, cut to at most `max` bytes on a character boundary, with a mark when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn visible_to(request: &Request, caller: &Caller) -> bool {
    caller.sees(&request.agent)
}

impl Gate {
    /// A gate and the receiver of grants that end on their own; run
    /// [`Gate::run_maintenance`] with it.
    pub fn new(
        policy: Policy,
        store: Arc<dyn SecretStore>,
        audit: AuditLog,
        identities: Identities,
        limits: Limits,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Ended>) {
        let (grants, ended) = Grants::new();
        let (shutting_down, _) = watch::channel(false);
        let metrics = crate::metrics::Metrics::new(audit.write_histogram());
        let gate = Arc::new_cyclic(|me| Self {
            policy: RwLock::new(Arc::new(policy)),
            store: CachedStore::new(store),
            requests: Requests::default(),
            grants,
            audit,
            identities,
            auth_failures: AuthFailures::default(),
            channels: RwLock::new(Vec::new()),
            limits,
            windows: Mutex::default(),
            started: Instant::now(),
            shutting_down,
            metrics,
            cluster: OnceLock::new(),
            me: me.clone(),
        });
        (gate, ended)
    }

    /// Makes this gate one node of `cluster` (before it serves anything): its tables
    /// become copies of the cluster's, kept by [`Gate::follow_cluster`].
    pub fn join_cluster(&self, cluster: Arc<crate::cluster::Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// This node's cluster, if it is in one.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    /// Takes the channel named `name` out (a node that stopped leading closes its bot).
    pub fn remove_channel(&self, name: &str) {
        self.channels
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|c| c.name() != name);
    }

    pub fn add_channel(&self, channel: Arc<dyn ApprovalChannel>) {
        self.channels
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(channel);
    }

    fn channels(&self) -> Vec<Arc<dyn ApprovalChannel>> {
        self.channels
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn notify(&self, change: &Change) {
        for c in self.channels() {
            c.notify(change);
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(
            &self
                .policy
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces the policy (SIGHUP). Pending requests keep the approvers they were filed
    /// with.
    pub fn set_policy(&self, policy: Policy) {
        let rules = policy.rules().len();
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
        self.audit.record_or_hold(&Event::PolicyReloaded { rules });
    }

    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        self.identities.authenticate(token)
    }

    /// [`Gate::authenticate`], remembering the token for one connection.
    pub fn authenticate_remembered(
        &self,
        token: &str,
        memo: &mut Option<crate::identity::Remembered>,
    ) -> Option<Caller> {
        self.identities.authenticate_remembered(token, memo)
    }

    /// A token was missing, malformed or unknown: counted, not logged line by line.
    pub fn auth_failed(&self, path: &str, why: &'static str) {
        self.metrics.auth_failed();
        self.auth_failures.note(&self.audit, path, why);
    }

    /// The audit log, for reading and verifying.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The last line of a daemon's run.
    pub fn audit_stopped(&self) {
        self.audit_ended(&Event::DaemonStopped);
    }

    /// The last line of a run, `last` (`daemon_stopped`, `standalone_stopped`).
    pub fn audit_ended(&self, last: &Event<'_>) {
        self.auth_failures.flush(&self.audit, true);
        self.audit.record_or_hold(last);
    }

    /// A request as it stands, whatever its state.
    pub fn request_state(&self, id: &RequestId) -> Option<Request> {
        self.requests.get(id)
    }

    pub fn request_view(&self, id: &RequestId) -> Option<RequestView> {
        self.requests.get(id).map(|r| r.view())
    }

    pub fn list_requests(&self, caller: &Caller) -> Vec<RequestView> {
        self.requests
            .list()
            .iter()
            .filter(|r| visible_to(r, caller))
            .map(Request::view)
            .collect()
    }

    /// Every live grant.
    pub fn live_grants(&self) -> Vec<Arc<Grant>> {
        self.grants.list()
    }

    /// One live grant.
    pub async fn live_grant(&self, id: &GrantId) -> Option<Arc<Grant>> {
        self.grants.get(id).await
    }

    /// Answers when the grant stops being live, or one of its secrets changed after
    /// `since` (ignored when 0), or after `wait` (`keygate exec`).
    pub async fn watch_grant(
        &self,
        id: &GrantId,
        caller: &Caller,
        since: u64,
        wait: Duration,
    ) -> Result<GrantWatch, GateError> {
        self.grants
            .watch(
                id,
                caller.agent(),
                since,
                wait,
                self.shutting_down.subscribe(),
            )
            .await
            .map_err(|e| match e {
                WatchError::NotFound => GateError::NotFound("grant"),
                WatchError::ShuttingDown => GateError::ShuttingDown,
            })
    }

    /// Stops filing, answers every waiting agent with an error, and stops maintenance.
    pub fn shut_down(&self) {
        self.shutting_down.send_replace(true);
        self.requests.wake_all();
    }
}
