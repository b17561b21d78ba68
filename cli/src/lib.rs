//! `keygate` and `keygate-standalone`: the commands (`run.rs` is where both binaries
//! start), and the streaming masker that `keygate exec` runs its child's output through
//! (a library module, so that `examples/mask_bench.rs` measures the very code `exec`
//! runs).

mod args;
mod client;
mod commands;
mod failure;
pub mod mask;
mod output;
mod run;
mod standalone;
mod tls;

pub use run::{STANDALONE_BIN, main_keygate, main_standalone};
