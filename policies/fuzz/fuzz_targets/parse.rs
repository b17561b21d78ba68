//! Feeds arbitrary text to `Policy::parse`; the checks live in `checks/parse.rs`, shared
//! with the stable test that replays `seeds/parse/`.
#![no_main]

#[path = "../checks/parse.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::parse(data));
