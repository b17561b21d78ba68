//! Requests and grants as the cluster's Redis holds them: JSON records that every node
//! reads back into the same typed [`Request`] and [`Grant`]. Times are milliseconds
//! since the Unix epoch (the nodes' clocks are assumed to agree to well under a second,
//! as the grant TTLs they enforce already assume). No record ever holds a secret value
//! or a token.

use std::time::{Duration, SystemTime};

use keygate_policies::Approvers;
use keygate_proto::api::GrantRef;
use keygate_proto::approval::DeciderId;
use keygate_proto::{AgentName, GrantId, RequestId, RoleId, SecretName, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::grants::Grant;
use crate::identity::Agent;
use crate::requests::{Approval, Request, State};

/// A record that does not read back (another version's, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("a cluster record does not read back: {0}")]
pub struct RecordError(#[from] serde_json::Error);

fn ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn dur_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `&'static str` a channel or actor's `via` is, from its name in a record: the
/// known ones, else `cluster` (a name this build does not know cannot be made static).
fn known(via: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "terminal",
        "discord",
        "daemon",
        "policy",
        "agent",
        "standalone",
        "mcp",
        "operator",
        "cluster",
    ];
    KNOWN
        .iter()
        .find(|k| **k == via)
        .copied()
        .unwrap_or("cluster")
}

#[derive(Debug, Serialize, Deserialize)]
struct ActorRecord {
    who: String,
    via: String,
}

impl From<&Actor> for ActorRecord {
    fn from(a: &Actor) -> Self {
        Self {
            who: a.who.clone(),
            via: a.via.to_owned(),
        }
    }
}

impl From<ActorRecord> for Actor {
    fn from(a: ActorRecord) -> Self {
        Self {
            who: a.who,
            via: known(&a.via),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum DeciderRecord {
    Policy,
    Operator,
    User { channel: String, id: UserId },
}

#[derive(Debug, Serialize, Deserialize)]
struct ApprovalRecord {
    id: DeciderRecord,
    by: ActorRecord,
}

impl From<&Approval> for ApprovalRecord {
    fn from(a: &Approval) -> Self {
        let id = match a.id {
            DeciderId::Policy => DeciderRecord::Policy,
            DeciderId::Operator => DeciderRecord::Operator,
            DeciderId::User { channel, id } => DeciderRecord::User {
                channel: channel.to_owned(),
                id,
            },
        };
        Self {
            id,
            by: (&a.by).into(),
        }
    }
}

impl From<ApprovalRecord> for Approval {
    fn from(a: ApprovalRecord) -> Self {
        let id = match a.id {
            DeciderRecord::Policy => DeciderId::Policy,
            DeciderRecord::Operator => DeciderId::Operator,
            DeciderRecord::User { channel, id } => DeciderId::User {
                channel: known(&channel),
                id,
            },
        };
        Self {
            id,
            by: a.by.into(),
        }
    }
}

fn approvals(list: &[Approval]) -> Vec<ApprovalRecord> {
    list.iter().map(ApprovalRecord::from).collect()
}

fn approvals_back(list: Vec<ApprovalRecord>) -> Vec<Approval> {
    list.into_iter().map(Approval::from).collect()
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ApproversRecord {
    users: Vec<UserId>,
    roles: Vec<RoleId>,
    groups: Vec<String>,
}

impl From<&Approvers> for ApproversRecord {
    fn from(a: &Approvers) -> Self {
        Self {
            users: a.users().to_vec(),
            roles: a.roles().to_vec(),
            groups: a.groups().to_vec(),
        }
    }
}

impl From<ApproversRecord> for Approvers {
    fn from(a: ApproversRecord) -> Self {
        Approvers::new(a.users, a.roles, a.groups)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum StateRecord {
    Pending {
        approvals: Vec<ApprovalRecord>,
    },
    Approved {
        by: ActorRecord,
        at: u64,
        approvals: Vec<ApprovalRecord>,
        ttl_ms: u64,
        grant: GrantId,
        grant_ends: u64,
    },
    Denied {
        by: ActorRecord,
        at: u64,
        reason: String,
        given: Option<String>,
    },
    Expired {
        at: u64,
    },
    Cancelled {
        by: ActorRecord,
        at: u64,
        why: String,
    },
}

impl From<&State> for StateRecord {
    fn from(s: &State) -> Self {
        match s {
            State::Pending { approvals: a } => Self::Pending {
                approvals: approvals(a),
            },
            State::Approved {
                by,
                at,
                approvals: a,
                ttl,
                grant,
            } => Self::Approved {
                by: by.into(),
                at: ms(*at),
                approvals: approvals(a),
                ttl_ms: dur_ms(*ttl),
                grant: grant.id.clone(),
                grant_ends: ms(grant.expires_at.system_time()),
            },
            State::Denied {
                by,
                at,
                reason,
                given,
            } => Self::Denied {
                by: by.into(),
                at: ms(*at),
                reason: reason.clone(),
                given: given.clone(),
            },
            State::Expired { at } => Self::Expired { at: ms(*at) },
            State::Cancelled { by, at, why } => Self::Cancelled {
                by: by.into(),
                at: ms(*at),
                why: why.clone(),
            },
        }
    }
}

impl From<StateRecord> for State {
    fn from(s: StateRecord) -> Self {
        match s {
            StateRecord::Pending { approvals } => State::Pending {
                approvals: approvals_back(approvals),
            },
            StateRecord::Approved {
                by,
                at: when,
                approvals,
                ttl_ms,
                grant,
                grant_ends,
            } => State::Approved {
                by: by.into(),
                at: at(when),
                approvals: approvals_back(approvals),
                ttl: Duration::from_millis(ttl_ms),
                grant: GrantRef {
                    id: grant,
                    expires_at: Timestamp::from(at(grant_ends)),
                },
            },
            StateRecord::Denied {
                by,
                at: when,
                reason,
                given,
            } => State::Denied {
                by: by.into(),
                at: at(when),
                reason,
                given,
            },
            StateRecord::Expired { at: when } => State::Expired { at: at(when) },
            StateRecord::Cancelled { by, at: when, why } => State::Cancelled {
                by: by.into(),
                at: at(when),
                why,
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RequestRecord {
    id: RequestId,
    agent: AgentName,
    serial: u64,
    secrets: Vec<SecretName>,
    reason: String,
    command: Option<Vec<String>>,
    command_sha256: Option<String>,
    host: Option<String>,
    created_at: u64,
    expires_at: u64,
    ttl_ms: u64,
    max_ttl_ms: u64,
    reuse: bool,
    rule: Option<String>,
    approvers: ApproversRecord,
    quorum: u32,
    posted_to: Vec<String>,
    state: StateRecord,
}

/// `request` as its record.
pub fn request_json(r: &Request) -> Result<String, RecordError> {
    Ok(serde_json::to_string(&RequestRecord {
        id: r.id.clone(),
        agent: r.agent.name.clone(),
        serial: r.agent.serial,
        secrets: r.secrets.clone(),
        reason: r.reason.clone(),
        command: r.command.clone(),
        command_sha256: r.command_sha256.clone(),
        host: r.host.clone(),
        created_at: ms(r.created_at),
        expires_at: ms(r.expires_at),
        ttl_ms: dur_ms(r.ttl),
        max_ttl_ms: dur_ms(r.max_ttl),
        reuse: r.reuse,
        rule: r.rule.clone(),
        approvers: (&r.approvers).into(),
        quorum: r.quorum,
        posted_to: r.posted_to.clone(),
        state: (&r.state).into(),
    })?)
}

/// A request read back from its record.
pub fn request_from(json: &str) -> Result<Request, RecordError> {
    let r: RequestRecord = serde_json::from_str(json)?;
    Ok(Request {
        id: r.id,
        agent: Agent {
            name: r.agent,
            serial: r.serial,
        },
        secrets: r.secrets,
        reason: r.reason,
        command: r.command,
        command_sha256: r.command_sha256,
        host: r.host,
        created_at: at(r.created_at),
        expires_at: at(r.expires_at),
        ttl: Duration::from_millis(r.ttl_ms),
        max_ttl: Duration::from_millis(r.max_ttl_ms),
        reuse: r.reuse,
        rule: r.rule,
        approvers: r.approvers.into(),
        quorum: r.quorum,
        posted_to: r.posted_to,
        state: r.state.into(),
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct GrantRecord {
    id: GrantId,
    request: RequestId,
    agent: AgentName,
    serial: u64,
    secrets: Vec<SecretName>,
    created_at: u64,
    ends: u64,
    ttl_ms: u64,
    max_ttl_ms: u64,
    approved_by: Vec<String>,
    reuse: bool,
    approvers: ApproversRecord,
    command_sha256: Option<String>,
}

/// `grant` as its record.
pub fn grant_json(g: &Grant) -> Result<String, RecordError> {
    Ok(serde_json::to_string(&GrantRecord {
        id: g.id.clone(),
        request: g.request.clone(),
        agent: g.agent.name.clone(),
        serial: g.agent.serial,
        secrets: g.secrets.clone(),
        created_at: ms(g.created_at),
        ends: ms(g.expires_at()),
        ttl_ms: dur_ms(g.ttl),
        max_ttl_ms: dur_ms(g.max_ttl),
        approved_by: g.approved_by.clone(),
        reuse: g.reuse,
        approvers: (&g.approvers).into(),
        command_sha256: g.command_sha256.clone(),
    })?)
}

/// A grant read back from its record: a local copy of one another node made.
pub fn grant_from(json: &str) -> Result<Grant, RecordError> {
    let g: GrantRecord = serde_json::from_str(json)?;
    Ok(Grant::restore(crate::grants::Parts {
        id: g.id,
        request: g.request,
        agent: Agent {
            name: g.agent,
            serial: g.serial,
        },
        secrets: g.secrets,
        created_at: at(g.created_at),
        ends: at(g.ends),
        ttl: Duration::from_millis(g.ttl_ms),
        max_ttl: Duration::from_millis(g.max_ttl_ms),
        approved_by: g.approved_by,
        reuse: g.reuse,
        approvers: g.approvers.into(),
        command_sha256: g.command_sha256,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_via_this_build_writes_reads_back_as_itself() {
        for via in ["terminal", "discord", "daemon", "policy", "agent"] {
            assert_eq!(known(via), via);
        }
        assert_eq!(known("something-new"), "cluster");
    }
}
