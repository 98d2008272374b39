//! loom models of rivulet's concurrency protocols.
//!
//! Everything lives in `tests/` behind `cfg(loom)`; run them with
//! `RUSTFLAGS="--cfg loom" cargo test -p rivulet-loom-tests --release`.
