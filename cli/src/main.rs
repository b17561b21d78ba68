//! `keygate`, the thin client of the keygate daemon: parse the command line, call the
//! daemon, print for people (or `--json` for programs), exit with SPEC.md's codes.

mod args;
mod client;
mod commands;
mod failure;
mod output;
mod standalone;
mod tls;

use std::process::ExitCode;

use clap::Parser as _;
use keygate_proto::hardening::CoreLimit;

use crate::args::{AgentsCommand, Command, PolicyCommand, SecretsCommand};
use crate::commands::{
    agents, audit, completions, decide, exec, get, grants, man, mcp, policy, requests, secrets,
    status, store,
};
use crate::failure::{Exit, Outcome};

fn main() -> ExitCode {
    // It holds tokens and values: no core dump of it. The hard limit stays, so that
    // `exec`'s child (which starts with a soft limit of 0) may raise its own.
    if let Err(e) = keygate_proto::hardening::no_core_dumps(CoreLimit::SoftOnly) {
        eprintln!("keygate: cannot turn core dumps off: {e}");
        return ExitCode::from(Exit::Error as u8);
    }
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keygate: cannot start: {e}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("keygate: {failure}");
            ExitCode::from(failure.exit as u8)
        }
    }
}

/// Runs one command; the exit code on success (0, or `exec`'s child's own).
async fn run(cli: args::Cli) -> Outcome<u8> {
    let command = cli.command;
    // These two describe the CLI itself: no daemon, no token, no environment needed.
    match command {
        Command::Completions { shell } => return completions::run(shell).map(|()| 0),
        Command::Man { dir } => return man::run(dir.as_deref()).map(|()| 0),
        _ => {}
    }
    if standalone::requested(cli.standalone)? {
        // Boxed: the whole gate lives in it, and the daemon path need not carry its size.
        return Box::pin(standalone::run(command, cli.agent)).await;
    }
    dispatch(client::Client::from_env()?, command).await
}

/// Carries out one command through `client` (keygated's, or the standalone gate's).
async fn dispatch(client: client::Client, command: Command) -> Outcome<u8> {
    let done = match command {
        Command::Exec(args) => return exec::run(&client, args).await,
        Command::Get(args) => get::run(&client, args).await,
        Command::Requests(args) => requests::list(&client, args).await,
        Command::Cancel { request } => requests::cancel(&client, request).await,
        Command::Approve { request, ttl } => decide::approve(&client, request, ttl).await,
        Command::Deny { request, reason } => decide::deny(&client, request, reason).await,
        Command::Grants(args) => grants::list(&client, args).await,
        Command::Revoke(args) => grants::revoke(&client, args).await,
        Command::Extend { grant, by } => grants::extend(&client, grant, by).await,
        Command::Secrets(SecretsCommand::Set { name }) => secrets::set(&client, name).await,
        Command::Secrets(SecretsCommand::List(args)) => secrets::list(&client, args).await,
        Command::Secrets(SecretsCommand::Rm { name }) => secrets::rm(&client, name).await,
        Command::Agents(AgentsCommand::Add { name }) => agents::add(&client, name).await,
        Command::Agents(AgentsCommand::List(args)) => agents::list(&client, args).await,
        Command::Agents(AgentsCommand::Rm { name }) => agents::rm(&client, name).await,
        Command::Policy(PolicyCommand::Check { agent, secret }) => {
            policy::check(&client, agent, secret).await
        }
        Command::Unlock => store::unlock(&client).await,
        Command::Lock => store::lock(&client).await,
        Command::Audit(args) => audit::run(&client, args).await,
        Command::Status(args) => status::run(&client, args).await,
        Command::Mcp => mcp::run(client).await,
        Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
    };
    done.map(|()| 0)
}
