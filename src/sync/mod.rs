//! The concurrency shim: every atomic, `Arc`, thread, park and `UnsafeCell` that one of
//! rivulet's own protocols uses comes from here.
//!
//! Normally these are the `std` items. Compiled with `RUSTFLAGS="--cfg loom"`, the same
//! names come from [`loom`](https://docs.rs/loom), so the `loom-tests` crate can explore
//! every interleaving of the real protocol code (the wake-up protocol in
//! [`crate::edge::wait`], the model ring in [`crate::edge::model_ring`], the run control in
//! [`crate::runtime::shutdown`], the manual clock in [`crate::time`]).
//!
//! Code outside those protocols (metrics counters, the memory sink's table) uses `std`
//! directly: it never decides whether a thread may sleep or whether a record is visible.

#[cfg(not(loom))]
mod std_impl;
#[cfg(not(loom))]
pub use std_impl::*;

#[cfg(loom)]
mod loom_impl;
#[cfg(loom)]
pub use loom_impl::*;
