//! A simulated Discord and a daemon whose bot is connected to it, for the end-to-end
//! tests of what approvers see and press.

use std::process::Child;
use std::time::Duration;

use keygate_discord_sim::{InteractionHandle, SimConfig, SimMessage, Simulator};

use crate::{Daemon, poll};

/// How long a test waits for Discord-side events.
pub const WAIT: Duration = Duration::from_secs(10);

/// A simulator, a daemon connected to it, an agent of that daemon, and a runtime to
/// drive the simulator.
#[derive(Debug)]
pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub sim: Simulator,
    pub d: Daemon,
    pub agent: String,
}

/// How the bot answered a press or a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The request's message was updated in place.
    Updated,
    /// A reply (ephemeral for refusals), the message unchanged.
    Reply,
}

impl Shown {
    /// The interaction response type Discord would show for it: 7 or 4.
    pub fn kind(self) -> u8 {
        match self {
            Self::Updated => 7,
            Self::Reply => 4,
        }
    }
}

impl World {
    /// Starts the simulator and a daemon with `policy` and `extra` environment, waits for
    /// its bot, stores `secrets` (name, value) and adds agent `ci-one`.
    pub fn start(policy: &str, extra: &[(&str, &str)], secrets: &[(&str, &str)]) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(Simulator::start(SimConfig::default()))
            .expect("simulator");
        let d = Daemon::start_with_discord(policy, &sim, extra);
        assert!(
            rt.block_on(sim.wait_connected(WAIT)),
            "the bot never connected"
        );
        for (name, value) in secrets {
            d.secret(name, value);
        }
        let agent = d.agent("ci-one");
        Self { rt, sim, d, agent }
    }

    /// The message that shows request `id`, once the bot has posted it.
    pub fn posted(&self, id: &str) -> SimMessage {
        self.rt
            .block_on(self.sim.wait_for_message(|m| m.text().contains(id), WAIT))
            .expect("the request was posted")
    }

    /// The agent asks for `secret` with `reason`: the waiting `keygate get`, the
    /// request's id and its message.
    pub fn ask(&self, secret: &str, reason: &str) -> (Child, String, SimMessage) {
        let child = self
            .d
            .keygate_as(&self.agent, &["get", secret, "--reason", reason])
            .spawn();
        let id = self.d.pending_request();
        let msg = self.posted(&id);
        (child, id, msg)
    }

    /// The bot's whole answer to a press or a form submit on message `message`: how it
    /// was shown, whether only the presser sees it, and its text. The bot may answer at
    /// once (7 update, 4 reply) or, when the decision takes longer than its 2 s budget (a
    /// loaded machine), defer (6) and then edit the message or send an ephemeral
    /// follow-up: both are the same outcome, so tests assert the outcome, not which path
    /// the clock chose. The simulator enforces Discord's 3 s window itself (a late
    /// callback is refused and never recorded), so an answer here was in time.
    pub fn answer(&self, h: &InteractionHandle, message: u64) -> (Shown, bool, String) {
        let text = || self.sim.message(message).expect("the message").text();
        let cb = self
            .rt
            .block_on(h.response(WAIT))
            .expect("the bot answered");
        match cb.kind {
            7 => (Shown::Updated, false, text()),
            4 => (Shown::Reply, cb.ephemeral, cb.data.to_string()),
            6 => poll(WAIT, "the bot to finish a deferred answer", || {
                if let Some(f) = h.followups().first() {
                    return Some((Shown::Reply, f.ephemeral(), f.text()));
                }
                let edited = self.sim.rest_log().iter().any(|c| {
                    c.route == Some("update_webhook_message")
                        && c.status == 200
                        && c.path.contains(h.token())
                });
                edited.then(|| (Shown::Updated, false, text()))
            }),
            kind => panic!("unexpected answer type {kind}: {cb:?}"),
        }
    }
}

/// The custom id of the live button labelled `label`.
pub fn button(msg: &SimMessage, label: &str) -> String {
    msg.live_buttons()
        .into_iter()
        .find(|b| b.label.as_deref() == Some(label))
        .and_then(|b| b.custom_id)
        .unwrap_or_else(|| panic!("no {label} button on {:?}", msg.buttons()))
}
