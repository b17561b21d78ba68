//! Helpers for end-to-end tests (being built).
