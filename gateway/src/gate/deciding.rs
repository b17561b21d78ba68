//! Step 2: a pending request is settled — approved or denied by a decider (a person on a
//! channel, or the operator), expired by its clock, cancelled by its agent. Every change
//! goes through [`Gate::transition`]: under the request's own decision lock, planned
//! from the request as it stands, audited (synced, outside the table's lock, so
//! decisions on different requests share fsyncs), then applied.

use std::sync::Arc;
use std::time::Duration;

use keygate_proto::RequestId;
use keygate_proto::api::{MAX_DENIAL_REASON, RequestView};
use keygate_proto::approval::{Change, Decider};

use super::{Gate, GateError, Outcome, Verdict, actor, visible_to};
use crate::audit::{Actor, Event};
use crate::grants::Grant;
use crate::identity::Caller;
use crate::requests::{Refusal, Request, Transition};

/// How often a long-poll on a cluster reads its request from Redis again.
const REREAD_WAITED: Duration = Duration::from_secs(2);

/// The longest note kept beside an approval, in characters.
const NOTE_MAX: usize = 200;

/// How a transition's audit line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Record {
    /// It must be on disk before the change is made; if it cannot be, nothing changes.
    Strict,
    /// The change reduces access and goes ahead; a line the disk refuses is held.
    Reducing,
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
        if let Some(caller) = self.caller.take() {
            self.gate.hung_up(self.id, caller);
        }
    }
}

/// The reason a denial carries: trimmed, `None` when blank, refused (changing nothing)
/// when longer than [`MAX_DENIAL_REASON`] characters.
fn denial_reason(reason: Option<&str>) -> Result<Option<String>, GateError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let chars = reason.chars().count();
    if chars > MAX_DENIAL_REASON {
        return Err(GateError::BadRequest(format!(
            "the reason is {chars} characters long; at most {MAX_DENIAL_REASON} are allowed"
        )));
    }
    Ok(Some(reason.to_owned()))
}

impl Gate {
    /// The one way a request changes: plan, audit, apply — in this node's table, or, in
    /// a cluster, in Redis first ([`Gate::transition_shared`]).
    pub(super) async fn transition_any(
        &self,
        id: &RequestId,
        record: Record,
        plan: impl FnMut(&Request) -> Result<Transition, GateError>,
    ) -> Result<(RequestView, Option<Arc<Grant>>), GateError> {
        match self.cluster() {
            Some(c) => self.transition_shared(c, id, record, plan).await,
            None => self.transition(id, record, plan),
        }
    }

    /// A change in this node's own table: plan, audit, apply.
    fn transition(
        &self,
        id: &RequestId,
        record: Record,
        mut plan: impl FnMut(&Request) -> Result<Transition, GateError>,
    ) -> Result<(RequestView, Option<Arc<Grant>>), GateError> {
        let lock = self
            .requests
            .decision_lock(id)
            .ok_or(GateError::NotFound("request"))?;
        let _deciding = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let request = self
            .requests
            .get(id)
            .ok_or(GateError::NotFound("request"))?;
        let mut t = plan(&request)?;
        match record {
            Record::Strict => self.audit.record(&t.event())?,
            Record::Reducing => self.audit.record_or_hold(&t.event()),
        }
        let grant = t.grant.take();
        // Counted once audited: from here on, the change has happened.
        self.metrics.settled(request.created_at, &t.next);
        let view = self
            .requests
            .apply(t)
            .ok_or(GateError::NotFound("request"))?;
        Ok((view, grant))
    }

    /// Tells waiters and channels that a request changed.
    pub(super) fn changed(&self, id: &RequestId, view: RequestView) {
        self.requests.wake(id);
        self.notify(&Change::Request(Box::new(view)));
    }

    /// A decision, from the terminal (the operator, who may decide anything) or from a
    /// person on a channel (checked against the request's approvers). Distinct approvers
    /// are distinct accounts: a quorum counts ids, never names.
    pub async fn decide(
        &self,
        id: &RequestId,
        verdict: Verdict,
        decider: &Decider,
    ) -> Result<Outcome, GateError> {
        let by = Actor::of(decider);
        let given = match &verdict {
            Verdict::Deny { reason } => denial_reason(reason.as_deref())?,
            Verdict::Approve { .. } | Verdict::ApproveFor { .. } => None,
        };
        let result = self
            .transition_any(id, Record::Strict, |r| {
                if r.status().is_final() {
                    return Err(Refusal::AlreadyDecided(r.status()).into());
                }
                if let Decider::Person(p) = decider
                    && !r.approvers.allows(p.id, &p.roles)
                {
                    return Err(Refusal::NotAnApprover.into());
                }
                Ok(match &verdict {
                    Verdict::Deny { .. } => match given.clone() {
                        Some(given) => r.deny_because(by.clone(), given)?,
                        None => r.deny(by.clone(), format!("denied by {}", by.who))?,
                    },
                    Verdict::Approve { ttl } => r.approve(decider.id(), by.clone(), *ttl)?,
                    Verdict::ApproveFor { ttl, .. } => {
                        r.approve_for(decider.id(), by.clone(), *ttl)?
                    }
                })
            })
            .await;
        let (view, grant) = match result {
            Ok(done) => done,
            Err(GateError::Forbidden(why)) => {
                self.audit.record_or_hold(&Event::Refused {
                    who: &by,
                    what: "decide",
                    why: &why,
                });
                return Err(GateError::Forbidden(why));
            }
            Err(e) => return Err(e),
        };
        if let Verdict::ApproveFor {
            note: Some(note), ..
        } = &verdict
        {
            let note: String = note.chars().take(NOTE_MAX).collect();
            self.audit.record_or_hold(&Event::DecisionNote {
                request: id,
                by: &by,
                note: &note,
            });
        }
        // The grant is live before the waiting agent wakes and asks for the value.
        if let Some(grant) = grant {
            self.issue(grant).await;
        }
        let pending = view.status == keygate_proto::api::RequestStatus::Pending;
        self.changed(id, view.clone());
        Ok(if pending {
            Outcome::Progress(view)
        } else {
            Outcome::Decided(view)
        })
    }

    /// The agent (or the operator) gives up on a pending request.
    pub async fn cancel(&self, id: &RequestId, caller: &Caller) -> Result<RequestView, GateError> {
        let by = match caller {
            Caller::Operator => actor("operator", "terminal"),
            Caller::Agent(a) => actor(a.name.as_str(), "agent"),
        };
        let (view, _) = self
            .transition_any(id, Record::Strict, |r| {
                if !visible_to(r, caller) {
                    return Err(GateError::NotFound("request"));
                }
                Ok(r.cancel(by.clone(), "cancelled by the requester")?)
            })
            .await?;
        self.changed(id, view.clone());
        Ok(view)
    }

    /// The agent's long-poll was dropped unfinished: it gave up, so its request is
    /// cancelled (on a cluster, in the background: a drop cannot wait for Redis).
    fn hung_up(&self, id: &RequestId, caller: &Caller) {
        let Some(gate) = self.me.upgrade() else {
            return;
        };
        let (id, caller) = (id.clone(), caller.clone());
        let cancel = async move {
            if gate.cancel(&id, &caller).await.is_ok() {
                tracing::info!(request = %id, "the agent hung up: request cancelled");
            }
        };
        if self.cluster().is_some() {
            tokio::spawn(cancel);
        } else {
            // Nothing in the local path awaits: it is done before this returns.
            futures_util::FutureExt::now_or_never(cancel);
        }
    }

    /// Ends a request the daemon settles itself (it reduces access, so the audit log
    /// never stops it); one already settled is left as it is. On a cluster it is done in
    /// the background.
    fn end(
        &self,
        id: &RequestId,
        mut plan: impl FnMut(&Request) -> Result<Transition, Refusal> + Send + 'static,
    ) {
        if self.cluster().is_none() {
            if let Ok((view, _)) = self.transition(id, Record::Reducing, |r| Ok(plan(r)?)) {
                self.changed(id, view);
            }
            return;
        }
        let Some(gate) = self.me.upgrade() else {
            return;
        };
        let id = id.clone();
        tokio::spawn(async move {
            match gate
                .transition_any(&id, Record::Reducing, |r| Ok(plan(r)?))
                .await
            {
                Ok((view, _)) => gate.changed(&id, view),
                Err(GateError::Cluster(e)) => {
                    tracing::warn!(request = %id, "cannot settle the request now: {e}");
                }
                Err(_) => {}
            }
        });
    }

    /// A removed agent's pending request ends with it.
    pub(super) fn cancel_for_removal(&self, id: &RequestId) {
        let by = actor("operator", "terminal");
        self.end(id, move |r| {
            r.cancel(by.clone(), "cancelled: the agent was removed")
        });
    }

    /// A request's timeout passed with no decision.
    pub(super) fn expire(&self, id: &RequestId) {
        self.end(id, Request::expire);
    }

    /// No approval channel could show the request: nobody can decide it, so it is denied.
    pub(super) fn refuse_unseen(&self, id: &RequestId) {
        let by = actor("daemon", "daemon");
        self.end(id, move |r| {
            r.deny(by.clone(), "no approval channel could show it".into())
        });
    }

    /// The request, after waiting up to `wait` for it to leave `pending`.
    pub async fn wait(
        &self,
        id: &RequestId,
        caller: &Caller,
        wait: Duration,
    ) -> Result<RequestView, GateError> {
        let mut watched = self.requests.watch(id);
        if watched.is_none()
            && let Some(c) = self.cluster()
        {
            // Filed on another node a moment ago, and not copied here yet.
            self.copy_request(c, id.as_str()).await;
            watched = self.requests.watch(id);
        }
        let Some((request, mut rx)) = watched else {
            return Err(GateError::NotFound("request"));
        };
        // An agent cannot tell another agent's request from a missing one.
        if !visible_to(&request, caller) {
            return Err(GateError::NotFound("request"));
        }
        if request.status().is_final() || wait.is_zero() {
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
        // On a cluster, the request is read again now and then: a decision on another
        // node whose announcement was lost costs a moment, never a wrong answer.
        let mut reread = tokio::time::interval(REREAD_WAITED);
        reread.reset();
        loop {
            tokio::select! {
                () = &mut deadline => break,
                _ = reread.tick(), if self.cluster().is_some() => {
                    if let Some(c) = self.cluster() {
                        self.copy_request(c, id.as_str()).await;
                    }
                }
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
        self.request_view(id).ok_or(GateError::NotFound("request"))
    }
}

mod shared;
#[cfg(test)]
mod tests;
