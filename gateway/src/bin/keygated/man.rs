//! `keygated man [--dir DIR]`: keygated(8), generated from the same clap definitions it
//! parses with. On stdout, the one page; with `--dir`, also keygated-serve(8),
//! keygated-demo(8), … which that page names, as `keygate man --dir` does for the CLI.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory as _;

fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Manager's Manual")
}

fn write_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir)?;
    }
    page(cmd).generate_to(dir).map(|_| ())
}

pub fn print(dir: Option<&Path>) -> ExitCode {
    let written = match dir {
        None => {
            let mut text = Vec::new();
            page(crate::Cli::command())
                .render(&mut text)
                .and_then(|()| {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&text).and_then(|()| stdout.flush())
                })
        }
        Some(dir) => {
            // Built first, so that each subcommand's page is named keygated-<sub>.
            let mut cmd = crate::Cli::command().disable_help_subcommand(true);
            cmd.build();
            write_pages(cmd, dir)
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keygated: cannot write the man page: {e}");
            ExitCode::FAILURE
        }
    }
}
