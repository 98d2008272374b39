//! Union and fan-out deliver exactly once.
//!
//! * `union` of several inputs, each built from a different kind of chain, delivers the
//!   multiset union of the inputs: every record exactly once (inputs hold duplicates, so
//!   a lost record and a duplicated one cannot cancel out in a count).
//! * `fan_out(n)` delivers every record exactly once to each of the `n` branches.
//! * A diamond (fan-out, then union of the branches) delivers every record once per
//!   branch.
//!
//! References are plain sequential computations over the same inputs; runs use both tiny
//! rings (capacity 1, 2: back-pressure on every record, the shape most likely to
//! deadlock a diamond) and the default capacity.

mod common;

use common::{finish_ok, sorted, Rng};
use rivulet::source::RateSource;
use rivulet::Query;

const CAPACITIES: [usize; 3] = [1, 2, 1024];

fn input_a() -> Vec<u64> {
    (0..3_000).map(|i| i % 500).collect()
}

fn input_b() -> Vec<u64> {
    (0..2_000).map(|i| 1_000 + i % 300).collect()
}

/// The rate source's rows, mapped as the test maps them.
fn input_c() -> Vec<u64> {
    (0..1_500).map(|i| i % 200).collect()
}

#[test]
fn union_of_three_different_chains_delivers_every_record_once() {
    for capacity in CAPACITIES {
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        // A source with a map chained on its thread.
        let a = query.from_iter("a", input_a()).map(|x| x);
        // A push source with a flat_map and a filter that keeps everything.
        let (handle, b) = query.push_source::<u64>("b");
        let b = b.flat_map(|x| vec![x]).filter(|_| true);
        // A rate source, mapped, then moved onto its own thread (a bare input chain).
        let c = query
            .source("c", RateSource::new(10_000_000).with_limit(1_500))
            .map(|row| row.value % 200)
            .new_thread();
        let rows = a.union(b).union(c).to_memory("out");
        let running = query.start().expect("start");
        for x in input_b() {
            handle.push(x).expect("push to a running query");
        }
        drop(handle);
        finish_ok(&running, "union of three");

        let mut expected = input_a();
        expected.extend(input_b());
        expected.extend(input_c());
        assert_eq!(sorted(rows.rows()), sorted(expected), "capacity {capacity}");
        let progress = running.progress();
        assert_eq!(progress.input_rows, 3_000 + 2_000 + 1_500);
        assert_eq!(progress.output_rows, 3_000 + 2_000 + 1_500);
    }
}

#[test]
fn nested_and_parallel_unions_deliver_every_record_once() {
    for capacity in CAPACITIES {
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let a = query.from_iter("a", input_a());
        let b = query.from_iter("b", input_b()).new_thread();
        let c = query.from_iter("c", input_c());
        // A stream running as 3 instances (after a keyed exchange) joins the union too.
        let d = query
            .from_iter("d", input_a())
            .key_by(|x| *x)
            .with_parallelism(3)
            .count()
            .map(|(x, _count)| x + 10_000);
        // A second parallel stream, as the left operand this time.
        let e = query
            .from_iter("e", input_b())
            .key_by(|x| *x)
            .with_parallelism(2)
            .reduce(|acc, x| *acc = x)
            .map(|(x, _)| x + 20_000);
        // `a ∪ (b ∪ c)`: the right-hand side is itself a union stream.
        let rows = e.union(a.union(b.union(c)).union(d)).to_memory("out");
        let running = query.start().expect("start");
        finish_ok(&running, "nested union");

        let mut expected = input_a();
        expected.extend(input_b());
        expected.extend(input_c());
        expected.extend(input_a().into_iter().map(|x| x + 10_000));
        expected.extend(input_b().into_iter().map(|x| x + 20_000));
        assert_eq!(sorted(rows.rows()), sorted(expected), "capacity {capacity}");
    }
}

#[test]
fn fan_out_delivers_every_record_once_to_each_branch() {
    for capacity in CAPACITIES {
        let input: Vec<u64> = {
            let mut rng = Rng::new(7);
            (0..5_000).map(|_| rng.below(1_000)).collect()
        };
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let mut branches = query
            .from_iter("numbers", input.clone())
            .map(|x| x)
            .fan_out(3);
        assert_eq!(branches.len(), 3);
        // Each branch a different shape: chained ops, a further thread, a bare sink.
        let third = branches.pop().expect("three branches").to_memory("third");
        let second = branches
            .pop()
            .expect("three branches")
            .new_thread()
            .filter(|_| true)
            .to_memory("second");
        let first = branches
            .pop()
            .expect("three branches")
            .map(|x| x * 2)
            .to_memory("first");
        let running = query.start().expect("start");
        finish_ok(&running, "fan-out");

        let doubled: Vec<u64> = input.iter().map(|x| x * 2).collect();
        assert_eq!(first.rows(), doubled, "first branch, capacity {capacity}");
        assert_eq!(second.rows(), input, "second branch, capacity {capacity}");
        assert_eq!(third.rows(), input, "third branch, capacity {capacity}");
    }
}

#[test]
fn fan_out_of_a_parallel_stream_reaches_every_branch_once() {
    let input: Vec<u64> = (0..4_000).map(|i| i % 37).collect();
    let mut query = Query::builder();
    query.ring_capacity(2);
    let branches = query
        .from_iter("numbers", input.clone())
        .key_by(|x| *x)
        .with_parallelism(3)
        .count()
        .fan_out(2);
    assert!(branches.iter().all(|branch| branch.parallelism() == 3));
    let tables: Vec<_> = branches
        .into_iter()
        .enumerate()
        .map(|(i, branch)| branch.to_memory(&format!("branch{i}")))
        .collect();
    let running = query.start().expect("start");
    finish_ok(&running, "fan-out of a parallel stream");

    // Sequential reference: the running count of every record.
    let mut counts = std::collections::HashMap::new();
    let expected: Vec<(u64, u64)> = input
        .iter()
        .map(|x| {
            let count = counts.entry(*x).or_insert(0u64);
            *count += 1;
            (*x, *count)
        })
        .collect();
    for (i, table) in tables.iter().enumerate() {
        assert_eq!(sorted(table.rows()), sorted(expected.clone()), "branch {i}");
    }
}

#[test]
fn fan_out_of_one_is_a_plain_thread_boundary() {
    let mut query = Query::builder();
    let mut branches = query.from_iter("numbers", 0..1_000u64).fan_out(1);
    assert_eq!(branches.len(), 1);
    let rows = branches.pop().expect("one branch").to_memory("out");
    let running = query.start().expect("start");
    finish_ok(&running, "fan_out(1)");
    assert_eq!(rows.rows(), (0..1_000).collect::<Vec<_>>());
}

#[test]
fn diamond_delivers_every_record_twice() {
    for capacity in CAPACITIES {
        let input: Vec<u64> = (0..5_000).map(|i| i % 777).collect();
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let mut branches = query.from_iter("numbers", input.clone()).fan_out(2);
        let right = branches.pop().expect("two branches").filter(|_| true);
        let left = branches.pop().expect("two branches").map(|x| x);
        let rows = left.union(right).to_memory("out");
        let running = query.start().expect("start");
        finish_ok(&running, "diamond");

        let mut expected = input.clone();
        expected.extend(input.iter().copied());
        assert_eq!(sorted(rows.rows()), sorted(expected), "capacity {capacity}");
    }
}

#[test]
fn three_way_diamond_with_thread_boundaries_delivers_every_record_three_times() {
    for capacity in CAPACITIES {
        let input: Vec<u64> = (0..3_000).collect();
        let mut query = Query::builder();
        query.ring_capacity(capacity);
        let mut branches = query.from_iter("numbers", input.clone()).fan_out(3);
        let c = branches.pop().expect("three branches").new_thread();
        let b = branches
            .pop()
            .expect("three branches")
            .new_thread()
            .map(|x| x);
        let a = branches.pop().expect("three branches");
        let rows = a.union(b).union(c).new_thread().to_memory("out");
        let running = query.start().expect("start");
        finish_ok(&running, "three-way diamond");

        let expected: Vec<u64> = input.iter().flat_map(|x| [*x, *x, *x]).collect();
        assert_eq!(sorted(rows.rows()), sorted(expected), "capacity {capacity}");
    }
}
