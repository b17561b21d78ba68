//! Step 1: an agent files a request. It is checked and cut to size, counted against the
//! agent's limits, and evaluated: the policy allows or denies at once, or the request
//! goes into the table (so even the fastest press finds it) and out to every approval
//! channel at the same time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use keygate_policies::{Approvers, Decision};
use keygate_proto::api::{FileRequest, RequestView};
use keygate_proto::approval::DeciderId;

use super::deciding::Record;
use super::{Gate, GateError, actor, cut};
use crate::audit::Event;
use crate::cluster::{Cluster, record};
use crate::identity::Agent;
use crate::requests::{Asked, Request, Transition};
use keygate_cluster::state::{Filed, NewRequest};

/// The longest reason kept; a longer one is cut (with a mark) rather than refused.
pub const MAX_REASON: usize = 1000;
/// The most secrets one request may name.
pub const MAX_SECRETS: usize = 32;
/// The most of a bound command kept for people to read (messages, the audit log, the
/// request table); the binding itself is the hash of the whole argv.
pub const MAX_COMMAND_SHOWN: usize = 2048;

/// A per-agent sliding window of filing times.
#[derive(Debug, Default)]
pub(super) struct RateWindow {
    filed: VecDeque<Instant>,
}

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

/// What the agent asked, checked and cut to size.
fn asked(agent: &Agent, body: FileRequest) -> Result<(Asked, Option<Duration>), GateError> {
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
    let asked = Asked {
        agent: agent.clone(),
        secrets,
        reason: cut(&body.reason, MAX_REASON),
        command_sha256: body
            .command
            .as_deref()
            .map(keygate_proto::api::command_hash),
        command: body.command.as_deref().map(shown_command),
        host: body.host.map(|h| cut(&h, 255)),
    };
    Ok((asked, ttl))
}

impl Gate {
    fn too_many_pending(&self, agent: &Agent) -> GateError {
        self.metrics.rate_limited(crate::metrics::Limit::Pending);
        GateError::RateLimited(
            format!(
                "agent `{agent}` already has {} pending requests; wait for a decision or cancel one",
                self.limits.pending_per_agent
            ),
            Duration::from_secs(5),
        )
    }

    fn too_many_this_minute(&self, agent: &Agent, retry: Duration) -> GateError {
        self.metrics.rate_limited(crate::metrics::Limit::PerMinute);
        GateError::RateLimited(
            format!(
                "agent `{agent}` filed {} requests in the last minute",
                self.limits.requests_per_minute
            ),
            retry.max(Duration::from_secs(1)),
        )
    }

    /// Files `request` in the cluster's Redis, within the agent's limits counted across
    /// every node.
    async fn file_shared(&self, c: &Cluster, request: &Request) -> Result<(), GateError> {
        let json = record::request_json(request)?;
        let filed = c
            .shared
            .file(
                &NewRequest {
                    id: request.id.as_str(),
                    agent: request.agent.name.as_str(),
                    json: &json,
                    deadline: request.expires_at,
                },
                keygate_cluster::state::Limits {
                    pending_per_agent: self.limits.pending_per_agent,
                    requests_per_minute: self.limits.requests_per_minute,
                },
            )
            .await?;
        match filed {
            Filed::Filed => {
                c.saw(&request.id, 1);
                Ok(())
            }
            Filed::TooManyPending => Err(self.too_many_pending(&request.agent)),
            Filed::RateLimited(retry) => Err(self.too_many_this_minute(&request.agent, retry)),
            Filed::Exists => Err(GateError::Conflict(
                "a request with this id exists already; file it again".into(),
            )),
        }
    }

    fn check_rate(&self, agent: &Agent) -> Result<(), GateError> {
        if self.requests.pending_of(Some(agent)) >= self.limits.pending_per_agent as usize {
            return Err(self.too_many_pending(agent));
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
            return Err(self.too_many_this_minute(agent, retry));
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
        let (asked, ttl) = asked(agent, body)?;
        // On a cluster the limits are counted in Redis, as the request is filed there.
        if self.cluster().is_none() {
            self.check_rate(agent)?;
        }

        let eval = self.policy().evaluate_all(&agent.name, &asked.secrets, ttl);
        let (approvers, quorum, decision) = match &eval.decision {
            Decision::Allow => (Approvers::default(), 0, "allow"),
            Decision::Deny => (Approvers::default(), 0, "deny"),
            Decision::Ask { approvers, quorum } => (approvers.clone(), *quorum, "ask"),
        };
        let mut request = Request::pending(asked, &eval, approvers, quorum);
        if let Some(c) = self.cluster() {
            self.file_shared(c, &request).await?;
        }
        let filed = self.audit.record(&Event::RequestFiled {
            request: &request.id,
            agent: &agent.name,
            secrets: &request.secrets,
            reason: &request.reason,
            rule: eval.rule.as_deref(),
            decision,
            ttl_seconds: eval.ttl.as_secs(),
            command: request.command.as_deref(),
        });
        if let Err(e) = filed {
            // Filed in Redis already: it must not wait there for a decision.
            if self.cluster().is_some() {
                self.refuse_unseen(&request.id);
            }
            return Err(e.into());
        }

        let by_policy = actor("policy", "policy");
        if self.cluster().is_some() && !matches!(eval.decision, Decision::Ask { .. }) {
            return self.settle_shared(request, &eval, by_policy).await;
        }
        match eval.decision {
            Decision::Deny => {
                let t = request.deny(by_policy, eval.reason.clone())?;
                self.settle_unfiled(&mut request, t)?;
                let view = request.view();
                self.requests.insert(request);
                Ok(view)
            }
            Decision::Allow => {
                let t = request.approve(DeciderId::Policy, by_policy, None)?;
                let grant = self.settle_unfiled(&mut request, t)?;
                if let Some(grant) = grant {
                    self.issue(grant).await;
                }
                let view = request.view();
                self.requests.insert(request);
                Ok(view)
            }
            Decision::Ask { .. } => self.ask(request).await,
        }
    }

    /// On a cluster, the policy's own decision (allow or deny) on a request just filed in
    /// Redis, made there like any other.
    async fn settle_shared(
        &self,
        request: Request,
        eval: &keygate_policies::Evaluation,
        by_policy: crate::audit::Actor,
    ) -> Result<RequestView, GateError> {
        let allow = eval.decision == Decision::Allow;
        let reason = eval.reason.clone();
        let (view, grant) = self
            .transition_any(&request.id, Record::Strict, |r| {
                Ok(if allow {
                    r.approve(DeciderId::Policy, by_policy.clone(), None)?
                } else {
                    r.deny(by_policy.clone(), reason.clone())?
                })
            })
            .await?;
        if let Some(grant) = grant {
            self.issue(grant).await;
        }
        self.requests.wake(&request.id);
        Ok(view)
    }

    /// A decision taken before the request is in the table: audited, then made.
    fn settle_unfiled(
        &self,
        request: &mut Request,
        mut t: Transition,
    ) -> Result<Option<Arc<crate::grants::Grant>>, GateError> {
        self.audit.record(&t.event())?;
        let grant = t.grant.take();
        self.metrics.settled(request.created_at, &t.next);
        request.state = t.next;
        Ok(grant)
    }

    /// Puts a request that needs people in the table, starts its clock, and shows it on
    /// every channel at once; one that fails (Discord down, a message it refuses) does
    /// not keep it from the others. Shown nowhere, it is refused: fail closed.
    async fn ask(self: &Arc<Self>, request: Request) -> Result<RequestView, GateError> {
        let id = request.id.clone();
        let deadline = request.expires_at;
        let view = request.view();
        let mentions = super::mirror::mentions(&request);
        self.requests.insert(request);
        let gate = Arc::clone(self);
        let timer = id.clone();
        tokio::spawn(async move {
            let wait = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
            gate.expire(&timer);
        });

        let channels = self.channels();
        let posts = channels.iter().map(|c| c.post(&view, &mentions));
        let results = futures_util::future::join_all(posts).await;
        let mut posted_to = Vec::new();
        let mut failure = None;
        for (channel, result) in channels.iter().zip(results) {
            match result {
                Ok(()) => posted_to.push(channel.name().to_owned()),
                Err(e) => {
                    tracing::warn!(request = %id, "{e}");
                    self.audit.record_or_hold(&Event::PostFailed {
                        request: &id,
                        channel: channel.name(),
                        why: &e.message,
                    });
                    failure = Some(e);
                }
            }
        }
        if posted_to.is_empty() {
            self.refuse_unseen(&id);
            return Err(failure.map_or(GateError::ShuttingDown, GateError::from));
        }
        if let Some(c) = self.cluster() {
            for ch in &channels {
                self.remember_message(c, &id, ch.as_ref()).await;
            }
        }
        for ch in &channels {
            self.caught_up(ch.as_ref(), &view);
        }
        // On a cluster the node that holds the lease posts it to Discord (this one, or
        // another at the announcement, or the next to take the lease over).
        if self.cluster().is_some_and(|c| c.runs_bot()) && !posted_to.iter().any(|p| p == "discord")
        {
            posted_to.push("discord".to_owned());
        }
        self.requests.set_posted_to(&id, posted_to);
        self.request_view(&id).ok_or(GateError::NotFound("request"))
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
