//! `keygate --standalone` (or `KEYGATE_MODE=standalone`): no daemon. The gate of
//! `keygate-gateway` runs in this process for as long as the command does
//! (`keygate_gateway::runtime::standalone`), and the command talks to it through the very
//! [`Client`] it would use with keygated, over an in-process connection: one copy of each
//! command, whichever the mode.
//!
//! Who acts: `get`, `exec` and `mcp` as the registered agent `--agent` (`KEYGATE_AGENT`)
//! names, under that agent's policies; `secrets`, `agents`, `audit` and `policy` as the
//! operator. Whoever can run this already holds the store, the operator token and the
//! policies file, so no token is asked for; but the agent must be registered, as it
//! must be with keygated, so that the same rules, the same audit lines and the same
//! `keygate agents rm` apply. Commands about a running daemon's state (`requests`,
//! `grants`, `approve`, …) mean nothing here and are refused.

use keygate_gateway::config::Config;
use keygate_gateway::runtime::StartError;
use keygate_gateway::runtime::standalone::{Options, Standalone};
use keygate_proto::AgentName;
use std::io::IsTerminal as _;

use secrecy::{ExposeSecret as _, SecretString};

use crate::args::Command;
use crate::client::Client;
use crate::failure::{Exit, Failure, Outcome};

/// Whether this run is standalone: `--standalone`, or `KEYGATE_MODE=standalone`.
pub fn requested(flag: bool) -> Outcome<bool> {
    match std::env::var("KEYGATE_MODE").ok().as_deref() {
        _ if flag => Ok(true),
        Some("standalone") => Ok(true),
        None | Some("" | "daemon") => Ok(false),
        Some(other) => Err(Failure::new(
            Exit::Usage,
            format!("KEYGATE_MODE must be `standalone` or `daemon`, not {other:?}"),
        )),
    }
}

/// Whom a command acts as in standalone mode, or why it cannot run there.
fn options(command: &Command, agent: Option<AgentName>) -> Outcome<Options> {
    let name = command_name(command);
    match command {
        Command::Get(_) | Command::Exec(_) | Command::Mcp => {
            let agent = agent.ok_or_else(|| {
                Failure::new(
                    Exit::Usage,
                    format!(
                        "keygate --standalone {name} acts as an agent: name it with --agent NAME (before `{name}`) or KEYGATE_AGENT"
                    ),
                )
            })?;
            Ok(Options {
                agent: Some(agent),
                asks: true,
            })
        }
        Command::Secrets(_) | Command::Agents(_) | Command::Audit(_) | Command::Policy(_) => {
            if agent.is_some() {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("keygate --standalone {name} acts as the operator: leave out --agent"),
                ));
            }
            Ok(Options::default())
        }
        _ => Err(Failure::new(
            Exit::Usage,
            format!(
                "keygate --standalone {name}: nothing to do without a daemon (a standalone run keeps no requests or grants past its own end); standalone runs get, exec, mcp, secrets, agents, audit and policy"
            ),
        )),
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Get(_) => "get",
        Command::Exec(_) => "exec",
        Command::Mcp => "mcp",
        Command::Secrets(_) => "secrets",
        Command::Agents(_) => "agents",
        Command::Audit(_) => "audit",
        Command::Policy(_) => "policy",
        Command::Requests(_) => "requests",
        Command::Cancel { .. } => "cancel",
        Command::Approve { .. } => "approve",
        Command::Deny { .. } => "deny",
        Command::Grants(_) => "grants",
        Command::Revoke(_) => "revoke",
        Command::Extend { .. } => "extend",
        Command::Unlock => "unlock",
        Command::Lock => "lock",
        Command::Status(_) => "status",
        Command::Completions { .. } => "completions",
        Command::Man { .. } => "man",
    }
}

fn start_failed(e: &StartError) -> Failure {
    let exit = match e {
        StartError::UnknownAgent(_) => Exit::Auth,
        _ => Exit::Error,
    };
    Failure::new(exit, e.to_string())
}

/// Runs `command` against a gate of its own, then ends that gate (its grants with it).
pub async fn run(command: Command, agent: Option<AgentName>) -> Outcome<u8> {
    let options = options(&command, agent)?;
    // The gate's own log is keygated's: off unless RUST_LOG asks for it (every failure
    // the command meets is already its one line on stderr), and never on stdout.
    // (`mcp` sets up its own: stderr is its log.)
    if !matches!(command, Command::Mcp) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init();
    }
    let config = Config::load(None).map_err(|e| Failure::error(e.to_string()))?;
    let gate = Standalone::start(&config, &options)
        .await
        .map_err(|e| start_failed(&e))?;
    let done = match unlock_if_needed(&gate, &command).await {
        Ok(()) => {
            let client = Client::in_process(gate.dialer(), gate.token().expose_secret());
            crate::run::dispatch(client, command).await
        }
        Err(e) => Err(e),
    };
    gate.shut_down().await;
    done
}

/// An encrypted store with no passphrase given (`KEYGATE_STORE_PASSPHRASE`) opens
/// locked. There is no `keygate unlock` to run beside a standalone run, so a command that
/// reads or writes values asks for the passphrase on the terminal; with no terminal it
/// stops here, saying what to set.
async fn unlock_if_needed(gate: &Standalone, command: &Command) -> Outcome {
    let needs_values = matches!(
        command,
        Command::Get(_) | Command::Exec(_) | Command::Mcp | Command::Secrets(_)
    );
    if !needs_values || !gate.store_locked() {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::error(
            "the secret store is locked: set KEYGATE_STORE_PASSPHRASE (a standalone run asks for it only on a terminal)",
        ));
    }
    let passphrase = rpassword::prompt_password("passphrase for the keygate secret store: ")
        .map_err(|e| Failure::error(format!("cannot read the passphrase: {e}")))?;
    gate.unlock(SecretString::from(passphrase))
        .await
        .map_err(|e| Failure::error(e.to_string()))
}
