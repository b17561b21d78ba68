//! Step 3: the release point. The value goes out only under a live grant of this agent's
//! that covers the secret (a single-use grant is spent by the read), or a rule that allows
//! it outright; every release is audited before it is answered, and a failing audit log
//! releases nothing.

use std::sync::Arc;

use keygate_policies::Decision;
use keygate_proto::SecretName;
use keygate_proto::api::Release;

use super::{Gate, GateError};
use crate::audit::Event;
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
        let (grant, basis) = if let Some(g) = found.as_ref() {
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
        Ok(Release {
            name: secret.clone(),
            value,
            grant: grant.map(|g| g.reference()),
        })
    }
}
