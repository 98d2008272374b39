//! Per-edge ordering.
//!
//! rivulet promises that the records of one edge arrive in the order they were sent:
//! through a chain on one thread, across `new_thread()` boundaries, out of every source
//! kind, into each branch of a fan-out, from each input of a union, and, for a keyed
//! exchange, per key. These tests send sequence numbers and compare what the sink saw
//! with a plain sequential computation over the same input, with tiny rings (capacity 1
//! and 2) so every edge is full most of the time and back-pressure is exercised on every
//! record.

mod common;

use common::{finish_ok, per_key, Rng};
use rivulet::operator::{Context, Operator};
use rivulet::source::RateSource;
use rivulet::Query;
use std::collections::HashMap;

/// Records per run: small enough that capacity-1 rings stay quick in debug builds.
const N: u64 = 10_000;

/// The ring capacities that force back-pressure on (nearly) every record.
const SMALL_CAPACITIES: [usize; 2] = [1, 2];

fn assert_strictly_increasing(values: &[u64], what: &str) {
    if let Some(i) = values.windows(2).position(|w| w[0] >= w[1]) {
        panic!(
            "{what}: order broken at index {i}: {} then {}",
            values[i],
            values[i + 1]
        );
    }
}

/// A keyed operator that passes `(key, record)` through unchanged, so the sink sees the
/// exact order in which an aggregate instance received its input.
#[derive(Debug, Clone, Default)]
struct PassThrough;

impl<K: Send + 'static, T: Send + 'static> Operator<(K, T)> for PassThrough {
    type Out = (K, T);
    type Key = ();
    type Side = ();
    fn on_record<C: Context<(K, T)>>(&mut self, record: (K, T), out: &mut C) {
        out.push(record);
    }
}

#[test]
fn chain_on_one_thread_keeps_order() {
    let mut query = Query::builder();
    query.ring_capacity(1);
    let rows = query
        .from_iter("numbers", 0..N)
        .map(|x| x * 2)
        .filter(|x| !x.is_multiple_of(3))
        .flat_map(|x| [x, x + 1])
        .inspect(|_| {})
        .to_memory("out");
    let running = query.start().expect("start");
    finish_ok(&running, "one-thread chain");
    let expected: Vec<u64> = (0..N)
        .map(|x| x * 2)
        .filter(|x| !x.is_multiple_of(3))
        .flat_map(|x| [x, x + 1])
        .collect();
    let rows = rows.rows();
    assert_strictly_increasing(&rows, "one-thread chain");
    assert_eq!(rows, expected);
}

#[test]
fn order_survives_new_thread_boundaries_with_tiny_rings() {
    for capacity in SMALL_CAPACITIES {
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let rows = query
            .from_iter("numbers", 0..N)
            .map(|x| x * 3)
            .new_thread()
            .filter(|x| x.is_multiple_of(2))
            .new_thread()
            .flat_map(|x| [x, x + 1])
            .new_thread()
            .map(|x| x + 7)
            .to_memory("out");
        let running = query.start().expect("start");
        finish_ok(&running, "new_thread chain");
        let expected: Vec<u64> = (0..N)
            .map(|x| x * 3)
            .filter(|x| x.is_multiple_of(2))
            .flat_map(|x| [x, x + 1])
            .map(|x| x + 7)
            .collect();
        let rows = rows.rows();
        assert_strictly_increasing(&rows, &format!("new_thread chain, capacity {capacity}"));
        assert_eq!(rows, expected, "capacity {capacity}");
    }
}

#[test]
fn push_source_order_survives_thread_boundaries() {
    for capacity in SMALL_CAPACITIES {
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let (handle, numbers) = query.push_source::<u64>("pushed");
        let rows = numbers
            .map(|x| x + 1)
            .new_thread()
            .new_thread()
            .to_memory("out");
        let running = query.start().expect("start");
        for i in 0..N {
            handle.push(i).expect("push to a running query");
        }
        drop(handle);
        finish_ok(&running, "push source chain");
        let rows = rows.rows();
        assert_strictly_increasing(&rows, &format!("push source, capacity {capacity}"));
        assert_eq!(rows, (1..=N).collect::<Vec<_>>(), "capacity {capacity}");
    }
}

#[test]
fn rate_source_order_survives_thread_boundaries() {
    let mut query = Query::builder();
    query.ring_capacity(2);
    // A rate far above what the pipeline can take: the source is always behind schedule
    // and pushes against full rings.
    let rows = query
        .source("rate", RateSource::new(50_000_000).with_limit(N))
        .new_thread()
        .map(|row| (row.value, row.timestamp.as_micros()))
        .new_thread()
        .to_memory("out");
    let running = query.start().expect("start");
    finish_ok(&running, "rate source chain");
    let rows = rows.rows();
    let values: Vec<u64> = rows.iter().map(|(value, _)| *value).collect();
    assert_eq!(values, (0..N).collect::<Vec<_>>());
    // Scheduled timestamps follow the values, so they never go backwards either.
    assert!(
        rows.windows(2).all(|w| w[0].1 <= w[1].1),
        "rate row timestamps went backwards"
    );
}

#[test]
fn union_keeps_the_order_of_each_input() {
    for capacity in SMALL_CAPACITIES {
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let a = query.from_iter("a", (0..N).map(|i| (0u8, i)));
        let b = query
            .from_iter("b", (0..N / 2).map(|i| (1u8, i)))
            .new_thread();
        let c = query
            .from_iter("c", (0..N / 3).map(|i| (2u8, i * 10)))
            .map(|r| r);
        let rows = a.union(b).union(c).new_thread().to_memory("out");
        let running = query.start().expect("start");
        finish_ok(&running, "union");
        let by_input = per_key(&rows.rows());
        assert_eq!(by_input.len(), 3, "capacity {capacity}");
        assert_eq!(by_input[&0], (0..N).collect::<Vec<_>>());
        assert_eq!(by_input[&1], (0..N / 2).collect::<Vec<_>>());
        assert_eq!(by_input[&2], (0..N / 3).map(|i| i * 10).collect::<Vec<_>>());
    }
}

#[test]
fn every_fan_out_branch_keeps_order() {
    for capacity in SMALL_CAPACITIES {
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let branches = query.from_iter("numbers", 0..N).fan_out(3);
        let tables: Vec<_> = branches
            .into_iter()
            .enumerate()
            .map(|(i, branch)| branch.new_thread().to_memory(&format!("branch{i}")))
            .collect();
        let running = query.start().expect("start");
        finish_ok(&running, "fan-out");
        for (i, table) in tables.iter().enumerate() {
            assert_eq!(
                table.rows(),
                (0..N).collect::<Vec<_>>(),
                "branch {i}, capacity {capacity}"
            );
        }
    }
}

/// `(key, global sequence number)` records with pseudo-random keys.
fn keyed_input(seed: u64, keys: u64) -> Vec<(u8, u64)> {
    let mut rng = Rng::new(seed);
    (0..N).map(|seq| (rng.below(keys) as u8, seq)).collect()
}

/// The sequence numbers of each key, in input order: what every per-key view must show.
fn expected_per_key(input: &[(u8, u64)]) -> HashMap<u8, Vec<u64>> {
    per_key(input)
}

#[test]
fn keyed_exchange_with_parallelism_3_keeps_order_per_key() {
    for capacity in SMALL_CAPACITIES {
        let input = keyed_input(capacity as u64, 23);
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let rows = query
            .from_iter("keyed", input.clone())
            .key_by(|r: &(u8, u64)| r.0)
            .with_parallelism(3)
            .aggregate("pass", PassThrough)
            .map(|(key, (_, seq))| (key, seq))
            .new_thread()
            .to_memory("out");
        let running = query.start().expect("start");
        finish_ok(&running, "keyed exchange");
        let progress = running.progress();
        let pass = progress.operator("pass").expect("pass operator");
        assert_eq!(pass.parallelism, 3);
        assert_eq!(pass.records_in, N);
        let rows = rows.rows();
        assert_eq!(rows.len() as u64, N, "capacity {capacity}");
        let seen = per_key(&rows);
        let expected = expected_per_key(&input);
        assert_eq!(seen.len(), expected.len());
        for (key, seqs) in &expected {
            assert_eq!(&seen[key], seqs, "key {key}, capacity {capacity}");
        }
    }
}

#[test]
fn running_counts_per_key_arrive_in_order_across_an_exchange() {
    for capacity in SMALL_CAPACITIES {
        let input = keyed_input(100 + capacity as u64, 11);
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let rows = query
            .from_iter("keyed", input.clone())
            .key_by(|r: &(u8, u64)| r.0)
            .with_parallelism(3)
            .count()
            .to_memory("counts");
        let running = query.start().expect("start");
        finish_ok(&running, "keyed count");
        let seen = per_key(&rows.rows());
        for (key, seqs) in expected_per_key(&input) {
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seen[&key], expected, "key {key}, capacity {capacity}");
        }
    }
}

#[test]
fn two_exchanges_in_a_row_keep_order_per_key() {
    for (capacity, second) in [(1, 2), (2, 2), (1, 1), (2, 1)] {
        let input = keyed_input(200 + capacity as u64, 31);
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        // 1 → 3 instances, then 3 → 2 (or 3 → 1) instances: every pair of instances has
        // its own ring, and one key always travels the same path.
        let rows = query
            .from_iter("keyed", input.clone())
            .key_by(|r: &(u8, u64)| r.0)
            .with_parallelism(3)
            .aggregate("first", PassThrough)
            .map(|(_, record)| record)
            .key_by(|r: &(u8, u64)| r.0)
            .with_parallelism(second)
            .aggregate("second", PassThrough)
            .map(|(key, (_, seq))| (key, seq))
            .to_memory("out");
        let running = query.start().expect("start");
        finish_ok(&running, "double exchange");
        let seen = per_key(&rows.rows());
        let expected = expected_per_key(&input);
        assert_eq!(seen.len(), expected.len());
        for (key, seqs) in &expected {
            assert_eq!(
                &seen[key], seqs,
                "key {key}, capacity {capacity}, second parallelism {second}"
            );
        }
    }
}
