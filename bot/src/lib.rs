//! keygate's Discord approval channel: a twilight bot that posts each request that needs
//! approval as one message with Approve / Deny buttons, takes approvers' presses (checked
//! against the policy through [`keygate_proto::approval::Gatekeeper`]), keeps the message
//! up to date until the grant ends, and answers `/keygate` slash commands.
//!
//! Read it in the order a request travels: [`channel`] posts it (rendered by [`render`],
//! text made inert by [`escape`], buttons named by [`buttons`]); [`connection`] holds the
//! gateway shard that brings presses back; [`interactions`] decides them; [`commands`]
//! handles `/keygate grants` and `/keygate revoke`. The Discord stand-in that tests and
//! `keygated demo` point it at is a crate of its own, `keygate-discord-sim` (`bot/sim/`).

pub mod buttons;
pub mod channel;
pub mod commands;
pub mod config;
pub mod connection;
pub mod escape;
pub mod interactions;
pub mod render;

pub use channel::Discord;

/// The name this approval channel goes by: in `posted_to`, in `decided_via`, in status.
pub const CHANNEL: &str = "discord";
pub use config::BotConfig;
