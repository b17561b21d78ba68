//! `keygate exec`: run a command with secrets in its environment only, masked in its
//! output, and withdrawn when the grant ends.
//!
//! The path: collect the bindings (`bindings.rs`); read what a live grant bound to this
//! argv (or a rule) already allows; file one request for the rest, bound to the argv,
//! and wait as `keygate get` does; read every value; start the child (`child.rs`); then
//! supervise it: signals (`signals.rs`), the grants (`watch.rs`), restarts on change,
//! SIGTERM / --grace / SIGKILL when a grant ends. docs/exec.md is the user's side of it.

mod bindings;
mod child;
mod signals;
mod watch;

use std::collections::BTreeMap;
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
use self::child::{Secret, Spec};
use self::watch::Event;
use crate::args::ExecArgs;
use crate::client::{Client, encode_name};
use crate::commands::get;
use crate::failure::{Failure, Outcome};

/// How long output may still flow after the child is gone (see `Running::drain`).
const DRAIN: Duration = Duration::from_secs(2);

pub async fn run(client: &Client, mut args: ExecArgs) -> Outcome<u8> {
    let bindings = bindings::collect(&args.env, &args.secret, std::env::vars_os())?;
    let argv = std::mem::take(&mut args.command);
    find_program(&argv[0])?;
    let hash = command_hash(&argv);

    let released = acquire(client, &bindings, &argv, &hash, &args).await?;

    let grants = grants_of(&released);
    if args.restart_on_change && released.values().any(|r| r.grant.is_none()) {
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

    let mut signals = signals::Signals::catch()
        .map_err(|e| Failure::error(format!("cannot catch signals for the child: {e}")))?;
    let (tx, mut events) = mpsc::unbounded_channel();
    for g in grants {
        watch::spawn(client.clone(), g, tx.clone());
    }
    drop(tx);
    let mut watching = true;

    let spec = |current: &BTreeMap<SecretName, Zeroizing<String>>| Spec {
        argv: &argv,
        env: environment(&bindings, current),
        mask: !args.no_masking,
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
            caught = signals.next() => {
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
            event = events.recv(), if watching => {
                match event {
                    None => watching = false,
                    Some(Event::Ended { why }) => {
                        if !matches!(stopping, Some(Stop::Ended)) {
                            eprintln!("keygate: {why}; stopping {program}");
                            if stopping.is_none() {
                                running.signal(SIGTERM);
                                kill_at = Some(Instant::now() + args.grace);
                            }
                            stopping = Some(Stop::Ended);
                        }
                    }
                    Some(event @ (Event::Changed(_) | Event::Check)) => {
                        let (names, quiet) = match event {
                            Event::Changed(names) => (Some(names), false),
                            _ => (None, true),
                        };
                        if args.restart_on_change
                            && stopping.is_none()
                            && let Some(new) = reread(client, &hash, &current, names.as_deref(), program, quiet).await
                        {
                            let which: Vec<&str> = new.keys().map(SecretName::as_str).collect();
                            eprintln!("keygate: {} changed; restarting {program}", which.join(", "));
                            running.signal(SIGTERM);
                            kill_at = Some(Instant::now() + args.grace);
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
            Some(Stop::Ended) => {
                let signal = if killed { SIGKILL } else { SIGTERM };
                return Ok(u8::try_from(128 + signal).unwrap_or(255));
            }
            None => return Ok(exit_code(status)),
        }
    }
}

/// Every value: what a live grant for this command (or a rule) already allows, then one
/// request for the rest, bound to the argv, waited for as `keygate get` waits.
async fn acquire(
    client: &Client,
    bindings: &[Binding],
    argv: &[String],
    hash: &str,
    args: &ExecArgs,
) -> Outcome<BTreeMap<SecretName, Release>> {
    let mut released: BTreeMap<SecretName, Release> = BTreeMap::new();
    let mut missing = Vec::new();
    for secret in bindings::secrets(bindings) {
        match release(client, &secret, hash).await? {
            Some(r) => {
                released.insert(secret, r);
            }
            None => missing.push(secret),
        }
    }
    if missing.is_empty() {
        return Ok(released);
    }
    let view: RequestView = client
        .call(
            Method::POST,
            "/v1/requests",
            Some(&FileRequest {
                secrets: missing.clone(),
                reason: args.reason.clone().unwrap_or_default(),
                ttl: args.ttl.map(keygate_proto::duration::format),
                command: Some(argv.to_vec()),
                host: get::hostname(),
            }),
        )
        .await?;
    let view = get::wait(client, view, args.timeout).await?;
    for secret in missing {
        let r = release(client, &secret, hash).await?.ok_or_else(|| {
            Failure::error(format!(
                "request {} was approved but {secret} cannot be read under its grant (revoked or expired already?)",
                view.id
            ))
        })?;
        released.insert(secret, r);
    }
    get::announce(&view);
    Ok(released)
}

/// Why keygate is stopping the child.
enum Stop {
    /// A grant ended: keygate exits 128 + the signal it took.
    Ended,
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

/// Refuses a program that cannot run, before anyone is asked to approve it.
fn find_program(program: &str) -> Outcome {
    use std::os::unix::fs::PermissionsExt as _;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        runnable(std::path::Path::new(program))
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
