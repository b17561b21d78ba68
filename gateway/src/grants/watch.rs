//! Watching grants (`keygate exec`): a watcher learns when its grant stops being live or
//! one of its secrets changes. Grants are remembered for an hour after they end, so a
//! late watcher still learns how its grant ended.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use keygate_proto::api::{GrantStatus, GrantWatch};
use keygate_proto::{GrantId, SecretName, Timestamp};
use tokio::sync::watch;

use super::Grant;
use crate::identity::Agent;

/// How many secret changes are remembered for watchers.
const MAX_CHANGES: usize = 4096;
/// How long an ended grant is remembered.
const REMEMBER: Duration = Duration::from_secs(3600);

/// What a watcher needs to know about a grant, even after it is gone.
#[derive(Debug, Clone)]
struct Known {
    agent: Agent,
    secrets: Vec<SecretName>,
    expires_at: SystemTime,
    ended: Option<(GrantStatus, Instant)>,
}

/// Why a watch answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchError {
    /// No such grant, or not the caller's.
    NotFound,
    ShuttingDown,
}

/// Grants issued (kept an hour after they end) and recent secret changes, by epoch.
#[derive(Debug)]
pub struct Watch {
    known: Mutex<HashMap<GrantId, Known>>,
    /// Bumped whenever a grant ends or a secret changes; watchers wait on it.
    epoch: watch::Sender<u64>,
    changes: Mutex<VecDeque<(u64, SecretName)>>,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            known: Mutex::default(),
            // 0 means "no epoch seen yet" to watchers, so real epochs start at 1.
            epoch: watch::channel(1).0,
            changes: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Watch {
    pub(super) fn issued(&self, grant: &Grant) {
        lock(&self.known).insert(
            grant.id.clone(),
            Known {
                agent: grant.agent.clone(),
                secrets: grant.secrets.clone(),
                expires_at: grant.expires_at(),
                ended: None,
            },
        );
    }

    /// A grant's end moved. Watchers need no wake-up: each one's sleep ends at the old
    /// end at the latest, and then it reads this.
    pub(super) fn extended(&self, id: &GrantId, expires_at: SystemTime) {
        if let Some(k) = lock(&self.known).get_mut(id) {
            k.expires_at = expires_at;
        }
    }

    pub(super) fn ended(&self, id: &GrantId, status: GrantStatus) {
        if let Some(k) = lock(&self.known).get_mut(id)
            && k.ended.is_none()
        {
            k.ended = Some((status, Instant::now()));
        }
        self.epoch.send_modify(|e| *e += 1);
    }

    pub(super) fn secret_changed(&self, name: SecretName) {
        // Record the change before announcing its epoch, so a watcher woken by the new
        // epoch always finds it.
        let mut changes = lock(&self.changes);
        let epoch = *self.epoch.borrow() + 1;
        changes.push_back((epoch, name));
        while changes.len() > MAX_CHANGES {
            changes.pop_front();
        }
        self.epoch.send_modify(|e| *e = (*e).max(epoch));
    }

    pub(super) fn purge(&self) {
        lock(&self.known).retain(|_, k| k.ended.is_none_or(|(_, at)| at.elapsed() < REMEMBER));
    }

    /// A grant's state now, for `agent` (`None`: the operator): `None` if unknown to them.
    fn state(&self, id: &GrantId, agent: Option<&Agent>) -> Option<(GrantStatus, Known)> {
        let known = lock(&self.known).get(id).cloned()?;
        if agent.is_some_and(|a| a != &known.agent) {
            return None;
        }
        let status = match known.ended {
            Some((s, _)) => s,
            None if SystemTime::now() >= known.expires_at => GrantStatus::Expired,
            None => GrantStatus::Live,
        };
        Some((status, known))
    }

    /// Answers when the grant stops being live, or one of its secrets changed after
    /// `since` (ignored when 0), or after `wait`, or when `stop` turns.
    pub async fn wait(
        &self,
        id: &GrantId,
        agent: Option<&Agent>,
        since: u64,
        wait: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> Result<GrantWatch, WatchError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut rx = self.epoch.subscribe();
        loop {
            let epoch = *rx.borrow_and_update();
            let (status, known) = self.state(id, agent).ok_or(WatchError::NotFound)?;
            let changed: Vec<SecretName> = if since == 0 {
                Vec::new()
            } else {
                let mut c: Vec<SecretName> = lock(&self.changes)
                    .iter()
                    .filter(|(e, n)| *e > since && known.secrets.contains(n))
                    .map(|(_, n)| n.clone())
                    .collect();
                c.sort();
                c.dedup();
                c
            };
            if status != GrantStatus::Live
                || !changed.is_empty()
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(GrantWatch {
                    id: id.clone(),
                    status,
                    epoch,
                    changed,
                    expires_at: Some(Timestamp::from(known.expires_at)),
                });
            }
            let expiry = known
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::select! {
                _ = rx.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
                () = tokio::time::sleep(expiry) => {}
                _ = stop.changed() => return Err(WatchError::ShuttingDown),
            }
        }
    }
}
