//! Interaction payloads, custom_ids and requester text; the checks live in
//! `checks/interaction.rs`, shared with the stable test that replays `seeds/interaction/`.
#![no_main]

#[path = "../checks/interaction.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::interaction(data));
