//! `keygate completions SHELL`: a completion script generated from the very clap
//! definitions `keygate` parses with, so it cannot drift from the command line.

use std::io::Write as _;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::args::Cli;
use crate::failure::{Failure, Outcome};

pub fn run(shell: Shell) -> Outcome<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "keygate", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::error(format!("cannot write the completion script: {e}")))
}
