//! keygated, the keygate daemon.
//!
//! Read it in the order a request travels: the API authenticates it, `keygate_policies`
//! decides, an approval channel asks a human, the grant table records the grant, and the value
//! is read from the [`store`] at release.

pub mod store;
