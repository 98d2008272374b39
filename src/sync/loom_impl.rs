//! loom versions of the shim's items (compiled only with `--cfg loom`).

pub use loom::sync::{Arc, Mutex, MutexGuard};

/// Atomics and fences.
pub mod atomic {
    pub use loom::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
}

/// Threads, parking and the spin hint.
pub mod thread {
    pub use loom::thread::{current, park, yield_now, Thread};

    /// loom has no timed park; a timed wait is modelled as a plain park, which is the
    /// stricter case for a wake-up protocol (nothing but an unpark ends it).
    pub fn park_timeout(_duration: std::time::Duration) {
        loom::thread::park();
    }
}

/// The spin-loop hint: under loom a spin must yield, or the model would never end.
pub mod hint {
    /// Yields to loom's scheduler.
    pub fn spin_loop() {
        loom::thread::yield_now();
    }
}

pub use loom::cell::UnsafeCell;
