//! Discord as an approval channel: connects (a wrong token stops here, clearly), posts
//! each request as a message, and edits that message whenever the request or its grant
//! changes. REST failures and rate limits are retried with backoff; a request whose
//! message cannot be posted fails closed. While a grant lives, a timer waits for the
//! moment it is ending soon (2 minutes or a fifth of its TTL left, whichever is
//! shorter) and says so in its message; an extension re-arms it, the grant's end
//! cancels it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keygate_proto::api::{RequestStatus, RequestView};
use keygate_proto::approval::{
    ApprovalChannel, BoxFuture, Change, ChannelError, ChannelState, Gatekeeper, Mentions,
};
use keygate_proto::{GrantId, RequestId, Timestamp};
use secrecy::ExposeSecret as _;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use twilight_model::id::Id;
use twilight_model::id::marker::MessageMarker;

use crate::client::{BotError, Client, with_retry};
use crate::config::BotConfig;
use crate::interactions::Handler;
use crate::messages::Messages;
use crate::render::{self, Rendered};

/// The Discord approval channel.
pub struct Discord {
    client: Arc<Client>,
    messages: Arc<Messages>,
    /// Whether request messages notify their approvers (`KEYGATE_DISCORD_PING`).
    ping: bool,
    /// How the gateway connection stands; the connection loop holds the sender.
    state: watch::Receiver<ChannelState>,
    /// Connections made again after the first (the connection loop counts them).
    reconnects: Arc<std::sync::atomic::AtomicU64>,
    stop: watch::Sender<bool>,
    /// Per live grant shown in a message: its ending-soon timer and its TTL.
    timers: Mutex<HashMap<RequestId, (AbortHandle, Duration)>>,
    /// Message edits started and not yet sent (or given up): see [`Discord::settle`].
    edits: Arc<Edits>,
}

/// How many message edits are on their way, and a wake-up when one is done.
#[derive(Debug, Default)]
struct Edits {
    in_flight: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
}

impl Edits {
    fn begin(self: &Arc<Self>) -> EditGuard {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        EditGuard(Arc::clone(self))
    }
}

/// One edit on its way; done when dropped (sent, given up, or its task cancelled).
struct EditGuard(Arc<Edits>);

impl Drop for EditGuard {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.0.done.notify_waiters();
    }
}

/// When a grant of `ttl` counts as ending soon: 2 minutes or a fifth of its TTL before
/// its end, whichever is shorter.
pub(crate) fn ending_soon_lead(ttl: Duration) -> Duration {
    (ttl / 5).min(Duration::from_secs(120))
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("channel", &self.client.channel)
            .field("guild", &self.client.guild)
            .finish_non_exhaustive()
    }
}

impl Discord {
    /// Connects: checks the token, learns the application id, registers the slash
    /// commands in the guild, and starts the gateway shard that brings presses back.
    pub async fn connect(
        config: BotConfig,
        gatekeeper: Arc<dyn Gatekeeper>,
    ) -> Result<Arc<Self>, BotError> {
        let client = Arc::new(Client::sign_in(&config).await?);
        if let Some(guild) = client.guild {
            crate::commands::register(&client, guild)
                .await
                .map_err(|e| BotError::Commands(e.to_string()))?;
        }
        let messages = Arc::new(Messages::default());
        let ping = config.ping;
        let (state_tx, state) = watch::channel(ChannelState::Connecting);
        let (stop, stop_rx) = watch::channel(false);
        let reconnects = Arc::default();
        crate::connection::spawn(
            Handler {
                client: Arc::clone(&client),
                messages: Arc::clone(&messages),
                gatekeeper,
                forms: Arc::default(),
            },
            config.token.expose_secret().to_owned(),
            config.gateway_url.as_deref(),
            state_tx,
            Arc::clone(&reconnects),
            stop_rx,
        );
        Ok(Arc::new(Self {
            client,
            messages,
            ping,
            state,
            reconnects,
            stop,
            timers: Mutex::default(),
            edits: Arc::default(),
        }))
    }

    /// Closes the gateway connection.
    pub fn shut_down(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the gateway connection is up (for the demo and tests).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.state.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s == ChannelState::Connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until no press is being answered and every message edit already started has
    /// been sent (or given up), for at most `timeout`: a process about to exit
    /// (`keygate --standalone`) lets its last words reach the channel, and a change made
    /// after this is not skipped as one a press would show. `true` when none is left.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let settled = async {
            // A press's answer has no wake-up of its own: looked at every few ms.
            while self.messages.pressing() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            loop {
                let done = self.edits.done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                if self
                    .edits
                    .in_flight
                    .load(std::sync::atomic::Ordering::Acquire)
                    == 0
                {
                    return;
                }
                done.await;
            }
        };
        tokio::time::timeout(timeout, settled).await.is_ok()
    }

    /// Edits a message in the background: `notify` must not block.
    fn edit_later(&self, message: Id<MessageMarker>, rendered: Rendered) {
        let c = Arc::clone(&self.client);
        let edit = self.edits.begin();
        tokio::spawn(async move {
            let _edit = edit;
            let result = with_retry("editing a request message", || async {
                c.http
                    .update_message(c.channel, message)
                    .embeds(Some(&rendered.embeds))
                    .components(Some(&rendered.components))
                    .allowed_mentions(Some(&rendered.allowed_mentions))
                    .await
            })
            .await;
            if let Err(e) = result {
                tracing::error!("Discord: cannot edit message {message}: {e}");
            }
        });
    }

    /// (Re)starts the ending-soon timer of request `id`'s live grant `grant`, which ends
    /// at `ends`; `ttl` is used when no timer ran for it yet.
    fn arm(&self, id: &RequestId, grant: &GrantId, ends: Timestamp, ttl: Duration) {
        if !self.messages.knows(id) {
            return;
        }
        let mut timers = self.timers.lock().unwrap_or_else(PoisonError::into_inner);
        let ttl = match timers.remove(id) {
            Some((old, ttl)) => {
                old.abort();
                ttl
            }
            None => ttl,
        };
        let lead = ending_soon_lead(ttl);
        let wait = ends.remaining().saturating_sub(lead);
        let (c, messages) = (Arc::clone(&self.client), Arc::clone(&self.messages));
        let (id2, grant) = (id.clone(), grant.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some((message, rendered)) = messages.ending_soon(&id2, &grant) else {
                return;
            };
            let result = with_retry("saying a grant ends soon", || async {
                c.http
                    .update_message(c.channel, message)
                    .embeds(Some(&rendered.embeds))
                    .components(Some(&rendered.components))
                    .allowed_mentions(Some(&rendered.allowed_mentions))
                    .await
            })
            .await;
            if let Err(e) = result {
                tracing::error!("Discord: cannot edit message {message}: {e}");
            }
        });
        timers.insert(id.clone(), (task.abort_handle(), ttl));
    }

    /// Keeps the ending-soon timer in step with request `view` as it now stands: armed
    /// for an approved request's live grant, cancelled once it ends otherwise.
    fn follow(&self, view: &RequestView) {
        match (&view.grant, view.status) {
            (Some(grant), RequestStatus::Approved) => {
                let ttl = view.decided_at.map_or(Duration::ZERO, |at| {
                    grant
                        .expires_at
                        .system_time()
                        .duration_since(at.system_time())
                        .unwrap_or_default()
                });
                self.arm(&view.id, &grant.id, grant.expires_at, ttl);
            }
            _ if view.status.is_final() => self.disarm(&view.id),
            _ => {}
        }
    }

    /// Cancels request `id`'s ending-soon timer: its grant ended.
    fn disarm(&self, id: &RequestId) {
        let mut timers = self.timers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((task, _)) = timers.remove(id) {
            task.abort();
        }
    }
}

impl Drop for Discord {
    fn drop(&mut self) {
        let timers = self
            .timers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for (task, _) in timers.values() {
            task.abort();
        }
    }
}

impl ApprovalChannel for Discord {
    fn name(&self) -> &'static str {
        crate::CHANNEL
    }

    fn post<'a>(
        &'a self,
        request: &'a RequestView,
        mentions: &'a Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let c = &self.client;
            let rendered = render::request(request, None);
            // Whom to notify: the rule's approvers, in the content (mentions in embeds
            // never notify), and exactly them in `allowed_mentions`.
            let mentions = if self.ping {
                mentions.clone()
            } else {
                Mentions::default()
            };
            let (content, allowed) = render::mentions(&mentions);
            let message = with_retry("posting a request", || async {
                let post = c
                    .http
                    .create_message(c.channel)
                    .embeds(&rendered.embeds)
                    .components(&rendered.components)
                    .allowed_mentions(Some(&allowed));
                if content.is_empty() {
                    post.await
                } else {
                    post.content(&content).await
                }
            })
            .await
            .map_err(|e| ChannelError {
                channel: crate::CHANNEL,
                message: format!("cannot post the approval message: {e}"),
            })?
            .model()
            .await
            .map_err(|e| ChannelError {
                channel: crate::CHANNEL,
                message: format!("Discord's answer was unreadable: {e}"),
            })?;
            self.messages.posted(message.id, request, mentions);
            Ok(())
        })
    }

    fn notify(&self, change: &Change) {
        if let Some((message, rendered)) = self.messages.edit_for(change) {
            self.edit_later(message, rendered);
        }
        match change {
            Change::Request(view) => self.follow(view),
            Change::GrantExtended(grant) => {
                let ttl = grant
                    .expires_at
                    .system_time()
                    .duration_since(grant.created_at.system_time())
                    .unwrap_or_default();
                self.arm(&grant.request, &grant.id, grant.expires_at, ttl);
            }
            Change::GrantEnded { grant, .. } => self.disarm(&grant.request),
        }
    }

    fn message_of(&self, request: &RequestId) -> Option<u64> {
        self.messages.message_of(request).map(Id::get)
    }

    fn adopt(&self, message: u64, view: &RequestView) {
        // Discord's ids are never 0: no message of this channel has it.
        let Some(message) = Id::<MessageMarker>::new_checked(message) else {
            tracing::warn!("Discord: not taking over message 0 for request {}", view.id);
            return;
        };
        self.messages.adopted(message, view);
        self.follow(view);
    }

    fn state(&self) -> ChannelState {
        self.state.borrow().clone()
    }

    fn reconnects(&self) -> u64 {
        self.reconnects.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::ending_soon_lead;
    use std::time::Duration;

    #[test]
    fn ending_soon_is_two_minutes_or_a_fifth_of_the_ttl_whichever_is_shorter() {
        let s = Duration::from_secs;
        assert_eq!(ending_soon_lead(s(10)), s(2));
        assert_eq!(ending_soon_lead(s(600)), s(120));
        assert_eq!(ending_soon_lead(s(15 * 60)), s(120));
        assert_eq!(ending_soon_lead(s(300)), s(60));
        assert_eq!(ending_soon_lead(Duration::ZERO), Duration::ZERO);
    }
}
