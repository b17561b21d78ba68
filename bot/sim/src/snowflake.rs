//! Ids the simulator hands out: snowflakes shaped like Discord's (a millisecond timestamp
//! since the Discord epoch in the top bits, so they sort by creation and look real in
//! logs), plus the random session ids and interaction tokens that must not be guessable
//! from one another.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 2015-01-01T00:00:00Z, where Discord snowflakes start counting.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A source of strictly increasing snowflakes.
///
/// Discord's layout is `ms << 22 | worker << 17 | process << 12 | increment`; two ids
/// made in the same millisecond here just differ by one, which keeps them unique and
/// ordered without tracking the increment separately.
#[derive(Debug, Default)]
pub(crate) struct Snowflakes {
    last: AtomicU64,
}

impl Snowflakes {
    /// The next id: now's timestamp, or one past the previous id if the clock has not
    /// moved on (or went backwards).
    pub(crate) fn next(&self) -> u64 {
        let candidate = (now_ms().saturating_sub(DISCORD_EPOCH_MS) << 22) | (1 << 17);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(prev.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => prev = seen,
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `bytes` random bytes as lowercase hex: session ids and interaction tokens.
///
/// The OS generator is the source; should it fail, the process's randomly keyed
/// hasher still gives values nobody outside can predict, which is all a test double
/// needs.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        for chunk in buf.chunks_mut(8) {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(now_ms());
            let v = h.finish().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::{Snowflakes, random_hex};

    #[test]
    fn increasing_and_discord_sized() {
        let s = Snowflakes::default();
        let a = s.next();
        let b = s.next();
        assert!(b > a);
        // Ids made after 2022 are above 10^18, as Discord's are.
        assert!(a > 1_000_000_000_000_000_000);
    }

    #[test]
    fn random_hex_has_the_asked_length() {
        assert_eq!(random_hex(16).len(), 32);
        assert_ne!(random_hex(16), random_hex(16));
    }
}
