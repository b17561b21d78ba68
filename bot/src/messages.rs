//! The messages the bot has posted: which message shows which request, what it last
//! showed, and which ones a press is updating right now. From a change it works out the
//! edit a message needs; it sends nothing itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use keygate_proto::api::{RequestStatus, RequestView};
use keygate_proto::approval::{Change, Mentions};
use keygate_proto::{GrantId, RequestId};
use twilight_model::id::Id;
use twilight_model::id::marker::MessageMarker;

use crate::render::{self, GrantEnd, Note, Rendered};

/// A request's message and what it last showed.
#[derive(Debug, Clone)]
struct Posted {
    message: Id<MessageMarker>,
    view: RequestView,
    /// Whom the message should notify: the rule's approvers (none with
    /// `KEYGATE_DISCORD_PING=false`).
    mentions: Mentions,
    /// What it notes beyond the request (ending soon).
    note: Note,
}

impl Posted {
    /// The message as it should show now, notifying whom it notified when posted (an edit
    /// notifies nobody anew on Discord; the same `allowed_mentions` keeps it consistent).
    fn render(&self, ended: Option<&GrantEnd>, note: &Note) -> Rendered {
        let mut r = render::request_with(&self.view, ended, note);
        r.allowed_mentions = render::mentions(&self.mentions).1;
        r
    }
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
                note: Note::default(),
            },
        );
    }

    /// `message`, posted by another node's bot, shows `view`: remembered as if posted
    /// here, notifying nobody (its mentions were the poster's). The same message taken
    /// over again keeps what it remembers (notes, mentions) and takes the newer view.
    pub(crate) fn adopted(&self, message: Id<MessageMarker>, view: &RequestView) {
        let mut posted = lock(&self.posted);
        match posted.get_mut(&view.id) {
            Some(p) if p.message == message => p.view = view.clone(),
            _ => {
                posted.insert(
                    view.id.clone(),
                    Posted {
                        message,
                        view: view.clone(),
                        mentions: Mentions::default(),
                        note: Note::default(),
                    },
                );
            }
        }
    }

    /// The message that shows request `id`, while it is remembered.
    pub(crate) fn message_of(&self, id: &RequestId) -> Option<Id<MessageMarker>> {
        lock(&self.posted).get(id).map(|p| p.message)
    }

    /// Whether this request's message is remembered (its request or grant still lives).
    pub(crate) fn knows(&self, id: &RequestId) -> bool {
        lock(&self.posted).contains_key(id)
    }

    /// `view` rendered for its message: its approvers as `allowed_mentions`, its note;
    /// a message no longer remembered notifies nobody.
    pub(crate) fn render(&self, view: &RequestView, ended: Option<&GrantEnd>) -> Rendered {
        match lock(&self.posted).get(&view.id) {
            Some(p) => {
                let mut r = render::request_with(view, ended, &p.note);
                r.allowed_mentions = render::mentions(&p.mentions).1;
                r
            }
            None => render::request(view, ended),
        }
    }

    /// The message that shows the live grant `grant`, and its request as that message
    /// last showed it.
    pub(crate) fn by_grant(&self, grant: &GrantId) -> Option<(Id<MessageMarker>, RequestView)> {
        lock(&self.posted)
            .values()
            .find(|p| p.view.grant.as_ref().is_some_and(|g| &g.id == grant))
            .map(|p| (p.message, p.view.clone()))
    }

    /// A grant revoked by a press: the message as the presser's answer shows it, with
    /// the `mentions` it was posted with (the request is forgotten, as
    /// [`Self::edit_for`] forgets it for any grant end).
    pub(crate) fn revoked_by_press(
        &self,
        view: &RequestView,
        by: String,
        mentions: &Mentions,
    ) -> Rendered {
        let notes = lock(&self.posted)
            .remove(&view.id)
            .map(|p| p.note.approval_notes)
            .unwrap_or_default();
        let note = Note {
            revoked_by: Some(by),
            ending_soon: false,
            approval_notes: notes,
        };
        let mut r = render::request_with(view, Some(&GrantEnd::Revoked), &note);
        r.allowed_mentions = render::mentions(mentions).1;
        r
    }

    /// `who` approved request `id` with a note (from the Approve… form): its message
    /// shows it from now on, beside the approver.
    pub(crate) fn noted(&self, id: &RequestId, who: String, note: String) {
        if let Some(p) = lock(&self.posted).get_mut(id) {
            // One note per person as named: the same approver again replaces theirs.
            p.note.approval_notes.retain(|(w, _)| *w != who);
            p.note.approval_notes.push((who, note));
        }
    }

    /// Whom a request's message notifies, while it is remembered.
    pub(crate) fn mentions(&self, id: &RequestId) -> Option<Mentions> {
        lock(&self.posted).get(id).map(|p| p.mentions.clone())
    }

    /// The live grant `grant` of request `id` is ending soon: the edit that says so, once
    /// (none if the grant is no longer the one shown, or a press is updating the message,
    /// which then renders the note itself).
    pub(crate) fn ending_soon(
        &self,
        id: &RequestId,
        grant: &GrantId,
    ) -> Option<(Id<MessageMarker>, Rendered)> {
        let busy = lock(&self.in_flight).contains(id);
        let mut posted = lock(&self.posted);
        let p = posted.get_mut(id)?;
        let live = p.view.status == RequestStatus::Approved
            && p.view.grant.as_ref().is_some_and(|g| &g.id == grant);
        if !live || p.note.ending_soon {
            return None;
        }
        p.note.ending_soon = true;
        (!busy).then(|| (p.message, p.render(None, &p.note)))
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
    /// Whether a press is being answered for some request now.
    pub(crate) fn pressing(&self) -> bool {
        !lock(&self.in_flight).is_empty()
    }

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
                // Rendered only when sent: a press updating the message renders its own
                // answer, and this is on the path from its decision to the agent.
                let rendered = (!busy).then(|| self.render(view, None));
                if view.status.is_final() && view.status != RequestStatus::Approved {
                    lock(&self.posted).remove(&view.id);
                }
                rendered.map(|r| (message, r))
            }
            Change::GrantEnded { grant, cause } => {
                // A press revoking it renders the end itself (and says who).
                let busy = lock(&self.in_flight).contains(&grant.request);
                let p = lock(&self.posted).remove(&grant.request)?;
                let note = Note {
                    approval_notes: p.note.approval_notes.clone(),
                    ..Note::default()
                };
                (!busy).then(|| (p.message, p.render(Some(cause), &note)))
            }
            Change::GrantExtended(grant) => {
                let busy = lock(&self.in_flight).contains(&grant.request);
                let (message, rendered) = {
                    let mut posted = lock(&self.posted);
                    let p = posted.get_mut(&grant.request)?;
                    if let Some(g) = p.view.grant.as_mut() {
                        g.expires_at = grant.expires_at;
                    }
                    // Further from its end again: the ending-soon note re-arms.
                    p.note.ending_soon = false;
                    (p.message, p.render(None, &p.note))
                };
                (!busy).then_some((message, rendered))
            }
        }
    }
}

#[cfg(test)]
mod tests;
