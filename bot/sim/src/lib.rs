//! A stand-in for Discord: the real gateway protocol over websockets and the real REST
//! routes over HTTP, on loopback, so a real twilight bot pointed at it cannot tell it
//! from Discord. Tests drive it through [`Simulator`] (press a button, run a slash
//! command, drop the connection, read what the bot posted); `keygated demo` and people
//! testing agents offline drive it through its HTTP control API (see
//! `docs/discord-simulator.md`).
//!
//! A crate of its own because it is a Discord *server* and `keygate-bot` a client: the
//! bot links none of this server stack, and the simulator needs nothing from keygate.
//!
//! Layout: `state` holds what it remembers; `gateway` speaks the websocket protocol;
//! `rest` serves Discord's routes; `interactions` turns presses and commands into
//! INTERACTION_CREATE; `messages` applies Discord's message rules; `payloads` builds
//! Discord's JSON; `control` is the HTTP control API; `snowflake` and `clock` make ids
//! and timestamps; `page` serves the channel as a web page on the control address.

mod clock;
mod control;
mod gateway;
mod interactions;
mod messages;
mod modals;
mod page;
mod payloads;
mod rest;
mod snowflake;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use messages::{Pings, SimButton, SimMessage};
pub use modals::{SimModal, SimTextInput};
pub use page::{CSP, SimPerson};

use state::{Settings, Shared};

/// How to start a [`Simulator`]. `Default` gives a token, ids and the 3 s / 15 min
/// windows Discord uses, on ports the OS picks.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The token the bot must present (with or without `Bot `).
    pub bot_token: String,
    /// The application id; the bot user has the same id, as on Discord.
    pub application_id: u64,
    /// The one guild.
    pub guild_id: u64,
    /// The one text channel in it.
    pub channel_id: u64,
    /// Fixed ports on 127.0.0.1; `None` lets the OS pick.
    pub gateway_port: Option<u16>,
    pub rest_port: Option<u16>,
    pub control_port: Option<u16>,
    /// HELLO's heartbeat interval (Discord: 41.25 s).
    pub heartbeat_interval: Duration,
    /// How long after INTERACTION_CREATE the callback is accepted (Discord: 3 s).
    pub interaction_window: Duration,
    /// How long the interaction token edits and follows up (Discord: 15 min).
    pub token_lifetime: Duration,
    /// Whom the web page at `/` of the control address offers to press as (the
    /// demo's approver, an outsider, …); a person can also type any user id there.
    pub people: Vec<SimPerson>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bot_token: "keygate-simulator-token".into(),
            application_id: 1_300_000_000_000_000_001,
            guild_id: 1_300_000_000_000_000_002,
            channel_id: 1_300_000_000_000_000_003,
            gateway_port: None,
            rest_port: None,
            control_port: None,
            heartbeat_interval: Duration::from_millis(41_250),
            interaction_window: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(15 * 60),
            people: Vec::new(),
        }
    }
}

/// Where a press or command happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GuildMode {
    /// In the configured guild: the interaction carries `guild_id` and `member`.
    #[default]
    InGuild,
    /// In another guild (the bot should refuse it).
    OtherGuild(u64),
    /// In a DM with the bot: `user` instead of `member`, no `guild_id`.
    Dm,
}

/// A button press.
#[derive(Debug, Clone, Default)]
pub struct PressSpec {
    pub message_id: u64,
    pub custom_id: String,
    pub user_id: u64,
    /// Empty: `user<id>`.
    pub username: String,
    /// The presser's role ids in the guild.
    pub roles: Vec<u64>,
    pub guild: GuildMode,
    /// Defaults to the message's channel (a fresh DM channel for [`GuildMode::Dm`]).
    pub channel_id: Option<u64>,
    /// The presser is a bot account.
    pub bot: bool,
    /// Send `custom_id` even though no button on the message has it, as a forged
    /// interaction would (real Discord never does): for testing that the bot refuses it.
    pub forged: bool,
}

impl PressSpec {
    /// `user_id` presses `custom_id` on `message_id`, in the configured guild.
    pub fn new(message_id: u64, custom_id: impl Into<String>, user_id: u64) -> Self {
        Self {
            message_id,
            custom_id: custom_id.into(),
            user_id,
            ..Self::default()
        }
    }

    /// With these role ids.
    #[must_use]
    pub fn roles(mut self, roles: impl IntoIterator<Item = u64>) -> Self {
        self.roles = roles.into_iter().collect();
        self
    }

    /// Somewhere else than the configured guild.
    #[must_use]
    pub fn guild(mut self, guild: GuildMode) -> Self {
        self.guild = guild;
        self
    }
}

/// A person filling in and submitting a modal (MODAL_SUBMIT, interaction type 5).
#[derive(Debug, Clone, Default)]
pub struct ModalSubmitSpec {
    /// The message whose button opened the modal; `None` for one a slash command opened.
    pub message_id: Option<u64>,
    /// The modal's custom_id; `None` takes the newest modal open for this user there.
    pub custom_id: Option<String>,
    /// `(key, text)`: key is an input's custom_id or the end of one (`ttl` matches
    /// `kg:approve:req_1:ttl`). Inputs not named are sent with their pre-filled value.
    pub values: Vec<(String, String)>,
    pub user_id: u64,
    /// Empty: `user<id>`.
    pub username: String,
    pub roles: Vec<u64>,
    pub guild: GuildMode,
    /// Defaults to the channel the modal was opened in.
    pub channel_id: Option<u64>,
    pub bot: bool,
    /// Send it even though no such modal is open for this user (each value in an action
    /// row under its key as custom_id), as a forged interaction would.
    pub forged: bool,
}

impl ModalSubmitSpec {
    /// `user_id` submits the modal a button on `message_id` opened for them.
    pub fn new(message_id: u64, user_id: u64) -> Self {
        Self {
            message_id: Some(message_id),
            user_id,
            ..Self::default()
        }
    }

    /// Type `text` into the input whose custom_id is (or ends with) `key`.
    #[must_use]
    pub fn value(mut self, key: impl Into<String>, text: impl Into<String>) -> Self {
        self.values.push((key.into(), text.into()));
        self
    }

    /// With these role ids.
    #[must_use]
    pub fn roles(mut self, roles: impl IntoIterator<Item = u64>) -> Self {
        self.roles = roles.into_iter().collect();
        self
    }

    /// Somewhere else than the configured guild.
    #[must_use]
    pub fn guild(mut self, guild: GuildMode) -> Self {
        self.guild = guild;
        self
    }
}

/// A slash command invocation: `/name path… option:value…`.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The top-level command; `keygate` by default.
    pub name: String,
    /// Subcommand group and/or subcommand, e.g. `["revoke"]`.
    pub path: Vec<String>,
    /// Option values as typed; converted to the registered option types.
    pub options: Vec<(String, String)>,
    pub user_id: u64,
    pub username: String,
    pub roles: Vec<u64>,
    pub guild: GuildMode,
    /// Defaults to the configured channel.
    pub channel_id: Option<u64>,
    pub bot: bool,
}

impl CommandSpec {
    /// `/keygate <path…>` run by `user_id` in the configured guild.
    pub fn new(path: &[&str], user_id: u64) -> Self {
        Self {
            name: "keygate".into(),
            path: path.iter().map(|p| (*p).to_owned()).collect(),
            options: Vec::new(),
            user_id,
            username: String::new(),
            roles: Vec::new(),
            guild: GuildMode::InGuild,
            channel_id: None,
            bot: false,
        }
    }

    /// Add an option value.
    #[must_use]
    pub fn option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((name.into(), value.into()));
        self
    }

    /// With these role ids.
    #[must_use]
    pub fn roles(mut self, roles: impl IntoIterator<Item = u64>) -> Self {
        self.roles = roles.into_iter().collect();
        self
    }

    /// Somewhere else than the configured guild.
    #[must_use]
    pub fn guild(mut self, guild: GuildMode) -> Self {
        self.guild = guild;
        self
    }
}

/// How the bot answered an interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// The response type: 4 reply, 5 deferred reply, 6 deferred update, 7 update
    /// message, 9 modal.
    pub kind: u8,
    /// The response's `data` (`Null` when absent).
    pub data: Value,
    /// `data.flags` has EPHEMERAL (64).
    pub ephemeral: bool,
    /// From the moment the INTERACTION_CREATE went out to the callback.
    pub elapsed: Duration,
}

/// One REST request the simulator received.
#[derive(Debug, Clone, PartialEq)]
pub struct RestCall {
    pub method: String,
    /// The path with its query, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    pub status: u16,
    /// The body as JSON (`Null` when empty, a string when not JSON).
    pub body: Value,
    /// The body as received (lossy UTF-8): search this for things that must never be
    /// sent.
    pub raw_body: String,
    /// The route it matched (`create_message`, `interaction_callback`, …); `None`
    /// for a route Discord has but the simulator does not, or no such route at all.
    pub route: Option<&'static str>,
    /// It carried the right `Authorization: Bot <token>`.
    pub authorized: bool,
    /// When the answer was logged (wall clock).
    pub at: SystemTime,
    /// When the request arrived (monotonic): compare these to check how long a client
    /// waited between calls, e.g. after a 429.
    pub received_at: Instant,
}

/// What went wrong starting the simulator or making something happen in it.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("discord simulator: cannot listen for the {what} on 127.0.0.1: {source}")]
    Bind {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("no message {0} in the simulated channel")]
    UnknownMessage(u64),
    #[error("message {message_id} has no component with custom_id {custom_id:?}")]
    UnknownComponent { message_id: u64, custom_id: String },
    #[error("the button {custom_id:?} on message {message_id} is disabled")]
    ComponentDisabled { message_id: u64, custom_id: String },
    #[error("no command /{0} is registered where it was run")]
    UnknownCommand(String),
    #[error("/{command} has no option or subcommand {option:?}")]
    UnknownOption { command: String, option: String },
    #[error("{value:?} is not a valid value for option {option:?}")]
    BadOptionValue { option: String, value: String },
    #[error("the required option {0:?} is missing")]
    MissingOption(String),
    #[error("no bot session on the simulated gateway (the bot has not identified)")]
    NoSession,
    #[error("no modal is open for user {user_id} on message {message_id:?}")]
    NoOpenModal {
        user_id: u64,
        message_id: Option<u64>,
    },
    #[error(
        "modal {custom_id:?} has no input whose custom_id is or ends with {key:?} (or several do)"
    )]
    UnknownModalInput { custom_id: String, key: String },
    #[error("Discord would not submit input {custom_id:?}: {why}")]
    BadModalValue { custom_id: String, why: String },
}

/// An interaction the simulator dispatched; wait here for the bot's answer.
#[derive(Clone)]
pub struct InteractionHandle {
    shared: Arc<Shared>,
    id: u64,
    token: String,
}

impl std::fmt::Debug for InteractionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InteractionHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl InteractionHandle {
    pub(crate) fn new(shared: Arc<Shared>, id: u64, token: String) -> Self {
        Self { shared, id, token }
    }

    /// The interaction id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The interaction token (as the bot received it).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The bot's callback, waiting up to `timeout` for it.
    pub async fn response(&self, timeout: Duration) -> Option<Callback> {
        self.shared
            .wait_until(timeout, |st| {
                st.interactions
                    .get(&self.id)
                    .and_then(|i| i.callback.clone())
            })
            .await
    }

    /// The callback so far, without waiting.
    pub fn callback(&self) -> Option<Callback> {
        self.shared.read(|st| {
            st.interactions
                .get(&self.id)
                .and_then(|i| i.callback.clone())
        })
    }

    /// The message `@original` refers to: the reply for types 4 and 5, the
    /// component's message for 6 and 7.
    pub fn original_message(&self) -> Option<SimMessage> {
        self.shared.read(|st| {
            let id = st.interactions.get(&self.id)?.original?;
            st.messages.get(&id).cloned()
        })
    }

    /// The modal the bot opened in answer to this interaction (callback type 9), open
    /// or since submitted.
    pub fn modal(&self) -> Option<SimModal> {
        self.shared.read(|st| {
            st.modals
                .iter()
                .rev()
                .find(|m| m.interaction_id == self.id)
                .cloned()
        })
    }

    /// For a modal submit: the modal it submitted.
    pub fn submitted_modal(&self) -> Option<SimModal> {
        self.shared
            .read(|st| st.interactions.get(&self.id)?.submitted.clone())
    }

    /// Follow-up messages the bot sent for this interaction.
    pub fn followups(&self) -> Vec<SimMessage> {
        self.shared.read(|st| {
            st.interactions
                .get(&self.id)
                .map(|i| {
                    i.followups
                        .iter()
                        .filter_map(|m| st.messages.get(m).cloned())
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

/// A running simulated Discord. Dropping it stops every listener and connection.
pub struct Simulator {
    shared: Arc<Shared>,
    config: SimConfig,
    gateway: SocketAddr,
    rest: SocketAddr,
    control: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("gateway", &self.gateway)
            .field("rest", &self.rest)
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn bind(
    port: Option<u16>,
    what: &'static str,
) -> Result<(TcpListener, SocketAddr), SimError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port.unwrap_or(0)))
        .await
        .map_err(|source| SimError::Bind { what, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimError::Bind { what, source })?;
    Ok((listener, addr))
}

impl Simulator {
    /// Bind the gateway, REST and control listeners on 127.0.0.1 and start serving.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let (gw, gateway) = bind(config.gateway_port, "gateway").await?;
        let (rest_l, rest) = bind(config.rest_port, "REST API").await?;
        let (ctl, control) = bind(config.control_port, "control API").await?;
        let token = config.bot_token.trim();
        let settings = Settings {
            token: token.strip_prefix("Bot ").unwrap_or(token).to_owned(),
            application_id: config.application_id,
            guild_id: config.guild_id,
            channel_id: config.channel_id,
            heartbeat_interval: config.heartbeat_interval,
            interaction_window: config.interaction_window,
            token_lifetime: config.token_lifetime,
            gateway_url: format!("ws://{gateway}"),
            people: config.people.clone(),
            control,
        };
        let shared = Arc::new(Shared::new(settings));
        let tasks = vec![
            tokio::spawn(gateway::serve(gw, Arc::clone(&shared))),
            tokio::spawn(rest::serve(rest_l, Arc::clone(&shared))),
            tokio::spawn(control::serve(ctl, Arc::clone(&shared), rest)),
        ];
        Ok(Self {
            shared,
            config,
            gateway,
            rest,
            control,
            tasks,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// `ws://127.0.0.1:P`, for `ConfigBuilder::proxy_url` / `KEYGATE_DISCORD_GATEWAY_URL`.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.gateway)
    }

    /// `127.0.0.1:P`, for twilight-http's `proxy(addr, true)`.
    pub fn rest_addr(&self) -> String {
        self.rest.to_string()
    }

    /// `http://127.0.0.1:P`, for `KEYGATE_DISCORD_API_URL`.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    /// `http://127.0.0.1:P`, the HTTP control API.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control)
    }

    /// `http://127.0.0.1:P/`, the channel as a web page (on the control address).
    pub fn page_url(&self) -> String {
        format!("http://{}/", self.control)
    }

    /// Press a button, as a person in Discord would.
    pub fn press(&self, spec: &PressSpec) -> Result<InteractionHandle, SimError> {
        interactions::press(&self.shared, spec)
    }

    /// Fill in and submit the modal open for `spec.user_id` on `spec.message_id`: a
    /// MODAL_SUBMIT with each text input's value, as Discord sends it.
    pub fn submit_modal(&self, spec: &ModalSubmitSpec) -> Result<InteractionHandle, SimError> {
        modals::submit(&self.shared, spec)
    }

    /// Every modal the bot has opened, oldest first (see [`SimModal::open`]).
    pub fn modals(&self) -> Vec<SimModal> {
        self.shared.read(|st| st.modals.clone())
    }

    /// The modal open for `user_id` on `message_id`, if any.
    pub fn open_modal(&self, message_id: u64, user_id: u64) -> Option<SimModal> {
        self.shared.read(|st| {
            st.modals
                .iter()
                .rev()
                .find(|m| m.open && m.user_id == user_id && m.message_id == Some(message_id))
                .cloned()
        })
    }

    /// Run a registered slash command.
    pub fn command(&self, spec: &CommandSpec) -> Result<InteractionHandle, SimError> {
        interactions::command(&self.shared, spec)
    }

    /// Every message the bot (or its interaction webhooks) created and has not
    /// deleted, oldest first, ephemeral replies included.
    pub fn messages(&self) -> Vec<SimMessage> {
        self.shared
            .read(|st| st.messages.values().cloned().collect())
    }

    /// One message.
    pub fn message(&self, id: u64) -> Option<SimMessage> {
        self.shared.read(|st| st.messages.get(&id).cloned())
    }

    /// The first message (oldest first) matching `pred`, waiting up to `timeout`.
    pub async fn wait_for_message(
        &self,
        mut pred: impl FnMut(&SimMessage) -> bool,
        timeout: Duration,
    ) -> Option<SimMessage> {
        self.shared
            .wait_until(timeout, |st| {
                st.messages.values().find(|m| pred(m)).cloned()
            })
            .await
    }

    /// Message `id` once `pred` holds for it (e.g. `|m| m.edited > 0`), waiting up to
    /// `timeout`.
    pub async fn wait_for_edit(
        &self,
        id: u64,
        mut pred: impl FnMut(&SimMessage) -> bool,
        timeout: Duration,
    ) -> Option<SimMessage> {
        self.shared
            .wait_until(timeout, |st| {
                st.messages.get(&id).filter(|m| pred(m)).cloned()
            })
            .await
    }

    /// Refuse the next `n` message posts with 400 Invalid Form Body, as Discord refuses
    /// a message it cannot take.
    pub fn refuse_posts(&self, n: u32) {
        self.shared.update(|st| st.refuse_posts = n);
    }

    /// Answer the next `n` REST calls to `route` with 429 Too Many Requests, as Discord
    /// does when a bucket is exhausted, asking the client to wait `retry_after`: the
    /// body `{"message", "retry_after" (seconds, a float), "global": false}` and the
    /// headers `Retry-After`, `X-RateLimit-Limit`, `-Remaining` (0), `-Reset`,
    /// `-Reset-After`, `-Bucket` and `-Scope: user`. `route` is a name as in
    /// [`RestCall::route`] (`create_message`, `update_message`, …); `None` limits every
    /// known route. The limited call does nothing; [`rest_log`](Self::rest_log) shows it
    /// with status 429 and when it came ([`RestCall::received_at`]). Rules add up and
    /// are used oldest first.
    pub fn rate_limit(&self, route: Option<&str>, n: u32, retry_after: Duration) {
        if n == 0 {
            return;
        }
        self.shared.update(|st| {
            st.rate_limits.push(state::RateLimit {
                route: route.map(str::to_owned),
                left: n,
                retry_after,
            });
        });
    }

    /// Cut every gateway connection without a close frame. The session stays
    /// resumable; interactions dispatched before the bot resumes wait for it.
    pub fn drop_connection(&self) {
        gateway::drop_connections(&self.shared);
    }

    /// Send op 7 RECONNECT: the bot should reconnect and resume.
    pub fn send_reconnect(&self) {
        gateway::send_reconnect(&self.shared);
    }

    /// Send op 9 INVALID_SESSION; unless `resumable`, the session is gone and the bot
    /// must identify again.
    pub fn send_invalid_session(&self, resumable: bool) {
        gateway::send_invalid_session(&self.shared, resumable);
    }

    /// Close every gateway connection with a Discord close code (4000 unknown error
    /// and 4009 session timed out let the bot resume or reconnect; 4004 and 4010–4014
    /// are fatal).
    pub fn close_connection(&self, code: u16) {
        gateway::close_connections(&self.shared, code, close_reason(code));
    }

    /// A bot session is live on an open connection.
    pub fn connected(&self) -> bool {
        self.shared.read(state::State::connected)
    }

    /// Wait up to `timeout` for [`connected`](Self::connected).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |st| st.connected().then_some(()))
            .await
            .is_some()
    }

    /// Accepted IDENTIFYs.
    pub fn identify_count(&self) -> u64 {
        self.shared.read(|st| st.identify_count)
    }

    /// Accepted RESUMEs.
    pub fn resume_count(&self) -> u64 {
        self.shared.read(|st| st.resume_count)
    }

    /// Heartbeats received.
    pub fn heartbeat_count(&self) -> u64 {
        self.shared.read(|st| st.heartbeat_count)
    }

    /// Wait up to `timeout` until `pred` holds for the counters
    /// `(identify_count, resume_count)`.
    pub async fn wait_for_sessions(
        &self,
        mut pred: impl FnMut(u64, u64) -> bool,
        timeout: Duration,
    ) -> bool {
        self.shared
            .wait_until(timeout, |st| {
                (pred(st.identify_count, st.resume_count) && st.connected()).then_some(())
            })
            .await
            .is_some()
    }

    /// Every REST call so far.
    pub fn rest_log(&self) -> Vec<RestCall> {
        self.shared.read(|st| st.rest_log.clone())
    }

    /// Registered commands as Discord returns them.
    pub fn commands(&self) -> Vec<Value> {
        self.shared.read(|st| st.commands.clone())
    }

    /// Wait up to `timeout` for a command named `name` to be registered.
    pub async fn wait_for_command(&self, name: &str, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |st| {
                st.commands
                    .iter()
                    .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
                    .then_some(())
            })
            .await
            .is_some()
    }

    /// The dispatches (`{op: 0, t, s, d}`) sent to the current session, READY first.
    pub fn events(&self) -> Vec<Value> {
        self.shared.read(|st| {
            st.current_session
                .as_ref()
                .and_then(|id| st.sessions.get(id))
                .map(|s| {
                    s.log
                        .iter()
                        .filter_map(|e| serde_json::from_str(&e.frame).ok())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// A message as Discord renders it (what `GET /channels/{c}/messages/{id}` returns).
    pub fn message_json(&self, id: u64) -> Option<Value> {
        self.shared.read(|st| {
            st.messages
                .get(&id)
                .map(|m| payloads::message(m, &self.shared.settings))
        })
    }
}

/// The reason Discord gives with each close code.
fn close_reason(code: u16) -> &'static str {
    match code {
        4000 => "Unknown error.",
        4001 => "Unknown opcode.",
        4002 => "Error while decoding payload.",
        4003 => "Not authenticated.",
        4004 => "Authentication failed.",
        4005 => "Already authenticated.",
        4007 => "Invalid seq.",
        4008 => "Rate limited.",
        4009 => "Session timed out.",
        4010 => "Invalid shard.",
        4011 => "Sharding required.",
        4012 => "Invalid API version.",
        4013 => "Invalid intent(s).",
        4014 => "Disallowed intent(s).",
        _ => "",
    }
}
