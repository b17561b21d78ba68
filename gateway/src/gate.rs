//! The gate: every operation of the daemon, in the order a request travels — filed by an
//! agent, decided by the policy or a person, turned into a grant, released. The API
//! layer only authenticates and translates HTTP; everything that matters happens here.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use keygate_policies::{Approvers, Decision, Policy};
use keygate_proto::api::{
    FileRequest, GrantStatus, GrantView, GrantWatch, Release, RequestStatus, RequestView,
};
use keygate_proto::{AgentName, GrantId, RequestId, SecretName, SecretValue};
use tokio::sync::{mpsc, watch};

use crate::audit::{Actor, AuditLog, Event};
use crate::auth_failures::AuthFailures;
use crate::config::Limits;
use crate::grants::{Ended, Grant, Grants};
use crate::identity::{Agent, Caller, Identities};
use crate::requests::{Approval, Request, Requests};
use crate::store::SecretStore;
use keygate_proto::approval::{ApprovalChannel, Change, DeciderId};
pub use keygate_proto::approval::{Outcome, Verdict};

/// The longest reason kept; a longer one is cut (with a mark) rather than refused.
pub const MAX_REASON: usize = 1000;
/// The most secrets one request may name.
pub const MAX_SECRETS: usize = 32;

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

/// Cancels a request when its agent's long-poll is dropped unfinished.
struct HangUp<'a> {
    gate: &'a Gate,
    id: &'a RequestId,
    /// `None` once the wait ended normally.
    caller: Option<&'a Caller>,
}

impl Drop for HangUp<'_> {
    fn drop(&mut self) {
        if let Some(caller) = self.caller.take()
            && self.gate.cancel(self.id, caller).is_ok()
        {
            tracing::info!(request = %self.id, "the agent hung up: request cancelled");
        }
    }
}

/// A per-agent sliding window of filing times.
#[derive(Debug, Default)]
struct RateWindow {
    filed: VecDeque<Instant>,
}

/// The daemon's state and operations.
pub struct Gate {
    policy: RwLock<Arc<Policy>>,
    pub(crate) store: Arc<dyn SecretStore>,
    /// Decrypted values, so a grant hit needs no keychain or disk round trip; zeroized on
    /// drop, cleared on lock and on every change to a secret.
    values: RwLock<HashMap<SecretName, SecretValue>>,
    /// Bumped (under the `values` write lock) whenever a cached value becomes stale.
    values_generation: AtomicU64,
    requests: Requests,
    grants: Grants,
    pub(crate) audit: AuditLog,
    pub(crate) identities: Identities,
    auth_failures: AuthFailures,
    channels: RwLock<Vec<Arc<dyn ApprovalChannel>>>,
    limits: Limits,
    windows: Mutex<HashMap<AgentName, RateWindow>>,
    started: Instant,
    shutting_down: watch::Sender<bool>,
    /// Grants issued, for watchers: kept an hour after they end.
    known: Mutex<HashMap<GrantId, Known>>,
    /// Bumped whenever a grant ends or a secret changes; watchers wait on it.
    epoch: watch::Sender<u64>,
    /// Recent secret changes, by epoch.
    changes: Mutex<VecDeque<(u64, SecretName)>>,
}

/// What a watcher needs to know about a grant, even after it is gone.
#[derive(Debug, Clone)]
struct Known {
    agent: Agent,
    secrets: Vec<SecretName>,
    expires_at: SystemTime,
    ended: Option<(GrantStatus, Instant)>,
}

/// How many secret changes are remembered for watchers.
const MAX_CHANGES: usize = 4096;

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("store", &self.store.backend())
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

/// The most of a bound command kept for people to read (messages, the audit log, the
/// request table); the binding itself is the hash of the whole argv.
pub const MAX_COMMAND_SHOWN: usize = 2048;

/// A command as approvers and the audit log see it: whole if it is short, else cut to
/// [`MAX_COMMAND_SHOWN`] bytes in all, saying how much was left out. A request's size in
/// memory and in the log stays small whatever the agent sends.
fn shown_command(argv: &[String]) -> Vec<String> {
    let mut shown = Vec::new();
    let mut budget = MAX_COMMAND_SHOWN;
    for (i, arg) in argv.iter().enumerate() {
        if budget == 0 {
            shown.push(format!("…({} more arguments)", argv.len() - i));
            break;
        }
        let part = cut(arg, budget);
        budget = budget.saturating_sub(part.len().min(arg.len()).max(1));
        shown.push(part);
    }
    shown
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
        let gate = Arc::new(Self {
            policy: RwLock::new(Arc::new(policy)),
            store,
            values: RwLock::default(),
            values_generation: AtomicU64::new(0),
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
            known: Mutex::default(),
            // 0 means "no epoch seen yet" to watchers, so real epochs start at 1.
            epoch: watch::channel(1).0,
            changes: Mutex::default(),
        });
        (gate, ended)
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
        self.audit.record_or_log(&Event::PolicyReloaded { rules });
    }

    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        self.identities.authenticate(token)
    }

    /// A token was missing, malformed or unknown: counted, not logged line by line.
    pub fn auth_failed(&self, path: &str, why: &'static str) {
        self.auth_failures.note(&self.audit, path, why);
    }

    // ----- filing -------------------------------------------------------------------

    fn check_rate(&self, agent: &Agent) -> Result<(), GateError> {
        if self.requests.pending_of(agent) >= self.limits.pending_per_agent as usize {
            return Err(GateError::RateLimited(
                format!(
                    "agent `{agent}` already has {} pending requests; wait for a decision or cancel one",
                    self.limits.pending_per_agent
                ),
                Duration::from_secs(5),
            ));
        }
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let w = windows.entry(agent.name.clone()).or_default();
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        while w
            .filed
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            w.filed.pop_front();
        }
        if w.filed.len() >= self.limits.requests_per_minute as usize {
            let retry = w
                .filed
                .front()
                .map_or(minute, |t| minute.saturating_sub(now.duration_since(*t)));
            return Err(GateError::RateLimited(
                format!(
                    "agent `{agent}` filed {} requests in the last minute",
                    self.limits.requests_per_minute
                ),
                retry.max(Duration::from_secs(1)),
            ));
        }
        w.filed.push_back(now);
        Ok(())
    }

    /// An agent files a request. The policy decides at once (allow, deny) or the request
    /// is posted to every approval channel and waits.
    pub async fn file(
        self: &Arc<Self>,
        agent: &Agent,
        body: FileRequest,
    ) -> Result<RequestView, GateError> {
        if *self.shutting_down.borrow() {
            return Err(GateError::ShuttingDown);
        }
        let mut secrets = body.secrets;
        secrets.sort();
        secrets.dedup();
        if secrets.is_empty() {
            return Err(GateError::BadRequest("name at least one secret".into()));
        }
        if secrets.len() > MAX_SECRETS {
            return Err(GateError::BadRequest(format!(
                "at most {MAX_SECRETS} secrets in one request"
            )));
        }
        let ttl = body
            .ttl
            .as_deref()
            .map(keygate_proto::duration::parse)
            .transpose()
            .map_err(|e| GateError::BadRequest(e.to_string()))?;
        let reason = cut(&body.reason, MAX_REASON);
        let command_sha256 = body
            .command
            .as_deref()
            .map(keygate_proto::api::command_hash);
        let command = body.command.as_deref().map(shown_command);
        let host = body.host.map(|h| cut(&h, 255));
        self.check_rate(agent)?;

        let eval = self.policy().evaluate_all(&agent.name, &secrets, ttl);
        let (approvers, quorum, decision) = match &eval.decision {
            Decision::Allow => (Approvers::default(), 0, "allow"),
            Decision::Deny => (Approvers::default(), 0, "deny"),
            Decision::Ask { approvers, quorum } => (approvers.clone(), *quorum, "ask"),
        };
        let mut request = Request::pending(
            agent.clone(),
            secrets,
            reason,
            command,
            host,
            &eval,
            approvers,
            quorum,
        );
        request.command_sha256 = command_sha256;
        self.audit.record(&Event::RequestFiled {
            request: &request.id,
            agent: &agent.name,
            secrets: &request.secrets,
            reason: &request.reason,
            rule: eval.rule.as_deref(),
            decision,
            ttl_seconds: eval.ttl.as_secs(),
            command: request.command.as_deref(),
        })?;

        match eval.decision {
            Decision::Deny => {
                self.deny_request(&mut request, actor("policy", "policy"), eval.reason.clone())?;
                let view = request.view();
                self.requests.insert(request);
                Ok(view)
            }
            Decision::Allow => {
                let by = actor("policy", "policy");
                let approval = Approval {
                    by: DeciderId::Policy,
                    label: "policy".into(),
                };
                let grant = self.approve_request(&mut request, vec![approval], by, None)?;
                self.issue(grant).await;
                let view = request.view();
                self.requests.insert(request);
                Ok(view)
            }
            Decision::Ask { .. } => {
                // Every channel at once; one that fails (Discord down, a message it
                // refuses) does not keep the request from the others.
                let channels = self.channels();
                let view = request.view();
                let posts = channels.iter().map(|c| c.post(&view));
                let results = futures_util::future::join_all(posts).await;
                let mut failure = None;
                for (channel, result) in channels.iter().zip(results) {
                    match result {
                        Ok(()) => request.posted_to.push(channel.name().to_owned()),
                        Err(e) => {
                            tracing::warn!(request = %request.id, "{e}");
                            self.audit.record_or_log(&Event::PostFailed {
                                request: &request.id,
                                channel: channel.name(),
                                why: &e.message,
                            });
                            failure = Some(e);
                        }
                    }
                }
                if request.posted_to.is_empty() {
                    // Fail closed: a request nobody can see is refused, not left waiting.
                    self.audit.record_or_log(&Event::RequestDecided {
                        request: &request.id,
                        outcome: "denied",
                        by: &actor("daemon", "daemon"),
                        message: Some("no approval channel could show it"),
                        grant: None,
                        ttl_seconds: None,
                    });
                    return Err(failure.map_or(GateError::ShuttingDown, GateError::from));
                }
                let view = request.view();
                let id = request.id.clone();
                let deadline = request.expires_at;
                self.requests.insert(request);
                let gate = Arc::clone(self);
                tokio::spawn(async move {
                    let wait = deadline
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    tokio::time::sleep(wait).await;
                    gate.expire(&id);
                });
                Ok(view)
            }
        }
    }

    /// Approves a pending request: the grant (TTL from now, never longer than the
    /// policy's), audited before anything changes. The caller makes it live.
    fn approve_request(
        &self,
        r: &mut Request,
        approvals: Vec<Approval>,
        by: Actor,
        ttl: Option<Duration>,
    ) -> Result<Arc<Grant>, GateError> {
        let ttl = ttl.map_or(r.ttl, |t| t.min(r.ttl));
        let labels = approvals.iter().map(|a| a.label.clone()).collect();
        let grant = Arc::new(Grant::for_request(r, ttl, labels));
        self.audit.record(&Event::RequestDecided {
            request: &r.id,
            outcome: "approved",
            by: &by,
            message: None,
            grant: Some(&grant.id),
            ttl_seconds: Some(grant.ttl.as_secs()),
        })?;
        r.approvals = approvals;
        r.status = RequestStatus::Approved;
        r.decided_by = Some(by);
        r.decided_at = Some(SystemTime::now());
        r.ttl = grant.ttl;
        r.grant = Some(grant.reference());
        Ok(grant)
    }

    /// Denies a pending request, audited before anything changes.
    fn deny_request(&self, r: &mut Request, by: Actor, message: String) -> Result<(), GateError> {
        self.audit.record(&Event::RequestDecided {
            request: &r.id,
            outcome: "denied",
            by: &by,
            message: Some(&message),
            grant: None,
            ttl_seconds: None,
        })?;
        r.status = RequestStatus::Denied;
        r.message = Some(message);
        r.decided_by = Some(by);
        r.decided_at = Some(SystemTime::now());
        Ok(())
    }

    /// A request's timeout passed with no decision.
    fn expire(&self, id: &RequestId) {
        let result = self.requests.update(id, |r| {
            if r.status != RequestStatus::Pending {
                return Err(());
            }
            self.audit
                .record_or_log(&Event::RequestExpired { request: id });
            r.status = RequestStatus::Expired;
            r.decided_at = Some(SystemTime::now());
            r.message = Some("no decision before the request expired".into());
            Ok(r.view())
        });
        if let Some(Ok(view)) = result {
            self.requests.wake(id);
            self.notify(&Change::Request(Box::new(view)));
        }
    }

    // ----- watching and cancelling --------------------------------------------------

    fn visible_to(request: &Request, caller: &Caller) -> bool {
        match caller {
            Caller::Operator => true,
            Caller::Agent(a) => &request.agent == a,
        }
    }

    /// The request, after waiting up to `wait` for it to leave `pending`.
    pub async fn wait(
        &self,
        id: &RequestId,
        caller: &Caller,
        wait: Duration,
    ) -> Result<RequestView, GateError> {
        let Some((request, mut rx)) = self.requests.watch(id) else {
            return Err(GateError::NotFound("request"));
        };
        // An agent cannot tell another agent's request from a missing one.
        if !Self::visible_to(&request, caller) {
            return Err(GateError::NotFound("request"));
        }
        if request.status.is_final() || wait.is_zero() {
            return Ok(request.view());
        }
        let mut stop = self.shutting_down.subscribe();
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        // If the agent hangs up mid-wait (hyper drops this future when its connection
        // closes), it has given up: the request is cancelled rather than left for an
        // approver to grant to nobody.
        let mut hang_up = HangUp {
            gate: self,
            id,
            caller: matches!(caller, Caller::Agent(_)).then_some(caller),
        };
        loop {
            tokio::select! {
                () = &mut deadline => break,
                changed = rx.changed() => {
                    if changed.is_err() || rx.borrow_and_update().is_final() {
                        break;
                    }
                }
                _ = stop.changed() => {
                    hang_up.caller = None;
                    return Err(GateError::ShuttingDown);
                }
            }
        }
        hang_up.caller = None;
        self.requests
            .get(id)
            .map(|r| r.view())
            .ok_or(GateError::NotFound("request"))
    }

    pub fn list_requests(&self, caller: &Caller) -> Vec<RequestView> {
        self.requests
            .list()
            .iter()
            .filter(|r| Self::visible_to(r, caller))
            .map(Request::view)
            .collect()
    }

    /// The agent (or the operator) gives up on a pending request.
    pub fn cancel(&self, id: &RequestId, caller: &Caller) -> Result<RequestView, GateError> {
        let by = match caller {
            Caller::Operator => actor("operator", "terminal"),
            Caller::Agent(a) => actor(a.name.as_str(), "agent"),
        };
        let result = self
            .requests
            .update(id, |r| {
                if !Self::visible_to(r, caller) {
                    return Err(GateError::NotFound("request"));
                }
                if r.status != RequestStatus::Pending {
                    return Err(GateError::AlreadyDecided(r.status.as_str()));
                }
                self.audit.record(&Event::RequestCancelled {
                    request: id,
                    by: &by,
                })?;
                r.status = RequestStatus::Cancelled;
                r.decided_by = Some(by.clone());
                r.decided_at = Some(SystemTime::now());
                r.message = Some("cancelled by the requester".into());
                Ok(r.view())
            })
            .ok_or(GateError::NotFound("request"))??;
        self.requests.wake(id);
        self.notify(&Change::Request(Box::new(result.clone())));
        Ok(result)
    }

    // ----- deciding -----------------------------------------------------------------

    /// A decision from an approval channel. `approver` is the person's Discord identity
    /// (user id, role ids) to check against the rule's approvers; `None` means the
    /// operator, who may decide anything from the terminal.
    pub async fn decide(
        &self,
        id: &RequestId,
        verdict: Verdict,
        by: Actor,
        approver: Option<(u64, &[u64])>,
    ) -> Result<Outcome, GateError> {
        let mut new_grant = None;
        let outcome = self
            .requests
            .update(id, |r| {
                if r.status != RequestStatus::Pending {
                    return Err(GateError::AlreadyDecided(r.status.as_str()));
                }
                if let Some((user, roles)) = approver
                    && !r.approvers.allows(user, roles)
                {
                    return Err(GateError::Forbidden(
                        "you are not an approver for this request".into(),
                    ));
                }
                match &verdict {
                    Verdict::Deny { reason } => {
                        let message = reason.as_deref().map_or_else(
                            || format!("denied by {}", by.who),
                            |m| cut(m, MAX_REASON),
                        );
                        self.deny_request(r, by.clone(), message)?;
                        Ok(Outcome::Decided(r.view()))
                    }
                    Verdict::Approve { ttl } => {
                        // Distinct approvers are distinct accounts, whatever they are
                        // called at the moment they press.
                        let decider =
                            approver.map_or(DeciderId::Operator, |(user, _)| DeciderId::User {
                                channel: by.via,
                                id: user,
                            });
                        let mut approvals = r.approvals.clone();
                        if !approvals.iter().any(|a| a.by == decider) {
                            approvals.push(Approval {
                                by: decider,
                                label: by.who.clone(),
                            });
                        }
                        if (approvals.len() as u64) < u64::from(r.quorum) {
                            self.audit.record(&Event::RequestApproval {
                                request: id,
                                by: &by,
                                approvals: approvals.len(),
                                quorum: r.quorum,
                            })?;
                            r.approvals = approvals;
                            return Ok(Outcome::Progress(r.view()));
                        }
                        new_grant = Some(self.approve_request(r, approvals, by.clone(), *ttl)?);
                        Ok(Outcome::Decided(r.view()))
                    }
                }
            })
            .ok_or(GateError::NotFound("request"))?;
        // The grant is live before the waiting agent wakes and asks for the value.
        if let Some(grant) = new_grant {
            self.issue(grant).await;
        }
        self.requests.wake(id);
        if let Err(GateError::Forbidden(why)) = &outcome {
            self.audit.record_or_log(&Event::Refused {
                who: &by,
                what: "decide",
                why,
            });
        }
        let outcome = outcome?;
        match &outcome {
            Outcome::Progress(v) | Outcome::Decided(v) => {
                self.notify(&Change::Request(Box::new(v.clone())));
            }
        }
        Ok(outcome)
    }

    // ----- releasing ----------------------------------------------------------------

    /// The release point: the value, if `agent` holds a live grant for `secret` or a rule
    /// allows it outright.
    pub async fn release(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
    ) -> Result<Release, GateError> {
        // A failing audit log releases nothing, not even reads that share a grant's line.
        self.audit.ensure_writable()?;
        let found = self.grants.find(agent, secret, command).await;
        // Held until the value is handed over: a revocation waits for this read.
        let _open = match &found {
            Some(g) => Some(g.hold().await.ok_or(GateError::NoGrant)?),
            None => None,
        };
        let (grant, basis) = if let Some(g) = found.as_ref() {
            (Some(Arc::clone(g)), None)
        } else {
            let eval = self.policy().evaluate(&agent.name, secret, None);
            if eval.decision != Decision::Allow {
                return Err(GateError::NoGrant);
            }
            (None, Some(eval.rule.unwrap_or_default()))
        };
        let value = match self.value(secret).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                if let Some(g) = &grant {
                    g.give_back(secret);
                }
                return Err(GateError::Conflict(format!(
                    "the secret `{secret}` is not in the store: ask the operator to `keygate secrets set {secret}`"
                )));
            }
            Err(e) => {
                if let Some(g) = &grant {
                    g.give_back(secret);
                }
                return Err(e);
            }
        };
        let logged = match &grant {
            Some(g) => g.log_first_read(secret, || {
                self.audit.record(&Event::Released {
                    agent: &agent.name,
                    secret,
                    grant: Some(&g.id),
                    basis: "grant",
                })
            }),
            None => self.audit.record(&Event::Released {
                agent: &agent.name,
                secret,
                grant: None,
                basis: basis.as_deref().unwrap_or("rule"),
            }),
        };
        if let Err(e) = logged {
            if let Some(g) = &grant {
                g.give_back(secret);
            }
            return Err(e.into());
        }
        Ok(Release {
            name: secret.clone(),
            value,
            grant: grant.map(|g| g.reference()),
        })
    }

    async fn value(&self, name: &SecretName) -> Result<Option<SecretValue>, GateError> {
        if let Some(v) = self
            .values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(Some(v.clone()));
        }
        let store = Arc::clone(&self.store);
        let key = name.clone();
        // A change to the secret while the store is read must not be overwritten by the
        // old value: only cache what was read if no change came in between.
        let generation = self.values_generation.load(Ordering::Acquire);
        let found = tokio::task::spawn_blocking(move || store.get(&key))
            .await
            .map_err(GateError::StoreTask)??;
        if let Some(v) = &found {
            let mut values = self
                .values
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.values_generation.load(Ordering::Acquire) == generation {
                values.entry(name.clone()).or_insert_with(|| v.clone());
            }
        }
        Ok(found)
    }

    /// Drops cached values (all, or one) and marks the change for readers in flight.
    fn invalidate_values(&self, name: Option<&SecretName>) {
        let mut values = self
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.values_generation.fetch_add(1, Ordering::AcqRel);
        match name {
            Some(n) => {
                values.remove(n);
            }
            None => values.clear(),
        }
    }

    fn forget_values(&self) {
        self.invalidate_values(None);
    }

    // ----- grants -------------------------------------------------------------------

    pub fn list_grants(&self, caller: &Caller) -> Vec<GrantView> {
        self.grants
            .list()
            .iter()
            .filter(|g| match caller {
                Caller::Operator => true,
                Caller::Agent(a) => &g.agent == a,
            })
            .map(|g| g.view())
            .collect()
    }

    /// Revokes grants; each one is audited before it goes.
    pub async fn revoke(&self, selector: &Selector, by: &Actor) -> Result<Vec<GrantId>, GateError> {
        let chosen: Vec<Arc<Grant>> = match selector {
            Selector::Grant(id) => match self.grants.get(id).await {
                Some(g) => vec![g],
                None => return Err(GateError::NotFound("live grant")),
            },
            Selector::Agent(a) => self
                .grants
                .list()
                .into_iter()
                .filter(|g| &g.agent.name == a)
                .collect(),
            Selector::Registration(a) => self
                .grants
                .list()
                .into_iter()
                .filter(|g| &g.agent == a)
                .collect(),
            Selector::Secret(s) => self
                .grants
                .list()
                .into_iter()
                .filter(|g| g.secrets.contains(s))
                .collect(),
            Selector::All => self.grants.list(),
        };
        let mut revoked = Vec::new();
        for g in chosen {
            // No read starts after this, and those in flight have finished: the count
            // below is final, and once this returns nothing is released under the grant.
            g.close().await;
            // Revocation reduces access: a full or failing disk must not stop it.
            self.audit.record_reducing(&Event::GrantEnded {
                grant: &g.id,
                agent: &g.agent.name,
                cause: "revoked",
                reads: g.reads(),
                by: Some(by),
            });
            if self.grants.remove(&g.id).await.is_some() {
                self.ended(&g.id, GrantStatus::Revoked);
                self.notify(&Change::GrantEnded {
                    grant: g.view(),
                    cause: "revoked".into(),
                });
                revoked.push(g.id.clone());
            }
        }
        Ok(revoked)
    }

    /// Runs until shutdown: notices expiries promptly, records grants that ended, and
    /// forgets old requests.
    pub async fn run_maintenance(self: Arc<Self>, mut ended: mpsc::UnboundedReceiver<Ended>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut purge = tokio::time::interval(Duration::from_secs(60));
        let mut stop = self.shutting_down.subscribe();
        loop {
            tokio::select! {
                _ = tick.tick() => self.grants.tick().await,
                _ = purge.tick() => {
                    self.auth_failures.flush(&self.audit, false);
                    self.requests.purge();
                    self.purge_known();
                }
                Some(Ended { grant }) = ended.recv() => {
                    self.ended(&grant.id, GrantStatus::Expired);
                    self.audit.record_or_log(&Event::GrantEnded {
                        grant: &grant.id,
                        agent: &grant.agent.name,
                        cause: "expired",
                        reads: grant.reads(),
                        by: None,
                    });
                    self.notify(&Change::GrantEnded { grant: grant.view(), cause: "expired".into() });
                }
                _ = stop.changed() => break,
            }
        }
    }

    // ----- secrets, agents, store ---------------------------------------------------

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, GateError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(GateError::StoreTask)?
            .map_err(GateError::from)
    }

    pub async fn set_secret(
        &self,
        name: SecretName,
        value: SecretValue,
    ) -> Result<crate::store::SecretMeta, GateError> {
        let size = value.len();
        self.audit.record(&Event::SecretSet { name: &name, size })?;
        let key = name.clone();
        let meta = self.blocking(move |s| s.set(&key, &value)).await?;
        self.invalidate_values(Some(&name));
        self.secret_changed(name);
        Ok(meta)
    }

    pub async fn remove_secret(&self, name: SecretName) -> Result<bool, GateError> {
        self.audit.record(&Event::SecretRemoved { name: &name })?;
        let key = name.clone();
        let removed = self.blocking(move |s| s.remove(&key)).await?;
        self.invalidate_values(Some(&name));
        self.secret_changed(name);
        Ok(removed)
    }

    pub async fn list_secrets(&self) -> Result<Vec<crate::store::SecretMeta>, GateError> {
        self.blocking(|s| s.list()).await
    }

    pub async fn lock_store(&self) -> Result<(), GateError> {
        self.audit.record(&Event::StoreLocked)?;
        self.forget_values();
        self.blocking(|s| {
            s.lock();
            Ok(())
        })
        .await
    }

    pub async fn unlock_store(&self, passphrase: secrecy::SecretString) -> Result<(), GateError> {
        self.blocking(move |s| s.unlock(&passphrase)).await?;
        self.audit.record(&Event::StoreUnlocked)?;
        Ok(())
    }

    pub fn add_agent(&self, name: &AgentName) -> Result<secrecy::SecretString, GateError> {
        self.audit.record(&Event::AgentAdded { name })?;
        Ok(self.identities.add(name)?)
    }

    /// Removes an agent: its token stops working, its pending requests are cancelled and
    /// its grants revoked. None of it waits on the audit log (it reduces access).
    pub async fn remove_agent(&self, name: &AgentName) -> Result<(), GateError> {
        let gone = self.identities.remove(name)?;
        self.audit.record_reducing(&Event::AgentRemoved { name });
        let by = actor("operator", "terminal");
        for id in self.requests.pending_ids_of(&gone) {
            let view = self.requests.update(&id, |r| {
                if r.status != RequestStatus::Pending {
                    return Err(());
                }
                self.audit.record_reducing(&Event::RequestCancelled {
                    request: &id,
                    by: &by,
                });
                r.status = RequestStatus::Cancelled;
                r.decided_by = Some(by.clone());
                r.decided_at = Some(SystemTime::now());
                r.message = Some("cancelled: the agent was removed".into());
                Ok(r.view())
            });
            if let Some(Ok(view)) = view {
                self.requests.wake(&id);
                self.notify(&Change::Request(Box::new(view)));
            }
        }
        self.revoke(&Selector::Registration(gone), &by).await?;
        Ok(())
    }

    // ----- status and shutdown ------------------------------------------------------

    /// The daemon's state as `caller` may see it: an agent sees its own requests and
    /// grants, and nothing daemon-wide.
    pub fn status(&self, caller: &Caller, discord: String) -> keygate_proto::api::Status {
        let operator = matches!(caller, Caller::Operator);
        let pending_requests = match caller {
            Caller::Operator => self.requests.pending(),
            Caller::Agent(a) => self.requests.pending_of(a),
        };
        keygate_proto::api::Status {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.started.elapsed().as_secs(),
            store_backend: operator.then(|| self.store.backend().to_string()),
            store_locked: operator.then(|| self.store.is_locked()),
            pending_requests,
            live_grants: self.list_grants(caller).len(),
            agents: operator.then(|| self.identities.list().len()),
            discord,
            approval_channels: self
                .channels()
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
            policy_rules: operator.then(|| self.policy().rules().len()),
        }
    }

    pub fn channel_states(&self) -> Vec<(&'static str, String)> {
        self.channels()
            .iter()
            .map(|c| (c.name(), c.state()))
            .collect()
    }

    /// Stops filing, answers every waiting agent with an error, and stops maintenance.
    pub fn shut_down(&self) {
        self.shutting_down.send_replace(true);
        self.requests.wake_all();
    }
}

impl Gate {
    /// The last line of a run.
    pub fn audit_stopped(&self) {
        self.auth_failures.flush(&self.audit, true);
        self.audit.record_or_log(&Event::DaemonStopped);
    }
}

impl Gate {
    /// The audit log, for reading and verifying.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }
}

impl Gate {
    /// A request as it stands.
    pub fn request_view(&self, id: &RequestId) -> Option<RequestView> {
        self.requests.get(id).map(|r| r.view())
    }

    /// Every live grant.
    pub fn live_grants(&self) -> Vec<Arc<Grant>> {
        self.grants.list()
    }

    /// One live grant.
    pub async fn live_grant(&self, id: &GrantId) -> Option<Arc<Grant>> {
        self.grants.get(id).await
    }
}

// ----- watching grants (keygate exec) ---------------------------------------------------

impl Gate {
    /// Makes a grant live and known to watchers.
    async fn issue(&self, grant: Arc<Grant>) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                grant.id.clone(),
                Known {
                    agent: grant.agent.clone(),
                    secrets: grant.secrets.clone(),
                    expires_at: grant.expires_at,
                    ended: None,
                },
            );
        let agent = grant.agent.clone();
        let id = grant.id.clone();
        self.grants.insert(grant).await;
        // Checked after the insert: an agent removed meanwhile either sees this grant in
        // its revocation or is seen gone here. Its grants never outlive it.
        if !self.identities.is_current(&agent) {
            let _ = self
                .revoke(&Selector::Grant(id), &actor("daemon", "daemon"))
                .await;
        }
    }

    fn ended(&self, id: &GrantId, status: GrantStatus) {
        if let Some(k) = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(id)
            && k.ended.is_none()
        {
            k.ended = Some((status, Instant::now()));
        }
        self.epoch.send_modify(|e| *e += 1);
    }

    fn secret_changed(&self, name: SecretName) {
        // Record the change before announcing its epoch, so a watcher woken by the new
        // epoch always finds it.
        let mut changes = self
            .changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let epoch = *self.epoch.borrow() + 1;
        changes.push_back((epoch, name));
        while changes.len() > MAX_CHANGES {
            changes.pop_front();
        }
        self.epoch.send_modify(|e| *e = (*e).max(epoch));
    }

    fn purge_known(&self) {
        let hour = Duration::from_secs(3600);
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, k| k.ended.is_none_or(|(_, at)| at.elapsed() < hour));
    }

    /// A grant's state now, for `caller`: `None` if unknown to them.
    fn grant_state(&self, id: &GrantId, caller: &Caller) -> Option<(GrantStatus, Known)> {
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()?;
        if let Caller::Agent(a) = caller
            && a != &known.agent
        {
            return None;
        }
        let status = match known.ended {
            Some((s, _)) => s,
            None if SystemTime::now() >= known.expires_at => GrantStatus::Expired,
            None => GrantStatus::Live,
        };
        Some((status, known))
    }

    /// Answers when the grant stops being live, or one of its secrets changed after
    /// `since` (ignored when 0), or after `wait`.
    pub async fn watch_grant(
        &self,
        id: &GrantId,
        caller: &Caller,
        since: u64,
        wait: Duration,
    ) -> Result<GrantWatch, GateError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut stop = self.shutting_down.subscribe();
        let mut rx = self.epoch.subscribe();
        loop {
            let epoch = *rx.borrow_and_update();
            let (status, known) = self
                .grant_state(id, caller)
                .ok_or(GateError::NotFound("grant"))?;
            let changed: Vec<SecretName> = if since == 0 {
                Vec::new()
            } else {
                let changes = self
                    .changes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut c: Vec<SecretName> = changes
                    .iter()
                    .filter(|(e, n)| *e > since && known.secrets.contains(n))
                    .map(|(_, n)| n.clone())
                    .collect();
                c.sort();
                c.dedup();
                c
            };
            if status != GrantStatus::Live
                || !changed.is_empty()
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(GrantWatch {
                    id: id.clone(),
                    status,
                    epoch,
                    changed,
                });
            }
            let expiry = known
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::select! {
                _ = rx.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
                () = tokio::time::sleep(expiry) => {}
                _ = stop.changed() => return Err(GateError::ShuttingDown),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_command_is_shown_whole() {
        let argv = vec!["git".to_owned(), "push".to_owned()];
        assert_eq!(shown_command(&argv), argv);
    }

    #[test]
    fn a_huge_command_is_cut_to_the_budget() {
        let argv: Vec<String> = (0..300).map(|_| "x".repeat(60_000)).collect();
        let shown = shown_command(&argv);
        let bytes: usize = shown.iter().map(String::len).sum();
        assert!(bytes < MAX_COMMAND_SHOWN + 64, "{bytes}");
        assert_eq!(
            shown.last().map(String::as_str),
            Some("…(299 more arguments)")
        );
        let empties: Vec<String> = vec![String::new(); 100_000];
        assert!(shown_command(&empties).len() <= MAX_COMMAND_SHOWN + 1);
    }
}
