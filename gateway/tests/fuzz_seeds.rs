//! Replays every input kept for the `api_decode` fuzz target — `fuzz/seeds/api_decode/`: the
//! starting examples and every find — through the target's own checks
//! (`fuzz/checks/api_decode.rs`, the same file the fuzz target runs). Stable Rust, so CI
//! builds the checks and runs the finds as regression tests; docs/fuzzing.md.
#![allow(clippy::unwrap_used)]

#[path = "../fuzz/checks/api_decode.rs"]
mod checks;

#[test]
fn every_kept_input_passes_the_fuzz_targets_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/api_decode");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 2, "no inputs in {}", dir.display());
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        let run = std::panic::catch_unwind(|| checks::api_decode(&data));
        assert!(run.is_ok(), "{} fails the fuzz checks", path.display());
    }
}
