//! Shared by the `sim_*` tests: a simulator, a real twilight shard and client pointed
//! at it, and a way to wait for gateway events without sleeping.
#![allow(dead_code)]

use std::time::Duration;

use keygate_discord_sim::{SimConfig, Simulator};
use tokio::sync::mpsc;
use twilight_gateway::queue::InMemoryQueue;
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
};
use twilight_http::Client;
use twilight_model::application::interaction::Interaction;

/// Long enough for anything on loopback; short enough that a hang fails fast.
pub const WAIT: Duration = Duration::from_secs(5);

/// twilight's rustls needs a crypto provider even for ws:// and http://.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn start(config: SimConfig) -> Simulator {
    init();
    match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator did not start: {e}"),
    }
}

/// A twilight REST client pointed at the simulator, with `token`.
pub fn client(sim: &Simulator, token: &str) -> Client {
    Client::builder()
        .token(token.to_owned())
        .proxy(sim.rest_addr(), true)
        .build()
}

/// What the shard yielded: an event, a receive error, or the end of the stream.
#[derive(Debug)]
pub enum Item {
    Event(Box<Event>),
    Error(String),
}

/// A real twilight shard connected to the simulator; its events arrive on `rx`, which
/// closes when the shard's stream ends (a fatal close).
#[derive(Debug)]
pub struct Bot {
    pub rx: mpsc::UnboundedReceiver<Item>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bot {
    pub fn connect(sim: &Simulator, token: &str) -> Self {
        init();
        let config = ConfigBuilder::new(token.to_owned(), Intents::empty())
            .proxy_url(sim.gateway_url())
            .queue(InMemoryQueue::new(0, 0, Duration::ZERO, 0))
            .build();
        let mut shard = Shard::with_config(ShardId::ONE, config);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(item) = shard.next_event(EventTypeFlags::all()).await {
                let item = match item {
                    Ok(ev) => Item::Event(Box::new(ev)),
                    Err(e) => Item::Error(e.to_string()),
                };
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
        Self { rx, task }
    }

    /// The next event `pick` accepts, skipping others; `None` on timeout or when the
    /// stream ended. Receive errors fail the test: the simulator sent something
    /// twilight could not read.
    pub async fn next<T>(&mut self, mut pick: impl FnMut(Event) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Item::Event(ev))) => {
                    if let Some(v) = pick(*ev) {
                        return Some(v);
                    }
                }
                Ok(Some(Item::Error(e))) => panic!("twilight could not read the gateway: {e}"),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    pub async fn ready(&mut self) -> bool {
        self.next(|e| matches!(e, Event::Ready(_)).then_some(()))
            .await
            .is_some()
    }

    pub async fn resumed(&mut self) -> bool {
        self.next(|e| matches!(e, Event::Resumed).then_some(()))
            .await
            .is_some()
    }

    pub async fn interaction(&mut self) -> Option<Interaction> {
        self.next(|e| match e {
            Event::InteractionCreate(i) => Some(i.0),
            _ => None,
        })
        .await
    }
}

/// The Discord error code of a failed twilight request.
pub fn discord_code(e: &twilight_http::Error) -> Option<(u16, u64)> {
    match e.kind() {
        twilight_http::error::ErrorType::Response { error, status, .. } => match error {
            twilight_http::api_error::ApiError::General(g) => Some((status.get(), g.code)),
            _ => Some((status.get(), 0)),
        },
        _ => None,
    }
}
