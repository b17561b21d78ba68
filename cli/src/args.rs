//! The command line of `keygate`, as SPEC.md fixes it. Parsing only: each command is
//! carried out by its own file under `commands/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use keygate_proto::{AgentName, GrantId, RequestId, SecretName};

fn duration(s: &str) -> Result<Duration, String> {
    keygate_proto::duration::parse(s).map_err(|e| e.to_string())
}

/// keygate: ask a human before an agent gets a secret.
///
/// An agent asks for a secret and waits; a human approves or denies it (in Discord, or
/// here with `keygate approve`); only then does the daemon `keygated` release it, under a
/// grant that ends on its own.
#[derive(Debug, Parser)]
#[command(name = "keygate", version, max_term_width = 100)]
#[command(after_long_help = "\
ENVIRONMENT:
  KEYGATE_URL          where the daemon is: unix:///path/to.sock or https://host:port
                       (default: $XDG_RUNTIME_DIR/keygate/keygated.sock)
  KEYGATE_TOKEN        your token (default: the operator token file, if readable)
  KEYGATE_FINGERPRINT  over https: pin the daemon's certificate (sha256:<64 hex digits>)
  KEYGATE_CA           over https: a PEM file of certificates to trust
  KEYGATE_MODE         `standalone`: as --standalone (`daemon`, or unset: use keygated)
  KEYGATE_AGENT        with --standalone: the agent to act as (as --agent)

STANDALONE (no daemon):
  keygate --standalone --agent NAME get SECRET     run the gate in this process: the
  keygate --standalone --agent NAME exec ... -- CMD  daemon's config, policies, store,
  keygate --standalone secrets set NAME            audit log and Discord, until done
  Refused while a keygated serves the same state. See docs/standalone.md.

EXIT CODES:
  0 done   1 other error   2 usage   3 denied   4 no decision in time
  5 not authenticated or not allowed   6 daemon unreachable")]
pub struct Cli {
    /// Run the gate in this process, with no daemon: the daemon's own config, policies,
    /// secret store, audit log and Discord bot, for as long as this command runs; its
    /// grants end with it. `get`, `exec` and `mcp` act as the agent named by --agent;
    /// `secrets`, `agents`, `audit` and `policy` as the operator. Refused while a keygated
    /// serves the same state directory. Also KEYGATE_MODE=standalone.
    #[arg(long, global = true)]
    pub standalone: bool,
    /// With --standalone: the registered agent to act as (its policies apply; no token
    /// needed, since this process holds the store).
    #[arg(long, env = "KEYGATE_AGENT", value_name = "NAME")]
    pub agent: Option<AgentName>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for a secret, wait for approval, and print its value on stdout.
    ///
    /// Everything else (waiting, who approved, when the grant ends) goes to stderr, so
    /// `$(keygate get NAME)` captures the value alone. Ctrl-C while waiting cancels the
    /// request.
    Get(GetArgs),
    /// Run a command with secrets in its environment only, masked in its output.
    ///
    /// The secrets come from `-e VAR=SECRET`, `-s SECRET`, and variables in the
    /// environment whose value is `keygate://SECRET`; one request asks for all of them,
    /// bound to this exact command line. The child gets the values in its environment
    /// only (never argv, never a file) and never sees KEYGATE_TOKEN. Every value it
    /// prints on stdout or stderr becomes `<keygate:NAME>`. When the grant is revoked or
    /// expires, the child gets SIGTERM, then SIGKILL after --grace. keygate exits with
    /// the child's code, or 128 + N when a signal N ended it.
    #[command(after_long_help = "\
EXAMPLES:
  keygate exec -s openai/api-key -- python agent.py     # OPENAI_API_KEY=<value>
  keygate exec -e GH_TOKEN=github/token -- gh pr list
  DB_URL=keygate://db/url keygate exec -- ./migrate.sh  # DB_URL becomes the value

See docs/exec.md for masking's limits, signals and terminals.")]
    Exec(ExecArgs),
    /// List requests (pending and recently decided).
    Requests(ListArgs),
    /// Cancel one of your pending requests.
    Cancel {
        /// The request's id (`req_…`).
        request: RequestId,
    },
    /// Approve a pending request from this terminal (operator only).
    Approve {
        /// The request's id (`req_…`).
        request: RequestId,
        /// Grant for less time than the policy would.
        #[arg(long, value_parser = duration)]
        ttl: Option<Duration>,
    },
    /// Deny a pending request from this terminal (operator only).
    Deny {
        /// The request's id (`req_…`).
        request: RequestId,
        /// Why; recorded in the audit log and shown to the agent.
        #[arg(long)]
        reason: Option<String>,
    },
    /// List live grants.
    Grants(ListArgs),
    /// Revoke grants: one by id, or all of an agent's, of a secret's, or every one.
    Revoke(RevokeArgs),
    /// Make a live grant end later (operator only).
    ///
    /// Adds --by (default: the grant's own TTL) to its end, never past its approval time
    /// plus the rule's max_ttl. Prints the new end on stdout.
    Extend {
        /// The grant's id (`gnt_…`).
        grant: GrantId,
        /// How much later it should end (cut to the rule's max_ttl).
        #[arg(long, value_parser = duration)]
        by: Option<Duration>,
    },
    /// Manage the secrets the daemon holds (operator only).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Manage agents and their tokens (operator only).
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Ask the daemon's policy about an agent and a secret.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Unlock the encrypted-file secret store (passphrase from the terminal, unechoed, or stdin).
    Unlock,
    /// Forget decrypted values; releases fail, clearly, until `keygate unlock`.
    Lock,
    /// Show the audit log, or verify its hash chain.
    Audit(AuditArgs),
    /// Show the daemon's state: store backend, uptime, pending requests, live grants, Discord.
    Status(ListArgs),
    /// Serve the Model Context Protocol on stdin and stdout, for AI agents.
    ///
    /// An MCP client (Claude Code, Codex, Cursor, VS Code) starts `keygate mcp` with the
    /// agent's KEYGATE_TOKEN and gets the tools run_with_secrets, list_secrets,
    /// list_grants and request_status. None of them ever returns a secret's value:
    /// run_with_secrets runs a command with the secrets in its environment, after a
    /// human approves, and returns its output masked. Logs go to stderr.
    #[command(after_long_help = "\
EXAMPLE:
  claude mcp add keygate --env KEYGATE_TOKEN=<agent token> -- keygate mcp

See docs/mcp.md for Codex, Cursor and VS Code, and what each tool returns.")]
    Mcp,
    /// Print a completion script for SHELL on stdout.
    #[command(after_long_help = "\
EXAMPLES:
  source <(keygate completions bash)                           # this shell only
  keygate completions bash > ~/.local/share/bash-completion/completions/keygate
  keygate completions zsh > \"${fpath[1]}/_keygate\"
  keygate completions fish > ~/.config/fish/completions/keygate.fish")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print keygate's man page (roff) on stdout, or write a page per command into --dir.
    ///
    /// With --dir, writes keygate.1 and one page per subcommand (keygate-get.1,
    /// keygate-secrets-set.1, …), each with that command's full options.
    #[command(after_long_help = "\
EXAMPLES:
  keygate man | man -l -
  keygate man --dir /usr/local/share/man/man1")]
    Man {
        /// Write keygate.1 and a page per subcommand into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The secret's name, such as `github/token`.
    pub secret: SecretName,
    /// Why you need it; shown to the approver.
    #[arg(long)]
    pub reason: Option<String>,
    /// How long the grant should live (cut to the policy's max_ttl).
    #[arg(long, value_parser = duration)]
    pub ttl: Option<Duration>,
    /// Give up waiting after this long (exit 4).
    #[arg(long, value_parser = duration)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Why you need the secrets; shown to the approver.
    #[arg(long)]
    pub reason: Option<String>,
    /// How long the grant should live (cut to the policy's max_ttl).
    #[arg(long, value_parser = duration)]
    pub ttl: Option<Duration>,
    /// Give up waiting for approval after this long (exit 4).
    #[arg(long, value_parser = duration)]
    pub timeout: Option<Duration>,
    /// How long the child has to stop after SIGTERM before it gets SIGKILL.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub grace: Duration,
    /// Pass the child's stdout and stderr through untouched: values are not masked.
    #[arg(long)]
    pub no_masking: bool,
    /// When the operator changes one of the secrets, restart the child with the new
    /// value (SIGTERM, --grace, SIGKILL, start again).
    #[arg(long)]
    pub restart_on_change: bool,
    /// Put SECRET in the child's environment as VAR (repeatable).
    #[arg(short = 'e', value_name = "VAR=SECRET")]
    pub env: Vec<String>,
    /// Put SECRET in the child's environment under its mapped name: `openai/api-key`
    /// becomes OPENAI_API_KEY (repeatable).
    #[arg(short = 's', value_name = "SECRET")]
    pub secret: Vec<SecretName>,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// The grant's id (`gnt_…`).
    pub grant: Option<GrantId>,
    /// Every grant of this agent.
    #[arg(long)]
    pub agent: Option<AgentName>,
    /// Every grant that covers this secret.
    #[arg(long)]
    pub secret: Option<SecretName>,
    /// Every live grant.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; the value is read from stdin, never from argv (one trailing
    /// newline is dropped).
    Set { name: SecretName },
    /// List secrets: names and dates, never values.
    List(ListArgs),
    /// Remove a secret.
    Rm { name: SecretName },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Add an agent and print its new token, once, alone on stdout.
    Add { name: AgentName },
    /// List agents.
    List(ListArgs),
    /// Remove an agent; its token stops working at once.
    Rm { name: AgentName },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Which rule decides for AGENT reading SECRET, and what it decides.
    Check {
        agent: AgentName,
        secret: SecretName,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events newer than this (e.g. `1h`).
    #[arg(long, value_parser = duration)]
    pub since: Option<Duration>,
    /// Print one JSON array instead of lines for people.
    #[arg(long)]
    pub json: bool,
    /// Check the hash chain: finds an edited, removed or reordered line.
    #[arg(long)]
    pub verify: bool,
}
