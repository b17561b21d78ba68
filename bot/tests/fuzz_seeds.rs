//! Replays every input kept for the `interaction` fuzz target — `fuzz/seeds/interaction/`: the
//! starting examples and every find — through the target's own checks
//! (`fuzz/checks/interaction.rs`, the same file the fuzz target runs). Stable Rust, so CI
//! builds the checks and runs the finds as regression tests; docs/fuzzing.md.
#![allow(clippy::unwrap_used)]

#[path = "../fuzz/checks/interaction.rs"]
mod checks;

#[test]
fn every_kept_input_passes_the_fuzz_targets_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/interaction");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 2, "no inputs in {}", dir.display());
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        let run = std::panic::catch_unwind(|| checks::interaction(&data));
        assert!(run.is_ok(), "{} fails the fuzz checks", path.display());
    }
}

/// The payload seeds are real INTERACTION_CREATEs (taken from the simulator): they must
/// keep decoding, or the fuzzer starts from nothing useful.
#[test]
fn the_payload_seeds_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/interaction");
    for name in ["button-press-in-guild.json", "button-press-in-dm.json"] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let decoded =
            serde_json::from_slice::<twilight_model::application::interaction::Interaction>(&data);
        assert!(decoded.is_ok(), "{name}: {decoded:?}");
    }
}
