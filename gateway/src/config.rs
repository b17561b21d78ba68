//! The daemon's configuration: `keygated.toml`, then `KEYGATE_<SECTION>_<KEY>` environment
//! variables, which win. A daemon needs no file at all when the environment says enough.
//!
//! Unknown keys are refused, never ignored: a typo in a security product's configuration
//! must not silently fall back to a default.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::store::Choice;
use keygate_proto::net::{UrlKind, check_url};
use keygate_proto::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The shape of `keygated.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    store: FileStore,
    #[serde(default)]
    policies: FilePolicies,
    #[serde(default)]
    discord: FileDiscord,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    audit: FileAudit,
    #[serde(default)]
    cluster: FileCluster,
    #[serde(default)]
    metrics: FileMetrics,
}

/// `[cluster]`: several keygated on one Redis (docs/cluster.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCluster {
    redis_url: Option<String>,
    node: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    socket: Option<PathBuf>,
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStore {
    backend: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicies {
    path: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDiscord {
    token: Option<String>,
    channel_id: Option<u64>,
    guild_id: Option<u64>,
    api_url: Option<String>,
    gateway_url: Option<String>,
    ping: Option<bool>,
}

impl std::fmt::Debug for FileDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDiscord")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    pending_per_agent: Option<u32>,
    requests_per_minute: Option<u32>,
    max_connections: Option<u32>,
    operator_reserve: Option<u32>,
    idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    listen: Option<String>,
}

/// `[discord]`, present only when a bot token is configured: what the Discord approval
/// channel needs, checked here. The daemon's core never reads it; the `keygated` binary
/// hands it to the bot.
pub use keygate_proto::discord::DiscordSettings as DiscordConfig;

/// Limits against floods: per agent, and per listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub pending_per_agent: u32,
    pub requests_per_minute: u32,
    /// Open connections per listener (the Unix socket and the TCP listener each).
    pub max_connections: u32,
    /// Extra Unix-socket slots for the operator, used when every other one is busy.
    pub operator_reserve: u32,
    /// How long a connection may have no request in flight before it is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pending_per_agent: 10,
            requests_per_minute: 60,
            max_connections: 512,
            operator_reserve: 8,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// What the API server needs of them.
    pub fn server(&self) -> crate::api::server::ServerLimits {
        crate::api::server::ServerLimits {
            max_connections: self.max_connections as usize,
            operator_reserve: self.operator_reserve as usize,
            idle_timeout: self.idle_timeout,
        }
    }
}

/// The daemon's whole configuration, resolved.
#[derive(Debug)]
pub struct Config {
    pub paths: Paths,
    pub socket: PathBuf,
    pub listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub store: Choice,
    pub store_passphrase: Option<SecretString>,
    pub policies: PathBuf,
    pub audit: PathBuf,
    pub discord: Option<DiscordConfig>,
    pub limits: Limits,
    /// `KEYGATE_CLUSTER_REDIS_URL` / `[cluster] redis_url`: the cluster's Redis. A
    /// secret, since it may hold Redis's password.
    pub cluster_redis_url: Option<SecretString>,
    /// `KEYGATE_CLUSTER_NODE` / `[cluster] node`: this node's name in the cluster
    /// (default: host name and pid).
    pub cluster_node: Option<keygate_cluster::NodeName>,
    /// `[metrics] listen`: a loopback address that serves `GET /metrics` with no token.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Reads an environment variable, treating an empty value as unset.
fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn env_parsed<T: FromStr>(var: &str, file: Option<T>) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env(var) {
        Some(v) => v.parse().map(Some).map_err(|e: T::Err| ConfigError::Env {
            var: var.into(),
            message: e.to_string(),
        }),
        None => Ok(file),
    }
}

impl Config {
    /// Loads the configuration: `explicit` (from `--config`) or `KEYGATE_CONFIG` or the
    /// default path; a missing default file is fine, a missing named one is an error.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let paths = Paths::from_env();
        let named = explicit
            .map(Path::to_path_buf)
            .or_else(|| env("KEYGATE_CONFIG").map(PathBuf::from));
        let path = named.clone().unwrap_or_else(|| paths.config_file());
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: one_line(&e.to_string()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && named.is_none() => {
                FileConfig::default()
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::resolve(paths, file)
    }

    /// A configuration with every file under `root` (`config/`, `data/`, `state/`, `run/`)
    /// and no environment read: for the demo and tests.
    pub fn for_root(root: &Path) -> Self {
        let paths = Paths {
            config_dir: root.join("config/keygate"),
            data_dir: root.join("data/keygate"),
            state_dir: root.join("state/keygate"),
            runtime_dir: root.join("run/keygate"),
        };
        Self {
            socket: paths.socket(),
            listen: None,
            tls_cert: None,
            tls_key: None,
            store: Choice::Auto,
            store_passphrase: None,
            policies: paths.policies_file(),
            audit: paths.audit_log(),
            discord: None,
            limits: Limits::default(),
            cluster_redis_url: None,
            cluster_node: None,
            metrics_listen: None,
            paths,
        }
    }

    fn resolve(paths: Paths, file: FileConfig) -> Result<Self, ConfigError> {
        let store = match env("KEYGATE_SECRET_STORE").or_else(|| env("KEYGATE_STORE_BACKEND")) {
            Some(v) => v
                .parse()
                .map_err(|e: crate::store::UnknownBackend| ConfigError::Env {
                    var: "KEYGATE_SECRET_STORE".into(),
                    message: e.to_string(),
                })?,
            None => match file.store.backend {
                Some(v) => v.parse().map_err(|e: crate::store::UnknownBackend| {
                    ConfigError::Invalid(format!("[store] backend: {e}"))
                })?,
                None => Choice::Auto,
            },
        };
        let discord_token = env("KEYGATE_DISCORD_TOKEN").or(file.discord.token);
        let channel_id = env_parsed("KEYGATE_DISCORD_CHANNEL_ID", file.discord.channel_id)?;
        let discord = match (discord_token, channel_id) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ConfigError::Invalid(
                    "a Discord token is set but no channel: set KEYGATE_DISCORD_CHANNEL_ID or [discord] channel_id".into(),
                ));
            }
            (Some(token), Some(channel_id)) => Some(DiscordConfig {
                token: SecretString::from(token),
                channel_id,
                guild_id: env_parsed("KEYGATE_DISCORD_GUILD_ID", file.discord.guild_id)?,
                api_url: discord_url(
                    "KEYGATE_DISCORD_API_URL",
                    "[discord] api_url",
                    file.discord.api_url,
                    UrlKind::Http,
                )?,
                gateway_url: discord_url(
                    "KEYGATE_DISCORD_GATEWAY_URL",
                    "[discord] gateway_url",
                    file.discord.gateway_url,
                    UrlKind::WebSocket,
                )?,
                ping: env_parsed("KEYGATE_DISCORD_PING", file.discord.ping)?.unwrap_or(true),
            }),
        };
        let defaults = Limits::default();
        let limits = Limits {
            pending_per_agent: env_parsed(
                "KEYGATE_LIMITS_PENDING_PER_AGENT",
                file.limits.pending_per_agent,
            )?
            .unwrap_or(defaults.pending_per_agent),
            requests_per_minute: env_parsed(
                "KEYGATE_LIMITS_REQUESTS_PER_MINUTE",
                file.limits.requests_per_minute,
            )?
            .unwrap_or(defaults.requests_per_minute),
            max_connections: env_parsed(
                "KEYGATE_LIMITS_MAX_CONNECTIONS",
                file.limits.max_connections,
            )?
            .unwrap_or(defaults.max_connections),
            operator_reserve: env_parsed(
                "KEYGATE_LIMITS_OPERATOR_RESERVE",
                file.limits.operator_reserve,
            )?
            .unwrap_or(defaults.operator_reserve),
            idle_timeout: idle_timeout(file.limits.idle_timeout)?.unwrap_or(defaults.idle_timeout),
        };
        if limits.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "[limits] max_connections must be at least 1".into(),
            ));
        }
        Ok(Self {
            socket: env("KEYGATE_SERVER_SOCKET")
                .map(PathBuf::from)
                .or(file.server.socket)
                .unwrap_or_else(|| paths.socket()),
            listen: env("KEYGATE_SERVER_LISTEN").or(file.server.listen),
            tls_cert: env("KEYGATE_SERVER_TLS_CERT")
                .map(PathBuf::from)
                .or(file.server.tls_cert),
            tls_key: env("KEYGATE_SERVER_TLS_KEY")
                .map(PathBuf::from)
                .or(file.server.tls_key),
            store,
            store_passphrase: env("KEYGATE_STORE_PASSPHRASE").map(SecretString::from),
            policies: env("KEYGATE_POLICIES")
                .or_else(|| env("KEYGATE_POLICIES_PATH"))
                .map(PathBuf::from)
                .or(file.policies.path)
                .unwrap_or_else(|| paths.policies_file()),
            audit: env("KEYGATE_AUDIT_PATH")
                .map(PathBuf::from)
                .or(file.audit.path)
                .unwrap_or_else(|| paths.audit_log()),
            discord,
            limits,
            cluster_redis_url: env("KEYGATE_CLUSTER_REDIS_URL")
                .or(file.cluster.redis_url)
                .map(SecretString::from),
            cluster_node: env("KEYGATE_CLUSTER_NODE")
                .or(file.cluster.node)
                .map(|n| keygate_cluster::NodeName::parse(&n))
                .transpose()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
            metrics_listen: metrics_listen(file.metrics.listen)?,
            paths,
        })
    }
}

/// A raw setting from the environment (which wins) or the file, and a way to refuse it
/// that names where it came from: the variable, or the file's `[section] key`.
struct Raw {
    value: String,
    var: &'static str,
    /// `None` when it came from the environment.
    key: Option<&'static str>,
}

impl Raw {
    fn read(var: &'static str, key: &'static str, file: Option<String>) -> Option<Self> {
        match env(var) {
            Some(value) => Some(Self {
                value,
                var,
                key: None,
            }),
            None => file.map(|value| Self {
                value,
                var,
                key: Some(key),
            }),
        }
    }

    fn refuse(&self, message: String) -> ConfigError {
        match self.key {
            None => ConfigError::Env {
                var: self.var.into(),
                message,
            },
            Some(key) => ConfigError::Invalid(format!("{key}: {message}")),
        }
    }
}

/// `[metrics] listen` / `KEYGATE_METRICS_LISTEN`: `IP:PORT` on a loopback address only,
/// since that listener asks for no token.
fn metrics_listen(file: Option<String>) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    let Some(raw) = Raw::read("KEYGATE_METRICS_LISTEN", "[metrics] listen", file) else {
        return Ok(None);
    };
    let shown = raw.value.trim();
    let addr: std::net::SocketAddr = shown.parse().map_err(|_| {
        raw.refuse(format!(
            "`{shown}` is not an address: expected 127.0.0.1:PORT or [::1]:PORT"
        ))
    })?;
    if !addr.ip().is_loopback() {
        return Err(raw.refuse(format!(
            "{addr} is not a loopback address: the metrics listener asks for no token, so it serves 127.0.0.1 or [::1] only (scrape others through GET /metrics with the operator token)"
        )));
    }
    Ok(Some(addr))
}

/// `[limits] idle_timeout` / `KEYGATE_LIMITS_IDLE_TIMEOUT`: a humantime duration of at
/// least 100 ms and at most an hour.
fn idle_timeout(file: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let Some(raw) = Raw::read("KEYGATE_LIMITS_IDLE_TIMEOUT", "[limits] idle_timeout", file) else {
        return Ok(None);
    };
    let d = humantime::parse_duration(raw.value.trim())
        .map_err(|_| raw.refuse("expected a duration such as `10s`".into()))?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(raw.refuse("must be between 100ms and 1h".into()));
    }
    Ok(Some(d))
}

/// A Discord URL from the environment (which wins) or the file, refused at start-up when
/// it would send the bot token in clear off this machine (the rule is
/// [`keygate_proto::net::check_url`]'s).
fn discord_url(
    var: &str,
    key: &str,
    file: Option<String>,
    kind: UrlKind,
) -> Result<Option<String>, ConfigError> {
    if let Some(url) = env(var) {
        check_url(&url, kind).map_err(|e| ConfigError::Env {
            var: var.into(),
            message: e.to_string(),
        })?;
        return Ok(Some(url));
    }
    if let Some(url) = &file {
        check_url(url, kind).map_err(|e| ConfigError::Invalid(format!("{key}: {e}")))?;
    }
    Ok(file)
}

/// toml's errors span several lines (a snippet of the file); keep the first and the
/// message, so every error stays one line.
fn one_line(s: &str) -> String {
    let mut lines = s.lines().filter(|l| !l.trim().is_empty());
    let head = lines.next().unwrap_or_default().trim().to_owned();
    match lines.next_back() {
        Some(last) if last.trim() != head => format!("{head}: {}", last.trim()),
        _ => head,
    }
}
