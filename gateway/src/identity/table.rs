//! The agents as the daemon holds them — name, token hash, serial, when added — and
//! their JSON, which is both the agents file and, in a cluster, the value in Redis
//! (`{keygate}:agents`, see `cluster/agents.rs`). A change is made on a copy
//! ([`Table::add`], [`Table::remove`]) that replaces the table only once it is kept.

use std::collections::BTreeMap;

use keygate_proto::{AgentName, Timestamp};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{Agent, Hash, IdentityError, hash, new_token};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgentRecord {
    name: AgentName,
    token_sha256: String,
    created_at: Timestamp,
    /// Absent in files written before serials existed: taken from the token's hash then.
    #[serde(default)]
    serial: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AgentsFile {
    agents: Vec<AgentRecord>,
}

/// What the daemon keeps of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Registered {
    pub(super) token: Hash,
    pub(super) created_at: Timestamp,
    pub(super) serial: u64,
}

/// Every agent, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table(pub(super) BTreeMap<AgentName, Registered>);

impl Table {
    /// Reads the JSON of an agents file; `origin` (a path, or the Redis key) names it in
    /// the error.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, IdentityError> {
        let corrupt = |message: String| IdentityError::Corrupt {
            origin: origin.to_owned(),
            message,
        };
        let file: AgentsFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        let mut agents = BTreeMap::new();
        for a in file.agents {
            let mut h = [0u8; 32];
            hex::decode_to_slice(&a.token_sha256, &mut h)
                .map_err(|e| corrupt(format!("agent `{}`: {e}", a.name)))?;
            let serial = a.serial.unwrap_or_else(|| {
                u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
            });
            agents.insert(
                a.name,
                Registered {
                    token: h,
                    created_at: a.created_at,
                    serial,
                },
            );
        }
        Ok(Self(agents))
    }

    /// The JSON an agents file holds: hashes, never tokens.
    pub fn to_json(&self) -> Vec<u8> {
        let file = AgentsFile {
            agents: self
                .0
                .iter()
                .map(|(name, r)| AgentRecord {
                    name: name.clone(),
                    token_sha256: hex::encode(r.token),
                    created_at: r.created_at,
                    serial: Some(r.serial),
                })
                .collect(),
        };
        // Plain structs of strings and numbers: serializing them cannot fail.
        serde_json::to_vec_pretty(&file).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds an agent and returns its token, which is never stored.
    pub fn add(&mut self, name: &AgentName) -> Result<SecretString, IdentityError> {
        if self.0.contains_key(name) {
            return Err(IdentityError::Exists(name.clone()));
        }
        let token = new_token("kga_");
        let mut serial = [0u8; 8];
        getrandom::fill(&mut serial).expect("the operating system's random source failed");
        self.0.insert(
            name.clone(),
            Registered {
                token: hash(token.expose_secret()),
                created_at: Timestamp::now(),
                serial: u64::from_le_bytes(serial),
            },
        );
        Ok(token)
    }

    /// Removes an agent; returns who it was.
    pub fn remove(&mut self, name: &AgentName) -> Result<Agent, IdentityError> {
        let r = self
            .0
            .remove(name)
            .ok_or_else(|| IdentityError::Unknown(name.clone()))?;
        Ok(Agent {
            name: name.clone(),
            serial: r.serial,
        })
    }

    /// The registrations here that `next` no longer has (removed, or removed and added
    /// again: another agent of the same name).
    pub fn gone_in(&self, next: &Self) -> Vec<Agent> {
        self.0
            .iter()
            .filter(|(name, r)| next.0.get(*name).is_none_or(|n| n.serial != r.serial))
            .map(|(name, r)| Agent {
                name: name.clone(),
                serial: r.serial,
            })
            .collect()
    }
}
