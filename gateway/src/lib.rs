//! keygated, the keygate daemon.
//!
//! Read it in the order a request travels: [`api`] authenticates it and hands it to the
//! [`gate`], which asks `keygate_policies` for a decision, posts it to the
//! approval channels (`keygate_proto::approval`; [`terminal`] is one), records the decision in the [`requests`] table and the
//! [`audit`] log, makes a grant in [`grants`], and at release reads the value from the
//! [`store`].

pub mod api;
pub mod audit;
pub mod auth_failures;
pub mod cluster;
pub mod config;
pub mod fsutil;
pub mod gate;
pub mod gatekeeper;
pub mod grants;
pub mod identity;
pub mod metrics;
pub mod requests;
pub mod runtime;
pub mod store;
pub mod terminal;
