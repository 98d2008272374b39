//! Where operator threads run: core pinning with `core_affinity`.
//!
//! `core_affinity::get_core_ids()` lists the cores in the *calling thread's* affinity
//! mask, so a thread spawned by an already pinned thread sees one core. rivulet reads the
//! list once per process, on the first query start, before it pins anything, and hands it
//! to every query. (If the application pinned its own main thread before that, pass
//! explicit cores with [`Pinning::Cores`].)

use std::sync::OnceLock;

/// How operator threads are placed on cores.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pinning {
    /// Pin one thread per core when there are at least as many cores as threads;
    /// otherwise leave placement to the OS scheduler (pinning two busy threads to one core
    /// while another core idles would be worse than not pinning).
    #[default]
    Auto,
    /// Never pin.
    None,
    /// Pin thread `i` (in start order) to `cores[i % cores.len()]`. More threads than
    /// cores is allowed: they share cores round-robin.
    Cores(Vec<usize>),
}

/// The cores this process may run on, read once.
pub fn available_cores() -> &'static [core_affinity::CoreId] {
    static CORES: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Decides the core of each of `threads` threads.
pub fn place(pinning: &Pinning, threads: usize) -> Vec<Option<core_affinity::CoreId>> {
    match pinning {
        Pinning::None => vec![None; threads],
        Pinning::Auto => {
            let cores = available_cores();
            if !cores.is_empty() && threads <= cores.len() {
                cores.iter().take(threads).copied().map(Some).collect()
            } else {
                vec![None; threads]
            }
        }
        Pinning::Cores(cores) if cores.is_empty() => vec![None; threads],
        Pinning::Cores(cores) => (0..threads)
            .map(|i| {
                Some(core_affinity::CoreId {
                    id: cores[i % cores.len()],
                })
            })
            .collect(),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn explicit_cores_wrap_around() {
        let placed = place(&Pinning::Cores(vec![0, 1]), 5);
        let ids: Vec<usize> = placed.iter().map(|c| c.unwrap().id).collect();
        assert_eq!(ids, vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn auto_does_not_pin_more_threads_than_cores() {
        let cores = available_cores().len();
        assert!(place(&Pinning::Auto, cores + 1).iter().all(Option::is_none));
        if cores > 0 {
            assert!(place(&Pinning::Auto, cores).iter().all(Option::is_some));
        }
        assert!(place(&Pinning::None, 3).iter().all(Option::is_none));
    }
}
