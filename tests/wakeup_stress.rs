//! Wake-up stress: many short bursts separated by pauses, so every thread of the query
//! goes to sleep between bursts and must be woken for the next one.
//!
//! The pipeline is push source → map → | → keyed count (parallelism 2) → sink: four
//! operator threads, three kinds of edges (the push queue, a forward ring, a keyed
//! exchange). With `WaitPolicy::SpinThenPark { spins: 0, yields: 0 }` a thread parks the
//! moment it finds nothing to do, so every burst starts from parked threads; the default
//! policy spins a little first, which moves the race windows around. Small rings make
//! producers park on full rings too.
//!
//! A lost wake-up shows up as a burst that never arrives: the test waits for each
//! (every other) burst to be fully delivered, with a hang guard, and finally compares the
//! per-key counts with a sequential count of everything pushed.

mod common;

use common::{finish_ok, per_key, Rng, HANG_GUARD};
use rivulet::{Pinning, PushHandle, Query, WaitPolicy};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keys of the records: spread over both aggregate instances.
const KEYS: u64 = 5;

/// Waits until `delivered` reaches `target`, failing with a clear message on a hang.
fn wait_delivered(delivered: &AtomicU64, target: u64, what: &str) {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let seen = delivered.load(Ordering::SeqCst);
        if seen >= target {
            assert_eq!(seen, target, "{what}: more records delivered than pushed");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {seen} of {target} records delivered after {HANG_GUARD:?} \
             (lost wake-up?)"
        );
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// Pushes `bursts` bursts of 1..=24 records on `handle`; after every other burst waits
/// until all pushed so far (by every pusher, `pushed_total`) arrived, otherwise pauses.
fn push_bursts(
    handle: &PushHandle<u64>,
    seed: u64,
    bursts: usize,
    pushed_total: &AtomicU64,
    delivered: &AtomicU64,
    what: &str,
) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut pushed = Vec::new();
    for burst in 0..bursts {
        let size = 1 + rng.below(24);
        for _ in 0..size {
            let record = rng.below(1_000_000);
            handle.push(record).expect("push to a running query");
            pushed.push(record);
        }
        let total = pushed_total.fetch_add(size, Ordering::SeqCst) + size;
        if burst.is_multiple_of(2) {
            // Everything in flight must arrive while this pusher pushes nothing more:
            // afterwards every thread of the query finds no work and parks.
            wait_delivered(delivered, total, &format!("{what}, burst {burst}"));
        } else {
            std::thread::sleep(Duration::from_micros(50 + rng.below(200)));
        }
    }
    pushed
}

fn run(policy: Option<WaitPolicy>, capacity: usize, pushers: u64, bursts: usize, what: &str) {
    run_pinned(policy, capacity, pushers, bursts, None, what);
}

fn run_pinned(
    policy: Option<WaitPolicy>,
    capacity: usize,
    pushers: u64,
    bursts: usize,
    pinning: Option<Pinning>,
    what: &str,
) {
    let mut query = Query::builder();
    query.ring_capacity(capacity);
    if let Some(pinning) = pinning {
        query.pinning(pinning);
    }
    if let Some(policy) = policy {
        query.wait_policy(policy);
    }
    let (handle, numbers) = query.push_source::<u64>("bursts");
    let delivered = Arc::new(AtomicU64::new(0));
    let rows = {
        let delivered = delivered.clone();
        numbers
            .map(|x| x % KEYS)
            .new_thread()
            .key_by(|key| *key)
            .with_parallelism(2)
            .count()
            .inspect(move |_| {
                delivered.fetch_add(1, Ordering::SeqCst);
            })
            .to_memory("counts")
    };
    let running = query.start().expect("start");
    let pushed_total = AtomicU64::new(0);

    let pushed: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..pushers)
            .map(|p| {
                let handle = handle.clone();
                let (pushed_total, delivered) = (&pushed_total, &*delivered);
                scope.spawn(move || {
                    if pushers == 1 {
                        push_bursts(&handle, p + 1, bursts, pushed_total, delivered, what)
                    } else {
                        push_bursts_shared(&handle, p + 1, bursts, pushed_total, delivered, what)
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("pusher thread"))
            .collect()
    });
    drop(handle);
    finish_ok(&running, what);

    // Sequential reference: how often each key was pushed.
    let mut expected: HashMap<u64, u64> = HashMap::new();
    for record in &pushed {
        *expected.entry(record % KEYS).or_default() += 1;
    }
    let rows = rows.rows();
    assert_eq!(
        rows.len(),
        pushed.len(),
        "{what}: records lost or duplicated"
    );
    let seen = per_key(&rows);
    for (key, count) in &expected {
        // Per key the running counts are 1, 2, …, n, whatever the interleaving of pushers.
        assert_eq!(
            seen[key],
            (1..=*count).collect::<Vec<_>>(),
            "{what}: running counts of key {key}"
        );
    }
    assert_eq!(seen.len(), expected.len(), "{what}: unexpected keys");
    let progress = running.progress();
    assert_eq!(progress.input_rows, pushed.len() as u64);
    assert_eq!(progress.output_rows, pushed.len() as u64);
}

/// Like [`push_bursts`], for runs with several pushers: waits until at least everything
/// pushed so far has arrived (the other pusher may push meanwhile, so "at least").
fn push_bursts_shared(
    handle: &PushHandle<u64>,
    seed: u64,
    bursts: usize,
    pushed_total: &AtomicU64,
    delivered: &AtomicU64,
    what: &str,
) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut pushed = Vec::new();
    for burst in 0..bursts {
        let size = 1 + rng.below(24);
        for _ in 0..size {
            let record = rng.below(1_000_000);
            handle.push(record).expect("push to a running query");
            pushed.push(record);
        }
        let total = pushed_total.fetch_add(size, Ordering::SeqCst) + size;
        if burst.is_multiple_of(2) {
            common::wait_until(&format!("{what}, pusher {seed}, burst {burst}"), || {
                delivered.load(Ordering::SeqCst) >= total
            });
        } else {
            std::thread::sleep(Duration::from_micros(50 + rng.below(200)));
        }
    }
    pushed
}

const PARK_AT_ONCE: WaitPolicy = WaitPolicy::SpinThenPark {
    spins: 0,
    yields: 0,
};

#[test]
fn bursts_with_threads_parking_at_once_and_tiny_rings() {
    run(Some(PARK_AT_ONCE), 2, 1, 2_000, "park at once, capacity 2");
}

#[test]
fn bursts_with_threads_parking_at_once_and_large_rings() {
    run(
        Some(PARK_AT_ONCE),
        1024,
        1,
        2_000,
        "park at once, capacity 1024",
    );
}

#[test]
fn bursts_with_the_default_wait_policy() {
    run(None, 4, 1, 2_000, "default policy, capacity 4");
}

#[test]
fn bursts_from_two_pushers_with_threads_parking_at_once() {
    run(
        Some(PARK_AT_ONCE),
        1,
        2,
        1_000,
        "park at once, capacity 1, two pushers",
    );
}

/// Every operator thread pinned to one core: a woken thread can only run once the waker
/// gives the core up, which stretches every window between "about to park" and "parked".
#[test]
fn bursts_with_all_threads_on_one_core() {
    let core = rivulet::runtime::affinity::available_cores()
        .first()
        .map_or(0, |core| core.id);
    run_pinned(
        Some(PARK_AT_ONCE),
        2,
        1,
        1_000,
        Some(Pinning::Cores(vec![core])),
        "park at once, one core",
    );
}
