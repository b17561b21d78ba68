//! keygate's Discord approval channel: a twilight bot that posts each request that needs
//! approval as one message with Approve / Deny buttons that pings exactly the rule's
//! approvers, takes approvers' presses (checked against the policy through
//! [`keygate_proto::approval::Gatekeeper`]), keeps the message up to date until the grant
//! ends — with Revoke / Extend buttons and an "ending soon" note while it lives — and
//! answers `/keygate` slash commands.
//!
//! Read it in the order a request travels: [`channel`] posts it (rendered by [`render`],
//! text made inert by [`escape`], buttons named by [`buttons`]) and remembers the message
//! (`messages`); `connection` holds the gateway shard that brings presses back;
//! `interactions` routes each one to `press` or `commands`. The Discord stand-in that
//! tests and `keygated demo` point it at is a crate of its own, `keygate-discord-sim`
//! (`bot/sim/`).
//!
//! Dependencies between the modules go one way, down this list: each module names only
//! modules below it.
//!
//! ```text
//! channel       the ApprovalChannel: post, edit, timers   → connection interactions commands messages render client config
//! connection    the gateway shard and its state           → interactions
//! interactions  where each interaction goes               → press commands reply messages client
//! press         decisions, Revoke and Extend presses      → approver reply messages render buttons escape client
//! form          the Approve… and Deny… forms (modals)    → press approver reply buttons
//! commands      /keygate grants, /keygate revoke          → approver reply render escape client
//! approver      who is behind an interaction              → client
//! reply         answering an interaction                  → escape client
//! messages      which message shows which request         → render
//! render        how a request looks                       → buttons escape
//! buttons       what a button's custom id means
//! escape        people's text made inert
//! client        the REST client: sign-in, retries         → config
//! config        what the bot is told
//! ```

mod approver;
pub mod buttons;
pub mod channel;
mod client;
mod commands;
pub mod config;
mod connection;
pub mod escape;
mod form;
mod interactions;
mod messages;
mod press;
pub mod render;
mod reply;
#[cfg(test)]
mod testing;

pub use channel::Discord;
pub use client::BotError;
pub use config::BotConfig;

/// The name this approval channel goes by: in `posted_to`, in `decided_via`, in status.
pub const CHANNEL: &str = "discord";
