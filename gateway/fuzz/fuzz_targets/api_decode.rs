//! Request bodies, path segments and query strings; the checks live in
//! `checks/api_decode.rs`, shared with the stable test that replays `seeds/api_decode/`.
#![no_main]

#[path = "../checks/api_decode.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::api_decode(data));
