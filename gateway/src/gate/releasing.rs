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
        let found = self.grants.find(agent, secret, command);
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
        let found = self.grants.find(agent, secret, command);
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
        if let Some(g) = found.as_ref().filter(|_| self.store.keeps_values()) {
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
        if !self.audit.is_writable() {
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
        let value = match self.store.get(secret).await.map_err(GateError::from) {
            Ok(Some(v)) => v,
            Ok(None) => {
                if let Some(g) = &grant {
                    g.give_back(secret);
                }
                return Err(GateError::Conflict(format!(
                    "the secret `{secret}` is not in the store: ask the operator to `keygate secrets set {secret}`"
                )));
            }
            Err(e) => {
                if let Some(g) = &grant {
                    g.give_back(secret);
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
                g.give_back(secret);
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
