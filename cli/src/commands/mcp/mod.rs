//! `keygate mcp`: the Model Context Protocol over stdio, as the agent whose token is in
//! `KEYGATE_TOKEN`. Newline-delimited JSON-RPC on stdin and stdout; logs on stderr only.
//!
//! The tools (`tools.rs` lists them, `run.rs` is `run_with_secrets`) give an agent the
//! *use* of secrets and never a value: `run_with_secrets` is `keygate exec` with its
//! output captured and masked, and the other tools read names, grants and requests.
//! docs/mcp.md is the user's side of it.
//!
//! Cancellation: each call has rmcp's token, cancelled by `notifications/cancelled`;
//! all calls also share [`Session`], cancelled when stdin ends (the client went away),
//! so a pending request is cancelled at the daemon and a running child stopped, and
//! the process waits for that cleanup before it exits.

mod run;
mod tools;

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::failure::{Exit, Failure, Outcome};

/// The newest protocol revision served: the last one with an `initialize` handshake,
/// which every client we know speaks (the Python SDK 2.x negotiates 2024-11-05 …
/// 2025-11-25). Older revisions are served too.
const NEWEST: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// How long calls in flight get, once the client is gone, to cancel their request and
/// stop their child.
const CLEANUP: Duration = Duration::from_secs(20);

/// Serves MCP on stdin and stdout until the client closes stdin.
pub async fn run(client: Client) -> Outcome {
    // The CLI falls back to the operator token file; MCP tools are an agent's, never the
    // operator's.
    if !client.token_given() {
        return Err(Failure::new(
            Exit::Usage,
            "keygate mcp serves as an agent: set KEYGATE_TOKEN to the agent's token (`keygate agents add NAME` prints one)",
        ));
    }
    init_logs();
    let session = Session::default();
    let server = Server {
        client,
        session: session.clone(),
    };
    let stdin = EndOfInput {
        inner: tokio::io::stdin(),
        ended: session.ended.clone(),
    };
    let service = server
        .serve((stdin, tokio::io::stdout()))
        .await
        .map_err(|e| Failure::error(format!("MCP: the client did not initialize: {e}")))?;
    let quit = service.waiting().await;
    tracing::info!(?quit, "MCP session over");
    session.ended.cancel();
    // Every call holds a read guard until it has cleaned up.
    if tokio::time::timeout(CLEANUP, session.calls.write())
        .await
        .is_err()
    {
        tracing::warn!("calls still cleaning up after {CLEANUP:?}; leaving");
    }
    Ok(())
}

/// Logs to stderr (stdout carries the protocol); `RUST_LOG` narrows or widens them.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("keygate=info,rmcp=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// What every call of one session shares.
#[derive(Debug, Clone, Default)]
struct Session {
    /// Cancelled when stdin ends.
    ended: CancellationToken,
    /// Held (read) by each call until it has cleaned up.
    calls: Arc<RwLock<()>>,
}

#[derive(Debug, Clone)]
struct Server {
    client: Client,
    session: Session,
}

impl ServerHandler for Server {
    fn get_info(&self) -> InitializeResult {
        let mut info =
            InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
                .with_instructions(
                    "keygate runs commands with secrets a human approved, without ever showing you a value. \
                     Use run_with_secrets to run a command with secrets in its environment: it waits for \
                     approval (minutes, possibly), then returns the command's exit code and its output with \
                     every value replaced by <keygate:NAME>. list_secrets names what you may ask for.",
                );
        info.protocol_version = NEWEST;
        info.server_info = Implementation::new("keygate", env!("CARGO_PKG_VERSION"));
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&NEWEST))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::all()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _call = self.session.calls.clone().read_owned().await;
        // A cancelled call, or the client gone.
        let stop = CancellationToken::new();
        let (call, ended) = (context.ct.clone(), self.session.ended.clone());
        let watcher = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = call.cancelled() => {}
                    () = ended.cancelled() => {}
                }
                stop.cancel();
            })
        };
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            "run_with_secrets" => run::call(&self.client, &args, &context, &stop).await,
            "list_secrets" => tools::list_secrets(&self.client, &args).await,
            "list_grants" => tools::list_grants(&self.client, &args).await,
            "request_status" => tools::request_status(&self.client, &args).await,
            other => {
                watcher.abort();
                return Err(ErrorData::invalid_params(
                    format!(
                        "no tool named `{other}`; the tools are run_with_secrets, list_secrets, list_grants, request_status"
                    ),
                    None,
                ));
            }
        };
        watcher.abort();
        Ok(result.into())
    }
}

/// stdin, telling `ended` when it reaches its end: the client is gone.
struct EndOfInput<R> {
    inner: R,
    ended: CancellationToken,
}

impl<R: AsyncRead + Unpin> AsyncRead for EndOfInput<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                self.ended.cancel();
            }
            Poll::Ready(Err(_)) => self.ended.cancel(),
            _ => {}
        }
        polled
    }
}
