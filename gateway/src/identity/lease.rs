//! How long a clustered node may trust its copy of the agents without asking Redis.
//!
//! Each node confirms its copy every [`REFRESH`]: it asks Redis for the agents' version
//! (one small read) and reads the set again when it changed. A confirmation counts from
//! the moment its question was *sent*: whatever Redis answered, it held then or later.
//! The node trusts its copy for [`LEASE`] after the last confirmation, on its own clock;
//! past that, an agent's token is looked up only after a confirmation made on the spot.
//!
//! So a change made on one node is in every node's answers once [`SETTLE`] has passed
//! after Redis took it: `keygate agents add` and `remove` wait that long before they
//! return. The grant hit pays one clock read and one atomic load for it, never a round
//! trip to Redis; a change pays [`SETTLE`] once. (This leans on the nodes' clocks running
//! at about the same rate over a fraction of a second, not on them agreeing on the time;
//! the Discord lease leans on the same.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a node confirms its copy.
pub const REFRESH: Duration = Duration::from_millis(100);
/// How long a confirmation is trusted.
pub const LEASE: Duration = Duration::from_millis(300);
/// How long a change waits, once Redis took it, before it is in every node's answers
/// ([`LEASE`] and a margin for the clocks' rates).
pub const SETTLE: Duration = Duration::from_millis(330);

/// The last confirmation of one node's copy.
#[derive(Debug)]
pub struct Lease {
    base: Instant,
    /// Nanoseconds after `base` at which the last confirmation's question was sent, plus
    /// one; 0: never confirmed.
    confirmed: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Self::new()
    }
}

impl Lease {
    /// Not confirmed yet.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            confirmed: AtomicU64::new(0),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The copy is current as of `sent` (the moment the confirming question was sent).
    /// Call it only after the copy read by that question is in place: a reader that sees
    /// the confirmation sees the copy.
    pub fn confirm(&self, sent: Instant) {
        let at = self.nanos(sent).saturating_add(1);
        self.confirmed.fetch_max(at, Ordering::AcqRel);
    }

    /// Forgets every confirmation: the copy is trusted again only after the next.
    pub fn expire(&self) {
        self.confirmed.store(0, Ordering::Release);
    }

    /// Whether the copy may be trusted now. Check it before reading the copy.
    pub fn holds(&self) -> bool {
        let confirmed = self.confirmed.load(Ordering::Acquire);
        if confirmed == 0 {
            return false;
        }
        let lease = u64::try_from(LEASE.as_nanos()).unwrap_or(u64::MAX);
        self.nanos(Instant::now()) < (confirmed - 1).saturating_add(lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_from_its_question_for_the_lease_and_no_longer() {
        let lease = Lease::new();
        assert!(!lease.holds(), "never confirmed");
        lease.confirm(Instant::now());
        assert!(lease.holds());
        // Confirmed as of a question sent longer ago than the lease: not trusted.
        let old = Lease::new();
        std::thread::sleep(LEASE + Duration::from_millis(20));
        old.confirm(old.base);
        assert!(!old.holds());
        // A later confirmation wins over an earlier one arriving after it.
        old.confirm(Instant::now());
        old.confirm(old.base);
        assert!(old.holds());
        old.expire();
        assert!(!old.holds());
    }

    #[test]
    fn a_change_waits_longer_than_a_lease() {
        assert!(REFRESH * 2 < LEASE);
        assert!(SETTLE > LEASE);
    }
}
