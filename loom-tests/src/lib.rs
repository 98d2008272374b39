//! loom models of rivulet's concurrency protocols.
//!
//! The models live in `tests/`, one file per protocol, each wrapped entirely in
//! `#![cfg(loom)]`, so an ordinary `cargo build`, `cargo test` or `cargo clippy` of the
//! workspace compiles none of them. This library holds the few helpers they share, behind
//! the same cfg. Run them (see `README.md` and `.ci/loom.sh`) with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=3 \
//!     CARGO_TARGET_DIR=target/loom cargo test -p rivulet-loom-tests --release
//! ```
//!
//! `--release` because loom explores thousands of executions; `-C debug-assertions` because
//! the models' own checks and the library's `debug_assert!`s must stay on. Building under
//! `--cfg loom` without debug assertions is a compile error (tokio keeps the same guard).

#[cfg(all(loom, not(debug_assertions)))]
compile_error!(
    "the loom models need debug assertions: run them with \
     RUSTFLAGS=\"--cfg loom -C debug-assertions\" cargo test -p rivulet-loom-tests --release \
     (or .ci/loom.sh)"
);

#[cfg(loom)]
mod helpers;
#[cfg(loom)]
pub use helpers::*;
