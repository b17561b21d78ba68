//! A node of a cluster keeps copies of the cluster's requests and grants. Every change
//! is made in Redis first (filing, deciding, revoking, extending: see the steps' files);
//! each is announced on Redis's events channel, and here every node reads the changed
//! record back and brings its copy up to date: it wakes the agents waiting on it, and
//! the node that runs the Discord bot posts new requests and edits their messages.
//!
//! Nothing rests on an announcement alone. After every (re)subscription, every few
//! seconds, and whenever a copy is missing where one is needed, the node reads Redis
//! again; and a release is never served from a copy without Redis saying, in the same
//! step that counts the read, that the grant still lives (`releasing.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keygate_proto::api::RequestStatus;
use keygate_proto::approval::{Change, GrantEnd, Mentions};
use keygate_proto::{AgentName, GrantId, RequestId};

use super::Gate;
use crate::audit::Event;
use crate::cluster::{Cluster, record};
use crate::requests::{Request, State};

/// How often a node re-reads the cluster's pending requests and its live grants even
/// when no announcement came: a lost message costs at most this.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// How long after a request's deadline a node that did not file it expires it (the
/// filing node normally does it at the deadline; this covers a filing node that died).
const EXPIRY_GRACE: Duration = Duration::from_secs(2);

/// How long a request's message ids are kept in Redis: past any request's life and its
/// grant's.
pub(crate) const KEEP_MESSAGES: Duration = Duration::from_secs(24 * 3600);

/// Whom a request's message should notify: the rule's approvers, never anyone the
/// requester's text names.
pub(super) fn mentions(request: &Request) -> Mentions {
    Mentions {
        users: request.approvers.users().to_vec(),
        roles: request.approvers.roles().to_vec(),
    }
}

impl Gate {
    /// Follows the cluster's changes until shutdown. Spawn it once the gate has joined.
    pub async fn follow_cluster(self: Arc<Self>) {
        let Some(c) = self.cluster().map(Arc::clone) else {
            return;
        };
        let mut events = keygate_cluster::events::subscribe(&c.link);
        let mut stop = self.shutting_down.subscribe();
        if *stop.borrow_and_update() {
            return;
        }
        let mut tick = tokio::time::interval(RESYNC_EVERY);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(keygate_cluster::events::Event::Request(id)) => {
                        self.copy_request(&c, &id).await;
                    }
                    Some(keygate_cluster::events::Event::Grant(id)) => {
                        self.copy_grant(&c, &id).await;
                    }
                    Some(keygate_cluster::events::Event::Agents) => {
                        let _ = self.agents_changed().await;
                    }
                    Some(keygate_cluster::events::Event::Resync) => {
                        let _ = self.agents_changed().await;
                        self.resync(&c).await;
                    }
                    None => break,
                },
                _ = tick.tick() => self.resync(&c).await,
                _ = stop.changed() => break,
            }
        }
    }

    /// Re-reads everything this node holds copies of: the cluster's pending requests,
    /// its own pending copies (settled meanwhile?) and its live grants (revoked?).
    pub(crate) async fn resync(&self, c: &Cluster) {
        let Ok(pending) = c.shared.pending().await else {
            return;
        };
        let mut ids: Vec<String> = pending;
        for r in self.requests.list() {
            if r.status() == RequestStatus::Pending && !ids.iter().any(|i| i == r.id.as_str()) {
                ids.push(r.id.as_str().to_owned());
            }
        }
        for id in ids {
            self.copy_request(c, &id).await;
        }
        for g in self.grants.list() {
            self.copy_grant(c, g.id.as_str()).await;
        }
        c.forget(|id| self.requests.get(id).is_some());
    }

    /// Brings this node's copy of request `id` up to date with Redis.
    pub(crate) async fn copy_request(&self, c: &Cluster, id: &str) {
        let Ok(Some(stored)) = c.shared.request(id).await else {
            return;
        };
        let request = match record::request_from(&stored.json) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(request = id, "{e}");
                return;
            }
        };
        if c.has_seen(&request.id, stored.version) {
            return;
        }
        // The grant first: an agent woken by the approval finds it here.
        if let State::Approved { grant, .. } = &request.state {
            self.copy_grant(c, grant.id.as_str()).await;
        }
        let is_new = self.requests.get(&request.id).is_none();
        c.saw(&request.id, stored.version);
        let view = request.view();
        let id = request.id.clone();
        let (deadline, asks_people) = (request.expires_at, request.quorum > 0);
        let who = mentions(&request);
        self.requests.upsert(request);
        if is_new && view.status == RequestStatus::Pending {
            self.expire_at(&id, deadline + EXPIRY_GRACE);
            if asks_people {
                self.post_copy(c, &view, &who).await;
            }
            return;
        }
        self.changed(&id, view);
    }

    /// Expires request `id` at `deadline` (if it is still pending then).
    pub(super) fn expire_at(&self, id: &RequestId, deadline: SystemTime) {
        let Some(gate) = self.me.upgrade() else {
            return;
        };
        let id = id.clone();
        tokio::spawn(async move {
            let wait = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
            gate.expire(&id);
        });
    }

    /// Shows a request another node filed on this node's cluster-wide channels (the
    /// Discord bot, while this node holds the lease; the terminal channel is each node's
    /// own and was told where it was filed).
    async fn post_copy(&self, c: &Cluster, view: &keygate_proto::api::RequestView, who: &Mentions) {
        let channels: Vec<_> = self
            .channels()
            .into_iter()
            .filter(|ch| ch.name() != "terminal")
            .collect();
        if channels.is_empty() {
            return;
        }
        let mut shown = false;
        for ch in &channels {
            match ch.post(view, who).await {
                Ok(()) => {
                    shown = true;
                    self.remember_message(c, &view.id, ch.as_ref()).await;
                    self.caught_up(ch.as_ref(), view);
                }
                Err(e) => {
                    tracing::warn!(request = %view.id, "{e}");
                    self.audit.record_or_hold(&Event::PostFailed {
                        request: &view.id,
                        channel: ch.name(),
                        why: &e.message,
                    });
                }
            }
        }
        if !shown {
            self.refuse_unseen(&view.id);
        }
    }

    /// A change made while `channel` was posting `posted` reached it before it knew the
    /// message: it is told again, now that it does.
    pub(super) fn caught_up(
        &self,
        channel: &dyn keygate_proto::approval::ApprovalChannel,
        posted: &keygate_proto::api::RequestView,
    ) {
        if let Some(now) = self.requests.get(&posted.id).map(|r| r.view())
            && (now.status != posted.status || now.approvals != posted.approvals)
        {
            channel.notify(&Change::Request(Box::new(now)));
        }
    }

    /// Keeps in Redis which message of `channel` shows request `id`, so that a node that
    /// takes the bot over later edits the same message.
    pub(super) async fn remember_message(
        &self,
        c: &Cluster,
        id: &RequestId,
        channel: &dyn keygate_proto::approval::ApprovalChannel,
    ) {
        let Some(message) = channel.message_of(id) else {
            return;
        };
        if let Err(e) = c
            .shared
            .set_message(id.as_str(), channel.name(), message, KEEP_MESSAGES)
            .await
        {
            tracing::warn!(request = %id, "cannot keep the message id in the cluster: {e}");
        }
    }

    /// This node just took the Discord bot over: it adopts the messages of pending
    /// requests and live grants another node posted, and posts those nobody did.
    pub async fn took_over(&self) {
        let Some(c) = self.cluster().map(Arc::clone) else {
            return;
        };
        self.resync(&c).await;
        let channels: Vec<_> = self
            .channels()
            .into_iter()
            .filter(|ch| ch.name() != "terminal")
            .collect();
        let mut shown: Vec<Request> = self
            .requests
            .list()
            .into_iter()
            .filter(|r| r.status() == RequestStatus::Pending && r.quorum > 0)
            .collect();
        for g in self.grants.list() {
            if let Some(r) = self.requests.get(&g.request)
                && r.status() == RequestStatus::Approved
            {
                shown.push(r);
            }
        }
        for r in shown {
            let posted = c.shared.messages(r.id.as_str()).await.unwrap_or_default();
            let view = r.view();
            let mut missing = false;
            for ch in &channels {
                match posted.iter().find(|(name, _)| name == ch.name()) {
                    Some((_, message)) => ch.adopt(*message, &view),
                    None => missing = true,
                }
            }
            if missing && view.status == RequestStatus::Pending {
                self.post_copy(&c, &view, &mentions(&r)).await;
            }
        }
    }

    /// Brings this node's copy of grant `id` up to date: made elsewhere, extended, or
    /// gone (revoked, or at its end).
    pub(crate) async fn copy_grant(&self, c: &Cluster, id: &str) {
        let Ok(gid) = GrantId::parse(id) else {
            return;
        };
        let Ok(json) = c.shared.grant(id).await else {
            return;
        };
        let local = self.grants.get(&gid).await;
        let Some(json) = json else {
            if local.is_some() {
                let revoked = c.shared.was_revoked(id).await.unwrap_or(true);
                self.drop_copy(&gid, revoked).await;
            }
            return;
        };
        let grant = match record::grant_from(&json) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(grant = id, "{e}");
                return;
            }
        };
        match local {
            Some(local) => {
                let (mine, theirs) = (local.expires_at(), grant.expires_at());
                // Extended elsewhere: later by more than the record's millisecond grain.
                if theirs > mine + Duration::from_millis(1) {
                    let moved = self
                        .grants
                        .extend(
                            &gid,
                            |g| theirs.duration_since(g.expires_at()).unwrap_or_default(),
                            |_, _| Ok::<(), std::convert::Infallible>(()),
                        )
                        .await;
                    if let Ok(g) = moved {
                        self.requests
                            .set_grant_end(&g.request, g.reference().expires_at);
                        self.notify(&Change::GrantExtended(g.view()));
                    }
                }
            }
            None if grant.expires_at() > SystemTime::now() => {
                self.grants.insert(Arc::new(grant)).await;
            }
            None => {}
        }
    }

    /// Another node ended grant `id` (or Redis did at its end): this node's copy goes,
    /// quietly for the audit log (the node that ended it wrote the line).
    pub(super) async fn drop_copy(&self, id: &GrantId, revoked: bool) {
        if let Some(g) = self.grants.revoke(id).await {
            self.notify(&Change::GrantEnded {
                grant: g.view(),
                cause: if revoked {
                    GrantEnd::Revoked
                } else {
                    GrantEnd::Expired
                },
            });
        }
    }

    /// On a cluster, copies the grants of `agent` this node has no copy of yet (an
    /// agent asking here for a grant made on another node a moment ago).
    pub(super) async fn copy_grants_of(&self, c: &Cluster, agent: &AgentName) -> bool {
        let Ok(ids) = c.shared.grants_of(agent.as_str()).await else {
            return false;
        };
        let mut copied = false;
        for id in ids {
            let Ok(gid) = GrantId::parse(&id) else {
                continue;
            };
            if self.grants.get(&gid).await.is_none() {
                self.copy_grant(c, &id).await;
                copied |= self.grants.get(&gid).await.is_some();
            }
        }
        copied
    }
}
