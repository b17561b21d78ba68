//! Step 3: the release point. The value goes out only under a live grant of this agent's
//! that covers the secret (a single-use grant is spent by the read), or a rule that allows
//! it outright; every release is audited before it is answered, and a failing audit log
//! releases nothing.
//!
//! The API sends [`Gate::release_json`]: the answer as JSON, in memory that is zeroized
//! once the last copy is dropped. A reusable grant keeps the answer its first read gave
//! for each secret (the grant itself decides whether a read may happen; the kept answer
//! only saves building the same bytes again), until the value changes or the grant ends.
//! [`Gate::release_kept`] serves such a repeated read at once, with no await.

use std::sync::Arc;

use bytes::Bytes;
use keygate_policies::Decision;
use keygate_proto::SecretName;
use keygate_proto::api::Release;

use super::{Gate, GateError};
use crate::audit::Event;
use crate::grants::Grant;
use crate::identity::Agent;
use keygate_cluster::state::Read;

impl Gate {
    /// The release point: the value, if `agent` holds a live grant for `secret` or a rule
    /// allows it outright.
    pub async fn release(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
    ) -> Result<Release, GateError> {
        // A failing audit log releases nothing, not even reads that share a grant's line.
        self.audit.ensure_writable()?;
        let found = self.find(agent, secret, command).await;
        // Held until the value is handed over: a revocation waits for this read.
        let _open = match &found {
            Some(g) => Some(g.hold().await.ok_or(GateError::NoGrant)?),
            None => None,
        };
        self.release_under(agent, secret, found.as_ref()).await
    }

    /// [`Gate::release`], answered as the JSON the API sends.
    pub async fn release_json(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
    ) -> Result<Bytes, GateError> {
        self.audit.ensure_writable()?;
        let found = self.find(agent, secret, command).await;
        let _open = match &found {
            Some(g) => Some(g.hold().await.ok_or(GateError::NoGrant)?),
            None => None,
        };
        // Read before the value: an answer is kept only under the generation that was
        // current before its value was read, so a change meanwhile makes it stale.
        let generation = self.store.generation();
        if let Some(body) = found.as_ref().and_then(|g| g.answer(secret, generation)) {
            self.metrics.released();
            return Ok(body);
        }
        let release = self.release_under(agent, secret, found.as_ref()).await?;
        let mut json = zeroize::Zeroizing::new(Vec::with_capacity(256));
        serde_json::to_writer(&mut *json, &release).map_err(GateError::Encode)?;
        let body = Bytes::from_owner(json);
        // A store other nodes write too (Redis) may change without this node hearing of
        // it: nothing read from it is kept.
        if let Some(g) = found
            .as_ref()
            .filter(|_| self.store.keeps_values() && self.cluster().is_none())
        {
            g.keep_answer(secret, generation, &body);
        }
        Ok(body)
    }

    /// A repeated read under a reusable grant, answered at once with the answer its first
    /// read gave: the same checks as [`Gate::release_json`], with no await. `None` when
    /// anything needs more (no such grant, nothing kept, the value changed, the audit log
    /// failing, the grant being closed): nothing was taken or counted, and the read goes
    /// the whole way.
    pub fn release_kept(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
    ) -> Option<Bytes> {
        self.release_kept_where(
            agent,
            |s| s == secret,
            command,
            std::time::Instant::now(),
            &mut crate::grants::LastGrant::default(),
        )
    }

    /// [`Gate::release_kept`] for the secret `is_secret` picks out (the API matches the
    /// name as it is in the path, building nothing), at `now`, trying `last` (the
    /// connection's last grant) first.
    pub fn release_kept_where(
        &self,
        agent: &Agent,
        is_secret: impl Fn(&SecretName) -> bool,
        command: Option<&str>,
        now: std::time::Instant,
        last: &mut crate::grants::LastGrant,
    ) -> Option<Bytes> {
        // On a cluster every read asks Redis whether the grant still lives.
        if !self.audit.is_writable() || self.cluster().is_some() {
            return None;
        }
        let kept = self.grants.take_kept_where(
            agent,
            is_secret,
            command,
            self.store.generation(),
            now,
            last,
        );
        if kept.is_some() {
            self.metrics.released();
        }
        kept
    }

    /// A live grant of `agent` for `secret`, its read taken. On a cluster, a grant made
    /// on another node a moment ago may not be copied here yet: on a miss the agent's
    /// grants are read from Redis, once.
    async fn find(
        &self,
        agent: &Agent,
        secret: &SecretName,
        command: Option<&str>,
    ) -> Option<Arc<Grant>> {
        let found = self.grants.find(agent, secret, command);
        match (found, self.cluster()) {
            (None, Some(c)) if self.copy_grants_of(c, &agent.name).await => {
                self.grants.find(agent, secret, command)
            }
            (found, _) => found,
        }
    }

    /// On a cluster, the read just taken under `grant` counted in Redis, which says in
    /// the same step whether the grant still lives anywhere (revoked on another node: it
    /// is gone there) and, for a single-use grant, whether another node read it first.
    /// With the Redis secret store it also answers the sealed secrets' nonce, so that a
    /// store whose copy is current serves the value with no second round trip.
    async fn check_shared(
        &self,
        grant: Option<&Arc<Grant>>,
        secret: &SecretName,
    ) -> Result<Option<Vec<u8>>, GateError> {
        let (Some(c), Some(g)) = (self.cluster(), grant) else {
            return Ok(None);
        };
        let mark = (self.store.backend() == crate::store::Backend::Redis)
            .then_some(crate::store::redis::NONCE_MARK);
        let read = c
            .shared
            .read_marked(
                g.id.as_str(),
                secret.as_str(),
                !g.reuse,
                c.node.as_str(),
                mark,
            )
            .await;
        match read {
            Ok((Read::Served(_), mark)) => Ok(Some(mark)),
            Ok((Read::Gone, _)) => {
                let revoked = c.shared.was_revoked(g.id.as_str()).await.unwrap_or(true);
                self.drop_copy(&g.id, revoked).await;
                Err(GateError::NoGrant)
            }
            // Read on another node first: spent here too (given back, this copy would
            // stand in front of the agent's other grants for good).
            Ok((Read::Taken, _)) => Err(GateError::NoGrant),
            Err(e) => {
                g.give_back(secret);
                Err(e.into())
            }
        }
    }

    /// A read taken under `grant` was not completed: it may be read again (on a
    /// cluster, on any node).
    fn give_back(&self, grant: &Grant, secret: &SecretName) {
        grant.give_back(secret);
        if let Some(c) = self.cluster().filter(|_| !grant.reuse) {
            let (shared, id, name) = (c.shared.clone(), grant.id.clone(), secret.clone());
            tokio::spawn(async move {
                if let Err(e) = shared.give_back(id.as_str(), name.as_str()).await {
                    tracing::warn!(grant = %id, "cannot give the read back in the cluster: {e}");
                }
            });
        }
    }

    /// The value of `secret` for `agent`, under `grant` (its read taken and held open by
    /// the caller) or, without one, if a rule allows it outright; audited.
    async fn release_under(
        &self,
        agent: &Agent,
        secret: &SecretName,
        found: Option<&Arc<Grant>>,
    ) -> Result<Release, GateError> {
        let (grant, basis) = if let Some(g) = found {
            (Some(Arc::clone(g)), None)
        } else {
            let eval = self.policy().evaluate(&agent.name, secret, None);
            if eval.decision != Decision::Allow {
                return Err(GateError::NoGrant);
            }
            (None, Some(eval.rule.unwrap_or_default()))
        };
        // On a cluster, asked first: Redis counts the read and says whether the sealed
        // secrets this node holds are current (then nothing else crosses the network).
        let mark = self.check_shared(grant.as_ref(), secret).await?;
        let current = mark.and_then(|m| self.store.current(secret, &m));
        let got = match current {
            Some(v) => Ok(v),
            None => self.store.get(secret).await.map_err(GateError::from),
        };
        let value = match got {
            Ok(Some(v)) => v,
            Ok(None) => {
                if let Some(g) = &grant {
                    self.give_back(g, secret);
                }
                return Err(GateError::Conflict(format!(
                    "the secret `{secret}` is not in the store: ask the operator to `keygate secrets set {secret}`"
                )));
            }
            Err(e) => {
                if let Some(g) = &grant {
                    self.give_back(g, secret);
                }
                return Err(e);
            }
        };
        let logged = match &grant {
            Some(g) => g.log_first_read(secret, || {
                self.audit.record(&Event::Released {
                    agent: &agent.name,
                    secret,
                    grant: Some(&g.id),
                    basis: "grant",
                })
            }),
            None => self.audit.record(&Event::Released {
                agent: &agent.name,
                secret,
                grant: None,
                basis: basis.as_deref().unwrap_or("rule"),
            }),
        };
        if let Err(e) = logged {
            if let Some(g) = &grant {
                self.give_back(g, secret);
            }
            return Err(e.into());
        }
        self.metrics.released();
        Ok(Release {
            name: secret.clone(),
            value,
            grant: grant.map(|g| g.reference()),
        })
    }
}

#[cfg(test)]
mod tests;
