//! The messages the bot has posted: which message shows which request, what it last
//! showed, and which ones a press is updating right now. From a change it works out the
//! edit a message needs; it sends nothing itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use keygate_proto::RequestId;
use keygate_proto::api::{RequestStatus, RequestView};
use keygate_proto::approval::{Change, Mentions};
use twilight_model::id::Id;
use twilight_model::id::marker::MessageMarker;

use crate::render::{self, Rendered};

/// A request's message and what it last showed.
#[derive(Debug, Clone)]
struct Posted {
    message: Id<MessageMarker>,
    view: RequestView,
    /// Whom the message should notify: the rule's approvers (none with
    /// `KEYGATE_DISCORD_PING=false`).
    mentions: Mentions,
}

/// Every posted request message, until its request ends without a grant or its grant
/// ends.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    posted: Mutex<HashMap<RequestId, Posted>>,
    /// Requests whose message an interaction is updating right now: their change
    /// notifications need no separate edit.
    in_flight: Mutex<HashSet<RequestId>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Messages {
    /// `message` now shows `view`.
    pub(crate) fn posted(
        &self,
        message: Id<MessageMarker>,
        view: &RequestView,
        mentions: Mentions,
    ) {
        lock(&self.posted).insert(
            view.id.clone(),
            Posted {
                message,
                view: view.clone(),
                mentions,
            },
        );
    }

    /// Whom a request's message should notify, while it is remembered.
    #[allow(dead_code)] // for the renderer of mentions, next
    pub(crate) fn mentions(&self, id: &RequestId) -> Option<Mentions> {
        lock(&self.posted).get(id).map(|p| p.mentions.clone())
    }

    /// An interaction is about to update this request's message itself.
    pub(crate) fn begin_update(&self, id: &RequestId) {
        lock(&self.in_flight).insert(id.clone());
    }

    /// An interaction rendered `view` into its message.
    pub(crate) fn end_update(&self, view: &RequestView) {
        lock(&self.in_flight).remove(&view.id);
        if let Some(p) = lock(&self.posted).get_mut(&view.id) {
            p.view = view.clone();
        }
    }

    /// An interaction ended without a view to remember.
    pub(crate) fn end_update_missing(&self, id: &RequestId) {
        lock(&self.in_flight).remove(id);
    }

    /// The edit `change` needs, if any: which message, and what it should show now. A
    /// message a press is updating needs none; a request that ends without a grant, or
    /// a grant that ends, is forgotten after this last edit.
    pub(crate) fn edit_for(&self, change: &Change) -> Option<(Id<MessageMarker>, Rendered)> {
        match change {
            Change::Request(view) => {
                let busy = lock(&self.in_flight).contains(&view.id);
                let message = {
                    let mut posted = lock(&self.posted);
                    let p = posted.get_mut(&view.id)?;
                    p.view = (**view).clone();
                    p.message
                };
                if view.status.is_final() && view.status != RequestStatus::Approved {
                    lock(&self.posted).remove(&view.id);
                }
                (!busy).then(|| (message, render::request(view, None)))
            }
            Change::GrantEnded { grant, cause } => {
                let p = lock(&self.posted).remove(&grant.request)?;
                Some((p.message, render::request(&p.view, Some(cause))))
            }
            Change::GrantExtended(grant) => {
                let busy = lock(&self.in_flight).contains(&grant.request);
                let (message, view) = {
                    let mut posted = lock(&self.posted);
                    let p = posted.get_mut(&grant.request)?;
                    if let Some(g) = p.view.grant.as_mut() {
                        g.expires_at = grant.expires_at;
                    }
                    (p.message, p.view.clone())
                };
                (!busy).then(|| (message, render::request(&view, None)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
