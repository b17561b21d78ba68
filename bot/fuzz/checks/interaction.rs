//! The `interaction` fuzz target's checks, as a plain function: the fuzz target calls it
//! on every generated input, and `bot/tests/fuzz_seeds.rs` (stable, in CI) on every input
//! kept in `seeds/interaction/`.
//!
//! An INTERACTION_CREATE payload, a button's custom_id, and requester text: decoded and
//! escaped without a panic; escaped text never carries a live mention.

pub fn interaction(data: &[u8]) {
    let _ = serde_json::from_slice::<twilight_model::application::interaction::Interaction>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keygate_bot::buttons::parse(text);
        let inert = keygate_bot::escape::inert(text, 500);
        assert!(
            !inert.contains("@everyone") && !inert.contains("@here") && !inert.contains("<@"),
            "{inert}"
        );
    }
}
