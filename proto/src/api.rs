//! The HTTP API's wire types, shared by the daemon and the CLI. `docs/api.md` documents
//! them route by route. Bodies a client sends refuse unknown fields; bodies the daemon
//! sends may grow new fields, so clients ignore what they do not know.

use serde::{Deserialize, Serialize, Serializer};

use crate::{AgentName, GrantId, RequestId, SecretName, SecretValue, Timestamp};

/// Every error: `{"error": "<code>", "message": "<one line>"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
}

/// What went wrong, as programs match on it (`docs/api.md` lists when each is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NoGrant,
    WrongPassphrase,
    NotFound,
    Timeout,
    AlreadyDecided,
    Exists,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    AuditFailed,
    StoreError,
    IdentityError,
    Internal,
    ChannelFailed,
    /// An extension that cannot add anything: the grant already ends at its approval
    /// time + the rule's `max_ttl`.
    MaxTtlReached,
    Busy,
    StoreLocked,
    ShuttingDown,
    /// The cluster's Redis does not answer: nothing that needs it is decided or released.
    ClusterUnavailable,
    /// A code this client does not know (from a newer daemon).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NoGrant => "no_grant",
            Self::WrongPassphrase => "wrong_passphrase",
            Self::NotFound => "not_found",
            Self::Timeout => "timeout",
            Self::AlreadyDecided => "already_decided",
            Self::Exists => "exists",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::AuditFailed => "audit_failed",
            Self::StoreError => "store_error",
            Self::IdentityError => "identity_error",
            Self::Internal => "internal",
            Self::ChannelFailed => "channel_failed",
            Self::MaxTtlReached => "max_ttl_reached",
            Self::Busy => "busy",
            Self::StoreLocked => "store_locked",
            Self::ShuttingDown => "shutting_down",
            Self::ClusterUnavailable => "cluster_unavailable",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/requests`: an agent asks for secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRequest {
    pub secrets: Vec<SecretName>,
    #[serde(default)]
    pub reason: String,
    /// A humantime duration (`10m`); the policy's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// For `keygate exec`: the argv that will run; the grant is bound to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The host the agent runs on, shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The life of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
}

impl RequestStatus {
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A grant as a request or a listing refers to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantRef {
    pub id: GrantId,
    pub expires_at: Timestamp,
}

/// A request, as `GET /v1/requests/{id}` and `keygate requests --json` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestView {
    pub id: RequestId,
    pub agent: AgentName,
    pub secrets: Vec<SecretName>,
    pub reason: String,
    pub status: RequestStatus,
    pub created_at: Timestamp,
    /// When a pending request stops waiting for a decision.
    pub expires_at: Timestamp,
    /// The TTL the grant will have (or has), in seconds.
    pub ttl_seconds: u64,
    pub quorum: u32,
    /// Who approved so far (all approvers once approved).
    #[serde(default)]
    pub approvals: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// `terminal`, `discord` or `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_via: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    /// Why it was denied or ended, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The reason a person (an approver or the operator) gave when denying it, as they
    /// wrote it (at most [`MAX_DENIAL_REASON`] characters); absent when they gave none,
    /// and for every other outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantRef>,
    /// The rule that decided, or absent when no rule matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Where the request was posted for approval (`terminal`, `discord`).
    #[serde(default)]
    pub posted_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The host the agent said it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A live grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantView {
    pub id: GrantId,
    pub agent: AgentName,
    pub secrets: Vec<SecretName>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub approved_by: Vec<String>,
    pub reuse: bool,
    pub request: RequestId,
    /// Reads so far.
    pub reads: u64,
}

/// `GET /v1/secrets/{name}`: the release.
#[derive(Debug, Serialize, Deserialize)]
pub struct Release {
    pub name: SecretName,
    #[serde(serialize_with = "expose")]
    pub value: SecretValue,
    /// Absent when a rule allows the secret outright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantRef>,
}

fn expose<S: Serializer>(v: &SecretValue, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.expose())
}

/// `POST /v1/requests/{id}/approve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// The longest reason a denial may carry, in characters: a longer one is refused, not
/// cut, so the agent reads what the person wrote or nothing.
pub const MAX_DENIAL_REASON: usize = 400;

/// `POST /v1/requests/{id}/deny`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/grants/revoke`: exactly one selector.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretName>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    pub revoked: Vec<GrantId>,
}

/// `PUT /v1/secrets/{name}` (operator).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSecretBody {
    pub value: SecretValue,
}

impl Serialize for SetSecretBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("SetSecretBody", 1)?;
        st.serialize_field("value", self.value.expose())?;
        st.end()
    }
}

/// A secret's metadata: never its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: SecretName,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub size: usize,
    pub backend: String,
}

/// `POST /v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddAgentBody {
    pub name: AgentName,
}

/// The answer to `POST /v1/agents`: the token, shown once.
#[derive(Serialize, Deserialize)]
pub struct NewAgent {
    pub name: AgentName,
    pub token: String,
}

impl std::fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAgent")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: AgentName,
    pub created_at: Timestamp,
}

/// One item of `GET /v1/policy/secrets`: a stored secret the calling agent may ask for,
/// and what the policy says about it. Never a value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskableSecret {
    pub name: SecretName,
    /// `allow` (released without asking) or `ask` (a person approves each request).
    pub decision: String,
    /// The deciding rule's name.
    pub rule: Option<String>,
}

/// `GET /v1/policy/check?agent=&secret=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyCheck {
    pub agent: AgentName,
    pub secret: SecretName,
    /// `allow`, `ask` or `deny`.
    pub decision: String,
    pub rule: Option<String>,
    pub reason: String,
    pub ttl_seconds: u64,
    pub request_timeout_seconds: u64,
    pub reuse: bool,
    pub quorum: Option<u32>,
    pub approver_groups: Vec<String>,
}

/// `POST /v1/store/unlock`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    pub passphrase: SecretValue,
}

impl Serialize for UnlockBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("UnlockBody", 1)?;
        st.serialize_field("passphrase", self.passphrase.expose())?;
        st.end()
    }
}

impl std::fmt::Debug for UnlockBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockBody(<redacted>)")
    }
}

/// `GET /v1/audit/verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditVerify {
    pub ok: bool,
    pub lines: u64,
    /// The first line that breaks the chain (1-based), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_seconds: u64,
    /// Daemon-wide facts (`store_backend`, `store_locked`, `agents`, `policy_rules`) are
    /// for the operator; an agent gets `None` and sees only its own counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_locked: Option<bool>,
    /// The caller's own for an agent, every one for the operator.
    pub pending_requests: usize,
    /// The caller's own for an agent, every one for the operator.
    pub live_grants: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<usize>,
    /// The state of the channel named `discord` (as in [`Status::channels`]), or `not
    /// configured`: kept for scripts that read it.
    pub discord: String,
    /// The names of [`Status::channels`], in the same order.
    pub approval_channels: Vec<String>,
    /// Every approval channel and how it stands.
    #[serde(default)]
    pub channels: Vec<ChannelStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_rules: Option<usize>,
    /// This node's place in its cluster; `null` when it is not one of several.
    #[serde(default)]
    pub cluster: Option<ClusterStatus>,
}

/// `cluster` in [`Status`]: `{"node": "a", "redis": "connected", "discord_leader": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// `KEYGATE_CLUSTER_NODE` (default: host name and pid).
    pub node: String,
    /// `connected` or `unreachable`.
    pub redis: String,
    /// Whether this node holds the lease that runs the cluster's one Discord bot.
    pub discord_leader: bool,
}

impl Status {
    /// What the `discord` field says for these channels.
    pub fn discord_state(channels: &[ChannelStatus]) -> String {
        channels
            .iter()
            .find(|c| c.name == "discord")
            .map_or_else(|| "not configured".to_owned(), |c| c.state.clone())
    }
}

/// One approval channel in [`Status`]: `{"name": "discord", "state": "connected"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// `terminal`, `discord`: what `decided_via` names it.
    pub name: String,
    /// `ready` (nothing to connect to), `connecting`, `connected`, `reconnecting`, or
    /// `stopped: <why>` (see [`crate::approval::ChannelState`]).
    pub state: String,
}

/// The header `keygate exec` sends with `GET /v1/secrets/{name}`: the SHA-256 of the
/// argv it will run (see [`command_hash`]). A grant bound to a command serves only reads
/// that present the same hash.
pub const COMMAND_HEADER: &str = "x-keygate-command";

/// The SHA-256 (hex) of an argv, each argument followed by a NUL byte, so that
/// `["a b"]` and `["a", "b"]` differ.
pub fn command_hash(argv: &[String]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for a in argv {
        h.update(a.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Whether a grant can still release anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    Live,
    Expired,
    Revoked,
}

/// `GET /v1/grants/{id}/watch?since=EPOCH&wait=DURATION`: answers when the grant ends,
/// or when one of its secrets changed after `since`, or after `wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantWatch {
    pub id: GrantId,
    pub status: GrantStatus,
    /// Pass this as `since` next time.
    pub epoch: u64,
    /// The grant's secrets whose values changed after `since`.
    #[serde(default)]
    pub changed: Vec<SecretName>,
    /// When the grant ends now (later than at release once it is extended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// `POST /v1/grants/{id}/extend` (operator): `by` is a humantime duration, the grant's
/// own TTL when absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times in API bodies are the strings `docs/api.md` promises: RFC 3339, UTC, seconds.
    #[test]
    fn times_on_the_wire_are_rfc3339_strings() {
        let at = |s: &str| Timestamp::parse(s).unwrap();
        let grant = GrantView {
            id: GrantId::parse("gnt_0123456789abcdefghijkl").unwrap(),
            agent: AgentName::new("ci").unwrap(),
            secrets: vec![SecretName::new("db/password").unwrap()],
            created_at: at("2026-01-01T00:00:00Z"),
            expires_at: at("2026-01-01T00:20:00Z"),
            approved_by: vec!["alice".into()],
            reuse: false,
            request: RequestId::parse("req_0123456789abcdefghijkl").unwrap(),
            reads: 0,
        };
        let json = serde_json::to_value(&grant).unwrap();
        assert_eq!(json["created_at"], "2026-01-01T00:00:00Z");
        assert_eq!(json["expires_at"], "2026-01-01T00:20:00Z");
        let back: GrantView = serde_json::from_value(json).unwrap();
        assert_eq!(back.expires_at, grant.expires_at);

        let mut bad = serde_json::to_value(&grant).unwrap();
        bad["expires_at"] = "tomorrow".into();
        let err = serde_json::from_value::<GrantView>(bad).unwrap_err();
        assert!(err.to_string().contains("bad time `tomorrow`"), "{err}");

        let info: SecretInfo = serde_json::from_str(
            r#"{"name": "a", "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-02T03:04:05Z", "size": 3, "backend": "memory"}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&info).unwrap()["updated_at"],
            "2026-01-02T03:04:05Z"
        );
    }
}
