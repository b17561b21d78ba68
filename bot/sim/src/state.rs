//! Everything the simulator remembers, behind one lock: the channel's messages, the
//! interactions it dispatched and how the bot answered them, gateway sessions with the
//! events each was sent (for RESUME), open websocket connections, registered commands,
//! and a log of every REST call.
//!
//! The lock is a plain `std::sync::Mutex` held only for short, non-async sections. Every
//! change bumps a `watch` counter so waiters (`wait_for_message`, `response`, …) wake on
//! changes instead of sleeping and polling.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::messages::SimMessage;
use super::modals::SimModal;
use super::page::SimPerson;
use super::snowflake::Snowflakes;
use super::{Callback, RestCall};

/// Fixed facts about the simulated Discord, known once the listeners are bound.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The bot token without any `Bot ` prefix.
    pub token: String,
    pub application_id: u64,
    pub guild_id: u64,
    pub channel_id: u64,
    pub heartbeat_interval: Duration,
    pub interaction_window: Duration,
    pub token_lifetime: Duration,
    /// `ws://127.0.0.1:P`, also sent as READY's `resume_gateway_url`.
    pub gateway_url: String,
    /// Whom the page offers to press as.
    pub people: Vec<SimPerson>,
    /// The control address, `127.0.0.1:P`: the only `Host` and `Origin` it answers.
    pub control: std::net::SocketAddr,
}

impl Settings {
    /// The bot's user id; Discord gives a bot the same id as its application.
    pub(crate) fn bot_user_id(&self) -> u64 {
        self.application_id
    }
}

/// What a connection task is told to do by the rest of the simulator.
#[derive(Debug)]
pub(crate) enum ConnCommand {
    /// Send this text frame.
    Send(String),
    /// Send a close frame with this code and reason, then wind down.
    Close(u16, &'static str),
    /// Drop the TCP connection without a close frame.
    Abort,
}

/// One open websocket connection.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub tx: mpsc::UnboundedSender<ConnCommand>,
    /// The session this connection identified or resumed into.
    pub session: Option<String>,
}

/// A dispatched event kept for replay on RESUME.
#[derive(Debug, Clone)]
pub(crate) struct LoggedEvent {
    pub seq: u64,
    pub frame: String,
    pub interaction: Option<u64>,
}

/// A gateway session: outlives connections until it is invalidated.
#[derive(Debug)]
pub(crate) struct Session {
    pub seq: u64,
    pub log: Vec<LoggedEvent>,
    /// The connection currently attached, if any.
    pub conn: Option<u64>,
}

/// An interaction the simulator dispatched.
#[derive(Debug, Clone)]
pub(crate) struct InteractionRecord {
    pub id: u64,
    pub token: String,
    /// 2 = application command, 3 = message component, 5 = modal submit.
    pub kind: u8,
    /// Who pressed, ran or submitted it.
    pub user_id: u64,
    /// The message a component belongs to.
    pub message_id: Option<u64>,
    pub channel_id: u64,
    /// When the INTERACTION_CREATE went out on a connection; the 3 s window and the
    /// 15 min token lifetime count from here.
    pub delivered_at: Option<Instant>,
    pub callback: Option<Callback>,
    /// The message `@original` refers to once the interaction is acknowledged.
    pub original: Option<u64>,
    pub followups: Vec<u64>,
    /// For a modal submit: the modal it submitted.
    pub submitted: Option<SimModal>,
}

/// The mutable state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub messages: BTreeMap<u64, SimMessage>,
    pub interactions: HashMap<u64, InteractionRecord>,
    pub sessions: HashMap<String, Session>,
    /// The most recently identified session; new events go there.
    pub current_session: Option<String>,
    pub connections: HashMap<u64, ConnEntry>,
    pub next_conn_id: u64,
    pub identify_count: u64,
    pub resume_count: u64,
    pub heartbeat_count: u64,
    pub rest_log: Vec<RestCall>,
    pub commands: Vec<Value>,
    /// Every modal the bot opened, oldest first; submitted or replaced ones are closed.
    pub modals: Vec<SimModal>,
    /// How many of the next message posts to refuse, as Discord refuses a message it
    /// cannot take (a test's way to make a channel fail).
    pub refuse_posts: u32,
    /// Calls to answer with 429 before serving them, oldest rule first.
    pub rate_limits: Vec<RateLimit>,
}

/// "Answer the next `left` calls to `route` with 429, asking to wait `retry_after`."
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    /// A route name as logged (`create_message`, …); `None` matches every known route.
    pub route: Option<String>,
    pub left: u32,
    pub retry_after: Duration,
}

impl State {
    /// The interaction whose token this is.
    pub(crate) fn interaction_by_token(&mut self, token: &str) -> Option<&mut InteractionRecord> {
        self.interactions.values_mut().find(|i| i.token == token)
    }

    /// If a rate limit covers this call to `route`, count it and say how long to wait.
    pub(crate) fn take_rate_limit(&mut self, route: &str) -> Option<Duration> {
        let i = self
            .rate_limits
            .iter()
            .position(|l| l.left > 0 && l.route.as_deref().is_none_or(|r| r == route))?;
        let limit = &mut self.rate_limits[i];
        limit.left -= 1;
        let wait = limit.retry_after;
        if limit.left == 0 {
            self.rate_limits.remove(i);
        }
        Some(wait)
    }

    /// Whether the current session has a connection attached.
    pub(crate) fn connected(&self) -> bool {
        self.current_session
            .as_ref()
            .and_then(|id| self.sessions.get(id))
            .is_some_and(|s| s.conn.is_some())
    }
}

/// The state plus what every part of the simulator shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub settings: Settings,
    pub ids: Snowflakes,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            settings,
            ids: Snowflakes::default(),
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves state that is still
        // consistent enough to inspect in a test double; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read the state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Change the state and wake every waiter.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        r
    }

    /// Change the state, waking the waiters only if `f` says it changed something: for
    /// the checks every REST call makes (a rate limit to take), which mostly find
    /// nothing and should not wake every waiter for it.
    pub(crate) fn update_if<R>(&self, f: impl FnOnce(&mut State) -> (R, bool)) -> R {
        let (r, changed) = f(&mut self.lock());
        if changed {
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
        r
    }

    /// A receiver that sees every change from now on (the page's event stream).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Wait until `f` finds something in the state, or `timeout` passes (then one last
    /// look decides).
    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before looking means a change between the look and the wait
        // still wakes us.
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(v) = self.read(&mut f) {
                return Some(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.read(&mut f),
            }
        }
    }
}
