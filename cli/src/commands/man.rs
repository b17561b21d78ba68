//! `keygate man [--dir DIR]`: man pages (roff) generated from the clap definitions.
//!
//! On stdout, one page: keygate(1), which lists every command with its summary. With
//! `--dir`, also a page per subcommand (keygate-get(1), keygate-secrets-set(1), …), the
//! layout git and cargo use: each command's options are many, and a reader looks one up
//! with `man keygate-exec` rather than paging through all of them.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory as _;

use crate::args::Cli;
use crate::failure::{Failure, Outcome};

pub fn run(dir: Option<&Path>) -> Outcome<()> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| Failure::error(format!("cannot render the man page: {e}")))?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&page)
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::error(format!("cannot write the man page: {e}")))
        }
        Some(dir) => clap_mangen::generate_to(cmd, dir).map_err(|e| {
            Failure::error(format!(
                "cannot write the man pages into {}: {e}",
                dir.display()
            ))
        }),
    }
}
