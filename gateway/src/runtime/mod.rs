//! Starting the gate: what `keygated serve` and `keygate --standalone` both do before
//! anything is served — take the state directory's [`lock`], read the policies, open the
//! secret store, the audit log and the identities, build the [`Gate`], and wire in
//! Discord ([`discord`]). One copy, so that the daemon and the standalone CLI open the
//! same state the same way and cannot drift apart. [`standalone`] is the CLI's side.

pub mod cluster;
pub mod discord;
pub mod lock;
pub mod standalone;

use std::path::Path;
use std::sync::Arc;

use keygate_policies::Policy;
use tokio::sync::mpsc;

pub use self::lock::{Holder, LockError, StateLock};
use crate::audit::{AuditLog, Event};
use crate::config::Config;
use crate::gate::Gate;
use crate::grants::Ended;
use crate::identity::Identities;
use crate::store;

/// Why the gate could not start; each says what to fix, on one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot read {}: {source}", .path.display())]
    PolicyRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Policy(#[from] keygate_policies::PolicyError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("the secret store's task failed")]
    StoreTask(#[source] tokio::task::JoinError),
    #[error("the audit log cannot be written; refusing to start: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("{0}")]
    Identity(#[from] crate::identity::IdentityError),
    #[error("Discord: {0}")]
    Discord(#[from] keygate_bot::BotError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Cluster(#[from] keygate_cluster::ClusterError),
    #[error(
        "no agent named `{0}`: standalone acts only as a registered agent (add it with `keygate --standalone agents add {0}`)"
    )]
    UnknownAgent(keygate_proto::AgentName),
}

/// Reads the policies file. A missing file is an empty policy (everything denied), said
/// loudly; a broken one is an error.
pub fn load_policy(path: &Path) -> Result<Policy, StartError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "no policies file at {}: every request will be denied until you write one",
                path.display()
            );
            return Ok(Policy::empty());
        }
        Err(source) => {
            return Err(StartError::PolicyRead {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let policy = Policy::parse(&text, &path.display().to_string())?;
    for w in policy.warnings() {
        tracing::warn!("{w}");
    }
    Ok(policy)
}

/// The gate over the configuration's state, with the lock that keeps it ours.
#[derive(Debug)]
pub struct Opened {
    pub gate: Arc<Gate>,
    /// Grants that end on their own: hand it to [`Gate::run_maintenance`].
    pub ended: mpsc::UnboundedReceiver<Ended>,
    /// Held for as long as the gate serves.
    pub lock: StateLock,
}

/// The state directory whose lock guards `config`'s state: the audit log's.
fn lock_dir(config: &Config) -> &Path {
    config
        .audit
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(&config.paths.state_dir)
}

/// Takes the lock for `holder` (refusing at once if someone else serves this state),
/// then opens the policies, the store, the audit log (writing the first line of this
/// run, which must succeed) and the identities, and builds the gate. No approval channel
/// is added: that is the caller's choice.
pub async fn open(config: &Config, holder: Holder) -> Result<Opened, StartError> {
    let lock = StateLock::acquire(lock_dir(config), holder)?;
    let policy = load_policy(&config.policies)?;
    let rules = policy.rules().len();

    let mut store_config = store::StoreConfig::new(&config.paths.data_dir);
    store_config.choice = config.store;
    store_config.passphrase.clone_from(&config.store_passphrase);
    store_config.redis_url.clone_from(&config.cluster_redis_url);
    let opened = tokio::task::spawn_blocking(move || store::open(&store_config))
        .await
        .map_err(StartError::StoreTask)??;
    let backend = opened.backend();
    tracing::info!("secret store: {backend} ({})", opened.why);
    if opened.store.is_locked() {
        tracing::warn!("the secret store is locked: releases fail until `keygate unlock`");
    }

    let audit = AuditLog::open(&config.audit)?;
    let started = match holder {
        Holder::Daemon => Event::DaemonStarted {
            store: backend.as_str(),
            rules,
        },
        Holder::Standalone => Event::StandaloneStarted {
            store: backend.as_str(),
            rules,
            pid: std::process::id(),
        },
    };
    audit.record(&started)?;
    let identities = Identities::load(&config.paths.operator_token(), &config.paths.agents_file())?;
    let (gate, ended) = Gate::new(policy, opened.store, audit, identities, config.limits);
    if holder == Holder::Daemon {
        cluster::join(config, &gate)?;
    }
    Ok(Opened { gate, ended, lock })
}
