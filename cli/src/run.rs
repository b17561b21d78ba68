//! The two ways in: `keygate` ([`main_keygate`]), the thin client of the keygate daemon
//! (parse the command line, call the daemon, print for people or `--json` for programs,
//! exit with SPEC.md's codes), and `keygate-standalone` ([`main_standalone`]), which runs
//! the same commands against the gate in its own process.
//!
//! Two binaries, so that the daemon path does not carry the gate: `keygate --standalone`
//! (or `KEYGATE_MODE=standalone`) hands itself over to the `keygate-standalone` beside it
//! (`exec`, same arguments and environment), and the `keygate` binary links none of the
//! gateway's code (docs/benchmarks.md: its start costs what it did before standalone
//! mode existed).

use std::ffi::OsString;
use std::pin::Pin;
use std::process::ExitCode;

use clap::Parser as _;
use keygate_proto::AgentName;
use keygate_proto::hardening::CoreLimit;

use crate::args::{AgentsCommand, Command, PolicyCommand, SecretsCommand};
use crate::commands::{
    agents, audit, completions, decide, exec, get, grants, man, mcp, policy, requests, secrets,
    status, store,
};
use crate::failure::{Exit, Outcome};
use crate::{args, client, failure, standalone};

/// How a command runs in-process: named only by `keygate-standalone`'s `main`, so that
/// nothing reachable from `keygate`'s refers to the gate and the linker leaves it out.
type InProcess = fn(Command, Option<AgentName>) -> Pin<Box<dyn Future<Output = Outcome<u8>>>>;

/// Which of the two binaries is running.
#[derive(Clone, Copy)]
enum Binary {
    Keygate,
    Standalone(InProcess),
}

/// `keygate`'s `main`.
pub fn main_keygate() -> ExitCode {
    start(Binary::Keygate)
}

/// `keygate-standalone`'s `main`: always standalone, whatever `--standalone` says.
pub fn main_standalone() -> ExitCode {
    start(Binary::Standalone(|command, agent| {
        // Boxed: the whole gate lives in it.
        Box::pin(standalone::run(command, agent))
    }))
}

fn start(binary: Binary) -> ExitCode {
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
    match runtime.block_on(run(cli, binary)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("keygate: {failure}");
            ExitCode::from(failure.exit as u8)
        }
    }
}

/// Runs one command; the exit code on success (0, or `exec`'s child's own).
async fn run(cli: args::Cli, binary: Binary) -> Outcome<u8> {
    let command = cli.command;
    // These two describe the CLI itself: no daemon, no token, no environment needed.
    match command {
        Command::Completions { shell } => return completions::run(shell).map(|()| 0),
        Command::Man { dir } => return man::run(dir.as_deref()).map(|()| 0),
        _ => {}
    }
    match binary {
        Binary::Standalone(in_process) => return in_process(command, cli.agent).await,
        Binary::Keygate if standalone::requested(cli.standalone)? => {
            return Err(hand_over());
        }
        Binary::Keygate => {}
    }
    dispatch(client::Client::from_env()?, command).await
}

/// Carries out one command through `client` (keygated's, or the standalone gate's).
pub(crate) async fn dispatch(client: client::Client, command: Command) -> Outcome<u8> {
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

/// `keygate --standalone`: becomes the `keygate-standalone` beside this binary, with the
/// same arguments and environment. Returns only if that fails.
fn hand_over() -> failure::Failure {
    use std::os::unix::process::CommandExt as _;
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(STANDALONE_BIN)));
    let Some(path) = beside.filter(|p| p.is_file()) else {
        return failure::Failure::error(format!(
            "--standalone needs `{STANDALONE_BIN}` installed beside `keygate` (it is built with it: cargo build --bins)"
        ));
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let e = std::process::Command::new(&path)
        .arg0(STANDALONE_BIN)
        .args(args)
        .exec();
    failure::Failure::error(format!("cannot start {}: {e}", path.display()))
}

/// The standalone binary's name.
pub const STANDALONE_BIN: &str = "keygate-standalone";
