//! Unknown tokens, counted rather than logged one by one. Anyone who can reach a listener
//! can send a bad token, so one audit line (and one fsync) per attempt would let them grow
//! the log without bound. Per kind of failure, the first in a minute is written at once
//! (with its route, cut short); the rest of that minute are summed into one
//! `auth_failures` line. However many peers try, the log grows by at most two lines per
//! kind a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::audit::{AuditLog, Event};

/// How long failures of one kind are summed into one line.
const WINDOW: Duration = Duration::from_secs(60);
/// The most of a route's path kept in a line.
const MAX_ROUTE: usize = 64;

#[derive(Debug)]
struct Window {
    started: Instant,
    route: String,
    /// Failures after the first, not written yet.
    more: u64,
}

/// Counts of failed authentications, by why they failed.
#[derive(Debug, Default)]
pub struct AuthFailures {
    windows: Mutex<HashMap<&'static str, Window>>,
}

/// A route's path as the audit log may hold it: at most [`MAX_ROUTE`] bytes.
fn route_label(path: &str) -> String {
    crate::gate::cut(path, MAX_ROUTE)
}

impl AuthFailures {
    /// One failed authentication on `path`.
    pub fn note(&self, audit: &AuditLog, path: &str, why: &'static str) {
        let (summary, first) = {
            let mut windows = self
                .windows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match windows.get_mut(why) {
                Some(w) if w.started.elapsed() < WINDOW => {
                    w.more += 1;
                    return;
                }
                old => {
                    let summary = old
                        .filter(|w| w.more > 0)
                        .map(|w| (w.route.clone(), w.more));
                    let route = route_label(path);
                    windows.insert(
                        why,
                        Window {
                            started: Instant::now(),
                            route: route.clone(),
                            more: 0,
                        },
                    );
                    (summary, route)
                }
            }
        };
        if let Some((route, count)) = summary {
            audit.record_or_hold(&Event::AuthFailures {
                route: &route,
                why,
                count,
            });
        }
        audit.record_or_hold(&Event::AuthFailed { route: &first, why });
    }

    /// Writes the sums of windows that are over (all of them when `all`, at shutdown).
    pub fn flush(&self, audit: &AuditLog, all: bool) {
        let due: Vec<(&'static str, String, u64)> = {
            let mut windows = self
                .windows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut due = Vec::new();
            windows.retain(|why, w| {
                let over = all || w.started.elapsed() >= WINDOW;
                if over && w.more > 0 {
                    due.push((*why, w.route.clone(), w.more));
                }
                !over
            });
            due
        };
        for (why, route, count) in due {
            audit.record_or_hold(&Event::AuthFailures {
                route: &route,
                why,
                count,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_routes_are_cut_on_a_character_boundary() {
        let long = format!("/v1/{}", "é".repeat(100));
        let label = route_label(&long);
        assert!(label.len() <= MAX_ROUTE + '…'.len_utf8());
        assert!(label.ends_with('…'));
        assert_eq!(route_label("/v1/grants"), "/v1/grants");
    }

    #[test]
    fn a_flood_is_one_line_and_one_sum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = AuditLog::open(&path).unwrap();
        let f = AuthFailures::default();
        for _ in 0..500 {
            f.note(
                &audit,
                &format!("/v1/{}", "x".repeat(10_000)),
                "unknown token",
            );
        }
        f.flush(&audit, true);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("\"auth_failed\""));
        assert!(lines[1].contains("\"auth_failures\"") && lines[1].contains("\"count\":499"));
        assert!(text.len() < 1000, "{} bytes", text.len());
    }
}
