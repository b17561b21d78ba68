//! keygate's Discord approval channel.
//!
//! Not built yet: the twilight bot, the rendering of requests as messages with buttons,
//! and the Discord simulator land with the Discord issue. Until then `keygated` takes its
//! approvals from the operator's terminal (`keygate approve` / `keygate deny`).
