//! The secret store (being built).
