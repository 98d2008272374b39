//! How much CPU the rest of the machine took while a system ran.
//!
//! On a shared 2-core machine a spinning pinned thread loses its core for a whole
//! scheduler slice (milliseconds) whenever anything else becomes runnable, so one
//! compile job during a run moves every percentile from p90 up. Each run records the CPU
//! time used by other processes and stolen by the hypervisor (from `/proc/stat` minus
//! this process's own time from `/proc/self/stat`), as a fraction of the machine, so
//! disturbed runs can be told apart, reported, and (with `--max-interference`) repeated.

use std::time::Instant;

/// Clock ticks per second of `/proc` times (`USER_HZ`; 100 on every Linux ABI in use).
const TICKS_PER_SECOND: f64 = 100.0;

/// A reading of the machine's and this process's CPU time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    at: Instant,
    /// Busy ticks of all CPUs, steal excluded.
    busy: u64,
    /// Ticks stolen by the hypervisor.
    steal: u64,
    /// This process's user + system ticks.
    own: u64,
}

/// CPU used by others during an interval, as fractions of the whole machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct Interference {
    /// Other processes' CPU time / (wall time × cores).
    pub(crate) other_processes: f64,
    /// Stolen time / (wall time × cores).
    pub(crate) steal: f64,
}

impl Interference {
    /// Everything that was not this process.
    pub(crate) fn total(&self) -> f64 {
        self.other_processes + self.steal
    }
}

impl CpuSample {
    /// Reads the counters now; `None` where `/proc` is not there.
    pub(crate) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (busy, steal) = parse_stat(&stat)?;
        Some(CpuSample {
            at: Instant::now(),
            busy,
            steal,
            own: parse_own(&own)?,
        })
    }

    /// What others used between `self` and `later`, on a machine of `cores` cores.
    pub(crate) fn since(&self, later: &CpuSample, cores: usize) -> Interference {
        let capacity =
            later.at.duration_since(self.at).as_secs_f64() * TICKS_PER_SECOND * cores as f64;
        if capacity <= 0.0 {
            return Interference::default();
        }
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        Interference {
            other_processes: busy.saturating_sub(own) as f64 / capacity,
            steal: later.steal.saturating_sub(self.steal) as f64 / capacity,
        }
    }
}

/// Waits until others used at most `limit` of the machine over one second, checking
/// every second for up to `timeout`. Returns `false` on the timeout (or without `/proc`).
pub(crate) fn wait_for_quiet(limit: f64, timeout: std::time::Duration) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let Some(mut before) = CpuSample::now() else {
        return false;
    };
    while start.elapsed() < timeout {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let Some(after) = CpuSample::now() else {
            return false;
        };
        if before.since(&after, cores).total() <= limit {
            return true;
        }
        before = after;
    }
    false
}

/// Busy (user, nice, system, irq, softirq) and steal ticks from `/proc/stat`'s `cpu` line.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some((at(0) + at(1) + at(2) + at(5) + at(6), at(7)))
}

/// utime + stime (fields 14 and 15) from `/proc/self/stat`.
fn parse_own(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field n is fields[n - 3].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_self_stat() {
        let stat = "cpu  100 5 50 1000 7 3 2 11 0 0\ncpu0 50 2 25 500 3 1 1 5 0 0\n";
        assert_eq!(parse_stat(stat), Some((160, 11)));
        let own = "4242 (rivulet bench) S 1 4242 4242 0 -1 4194304 500 0 0 0 \
                   1234 56 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_own(own), Some(1290));
        assert_eq!(parse_stat("nothing"), None);
    }

    #[test]
    fn interference_is_a_fraction_of_the_machine() {
        let start = Instant::now();
        let before = CpuSample {
            at: start,
            busy: 1000,
            steal: 10,
            own: 400,
        };
        let after = CpuSample {
            at: start + std::time::Duration::from_secs(2),
            busy: 1000 + 250,
            steal: 10 + 20,
            own: 400 + 200,
        };
        // 2 s × 2 cores = 400 ticks; others used 50, steal 20.
        let seen = before.since(&after, 2);
        assert!((seen.other_processes - 0.125).abs() < 1e-9);
        assert!((seen.steal - 0.05).abs() < 1e-9);
        assert!((seen.total() - 0.175).abs() < 1e-9);
        assert!(CpuSample::now().is_some(), "this test runs on Linux");
    }
}
