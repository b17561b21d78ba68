//! Step 5, the operator's side: secrets, the store's lock, and status (agents are in
//! [`super::agents`]). Each change is audited before it is made.

use keygate_proto::api::{ChannelStatus, Status};
use keygate_proto::approval::ChannelState;
use keygate_proto::{SecretName, SecretValue};

use super::{Gate, GateError};
use crate::audit::Event;
use crate::identity::Caller;
use crate::store::SecretMeta;

impl Gate {
    pub async fn set_secret(
        &self,
        name: SecretName,
        value: SecretValue,
    ) -> Result<SecretMeta, GateError> {
        let size = value.len();
        self.audit.record(&Event::SecretSet { name: &name, size })?;
        let meta = self.store.set(name.clone(), value).await?;
        self.grants.secret_changed(name);
        Ok(meta)
    }

    pub async fn remove_secret(&self, name: SecretName) -> Result<bool, GateError> {
        self.audit.record(&Event::SecretRemoved { name: &name })?;
        let removed = self.store.remove(name.clone()).await?;
        self.grants.secret_changed(name);
        Ok(removed)
    }

    pub async fn list_secrets(&self) -> Result<Vec<SecretMeta>, GateError> {
        Ok(self.store.list().await?)
    }

    pub async fn lock_store(&self) -> Result<(), GateError> {
        self.audit.record(&Event::StoreLocked)?;
        let locked = self.store.lock().await;
        // No decrypted value stays behind, in the store's cache or in a grant's answer.
        self.grants.forget_answers(None);
        Ok(locked?)
    }

    /// Whether releases fail until the store is unlocked.
    pub fn store_locked(&self) -> bool {
        self.store.is_locked()
    }

    pub async fn unlock_store(&self, passphrase: secrecy::SecretString) -> Result<(), GateError> {
        self.store.unlock(passphrase).await?;
        self.audit.record(&Event::StoreUnlocked)?;
        Ok(())
    }

    /// Every metric, in the Prometheus text format: the counters as they stand and, read
    /// from the tables now, what the daemon holds (for the operator only: the API checks).
    pub fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let discord = self
            .channels()
            .iter()
            .find(|c| c.name() == "discord")
            .map(|c| crate::metrics::DiscordSnapshot {
                connected: c.state() == ChannelState::Connected,
                reconnects: c.reconnects(),
            });
        self.metrics.render(&crate::metrics::Snapshot {
            requests_pending: self.requests.pending_of(None),
            grants_live: self.grants.list().len(),
            store_locked: self.store.is_locked(),
            discord,
        })
    }

    /// The daemon's state as `caller` may see it: an agent sees its own requests and
    /// grants, and nothing daemon-wide.
    pub fn status(&self, caller: &Caller) -> Status {
        let operator = caller.agent().is_none();
        let pending_requests = self.requests.pending_of(caller.agent());
        let mut channels: Vec<ChannelStatus> = self
            .channels()
            .iter()
            .map(|c| ChannelStatus {
                name: c.name().to_owned(),
                state: c.state().to_string(),
            })
            .collect();
        // On a cluster only the lease holder runs the bot; the others stand by.
        if self.cluster().is_some_and(|c| c.runs_bot())
            && !channels.iter().any(|c| c.name == "discord")
        {
            channels.push(ChannelStatus {
                name: "discord".into(),
                state: "standby: the node holding the lease runs the bot".into(),
            });
        }
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.started.elapsed().as_secs(),
            store_backend: operator.then(|| self.store.backend().to_string()),
            store_locked: operator.then(|| self.store.is_locked()),
            pending_requests,
            live_grants: self.list_grants(caller).len(),
            agents: operator.then(|| self.identities.list().len()),
            discord: Status::discord_state(&channels),
            approval_channels: channels.iter().map(|c| c.name.clone()).collect(),
            channels,
            policy_rules: operator.then(|| self.policy().rules().len()),
            cluster: self.cluster().map(|c| c.status()),
        }
    }
}
