//! `keygated`, the keygate daemon: the command line, logging, and the start of `serve`
//! and `demo`.

mod demo;
mod man;
mod serve;
mod simulator;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keygate_proto::hardening::CoreLimit;

/// keygated: the keygate daemon.
///
/// It holds the secrets, asks approvers (in Discord, or at the operator's terminal) before
/// an agent gets one, and releases it under a grant that ends on its own. Every step is
/// written to a hash-chained audit log that never holds a secret value.
#[derive(Debug, Parser)]
#[command(name = "keygated", version, max_term_width = 100)]
#[command(after_long_help = "\
FILES (each base moves with its XDG variable):
  $XDG_CONFIG_HOME/keygate/keygated.toml    daemon config (--config, KEYGATE_CONFIG)
  $XDG_CONFIG_HOME/keygate/policies.toml    policies (KEYGATE_POLICIES)
  $XDG_CONFIG_HOME/keygate/operator.token   operator token, 0600, made on first start
  $XDG_STATE_HOME/keygate/audit.jsonl       audit log
  $XDG_RUNTIME_DIR/keygate/keygated.sock    API socket, 0600

ENVIRONMENT:
  KEYGATE_<SECTION>_<KEY> sets any config key and wins over the file, e.g.
  KEYGATE_DISCORD_TOKEN, KEYGATE_DISCORD_CHANNEL_ID, KEYGATE_DISCORD_GUILD_ID,
  KEYGATE_SECRET_STORE (keyring|file|memory), KEYGATE_STORE_PASSPHRASE,
  KEYGATE_SERVER_LISTEN, KEYGATE_METRICS_LISTEN (127.0.0.1:PORT: GET /metrics with no
  token, loopback only). RUST_LOG sets the log level (default info).

SIGNALS:
  SIGHUP reloads the policies (a broken file keeps the old ones); SIGTERM and SIGINT
  stop gracefully.")]
struct Cli {
    /// The daemon config file (default: $XDG_CONFIG_HOME/keygate/keygated.toml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground, logging to stderr (the default).
    Serve,
    /// Run the whole flow on this machine, with no Discord account and no setup:
    /// a daemon with an in-memory store, a demo policy, a demo secret and a demo agent;
    /// a request filed, shown, approved and released. Then it keeps running so you can
    /// try it by hand: it prints the agent's KEYGATE_URL and KEYGATE_TOKEN and
    /// "Approve from your browser: http://127.0.0.1:PORT/", a page showing the approval
    /// channel as a phone shows Discord, live, whose buttons press as the demo approver.
    Demo {
        /// Run the flow once and exit instead of serving on.
        #[arg(long)]
        once: bool,
    },
    /// Run a Discord simulator on this machine: Discord's real gateway and REST protocols
    /// on loopback, and an HTTP control API that presses buttons. Point keygated at it to
    /// try keygate or test agents with no Discord account (docs/discord-simulator.md).
    Simulator {
        #[arg(long)]
        gateway_port: Option<u16>,
        #[arg(long)]
        rest_port: Option<u16>,
        #[arg(long)]
        control_port: Option<u16>,
    },
    /// Print keygated's man page, keygated(8), in roff on stdout, or write a page per
    /// command into --dir.
    #[command(after_long_help = "\
EXAMPLES:
  keygated man | man -l -
  keygated man --dir /usr/local/share/man/man8")]
    Man {
        /// Write keygated.8 and a page per subcommand into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Before anything holds a secret: no core dump may ever contain one.
    if let Err(e) = keygate_proto::hardening::no_core_dumps(CoreLimit::Locked) {
        eprintln!("keygated: cannot turn core dumps off: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    if let Some(Command::Man { dir }) = &cli.command {
        return man::print(dir.as_deref());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The demo speaks for itself; its daemon only says what goes wrong.
        let quiet = matches!(cli.command, Some(Command::Demo { .. }));
        tracing_subscriber::EnvFilter::new(if quiet { "warn" } else { "info" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keygated: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve::run(cli.config.as_deref()).await,
            Command::Demo { once } => demo::run(once).await,
            Command::Simulator {
                gateway_port,
                rest_port,
                control_port,
            } => simulator::run(gateway_port, rest_port, control_port).await,
            Command::Man { .. } => unreachable!("printed before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keygated: {e:#}");
            ExitCode::FAILURE
        }
    }
}
