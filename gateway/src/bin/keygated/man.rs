//! `keygated man`: keygated(8), generated from the same clap definitions it parses with.
//! One page: its few subcommands take almost no options, so the page lists them all.

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;

pub fn print() -> ExitCode {
    let mut page = Vec::new();
    let rendered = clap_mangen::Man::new(crate::Cli::command())
        .section("8")
        .manual("System Manager's Manual")
        .render(&mut page)
        .and_then(|()| {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&page).and_then(|()| stdout.flush())
        });
    match rendered {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keygated: cannot write the man page: {e}");
            ExitCode::FAILURE
        }
    }
}
