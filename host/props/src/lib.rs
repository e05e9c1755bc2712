//! Test-only crate: the property tests live in `tests/`. The CLI's settings parser is a
//! module of the `pynq-mqtt` binary, so `tests/config.rs` includes its source file
//! (`#[path]`) instead of linking it.
