//! Who is calling: the operator (one token, in a 0600 file the daemon writes on first
//! start) or an agent (a token printed once by `keygate agents add`). The daemon keeps
//! only SHA-256 hashes of agent tokens; tokens carry 256 random bits, so a fast hash is
//! enough, and hashes are compared in constant time.
//!
//! The agents themselves are a [`Table`], kept in the agents file; in a cluster the
//! file's JSON is also the cluster's value in Redis, and a node trusts its copy only
//! within a [`lease`] of confirming it there (`cluster/agents.rs` keeps it current).

pub mod lease;
mod table;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keygate_proto::{AgentName, Timestamp};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The caller of an API route, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Operator,
    Agent(Agent),
}

impl Caller {
    /// The agent, or `None` for the operator (who sees everything).
    pub fn agent(&self) -> Option<&Agent> {
        match self {
            Self::Operator => None,
            Self::Agent(a) => Some(a),
        }
    }

    /// Whether something that belongs to `owner` is this caller's to see.
    pub fn sees(&self, owner: &Agent) -> bool {
        self.agent().is_none_or(|a| a == owner)
    }
}

/// An agent as the daemon knows it: its name, and which registration of that name. A
/// name removed and added again is another agent: the requests and grants of the old one
/// never pass to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub name: AgentName,
    /// Random, chosen when the agent is added.
    pub serial: u64,
}

/// By its serial alone: random, so it spreads well, and equal agents have equal serials
/// (the grant index hashes an agent on every grant hit).
impl std::hash::Hash for Agent {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.serial.hash(state);
    }
}

impl std::fmt::Display for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.name.fmt(f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `origin` is the file's path, or the Redis key the cluster keeps the agents in.
    #[error("{origin}: not a keygate agents file: {message}")]
    Corrupt { origin: String, message: String },
    #[error("agent `{0}` already exists")]
    Exists(AgentName),
    #[error("no agent named `{0}`")]
    Unknown(AgentName),
}

/// A clustered node's copy of the agents has not been confirmed within its lease
/// ([`lease`]): an agent's token cannot be judged until it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this node's copy of the agents is not confirmed with the cluster's Redis")]
pub struct Unconfirmed;

pub use self::lease::Lease;
pub use self::table::Table;

type Hash = [u8; 32];

fn hash(token: &str) -> Hash {
    Sha256::digest(token.as_bytes()).into()
}

/// Two hashes compared in constant time, a machine word at a time (`subtle` compares a
/// byte slice one byte per optimisation barrier; four words need four).
fn same(a: &Hash, b: &Hash) -> bool {
    let (a, _) = a.as_chunks::<8>();
    let (b, _) = b.as_chunks::<8>();
    let mut eq = subtle::Choice::from(1);
    for (x, y) in a.iter().zip(b) {
        eq &= u64::from_ne_bytes(*x).ct_eq(&u64::from_ne_bytes(*y));
    }
    bool::from(eq)
}

/// Two byte strings compared in constant time for their length (which a token's format
/// fixes), a machine word at a time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (aw, ar) = a.as_chunks::<8>();
    let (bw, br) = b.as_chunks::<8>();
    let mut diff = 0u64;
    for (x, y) in aw.iter().zip(bw) {
        diff |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in ar.iter().zip(br) {
        diff |= u64::from(x ^ y);
    }
    bool::from(diff.ct_eq(&0))
}

fn new_token(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    SecretString::from(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The operator and the agents, and how to tell a token's owner.
#[derive(Debug)]
pub struct Identities {
    operator: Hash,
    agents_path: PathBuf,
    agents: RwLock<Table>,
    /// Moves on every change to the agents: a [`Remembered`] token from before a change
    /// is looked up again.
    epoch: AtomicU64,
    /// Set when this node is one of a cluster: agents' tokens are judged only while it
    /// holds.
    lease: OnceLock<Lease>,
    /// Tokens made by [`Identities::session`]: this process's only, never written.
    sessions: RwLock<Vec<(Hash, Caller)>>,
}

/// The token a connection last presented, and whose it was (see
/// [`Identities::authenticate_remembered`]). Zeroized when dropped; its `Debug` shows
/// whose token it is, never the token.
pub struct Remembered {
    token: zeroize::Zeroizing<Vec<u8>>,
    caller: Caller,
    epoch: u64,
}

impl std::fmt::Debug for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remembered")
            .field("token", &"<redacted>")
            .field("caller", &self.caller)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Identities {
    /// Loads the operator token (making it on first start) and the agents file.
    pub fn load(operator_token: &Path, agents_path: &Path) -> Result<Self, IdentityError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IdentityError::Io { path, source }
        };
        let operator = match std::fs::read_to_string(operator_token) {
            Ok(t) => hash(t.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = operator_token.parent() {
                    crate::fsutil::ensure_private_dir(dir).map_err(io(operator_token))?;
                }
                let token = new_token("kgo_");
                crate::fsutil::write_private_atomic(
                    operator_token,
                    format!("{}\n", token.expose_secret()).as_bytes(),
                )
                .map_err(io(operator_token))?;
                tracing::info!("wrote a new operator token to {}", operator_token.display());
                hash(token.expose_secret())
            }
            Err(e) => return Err(io(operator_token)(e)),
        };
        let agents = match std::fs::read(agents_path) {
            Ok(bytes) => Table::parse(&bytes, &agents_path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::default(),
            Err(e) => return Err(io(agents_path)(e)),
        };
        Ok(Self {
            operator,
            agents_path: agents_path.to_path_buf(),
            agents: RwLock::new(agents),
            epoch: AtomicU64::new(0),
            lease: OnceLock::new(),
            sessions: RwLock::default(),
        })
    }

    /// Makes this the copy of a cluster's agents: from now on an agent's token is
    /// judged only while the copy's [`Lease`] holds (it starts unconfirmed).
    pub fn follow_cluster(&self) {
        let _ = self.lease.set(Lease::new());
    }

    /// The lease on the copy, when this node is one of a cluster.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.get()
    }

    /// Whether the table may be trusted now: always on one node; in a cluster, while the
    /// lease holds. Asked before the table is read.
    fn trusted(&self) -> bool {
        self.lease.get().is_none_or(Lease::holds)
    }

    /// [`Identities::check`], remembering the answer in `memo` (one connection's): the
    /// same token presented again, with no agent added or removed since, is known
    /// without hashing it. It is compared in constant time with the one remembered.
    pub fn check_remembered(
        &self,
        token: &str,
        memo: &mut Option<Remembered>,
    ) -> Result<Option<Caller>, Unconfirmed> {
        let trusted = self.trusted();
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Some(m) = memo.as_ref()
            && m.epoch == epoch
            && same_bytes(&m.token, token.as_bytes())
        {
            return if trusted || m.caller == Caller::Operator {
                Ok(Some(m.caller.clone()))
            } else {
                Err(Unconfirmed)
            };
        }
        let Some(caller) = self.check(token)? else {
            return Ok(None);
        };
        *memo = Some(Remembered {
            token: zeroize::Zeroizing::new(token.as_bytes().to_vec()),
            caller: caller.clone(),
            epoch,
        });
        Ok(Some(caller))
    }

    /// [`Identities::authenticate`], remembering the answer for one connection (see
    /// [`Identities::check_remembered`]).
    pub fn authenticate_remembered(
        &self,
        token: &str,
        memo: &mut Option<Remembered>,
    ) -> Option<Caller> {
        self.check_remembered(token, memo).ok().flatten()
    }

    /// Whose token is this? `None` for an unknown one, and for any but the operator's
    /// while a clustered copy is unconfirmed (fail closed; [`Identities::check`] tells
    /// that apart).
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        self.check(token).ok().flatten()
    }

    /// Whose token is this: `Ok(None)` for an unknown one; [`Unconfirmed`] when only a
    /// confirmed copy of a cluster's agents could tell (the operator's token is known
    /// whatever the cluster's state).
    pub fn check(&self, token: &str) -> Result<Option<Caller>, Unconfirmed> {
        let trusted = self.trusted();
        let h = hash(token);
        if same(&h, &self.operator) {
            return Ok(Some(Caller::Operator));
        }
        if !trusted {
            return Err(Unconfirmed);
        }
        let agents = self
            .agents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Every hash is compared, in constant time, so timing tells nothing about which
        // (if any) agent is close.
        let mut found = None;
        for (name, r) in &agents.0 {
            if same(&h, &r.token) {
                found = Some(Agent {
                    name: name.clone(),
                    serial: r.serial,
                });
            }
        }
        if let Some(agent) = found {
            return Ok(Some(Caller::Agent(agent)));
        }
        let sessions = self
            .sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut session = None;
        for (h2, caller) in sessions.iter() {
            if same(&h, h2) {
                session = Some(caller.clone());
            }
        }
        // A session of an agent lasts no longer than that registration of it.
        Ok(session.filter(|c| match c {
            Caller::Operator => true,
            Caller::Agent(a) => agents.0.get(&a.name).is_some_and(|r| r.serial == a.serial),
        }))
    }

    /// A fresh token for the operator (`None`) or a registered agent, that works in this
    /// process only: it is kept as a hash in memory, never written anywhere, and dies
    /// with the process. `keygate --standalone` acts through one, so that it goes through
    /// the same authentication and the same per-caller rules as a client of keygated. An
    /// agent that is not registered is refused: policies, audit lines and grants name
    /// registered agents only.
    pub fn session(&self, agent: Option<&AgentName>) -> Result<SecretString, IdentityError> {
        let caller = match agent {
            None => Caller::Operator,
            Some(name) => {
                let agents = self
                    .agents
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let r = agents
                    .0
                    .get(name)
                    .ok_or_else(|| IdentityError::Unknown(name.clone()))?;
                Caller::Agent(Agent {
                    name: name.clone(),
                    serial: r.serial,
                })
            }
        };
        let token = new_token("kgs_");
        self.sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((hash(token.expose_secret()), caller));
        Ok(token)
    }

    /// Adds an agent and returns its token, which is never stored. (A clustered node
    /// adds through the cluster instead: `cluster/agents.rs`.)
    pub fn add(&self, name: &AgentName) -> Result<SecretString, IdentityError> {
        let mut agents = self
            .agents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = agents.clone();
        let token = next.add(name)?;
        self.save(&next.to_json())?;
        *agents = next;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(token)
    }

    /// Removes an agent; its token stops working at once. Returns who it was.
    pub fn remove(&self, name: &AgentName) -> Result<Agent, IdentityError> {
        let mut agents = self
            .agents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = agents.clone();
        let gone = next.remove(name)?;
        self.save(&next.to_json())?;
        *agents = next;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(gone)
    }

    /// A copy of the agents as they stand here.
    pub fn table(&self) -> Table {
        self.agents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the agents with `next` (the cluster's, as Redis holds them) and keeps
    /// them in the agents file too. Returns the registrations that are gone. The file is
    /// this node's copy only: failing to write it is logged, and changes nothing here.
    pub fn install(&self, next: Table) -> Vec<Agent> {
        let json = next.to_json();
        let gone = {
            let mut agents = self
                .agents
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *agents == next {
                return Vec::new();
            }
            let gone = agents.gone_in(&next);
            *agents = next;
            self.epoch.fetch_add(1, Ordering::AcqRel);
            gone
        };
        if let Err(e) = self.save(&json) {
            tracing::warn!("cannot keep this node's copy of the cluster's agents: {e}");
        }
        gone
    }

    /// The agents file.
    pub fn agents_path(&self) -> &Path {
        &self.agents_path
    }

    /// Whether this registration of the agent still exists.
    pub fn is_current(&self, agent: &Agent) -> bool {
        self.agents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .get(&agent.name)
            .is_some_and(|r| r.serial == agent.serial)
    }

    /// Agents and when they were added.
    pub fn list(&self) -> Vec<(AgentName, Timestamp)> {
        self.agents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .iter()
            .map(|(n, r)| (n.clone(), r.created_at))
            .collect()
    }

    fn save(&self, json: &[u8]) -> Result<(), IdentityError> {
        let io = |source| IdentityError::Io {
            path: self.agents_path.clone(),
            source,
        };
        if let Some(dir) = self.agents_path.parent() {
            crate::fsutil::ensure_private_dir(dir).map_err(io)?;
        }
        crate::fsutil::write_private_atomic(&self.agents_path, json).map_err(io)
    }
}

#[cfg(test)]
mod tests;
