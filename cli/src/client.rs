//! Talking to the daemon: HTTP/1.1 over its Unix socket (`KEYGATE_URL=unix:///path`, or
//! the default socket), with the caller's token. Errors become [`Failure`]s with SPEC.md's
//! exit codes: unreachable 6, unauthenticated or forbidden 5.
//!
//! Before a single byte goes over a Unix socket, the daemon behind it must prove who it
//! is: the process listening on it (`SO_PEERCRED`) must run as this user, or as the uid
//! named by `KEYGATE_DAEMON_UID`; and the default socket's directory must be private to
//! that user (0700). A socket someone else put in our way is refused as unreachable (6):
//! whatever answers there, it is not a keygated this user can trust.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use keygate_proto::api::{ErrorBody, ErrorCode};
use keygate_proto::paths::Paths;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;
use zeroize::Zeroizing;

use crate::failure::{Exit, Failure, Outcome};

/// A failed call: the daemon's error code (`None` when the daemon did not answer) and HTTP
/// status (0 then) beside the failure.
#[derive(Debug)]
pub struct CallError {
    pub code: Option<ErrorCode>,
    pub status: u16,
    pub failure: Failure,
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        e.failure
    }
}

/// Where the daemon is.
#[derive(Clone)]
enum Target {
    Unix {
        socket: PathBuf,
        /// The default socket: its directory (`$XDG_RUNTIME_DIR/keygate`, or the
        /// `/tmp/keygate-$UID` fallback) must be private to a trusted uid as well.
        default: bool,
    },
    Https {
        host: String,
        port: u16,
        tls: tokio_rustls::TlsConnector,
    },
    /// `keygate --standalone`: the gate in this very process, reached over an in-memory
    /// connection that nothing outside the process can dial.
    InProcess(keygate_gateway::api::server::Dialer),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix { socket, .. } => write!(f, "unix://{}", socket.display()),
            Self::Https { host, port, .. } => write!(f, "https://{host}:{port}"),
            Self::InProcess(_) => f.write_str("standalone"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    target: Target,
    token: Option<Zeroizing<String>>,
    /// Whether `token` is the one this run was given (`KEYGATE_TOKEN`, or a standalone
    /// run's own), not the operator token file read as a fallback.
    given: bool,
    /// Who may be listening on a Unix socket: this user, and `KEYGATE_DAEMON_UID`.
    daemon_uids: Vec<u32>,
}

/// The uids a daemon on a Unix socket may run as: ours, and the one `KEYGATE_DAEMON_UID`
/// names (a number).
fn daemon_uids(named: Option<&str>) -> Result<Vec<u32>, Failure> {
    let mut uids = vec![keygate_proto::paths::effective_uid()];
    if let Some(named) = named {
        let uid: u32 = named.trim().parse().map_err(|_| {
            Failure::new(
                Exit::Usage,
                "KEYGATE_DAEMON_UID must be a numeric user id (the uid keygated runs as)",
            )
        })?;
        if !uids.contains(&uid) {
            uids.push(uid);
        }
    }
    Ok(uids)
}

/// Refuses a Unix socket whose listener runs as a uid we do not trust. Called on a fresh
/// connection, before anything is written to it.
fn check_peer(stream: &UnixStream, socket: &std::path::Path, trusted: &[u32]) -> Outcome {
    let cred = stream.peer_cred().map_err(|e| {
        Failure::new(
            Exit::Unreachable,
            format!(
                "refusing the socket at {}: cannot tell who listens on it: {e}",
                socket.display()
            ),
        )
    })?;
    let uid = cred.uid();
    if trusted.contains(&uid) {
        return Ok(());
    }
    let mine = trusted.first().copied().unwrap_or_default();
    Err(Failure::new(
        Exit::Unreachable,
        format!(
            "refusing the socket at {}: the process listening on it runs as uid {uid}, not as uid {mine}: it is not your keygated, and nothing was sent (if keygated really runs as that user, set KEYGATE_DAEMON_UID={uid})",
            socket.display()
        ),
    ))
}

/// `https://host:port[/]` → (host, port).
fn https_target(url: &str) -> Result<(String, u16), Failure> {
    let bad = || {
        Failure::new(
            Exit::Usage,
            "KEYGATE_URL must look like unix:///path/to/keygated.sock or https://host:port",
        )
    };
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(bad)?
        .trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

impl Client {
    /// Where the daemon is and who we are, from `KEYGATE_URL` and `KEYGATE_TOKEN` (default,
    /// for a Unix socket only: the operator token file, if readable).
    pub fn from_env() -> Outcome<Self> {
        let paths = Paths::from_env();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let daemon_uids = daemon_uids(env("KEYGATE_DAEMON_UID").as_deref())?;
        let target = match env("KEYGATE_URL") {
            None => Target::Unix {
                socket: paths.socket(),
                default: true,
            },
            Some(url) => match url.strip_prefix("unix://") {
                Some(path) if !path.is_empty() => Target::Unix {
                    socket: PathBuf::from(path),
                    default: false,
                },
                _ if url.starts_with("http://") => {
                    return Err(Failure::new(
                        Exit::Usage,
                        "KEYGATE_URL: plain http:// would send your token unencrypted; use https://host:port",
                    ));
                }
                _ => {
                    let (host, port) = https_target(&url)?;
                    let ca = env("KEYGATE_CA").map(PathBuf::from);
                    let tls = crate::tls::connector(
                        env("KEYGATE_FINGERPRINT").as_deref(),
                        ca.as_deref(),
                    )?;
                    Target::Https { host, port, tls }
                }
            },
        };
        let given = std::env::var("KEYGATE_TOKEN").is_ok_and(|v| !v.is_empty());
        let token = match std::env::var("KEYGATE_TOKEN")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(t) => Some(Zeroizing::new(t)),
            // The operator token file is this machine's: it is never even read for a
            // daemon elsewhere (see `call_with`).
            None if matches!(target, Target::Https { .. }) => None,
            None => std::fs::read_to_string(paths.operator_token())
                .ok()
                .map(|t| Zeroizing::new(t.trim().to_owned())),
        };
        Ok(Self {
            target,
            token,
            given,
            daemon_uids,
        })
    }

    /// A client of the gate in this process (`keygate --standalone`), acting with
    /// `token`, which exists in this process only.
    pub fn in_process(dialer: keygate_gateway::api::server::Dialer, token: &str) -> Self {
        Self {
            target: Target::InProcess(dialer),
            token: Some(Zeroizing::new(token.to_owned())),
            given: true,
            daemon_uids: Vec::new(),
        }
    }

    /// Whether this client acts with a token it was given (`KEYGATE_TOKEN`, or a
    /// standalone run's), rather than the operator token file it falls back to.
    pub fn token_given(&self) -> bool {
        self.given
    }

    /// Calls the daemon and decodes its JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, CallError> {
        self.call_with(method, path, body, &[]).await
    }

    /// [`Client::call`] with extra headers.
    pub async fn call_with<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> Result<T, CallError> {
        let plain = |exit, message: String| CallError {
            code: None,
            status: 0,
            failure: Failure::new(exit, message),
        };
        let unreachable = |e: &dyn std::fmt::Display| {
            plain(
                Exit::Unreachable,
                format!(
                    "cannot reach keygated at {:?}: {e} (is it running? start it with `keygated serve`, or set KEYGATE_URL)",
                    self.target
                ),
            )
        };
        if matches!(self.target, Target::Https { .. }) && self.token.is_none() {
            // Not authenticated, as the daemon would say (5): before any connection, so
            // nothing of this machine's goes anywhere.
            return Err(plain(
                Exit::Auth,
                format!(
                    "KEYGATE_URL is {:?}: set KEYGATE_TOKEN to your token for that daemon (the local operator token is never sent over the network)",
                    self.target
                ),
            ));
        }
        let handshake =
            |e: hyper::Error| plain(Exit::Unreachable, format!("keygated did not answer: {e}"));
        let mut sender = match &self.target {
            Target::Unix { socket, default } => {
                if *default && let Some(dir) = socket.parent() {
                    // The fallback `/tmp/keygate-$UID` is a name anyone can take first.
                    match keygate_proto::paths::check_private_dir(dir, &self.daemon_uids) {
                        Ok(()) => {}
                        // No directory: no daemon (and nothing of anyone else's) there.
                        Err(keygate_proto::paths::UntrustedDir::Io { error, .. })
                            if error.kind() == std::io::ErrorKind::NotFound =>
                        {
                            return Err(unreachable(&error));
                        }
                        Err(e) => {
                            return Err(plain(
                                Exit::Unreachable,
                                format!(
                                    "refusing the daemon's socket directory: {e}; nothing was sent (is someone else's program waiting there? set XDG_RUNTIME_DIR, or KEYGATE_URL)"
                                ),
                            ));
                        }
                    }
                }
                let stream = UnixStream::connect(socket)
                    .await
                    .map_err(|e| unreachable(&e))?;
                // Who listens there is known before any byte (token, value) is written.
                check_peer(&stream, socket, &self.daemon_uids).map_err(|failure| CallError {
                    code: None,
                    status: 0,
                    failure,
                })?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(handshake)?;
                tokio::spawn(conn);
                sender
            }
            Target::InProcess(dialer) => {
                let pipe = dialer.dial().await.map_err(|e| {
                    plain(Exit::Error, format!("the standalone gate has stopped: {e}"))
                })?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(pipe))
                    .await
                    .map_err(handshake)?;
                tokio::spawn(conn);
                sender
            }
            Target::Https { host, port, tls } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| unreachable(&e))?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| plain(Exit::Usage, format!("KEYGATE_URL host: {e}")))?;
                // A certificate that fails verification ends here, before any token is sent.
                let stream = tls.connect(name, stream).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        plain(
                            Exit::Error,
                            format!("refusing keygated at {:?}: {e}", self.target),
                        )
                    } else {
                        plain(Exit::Unreachable, format!("TLS with keygated failed: {e}"))
                    }
                })?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(handshake)?;
                tokio::spawn(conn);
                sender
            }
        };

        let bytes = match body {
            Some(b) => Zeroizing::new(
                serde_json::to_vec(b)
                    .map_err(|e| plain(Exit::Error, format!("cannot encode the request: {e}")))?,
            ),
            None => Zeroizing::new(Vec::new()),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "keygated");
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", token.as_str()));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(&bytes)))
            .map_err(|e| plain(Exit::Error, format!("bad request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| plain(Exit::Unreachable, format!("keygated hung up: {e}")))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        // The daemon's error says what happened; Retry-After says when to try again.
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| plain(Exit::Unreachable, format!("keygated hung up: {e}")))?
            .to_bytes();
        let body = Zeroizing::new(body.to_vec());
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                plain(
                    Exit::Error,
                    format!("keygated sent an answer this client cannot read: {e}"),
                )
            });
        }
        let err: ErrorBody = serde_json::from_slice(&body).unwrap_or(ErrorBody {
            error: ErrorCode::Unknown,
            message: format!("keygated answered {status}"),
        });
        let exit = match status {
            StatusCode::UNAUTHORIZED => Exit::Auth,
            StatusCode::FORBIDDEN if err.error != ErrorCode::NoGrant => Exit::Auth,
            _ => Exit::Error,
        };
        let mut message = err.message;
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            message = format!("{message} (set KEYGATE_TOKEN to your agent token)");
        }
        if let Some(after) = retry_after {
            message = format!("{message}; retry in {}s", after.as_secs());
        }
        Err(CallError {
            code: Some(err.error),
            status: status.as_u16(),
            failure: Failure::new(exit, message),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.call(Method::GET, path, None::<&()>).await
    }
}

/// `github/token` → `github%2Ftoken`, as the API's paths want names.
pub fn encode_name(name: &str) -> String {
    name.replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygate_daemon_uid_adds_one_numeric_uid() {
        let me = keygate_proto::paths::effective_uid();
        assert_eq!(daemon_uids(None).expect("uids"), vec![me]);
        assert_eq!(daemon_uids(Some(&me.to_string())).expect("uids"), vec![me]);
        let other = me.wrapping_add(1);
        assert_eq!(
            daemon_uids(Some(&format!(" {other}\n"))).expect("uids"),
            vec![me, other]
        );
        for bad in ["nobody", "-1", "1,2", ""] {
            let e = daemon_uids(Some(bad)).expect_err(bad);
            assert_eq!(e.exit, Exit::Usage, "{bad}");
        }
    }
}
