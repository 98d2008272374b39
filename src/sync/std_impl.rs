//! `std` versions of the shim's items.

pub use std::sync::{Arc, Mutex, MutexGuard};

/// Atomics and fences.
pub mod atomic {
    pub use std::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
}

/// Threads, parking and the spin hint.
pub mod thread {
    pub use std::thread::{current, park, park_timeout, yield_now, Thread};
}

/// The spin-loop hint.
pub mod hint {
    pub use std::hint::spin_loop;
}

/// An `UnsafeCell` whose accessors take closures, as loom's does, so that the same code
/// compiles against both.
#[derive(Debug, Default)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Gives `f` a shared raw pointer to the contents.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Gives `f` a mutable raw pointer to the contents.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
