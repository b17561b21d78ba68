//! `keygate get SECRET`: the value if a grant or rule allows it; else file a request,
//! wait for a decision (long-polling, with a spinner on a terminal), and print the value.
//! Ctrl-C while waiting cancels the request.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use hyper::Method;
use keygate_proto::api::{ErrorCode, FileRequest, Release, RequestStatus, RequestView};
use keygate_proto::{RequestId, SecretName, Timestamp};

use crate::args::GetArgs;
use crate::client::{Client, encode_name};
use crate::failure::{Exit, Failure, Outcome};
use crate::output::{harmless, relative, short};

/// How long one long-poll waits before the next.
const POLL: Duration = Duration::from_secs(25);

pub async fn run(client: &Client, args: GetArgs) -> Outcome {
    if let Some(release) = try_release(client, &args.secret).await? {
        return print(&release);
    }
    let view: RequestView = client
        .call(
            Method::POST,
            "/v1/requests",
            Some(&FileRequest {
                secrets: vec![args.secret.clone()],
                reason: args.reason.unwrap_or_default(),
                ttl: args.ttl.map(keygate_proto::duration::format),
                command: None,
                host: hostname(),
            }),
        )
        .await?;
    let view = wait(client, view, args.timeout).await?;
    let release = try_release(client, &args.secret).await?.ok_or_else(|| {
        Failure::error(
            "the request was approved but the grant is already gone (revoked or expired)",
        )
    })?;
    announce(&view);
    print(&release)
}

/// Reads the secret; `None` when the caller holds no grant for it.
pub async fn try_release(client: &Client, secret: &SecretName) -> Outcome<Option<Release>> {
    let path = format!("/v1/secrets/{}", encode_name(secret.as_str()));
    match client.get::<Release>(&path).await {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.code == Some(ErrorCode::NoGrant) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn print(release: &Release) -> Outcome {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", release.value.expose());
    out.flush()
        .map_err(|e| Failure::error(format!("cannot write the value to stdout: {e}")))
}

pub fn announce(view: &RequestView) {
    let by = if view.approvals.is_empty() {
        view.decided_by.clone().unwrap_or_default()
    } else {
        view.approvals.join(", ")
    };
    let ends = view
        .grant
        .as_ref()
        .map(|g| {
            format!(
                "; the grant ends {} ({})",
                relative(g.expires_at),
                g.expires_at
            )
        })
        .unwrap_or_default();
    eprintln!("keygate: approved by {by}{ends}");
}

pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// Waits for a decision on a terminal (a spinner) or in a log (plain lines), Ctrl-C
/// cancelling the request; `Ok` only once approved.
pub async fn wait(
    client: &Client,
    view: RequestView,
    timeout: Option<Duration>,
) -> Outcome<RequestView> {
    let tty = std::io::stderr().is_terminal();
    let where_ = posted_to(&view);
    if view.status == RequestStatus::Pending && !tty {
        let hint = if view.posted_to.iter().any(|p| p == "terminal") && view.posted_to.len() == 1 {
            format!(" (an operator runs `keygate approve {}`)", view.id)
        } else {
            String::new()
        };
        eprintln!(
            "keygate: waiting for approval of {} (posted to {where_}); it expires {}{hint}",
            view.id,
            relative(view.expires_at)
        );
    }
    let mut spinner = Spinner::new(tty);
    let waited = wait_until(
        client,
        view,
        timeout,
        Duration::from_millis(120),
        |v: &RequestView| spinner.draw(&v.id, &where_, v.expires_at),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    spinner.clear();
    decided(waited?)
}

/// Where a request was posted, for people.
pub fn posted_to(view: &RequestView) -> String {
    if view.posted_to.is_empty() {
        "the approvers".to_owned()
    } else {
        view.posted_to.join(", ")
    }
}

/// Waits until the request is no longer pending and returns it as it ended, whatever
/// the decision. `tick` is called every `every` while it waits (a spinner, a progress
/// notification). When `timeout` passes (exit 4) or `stop` completes (exit 130: Ctrl-C,
/// a cancelled MCP call), the request is cancelled at the daemon first.
pub async fn wait_until(
    client: &Client,
    mut view: RequestView,
    timeout: Option<Duration>,
    every: Duration,
    mut tick: impl FnMut(&RequestView),
    stop: impl Future<Output = ()>,
) -> Outcome<RequestView> {
    let started = Instant::now();
    let id = view.id.clone();
    tokio::pin!(stop);
    while view.status == RequestStatus::Pending {
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        if left.is_some_and(|l| l.is_zero()) {
            cancel_quietly(client, &id).await;
            return Err(Failure::new(
                Exit::Timeout,
                format!("no decision within the timeout; request {id} cancelled"),
            ));
        }
        let poll = left
            .map_or(POLL, |l| l.min(POLL))
            .max(Duration::from_secs(1));
        let path = format!("/v1/requests/{id}?wait={}s", poll.as_secs());
        let request = client.get::<RequestView>(&path);
        tokio::pin!(request);
        let mut ticks = tokio::time::interval(every);
        let result = loop {
            tokio::select! {
                result = &mut request => break result,
                _ = ticks.tick() => tick(&view),
                () = &mut stop => {
                    cancel_quietly(client, &id).await;
                    return Err(Failure::new(Exit::Interrupted, format!("interrupted: request {id} cancelled")));
                }
            }
        };
        view = result?;
    }
    Ok(view)
}

/// A request that is no longer pending: `Ok` when approved, else the failure that says
/// why not (denied, by whom and why; expired; cancelled).
pub fn decided(view: RequestView) -> Outcome<RequestView> {
    let id = &view.id;
    match view.status {
        RequestStatus::Approved => Ok(view),
        RequestStatus::Denied => Err(Failure::new(Exit::Denied, denial(&view))),
        RequestStatus::Expired => Err(Failure::new(
            Exit::Timeout,
            format!("no decision before request {id} expired"),
        )),
        RequestStatus::Cancelled => Err(Failure::error(format!("request {id} was cancelled"))),
        RequestStatus::Pending => Err(Failure::error("still pending")),
    }
}

/// `denied by NAME: REASON`, on one line, escaped.
pub fn denial(view: &RequestView) -> String {
    let who = denied_by(view);
    // The reason a person gave, else what the daemon says (the policy's words), unless
    // that only repeats who denied it.
    let why = view
        .denial_reason
        .as_ref()
        .or(view.message.as_ref())
        .filter(|why| !why.is_empty() && **why != format!("denied by {who}"))
        .map_or_else(String::new, |why| format!(": {}", harmless(why)));
    format!("denied by {}{why}", harmless(&who))
}

/// Who denied a request: a person, the operator, or the policy.
pub fn denied_by(view: &RequestView) -> String {
    view.decided_by
        .clone()
        .unwrap_or_else(|| "an approver".into())
}

pub async fn cancel_quietly(client: &Client, id: &RequestId) {
    let _ = client
        .call::<serde_json::Value>(Method::DELETE, &format!("/v1/requests/{id}"), None::<&()>)
        .await;
}

/// A one-line spinner on stderr, only when stderr is a terminal.
struct Spinner {
    on: bool,
    frame: usize,
}

impl Spinner {
    fn new(on: bool) -> Self {
        Self { on, frame: 0 }
    }

    fn draw(&mut self, id: &RequestId, where_: &str, expires_at: Timestamp) {
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        if !self.on {
            return;
        }
        self.frame = (self.frame + 1) % FRAMES.len();
        let left = expires_at
            .system_time()
            .duration_since(std::time::SystemTime::now())
            .ok()
            .map_or_else(|| "?".into(), short);
        eprint!(
            "\r\x1b[2K{} waiting for approval of {id} (posted to {where_}), {left} left",
            FRAMES[self.frame]
        );
    }

    fn clear(&mut self) {
        if self.on {
            eprint!("\r\x1b[2K");
            self.on = false;
        }
    }
}
