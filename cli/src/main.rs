//! `keygate`, the thin client of the keygate daemon.

mod args;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let name = match cli.command {
        args::Command::Get(_) => "get",
        args::Command::Exec(_) => "exec",
        args::Command::Requests(_) => "requests",
        args::Command::Cancel { .. } => "cancel",
        args::Command::Approve { .. } => "approve",
        args::Command::Deny { .. } => "deny",
        args::Command::Grants(_) => "grants",
        args::Command::Revoke(_) => "revoke",
        args::Command::Secrets(_) => "secrets",
        args::Command::Agents(_) => "agents",
        args::Command::Policy(_) => "policy",
        args::Command::Unlock => "unlock",
        args::Command::Lock => "lock",
        args::Command::Audit(_) => "audit",
        args::Command::Status(_) => "status",
    };
    eprintln!("keygate: `keygate {name}` is not built yet");
    ExitCode::from(1)
}
