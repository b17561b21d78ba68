//! `keygate --standalone`: the gate run inside the CLI's own process, with no daemon.
//! It opens the daemon's state as `keygated` does ([`super::open`], under the same lock,
//! so never beside a running keygated), connects to Discord itself when the command may
//! ask someone, and serves the CLI through an in-process connection
//! ([`crate::api::server::in_process`]) with a token that exists only in this process
//! ([`crate::identity::Identities::session`]). Everything between the command and the
//! gate — routes, authentication, who may see what, the audit lines — is the daemon's
//! own code. When the command is done, every grant it got is ended (and audited), and
//! the process exits: nothing outlives it.

use std::sync::Arc;
use std::time::Duration;

use keygate_bot::Discord;
use keygate_proto::AgentName;
use keygate_proto::api::RequestView;
use keygate_proto::approval::{ApprovalChannel, BoxFuture, Change, ChannelError, Mentions};
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Holder, StartError, StateLock};
use crate::api::server::{self, Dialer};
use crate::audit::{Actor, Event};
use crate::config::Config;
use crate::gate::{Gate, Selector};

/// What the standalone gate is started for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Act as this registered agent (`--agent`, `KEYGATE_AGENT`); `None` acts as the
    /// operator, for `secrets`, `agents`, `audit` and `policy`.
    pub agent: Option<AgentName>,
    /// Whether the command may file a request that needs someone's approval (`get`,
    /// `exec`, `mcp`): only then is Discord connected.
    pub asks: bool,
}

/// How long the last edits of the Discord messages (grants ended) may take at exit.
const SETTLE: Duration = Duration::from_secs(5);

/// A gate serving this process alone.
pub struct Standalone {
    gate: Arc<Gate>,
    discord: Option<Arc<Discord>>,
    dialer: Dialer,
    token: SecretString,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    lock: StateLock,
}

impl std::fmt::Debug for Standalone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standalone")
            .field("gate", &self.gate)
            .field("discord", &self.discord)
            .field("lock", &self.lock.path())
            .finish_non_exhaustive()
    }
}

/// Where requests go when no Discord is configured: nowhere. A standalone process has
/// no socket, so no `keygate approve` could ever reach it; a request that needs a
/// person is refused at once, saying why, rather than left to wait for nobody.
#[derive(Debug)]
struct Nobody;

impl ApprovalChannel for Nobody {
    fn name(&self) -> &'static str {
        "standalone"
    }

    fn post<'a>(
        &'a self,
        _request: &'a RequestView,
        _mentions: &'a Mentions,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async {
            Err(ChannelError {
                channel: "standalone",
                message: "no Discord is configured, and without keygated nobody can approve from a terminal: configure [discord], or run keygated".into(),
            })
        })
    }

    fn notify(&self, _change: &Change) {}
}

impl Standalone {
    /// Opens the state under the lock (refusing while a keygated or another standalone
    /// serves it), checks the agent, connects Discord when `options.asks`, and starts
    /// serving this process.
    pub async fn start(config: &Config, options: &Options) -> Result<Self, StartError> {
        let opened = super::open(config, Holder::Standalone).await?;
        let gate = opened.gate;
        let token = match gate.identities.session(options.agent.as_ref()) {
            Ok(t) => t,
            Err(crate::identity::IdentityError::Unknown(name)) => {
                gate.audit_ended(&Event::StandaloneStopped);
                return Err(StartError::UnknownAgent(name));
            }
            Err(e) => return Err(e.into()),
        };
        let discord = match (&config.discord, options.asks) {
            (Some(d), true) => match super::discord::connect(d, &gate).await {
                Ok(discord) => Some(discord),
                Err(e) => {
                    gate.audit_ended(&Event::StandaloneStopped);
                    return Err(e.into());
                }
            },
            (None, true) => {
                gate.add_channel(Arc::new(Nobody));
                None
            }
            (_, false) => None,
        };
        let (dialer, listener) = server::in_process();
        let (stop, stop_rx) = watch::channel(false);
        let server = tokio::spawn(server::serve(
            vec![listener],
            Arc::clone(&gate),
            config.limits.server(),
            stop_rx,
        ));
        let maintenance = tokio::spawn(Arc::clone(&gate).run_maintenance(opened.ended));
        Ok(Self {
            gate,
            discord,
            dialer,
            token,
            stop,
            server,
            maintenance,
            lock: opened.lock,
        })
    }

    /// Connects to this gate; each dial is a new connection.
    pub fn dialer(&self) -> Dialer {
        self.dialer.clone()
    }

    /// Whether the secret store is locked (an encrypted file with no passphrase given).
    pub fn store_locked(&self) -> bool {
        self.gate.store_locked()
    }

    /// Unlocks the store with `passphrase` (audited), as `keygate unlock` does a
    /// daemon's.
    pub async fn unlock(&self, passphrase: SecretString) -> Result<(), crate::gate::GateError> {
        self.gate.unlock_store(passphrase).await
    }

    /// The token this process acts with (the agent's, or the operator's).
    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// Ends every grant this run made (audited, and the Discord messages say so), stops
    /// serving, lets the last Discord edits go out, and writes the run's last audit
    /// line. The lock goes with `self`.
    pub async fn shut_down(self) {
        // The edits already on their way (the approval) first: sent side by side, the
        // grant's end could reach Discord before them and be overwritten.
        if let Some(d) = &self.discord {
            d.settle(SETTLE).await;
        }
        let by = Actor {
            who: "keygate --standalone (exit)".into(),
            via: "standalone",
        };
        if let Err(e) = self.gate.revoke(&Selector::All, &by).await {
            tracing::warn!("cannot end the grants of this run: {e}");
        }
        self.gate.shut_down();
        self.stop.send_replace(true);
        let _ = self.server.await;
        let _ = self.maintenance.await;
        if let Some(d) = &self.discord {
            if !d.settle(SETTLE).await {
                tracing::warn!("Discord: some messages were not updated before exit");
            }
            d.shut_down();
        }
        self.gate.audit_ended(&Event::StandaloneStopped);
    }
}
