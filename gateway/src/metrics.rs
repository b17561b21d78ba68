//! The daemon's Prometheus metrics (`GET /metrics`, and the tokenless loopback listener
//! `[metrics] listen`), in the Prometheus text format, through `prometheus-client`.
//!
//! Two kinds of figures. What happens is counted as it happens, in atomics the gate
//! holds ([`Metrics`]): settled requests, releases, refusals, the time from filing to a
//! person's decision, audit writes. What the daemon holds now (pending requests, live
//! grants, the Discord connection) is read from its tables at scrape time
//! ([`Snapshot`]), so nothing on the request path maintains a gauge. The grant hit adds
//! one relaxed atomic increment ([`Metrics::released`]).
//!
//! No label holds a secret's value or name, a token, an agent's name or anything a
//! caller sends: every label value is one of a fixed set of words.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::requests::State;

/// The `Content-Type` of what [`Metrics::render`] writes (Prometheus text, version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How a request was settled: `keygate_requests_total{outcome, via}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Settled {
    /// `approved`, `denied`, `expired`, `cancelled`.
    outcome: &'static str,
    /// Who settled it: `policy`, `terminal` (the operator), a channel's name (`discord`),
    /// `agent` (its own cancel), `daemon`, or `clock` (an expiry).
    via: &'static str,
}

/// Which limit refused a request: `keygate_rate_limited_total{limit}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limited {
    /// `pending` (too many waiting) or `per_minute`.
    limit: &'static str,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The agent already has `pending_per_agent` requests waiting.
    Pending,
    /// The agent filed `requests_per_minute` in the last minute.
    PerMinute,
}

/// Buckets for filed → decided by a person: a second to an hour.
const APPROVAL_BUCKETS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Buckets for one audit write (append and fsync): 100 µs to about 1.6 s.
pub fn audit_write_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_1, 2.0, 15,
    ))
}

/// What the gate counts as it happens. Cloning an instrument shares it.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<Settled, Counter>,
    releases: Counter,
    approval: Histogram,
    rate_limited: Family<Limited, Counter>,
    auth_failures: Counter,
    audit_writes: Histogram,
}

/// What the daemon holds at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub requests_pending: usize,
    pub grants_live: usize,
    pub store_locked: bool,
    /// `None` when no Discord channel is configured.
    pub discord: Option<DiscordSnapshot>,
}

/// How the Discord channel stands at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscordSnapshot {
    pub connected: bool,
    pub reconnects: u64,
}

impl Metrics {
    /// Fresh instruments; `audit_writes` is the audit log's own (it times its writes).
    pub fn new(audit_writes: Histogram) -> Self {
        Self {
            requests: Family::default(),
            releases: Counter::default(),
            approval: Histogram::new(APPROVAL_BUCKETS),
            rate_limited: Family::default(),
            auth_failures: Counter::default(),
            audit_writes,
        }
    }

    /// A secret's value went out (the grant hit included): one relaxed atomic add.
    #[inline]
    pub fn released(&self) {
        self.releases.inc();
    }

    /// A request left `pending` for `next`, having been filed at `filed`. A person's or the
    /// operator's approval or denial is also timed from filing.
    pub fn settled(&self, filed: std::time::SystemTime, next: &State) {
        let (outcome, via, at) = match next {
            State::Pending { .. } => return,
            State::Approved { by, at, .. } => ("approved", by.via, *at),
            State::Denied { by, at, .. } => ("denied", by.via, *at),
            State::Expired { at } => ("expired", "clock", *at),
            State::Cancelled { by, at, .. } => ("cancelled", by.via, *at),
        };
        self.requests.get_or_create(&Settled { outcome, via }).inc();
        let by_someone = !matches!(via, "policy" | "daemon" | "clock" | "agent");
        if by_someone && matches!(outcome, "approved" | "denied") {
            let waited = at.duration_since(filed).unwrap_or_default();
            self.approval.observe(waited.as_secs_f64());
        }
    }

    /// A limit refused a request.
    pub fn rate_limited(&self, limit: Limit) {
        let limit = match limit {
            Limit::Pending => "pending",
            Limit::PerMinute => "per_minute",
        };
        self.rate_limited.get_or_create(&Limited { limit }).inc();
    }

    /// A token was malformed or unknown.
    pub fn auth_failed(&self) {
        self.auth_failures.inc();
    }

    /// Every metric in the Prometheus text format, with `now`'s figures for what the
    /// daemon holds.
    pub fn render(&self, now: &Snapshot) -> Result<String, std::fmt::Error> {
        let mut r = Registry::default();
        // A counter's name is registered without `_total`; the encoder adds it.
        r.register(
            "keygate_requests",
            "Requests settled, by outcome and by who settled them",
            self.requests.clone(),
        );
        r.register(
            "keygate_releases",
            "Secret values released (each read under a grant or an allowing rule)",
            self.releases.clone(),
        );
        r.register(
            "keygate_approval_seconds",
            "Time from filing to a person's (or the operator's) approval or denial",
            self.approval.clone(),
        );
        r.register(
            "keygate_rate_limited",
            "Requests refused by a limit (pending per agent, or per minute)",
            self.rate_limited.clone(),
        );
        r.register(
            "keygate_auth_failures",
            "API calls with a malformed or unknown token (one with none is not counted)",
            self.auth_failures.clone(),
        );
        r.register(
            "keygate_audit_write_seconds",
            "Time to append and sync one audit line",
            self.audit_writes.clone(),
        );
        r.register(
            "keygate_requests_pending",
            "Requests waiting for a decision",
            ConstGauge::new(gauge(now.requests_pending)),
        );
        r.register(
            "keygate_grants_live",
            "Live grants",
            ConstGauge::new(gauge(now.grants_live)),
        );
        r.register(
            "keygate_store_locked",
            "1 while the secret store is locked (releases fail), else 0",
            ConstGauge::new(i64::from(now.store_locked)),
        );
        let discord = now.discord.unwrap_or_default();
        r.register(
            "keygate_discord_connected",
            "1 while the Discord gateway connection is up, else 0 (also without Discord)",
            ConstGauge::new(i64::from(discord.connected)),
        );
        r.register(
            "keygate_discord_reconnects",
            "Times the Discord gateway connection came back after a drop (resumed or new)",
            ConstCounter::new(discord.reconnects),
        );
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r)?;
        Ok(out)
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{Limit, Metrics, Snapshot, audit_write_histogram};
    use crate::audit::Actor;
    use crate::requests::State;

    fn by(via: &'static str) -> Actor {
        Actor {
            who: "someone".into(),
            via,
        }
    }

    #[test]
    fn settled_requests_are_counted_and_a_persons_decision_is_timed() {
        let m = Metrics::new(audit_write_histogram());
        let filed = SystemTime::UNIX_EPOCH;
        let at = filed + Duration::from_secs(7);
        m.settled(
            filed,
            &State::Denied {
                by: by("discord"),
                at,
                reason: "no".into(),
                given: None,
            },
        );
        m.settled(filed, &State::Expired { at });
        m.settled(filed, &State::Pending { approvals: vec![] });
        m.released();
        m.released();
        m.rate_limited(Limit::PerMinute);
        let text = m
            .render(&Snapshot {
                requests_pending: 3,
                ..Snapshot::default()
            })
            .unwrap();
        for line in [
            "keygate_requests_total{outcome=\"denied\",via=\"discord\"} 1",
            "keygate_requests_total{outcome=\"expired\",via=\"clock\"} 1",
            "keygate_releases_total 2",
            "keygate_approval_seconds_count 1",
            "keygate_approval_seconds_sum 7.0",
            "keygate_approval_seconds_bucket{le=\"5\"} 0",
            "keygate_approval_seconds_bucket{le=\"10\"} 1",
            "keygate_rate_limited_total{limit=\"per_minute\"} 1",
            "keygate_requests_pending 3",
            "keygate_grants_live 0",
            "keygate_discord_connected 0",
            "# TYPE keygate_requests_total counter",
            "# TYPE keygate_approval_seconds histogram",
            "# TYPE keygate_discord_connected gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("pending\",via"), "{text}");
    }
}
