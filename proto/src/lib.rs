//! The vocabulary shared by keygate's daemon (`keygated`) and its client (`keygate`).
//!
//! Every string that comes from outside becomes one of these types exactly once, at the
//! edge, and is validated there: [`SecretName`], [`AgentName`], [`RequestId`],
//! [`GrantId`], [`Ttl`]-like durations via [`duration`], moments as [`Timestamp`]. Secret
//! values travel as [`SecretValue`], which cannot be printed.

pub mod api;
pub mod approval;
pub mod discord;
pub mod duration;
pub mod hardening;
pub mod ids;
pub mod names;
pub mod net;
pub mod paths;
pub mod secret;
pub mod time;

pub use ids::{GrantId, IdError, RequestId, RoleId, UserId};
pub use names::{AgentName, NameError, SecretName};
pub use secret::SecretValue;
pub use time::Timestamp;
