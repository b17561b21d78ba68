//! `keygate-standalone`: `keygate --standalone`, the gate in this process (see `run.rs`
//! and docs/standalone.md). `keygate --standalone` hands itself over to this binary.

fn main() -> std::process::ExitCode {
    keygate_cli::main_standalone()
}
