//! The part of `keygate` that other programs may link: the streaming masker that
//! `keygate exec` runs its child's output through. It is a library so that
//! `examples/mask_bench.rs` measures the very code `exec` runs.

pub mod mask;
