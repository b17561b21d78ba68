//! One file per command; each is carried out through the daemon's API.

pub mod agents;
pub mod audit;
pub mod completions;
pub mod decide;
pub mod exec;
pub mod get;
pub mod grants;
pub mod man;
pub mod mcp;
pub mod policy;
pub mod requests;
pub mod secrets;
pub mod status;
pub mod store;
