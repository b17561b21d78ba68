//! `keygate`, the thin client of the keygate daemon (see `run.rs`).

fn main() -> std::process::ExitCode {
    keygate_cli::main_keygate()
}
