//! `keygate exec`: run a command with secrets in its environment only, masked in its
//! output, and withdrawn when the grant ends.
//!
//! The path: collect the bindings (`bindings.rs`); read what a live grant bound to this
//! argv (or a rule) already allows; file one request for the rest, bound to the argv,
//! and wait as `keygate get` does; read every value; start the child (`child.rs`); then
//! supervise it: signals (`signals.rs`), the grants (`watch.rs`), restarts on change,
//! SIGTERM / --grace / SIGKILL when a grant ends. docs/exec.md is the user's side of it.
//!
//! `keygate mcp`'s `run_with_secrets` walks the same path with the same functions: a
//! [`Job`] says what to run, [`released_already`], [`file`] and [`read_granted`] get
//! the values around its own wait, and [`supervise`] runs the child with its output
//! captured instead of ours.

pub mod bindings;
pub mod child;
mod signals;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Method;
use keygate_proto::SecretName;
use keygate_proto::api::{
    COMMAND_HEADER, ErrorCode, FileRequest, GrantRef, Release, RequestView, command_hash,
};
use signal_hook::consts::{SIGKILL, SIGTERM, SIGWINCH};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zeroize::Zeroizing;

use self::bindings::Binding;
use self::child::{Output, Secret, Spec};
use self::watch::Event;
use crate::args::ExecArgs;
use crate::client::{Client, encode_name};
use crate::commands::get;
use crate::failure::{Failure, Outcome};

/// How long output may still flow after the child is gone (see `Running::drain`).
const DRAIN: Duration = Duration::from_secs(2);

/// What to run, with which secrets, and how: `keygate exec`'s arguments, or a
/// `run_with_secrets` call of `keygate mcp`.
#[derive(Debug)]
pub struct Job {
    pub bindings: Vec<Binding>,
    /// The command, never empty: the request is bound to it.
    pub argv: Vec<String>,
    /// Where the command runs (ours when `None`).
    pub cwd: Option<PathBuf>,
    pub reason: Option<String>,
    pub ttl: Option<Duration>,
    pub timeout: Option<Duration>,
    /// How long the child has after SIGTERM before SIGKILL.
    pub grace: Duration,
    pub restart_on_change: bool,
    pub output: Output,
    /// Whether signals sent to us are passed on to the child (the command line; not
    /// `keygate mcp`, which ends with its client).
    pub forward_signals: bool,
}

impl Job {
    /// The SHA-256 of the argv a grant for this job is bound to.
    pub fn hash(&self) -> String {
        command_hash(&self.argv)
    }

    /// Refuses a job that cannot run (no such program, no such directory) before anyone
    /// is asked to approve it.
    pub fn check(&self) -> Outcome {
        let Some(program) = self.argv.first().filter(|p| !p.is_empty()) else {
            return Err(Failure::error("the command is empty"));
        };
        if let Some(dir) = &self.cwd
            && !dir.is_dir()
        {
            return Err(Failure::error(format!(
                "cannot run in {}: no such directory",
                dir.display()
            )));
        }
        find_program(program, self.cwd.as_deref())
    }
}

/// How the child ended.
#[derive(Debug)]
pub enum Finished {
    /// By itself.
    Exited(std::process::ExitStatus),
    /// A grant ended (revoked, expired): the child was stopped with `signal`.
    Withdrawn { why: String, signal: i32 },
    /// The caller gave up (a cancelled MCP call): the child was stopped with `signal`.
    Stopped { signal: i32 },
}

impl Finished {
    /// What `keygate exec` exits with: the child's code, or 128 + the signal that ended it.
    pub fn code(&self) -> u8 {
        match self {
            Self::Exited(status) => exit_code(*status),
            Self::Withdrawn { signal, .. } | Self::Stopped { signal } => {
                u8::try_from(128 + signal).unwrap_or(255)
            }
        }
    }
}

pub async fn run(client: &Client, mut args: ExecArgs) -> Outcome<u8> {
    let bindings = bindings::collect(&args.env, &args.secret, std::env::vars_os())?;
    let job = Job {
        bindings,
        argv: std::mem::take(&mut args.command),
        cwd: None,
        reason: args.reason.take(),
        ttl: args.ttl,
        timeout: args.timeout,
        grace: args.grace,
        restart_on_change: args.restart_on_change,
        output: Output::Ours {
            mask: !args.no_masking,
        },
        forward_signals: true,
    };
    job.check()?;
    let hash = job.hash();
    let released = acquire(client, &job, &hash).await?;
    let finished = supervise(client, &job, &hash, released, std::future::pending()).await?;
    Ok(finished.code())
}

/// Every value: what a live grant for this command (or a rule) already allows, then one
/// request for the rest, bound to the argv, waited for as `keygate get` waits.
async fn acquire(client: &Client, job: &Job, hash: &str) -> Outcome<BTreeMap<SecretName, Release>> {
    let (mut released, missing) = released_already(client, job, hash).await?;
    if missing.is_empty() {
        return Ok(released);
    }
    let view = file(client, job, &missing).await?;
    let view = get::wait(client, view, job.timeout).await?;
    read_granted(client, hash, &view, missing, &mut released).await?;
    get::announce(&view);
    Ok(released)
}

/// The values a live grant bound to this command (or an `allow` rule) serves already,
/// and the secrets still to ask for.
pub async fn released_already(
    client: &Client,
    job: &Job,
    hash: &str,
) -> Outcome<(BTreeMap<SecretName, Release>, Vec<SecretName>)> {
    let mut released = BTreeMap::new();
    let mut missing = Vec::new();
    for secret in bindings::secrets(&job.bindings) {
        match release(client, &secret, hash).await? {
            Some(r) => {
                released.insert(secret, r);
            }
            None => missing.push(secret),
        }
    }
    Ok((released, missing))
}

/// Files one request for `missing`, bound to the job's argv.
pub async fn file(client: &Client, job: &Job, missing: &[SecretName]) -> Outcome<RequestView> {
    Ok(client
        .call(
            Method::POST,
            "/v1/requests",
            Some(&FileRequest {
                secrets: missing.to_vec(),
                reason: job.reason.clone().unwrap_or_default(),
                ttl: job.ttl.map(keygate_proto::duration::format),
                command: Some(job.argv.clone()),
                host: get::hostname(),
            }),
        )
        .await?)
}

/// Reads `missing` under the grant of `view`, an approved request.
pub async fn read_granted(
    client: &Client,
    hash: &str,
    view: &RequestView,
    missing: Vec<SecretName>,
    released: &mut BTreeMap<SecretName, Release>,
) -> Outcome {
    for secret in missing {
        let r = release(client, &secret, hash).await?.ok_or_else(|| {
            Failure::error(format!(
                "request {} was approved but {secret} cannot be read under its grant (revoked or expired already?)",
                view.id
            ))
        })?;
        released.insert(secret, r);
    }
    Ok(())
}

/// Runs the child with the values and watches over it until it ends: it ends by
/// itself, or is stopped (SIGTERM, the grace period, SIGKILL) when a grant ends or
/// `stop` completes. Restarts it when a secret changes, if the job says so.
pub async fn supervise(
    client: &Client,
    job: &Job,
    hash: &str,
    released: BTreeMap<SecretName, Release>,
    stop: impl Future<Output = ()>,
) -> Outcome<Finished> {
    let argv = &job.argv;
    let grants = grants_of(&released);
    if job.restart_on_change && released.values().any(|r| r.grant.is_none()) {
        eprintln!(
            "keygate: --restart-on-change: secrets a rule allows outright have no grant to watch; changing them will not restart {}",
            argv[0]
        );
    }
    let mut current: BTreeMap<SecretName, Zeroizing<String>> = released
        .iter()
        .map(|(n, r)| (n.clone(), Zeroizing::new(r.value.expose().to_owned())))
        .collect();
    drop(released);
    // Every value the child was ever given is masked, old ones too.
    let mut masked: Vec<Secret> = current
        .iter()
        .map(|(n, v)| Secret {
            name: n.to_string(),
            value: v.clone(),
        })
        .collect();

    let mut signals = if job.forward_signals {
        Some(
            signals::Signals::catch()
                .map_err(|e| Failure::error(format!("cannot catch signals for the child: {e}")))?,
        )
    } else {
        None
    };
    let (tx, mut events) = mpsc::unbounded_channel();
    for g in grants {
        watch::spawn(client.clone(), g, tx.clone());
    }
    drop(tx);
    let mut watching = true;
    tokio::pin!(stop);
    let mut stopped = false;

    let spec = |current: &BTreeMap<SecretName, Zeroizing<String>>| Spec {
        argv,
        env: environment(&job.bindings, current),
        cwd: job.cwd.as_deref(),
        output: &job.output,
    };
    let mut running = child::spawn(&spec(&current), &masked)?;
    let program = &argv[0];

    let mut stopping: Option<Stop> = None;
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    loop {
        let status = tokio::select! {
            status = running.child.wait() => {
                status.map_err(|e| Failure::error(format!("cannot wait for `{program}`: {e}")))?
            }
            caught = next_signal(signals.as_mut()) => {
                if caught.signal == SIGWINCH {
                    // The kernel does not signal the child for a pty resized by us.
                    if running.follow_window_size() || !caught.from_terminal {
                        running.signal(caught.signal);
                    }
                    continue;
                }
                if !caught.from_terminal {
                    running.signal(caught.signal);
                }
                if caught.ends() && matches!(stopping, Some(Stop::Restart(_))) {
                    stopping = None; // asked to stop while restarting: do not start again
                }
                continue;
            }
            () = &mut stop, if !stopped => {
                stopped = true;
                if !matches!(stopping, Some(Stop::Ended(_) | Stop::Cancelled)) {
                    if !matches!(stopping, Some(Stop::Restart(_))) {
                        running.signal(SIGTERM);
                        kill_at = Some(Instant::now() + job.grace);
                    }
                    stopping = Some(Stop::Cancelled);
                }
                continue;
            }
            event = events.recv(), if watching => {
                match event {
                    None => watching = false,
                    Some(Event::Ended { why }) => {
                        if !matches!(stopping, Some(Stop::Ended(_))) {
                            eprintln!("keygate: {why}; stopping {program}");
                            if !matches!(stopping, Some(Stop::Cancelled | Stop::Restart(_))) {
                                running.signal(SIGTERM);
                                kill_at = Some(Instant::now() + job.grace);
                            }
                            stopping = Some(Stop::Ended(why));
                        }
                    }
                    Some(event @ (Event::Changed(_) | Event::Check)) => {
                        let (names, quiet) = match event {
                            Event::Changed(names) => (Some(names), false),
                            _ => (None, true),
                        };
                        if job.restart_on_change
                            && stopping.is_none()
                            && let Some(new) = reread(client, hash, &current, names.as_deref(), program, quiet).await
                        {
                            let which: Vec<&str> = new.keys().map(SecretName::as_str).collect();
                            eprintln!("keygate: {} changed; restarting {program}", which.join(", "));
                            running.signal(SIGTERM);
                            kill_at = Some(Instant::now() + job.grace);
                            stopping = Some(Stop::Restart(new));
                        }
                    }
                }
                continue;
            }
            () = sleep_until(kill_at), if kill_at.is_some() => {
                running.kill();
                killed = true;
                kill_at = None;
                continue;
            }
        };
        running.drain(DRAIN).await;
        let signal = if killed { SIGKILL } else { SIGTERM };
        match stopping.take() {
            Some(Stop::Restart(new)) => {
                for (name, value) in new {
                    masked.push(Secret {
                        name: name.to_string(),
                        value: value.clone(),
                    });
                    current.insert(name, value);
                }
                running = child::spawn(&spec(&current), &masked)?;
                kill_at = None;
                killed = false;
            }
            Some(Stop::Ended(why)) => return Ok(Finished::Withdrawn { why, signal }),
            Some(Stop::Cancelled) => return Ok(Finished::Stopped { signal }),
            None => return Ok(Finished::Exited(status)),
        }
    }
}

async fn next_signal(signals: Option<&mut signals::Signals>) -> signals::Caught {
    match signals {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Why keygate is stopping the child.
enum Stop {
    /// A grant ended (why, for people): keygate exits 128 + the signal it took.
    Ended(String),
    /// The caller gave up.
    Cancelled,
    /// Secrets changed: start the child again with these values.
    Restart(BTreeMap<SecretName, Zeroizing<String>>),
}

/// Reads a secret presenting the command's hash; `None` when no grant or rule serves it.
async fn release(client: &Client, secret: &SecretName, hash: &str) -> Outcome<Option<Release>> {
    let path = format!("/v1/secrets/{}", encode_name(secret.as_str()));
    match client
        .call_with::<Release>(Method::GET, &path, None::<&()>, &[(COMMAND_HEADER, hash)])
        .await
    {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.code == Some(ErrorCode::NoGrant) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The distinct grants the values came from.
fn grants_of(released: &BTreeMap<SecretName, Release>) -> Vec<GrantRef> {
    let mut out: Vec<GrantRef> = Vec::new();
    for g in released.values().filter_map(|r| r.grant.as_ref()) {
        if !out.iter().any(|o: &GrantRef| o.id == g.id) {
            out.push(g.clone());
        }
    }
    out
}

/// The new values of the secrets that changed (all the child's, when `names` is `None`),
/// or `None` when nothing really changed or they cannot be read (with a warning, unless
/// `quiet`: a single-use grant cannot be read twice, and a check finds that normal).
async fn reread(
    client: &Client,
    hash: &str,
    current: &BTreeMap<SecretName, Zeroizing<String>>,
    names: Option<&[SecretName]>,
    program: &str,
    quiet: bool,
) -> Option<BTreeMap<SecretName, Zeroizing<String>>> {
    let mut new = BTreeMap::new();
    for (name, old) in current {
        if names.is_some_and(|n| !n.contains(name)) {
            continue;
        }
        match release(client, name, hash).await {
            Ok(Some(r)) => {
                if r.value.expose() != old.as_str() {
                    new.insert(name.clone(), Zeroizing::new(r.value.expose().to_owned()));
                }
            }
            Ok(None) if quiet => return None,
            Ok(None) => {
                eprintln!(
                    "keygate: {name} changed, but the grant does not allow reading it again (single use?); {program} keeps the old value"
                );
                return None;
            }
            Err(e) => {
                eprintln!(
                    "keygate: {name} changed, but cannot be read again: {e}; {program} keeps the old value"
                );
                return None;
            }
        }
    }
    (!new.is_empty()).then_some(new)
}

/// `(VAR, value)` for every binding.
fn environment(
    bindings: &[Binding],
    values: &BTreeMap<SecretName, Zeroizing<String>>,
) -> Vec<(String, Zeroizing<String>)> {
    bindings
        .iter()
        .filter_map(|b| Some((b.var.clone(), values.get(&b.secret)?.clone())))
        .collect()
}

/// The child's exit code: its own, or 128 + N when signal N ended it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

/// Refuses a program that cannot run, before anyone is asked to approve it. A program
/// named with a `/` is found from `cwd`, as the child will look for it.
fn find_program(program: &str, cwd: Option<&Path>) -> Outcome {
    use std::os::unix::fs::PermissionsExt as _;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        runnable(&cwd.map_or_else(|| PathBuf::from(program), |dir| dir.join(program)))
    } else {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| runnable(&dir.join(program)))
        })
    };
    if found {
        Ok(())
    } else if program.contains('/') {
        Err(Failure::error(format!(
            "cannot run `{program}`: no such executable file"
        )))
    } else {
        Err(Failure::error(format!(
            "cannot run `{program}`: not found in PATH"
        )))
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
