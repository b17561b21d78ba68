//! keygate policies (being built).
