//! The contract between the daemon's core and its approval channels (the terminal,
//! Discord). The core posts each request to every channel and tells them when something
//! changes; a channel hands people's decisions back through [`Gatekeeper`]. The core
//! knows nothing of Discord, and the Discord crate knows nothing of how the core stores
//! anything.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::api::{GrantView, RequestView};
use crate::{GrantId, RequestId, RoleId, UserId};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something an approval message may need to show.
#[derive(Debug, Clone)]
pub enum Change {
    /// A request changed: an approval towards a quorum, a decision, an expiry, a cancel.
    Request(Box<RequestView>),
    /// A grant ended.
    GrantEnded { grant: GrantView, cause: GrantEnd },
    /// A live grant was extended: `expires_at` is its new end.
    GrantExtended(GrantView),
}

/// How a grant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEnd {
    /// Its TTL ran out.
    Expired,
    /// Someone ended it early.
    Revoked,
}

impl GrantEnd {
    /// As the audit log writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Whom a request's message should notify: the approvers its rule names, by Discord user
/// id and role id. Kept out of [`RequestView`] (agents read that); a channel that cannot
/// ping ignores it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub users: Vec<UserId>,
    pub roles: Vec<RoleId>,
}

impl Mentions {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.roles.is_empty()
    }
}

/// Why a channel could not post a request.
#[derive(Debug, thiserror::Error)]
#[error("{channel}: {message}")]
pub struct ChannelError {
    pub channel: &'static str,
    pub message: String,
}

/// Where requests are shown and decided.
pub trait ApprovalChannel: Send + Sync + std::fmt::Debug {
    /// `terminal`, `discord`.
    fn name(&self) -> &'static str;
    /// Shows a new request to its approvers, notifying `mentions` where it can. An error
    /// fails the request closed.
    fn post<'a>(
        &'a self,
        request: &'a RequestView,
        mentions: &'a Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>>;
    /// Something changed; update what the approvers see. Must not block.
    fn notify(&self, change: &Change);
    /// How it stands, for `keygate status`. A channel with nothing to connect to is
    /// always [`ChannelState::Ready`].
    fn state(&self) -> ChannelState {
        ChannelState::Ready
    }
    /// How many times its connection came back after a drop since the daemon started
    /// (for `GET /metrics`); 0 for a channel with nothing to connect to.
    fn reconnects(&self) -> u64 {
        0
    }
    /// The id of the message this channel posted for `request` (or [`adopt`]ed for it),
    /// while it remembers one: in a cluster the gate keeps it in Redis, so the node that
    /// runs the channel next can take that message over. `None` for a channel without
    /// messages.
    ///
    /// [`adopt`]: ApprovalChannel::adopt
    fn message_of(&self, request: &RequestId) -> Option<u64> {
        let _ = request;
        None
    }
    /// Takes over `message`, posted by another node's channel in the same place, as
    /// showing `view`: from now on [`notify`] edits it as if this channel had posted it
    /// (for an approved request, its live grant's ending-soon note included). A message
    /// this channel cannot have (an id of 0 on Discord) is ignored; a channel without
    /// messages ignores it all.
    ///
    /// [`notify`]: ApprovalChannel::notify
    fn adopt(&self, message: u64, view: &RequestView) {
        let _ = (message, view);
    }
}

/// How an approval channel stands. Displayed as `keygate status` shows it: `ready`,
/// `connecting`, `connected`, `reconnecting`, `stopped: <why>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// Nothing to connect to: it takes requests as long as the daemon runs (the terminal).
    Ready,
    /// Signed in, not yet connected.
    Connecting,
    /// Connected: people's decisions come through.
    Connected,
    /// The connection dropped; it is being resumed.
    Reconnecting,
    /// Given up for good, and why, for people.
    Stopped(String),
}

impl std::fmt::Display for ChannelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready => f.write_str("ready"),
            Self::Connecting => f.write_str("connecting"),
            Self::Connected => f.write_str("connected"),
            Self::Reconnecting => f.write_str("reconnecting"),
            Self::Stopped(why) => write!(f, "stopped: {why}"),
        }
    }
}

/// A person deciding through a channel: an account and the roles it holds there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    /// The channel they decide through (`discord`): the channel names itself.
    pub channel: &'static str,
    pub id: UserId,
    /// Their (unique) user name, for people to read.
    pub name: String,
    pub roles: Vec<RoleId>,
}

impl Approver {
    /// How the audit log and messages name them: `@alice (1234)`; the id keeps two people
    /// with similar names apart.
    pub fn label(&self) -> String {
        format!("@{} ({})", self.name, self.id)
    }
}

/// Who takes a decision: the operator (from the terminal, through the operator token), or
/// a person on a named channel, checked against the request's approvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    Operator,
    Person(Approver),
}

impl Decider {
    /// Who this decision counts as, for a quorum.
    pub fn id(&self) -> DeciderId {
        match self {
            Self::Operator => DeciderId::Operator,
            Self::Person(a) => DeciderId::User {
                channel: a.channel,
                id: a.id,
            },
        }
    }

    /// How people read the decider's name.
    pub fn label(&self) -> String {
        match self {
            Self::Operator => "operator".into(),
            Self::Person(a) => a.label(),
        }
    }

    /// Where the decision came from: `terminal` or the person's channel.
    pub fn via(&self) -> &'static str {
        match self {
            Self::Operator => "terminal",
            Self::Person(a) => a.channel,
        }
    }
}

/// Who a decision counts as, for a quorum: the operator (one decider, however many times
/// they press), or one account on one channel, by its id. Display names never count: a
/// person who renames between presses is still one approver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeciderId {
    /// A rule that allows outright.
    Policy,
    Operator,
    User {
        channel: &'static str,
        id: UserId,
    },
}

/// An approver's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `ttl`: a shorter grant than the policy's.
    Approve {
        ttl: Option<Duration>,
    },
    /// Approve with a TTL the approver typed: it may be longer than the policy's TTL but
    /// is capped at the rule's `max_ttl`.
    ApproveFor {
        ttl: Duration,
        /// What the approver wrote beside it, for the audit log.
        note: Option<String>,
    },
    Deny {
        reason: Option<String>,
    },
}

/// What a decision did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Counted towards a quorum that is not reached yet.
    Progress(RequestView),
    /// The request is decided.
    Decided(RequestView),
}

impl Outcome {
    pub fn view(&self) -> &RequestView {
        match self {
            Self::Progress(v) | Self::Decided(v) => v,
        }
    }
}

/// Why a channel's action was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    #[error("no such request or grant")]
    NotFound,
    #[error("already decided: the request is {0}")]
    AlreadyDecided(&'static str),
    #[error("you are not an approver for this")]
    NotAllowed,
    /// An extension that cannot add anything: the grant already ends at approval time +
    /// the rule's `max_ttl`.
    #[error("{0}")]
    AtMaxTtl(String),
    #[error("{0}")]
    Failed(String),
}

/// What an approval channel may ask of the daemon.
pub trait Gatekeeper: Send + Sync {
    /// A person's decision on a request. Checked against the request's approvers.
    fn decide<'a>(
        &'a self,
        id: &'a RequestId,
        verdict: Verdict,
        approver: &'a Approver,
    ) -> BoxFuture<'a, Result<Outcome, Refused>>;
    /// Whether this person may decide this request now (pending, and one of its
    /// approvers): asked before a form is opened; the decision itself is checked again.
    fn may_decide(&self, id: &RequestId, approver: &Approver) -> Result<(), Refused>;
    /// A request as it stands.
    fn request(&self, id: &RequestId) -> Option<RequestView>;
    /// Live grants this person could approve (and so may see and revoke).
    fn grants_for(&self, approver: &Approver) -> Vec<GrantView>;
    /// Records a press or command that was refused before it reached a request (wrong
    /// guild or channel, a DM, a bot, an unknown button).
    fn refused(&self, approver: &Approver, what: &str, why: &str);
    /// Revokes a grant, if this person may approve its kind.
    fn revoke<'a>(
        &'a self,
        id: &'a GrantId,
        approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>>;
    /// Extends a live grant by its own TTL, never past its approval time + the rule's
    /// `max_ttl`, if this person may approve its kind: the grant with its new end.
    /// [`Refused::AtMaxTtl`] when it already ends there.
    fn extend<'a>(
        &'a self,
        id: &'a GrantId,
        approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>>;
}

#[cfg(test)]
mod tests {
    use super::ChannelState;

    #[test]
    fn channel_states_read_as_status_shows_them() {
        for (state, text) in [
            (ChannelState::Ready, "ready"),
            (ChannelState::Connecting, "connecting"),
            (ChannelState::Connected, "connected"),
            (ChannelState::Reconnecting, "reconnecting"),
            (
                ChannelState::Stopped("no token".into()),
                "stopped: no token",
            ),
        ] {
            assert_eq!(state.to_string(), text);
        }
    }
}
