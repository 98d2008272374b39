//! Keyed running aggregates against a sequential reference (property tests).
//!
//! For random `(key, value)` inputs, keyed `count`, `fold` (sum), `reduce` (max) and
//! `count_by_value`, run with one instance and with four (a keyed exchange), must emit
//! per key exactly the sequence of running aggregates that a plain loop over the input
//! with a `HashMap` computes, so in particular the last update per key is the final
//! aggregate. (Updates of different keys may interleave differently at parallelism 4;
//! per key the order is fixed.)

mod common;

use common::{finish_ok, per_key};
use proptest::prelude::*;
use rivulet::Query;
use std::collections::HashMap;

/// Parallelism of the aggregate: 1 runs it on the source's thread, 4 behind an exchange.
const PARALLELISMS: [usize; 2] = [1, 4];

/// The running aggregate after every record, grouped by key: the reference.
fn running<A: Clone>(
    input: &[(u8, i32)],
    init: impl Fn(i32) -> A,
    step: impl Fn(&mut A, i32),
) -> HashMap<u8, Vec<A>> {
    let mut state: HashMap<u8, A> = HashMap::new();
    let mut updates: HashMap<u8, Vec<A>> = HashMap::new();
    for &(key, value) in input {
        let acc = match state.get_mut(&key) {
            Some(acc) => {
                step(acc, value);
                acc.clone()
            }
            None => {
                let acc = init(value);
                state.insert(key, acc.clone());
                acc
            }
        };
        updates.entry(key).or_default().push(acc);
    }
    updates
}

/// Checks the emitted rows against the reference updates, per key and in total.
fn check<A: Clone + PartialEq + std::fmt::Debug>(
    rows: &[(u8, A)],
    expected: &HashMap<u8, Vec<A>>,
    input_len: usize,
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(rows.len(), input_len, "{}: one update per record", what);
    let seen = per_key(rows);
    prop_assert_eq!(seen.len(), expected.len(), "{}: keys", what);
    for (key, updates) in expected {
        prop_assert_eq!(
            seen.get(key),
            Some(updates),
            "{}: updates of key {}",
            what,
            key
        );
        // The final aggregate is the last update (redundant with the line above; kept
        // so a failure names the final value too).
        prop_assert_eq!(
            seen[key].last(),
            updates.last(),
            "{}: final value of key {}",
            what,
            key
        );
    }
    Ok(())
}

/// Inputs: mostly a small key space (many updates per key), sometimes all of `u8`.
fn inputs() -> impl Strategy<Value = Vec<(u8, i32)>> {
    prop_oneof![
        3 => prop::collection::vec((0u8..8, any::<i32>()), 0..400),
        1 => prop::collection::vec((any::<u8>(), any::<i32>()), 0..400),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn keyed_count_matches_a_sequential_count(input in inputs()) {
        let expected = running(&input, |_| 1u64, |count, _| *count += 1);
        for parallelism in PARALLELISMS {
            let mut query = Query::builder();
            query.ring_capacity(16);
            let rows = query
                .from_iter("input", input.clone())
                .key_by(|r: &(u8, i32)| r.0)
                .with_parallelism(parallelism)
                .count()
                .to_memory("counts");
            let running = query.start().expect("start");
            finish_ok(&running, "keyed count");
            let what = format!("count, parallelism {parallelism}");
            check(&rows.rows(), &expected, input.len(), &what)?;
            let progress = running.progress();
            let count = progress.operator("count").expect("count operator");
            prop_assert_eq!(count.parallelism, parallelism);
            prop_assert_eq!(count.records_in, input.len() as u64);
            prop_assert_eq!(count.records_out, input.len() as u64);
        }
    }

    #[test]
    fn keyed_fold_sum_matches_a_sequential_sum(input in inputs()) {
        let expected = running(&input, i64::from, |sum, value| *sum += i64::from(value));
        for parallelism in PARALLELISMS {
            let mut query = Query::builder();
            query.ring_capacity(16);
            let rows = query
                .from_iter("input", input.clone())
                .key_by(|r: &(u8, i32)| r.0)
                .with_parallelism(parallelism)
                .fold(0i64, |sum, (_, value)| *sum += i64::from(value))
                .to_memory("sums");
            let running = query.start().expect("start");
            finish_ok(&running, "keyed fold");
            let what = format!("fold, parallelism {parallelism}");
            check(&rows.rows(), &expected, input.len(), &what)?;
        }
    }

    #[test]
    fn keyed_reduce_max_matches_a_sequential_max(input in inputs()) {
        let expected = running(&input, |value| value, |max, value| *max = (*max).max(value));
        for parallelism in PARALLELISMS {
            let mut query = Query::builder();
            query.ring_capacity(16);
            let rows = query
                .from_iter("input", input.clone())
                .key_by(|r: &(u8, i32)| r.0)
                .with_parallelism(parallelism)
                .reduce(|max: &mut (u8, i32), record| max.1 = max.1.max(record.1))
                .map(|(key, (_, max))| (key, max))
                .to_memory("maxima");
            let running = query.start().expect("start");
            finish_ok(&running, "keyed reduce");
            let what = format!("reduce, parallelism {parallelism}");
            check(&rows.rows(), &expected, input.len(), &what)?;
        }
    }

    #[test]
    fn count_by_value_matches_a_sequential_count(input in inputs()) {
        // Count the keys as values: small key space, many repeats.
        let keys: Vec<(u8, i32)> = input.iter().map(|&(key, _)| (key, 0)).collect();
        let expected = running(&keys, |_| 1u64, |count, _| *count += 1);
        for parallelism in PARALLELISMS {
            let mut query = Query::builder();
            // count_by_value takes the query's default parallelism.
            query.ring_capacity(16).parallelism(parallelism);
            let rows = query
                .from_iter("input", input.clone())
                .map(|(key, _)| key)
                .count_by_value()
                .to_memory("counts");
            let running = query.start().expect("start");
            finish_ok(&running, "count_by_value");
            let what = format!("count_by_value, parallelism {parallelism}");
            check(&rows.rows(), &expected, input.len(), &what)?;
            let progress = running.progress();
            let op = progress.operator("count_by_value").expect("count_by_value operator");
            prop_assert_eq!(op.parallelism, parallelism);
        }
    }
}
