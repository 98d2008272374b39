//! Checkpoint semantics at the edges of a query's life: sources that end while others
//! run, graceful stops with queued input, natural ends, and skewed exchanges under
//! alignment. Each test names the property it holds the engine to.

use rivulet::checkpoint::{CheckpointConfig, CheckpointMode, Durability};
use rivulet::Query;
use std::time::Duration;

/// A finite source next to an endless one: once the finite one ends, it counts as having
/// acknowledged every later epoch, so epochs keep completing.
#[test]
fn epochs_keep_completing_after_a_finite_source_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    query.checkpoint(
        CheckpointConfig::new(dir.path())
            .interval(Duration::from_millis(10))
            .durability(Durability::OsBuffered),
    );
    let finite = query.from_iter("finite", 0..10u64);
    let endless = query.rate("endless", 1000).map(|row| row.value);
    finite.union(endless).for_each(|_| {});
    let running = query.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let first = running.progress().checkpoint.unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let second = running.progress().checkpoint.unwrap();
    running.abort().unwrap();
    assert!(
        second.last_complete_epoch > first.last_complete_epoch,
        "no epoch completed in 500 ms with a 10 ms interval: triggered {} -> {}, last complete {:?}",
        first.epochs_triggered,
        second.epochs_triggered,
        second.last_complete_epoch
    );
}

/// Records still queued in a push source at `stop()` are drained before the source's
/// final offset is taken, so a restart after the clean stop replays nothing.
#[test]
fn records_drained_at_a_graceful_stop_are_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |push: bool| {
        let mut query = Query::builder();
        query.ring_capacity(64).checkpoint(
            CheckpointConfig::new(dir.path())
                .interval(Duration::from_secs(3600))
                .durability(Durability::OsBuffered),
        );
        let (handle, ids) = query.push_source::<u64>("ids");
        let out = ids
            .inspect(|_| std::thread::sleep(Duration::from_micros(200)))
            .to_memory("out");
        let running = query.start().unwrap();
        if push {
            for id in 0..64u64 {
                handle.push(id).unwrap();
            }
            // The source thread is slow: most of the 64 are still queued now.
            running.stop().unwrap();
        } else {
            drop(handle);
            running.await_termination().unwrap();
        }
        out.rows()
    };
    let first = run(true);
    let second = run(false);
    assert_eq!(first.len(), 64);
    assert!(
        second.is_empty(),
        "replayed after a clean stop: {:?}",
        second
    );
}

/// A skewed keyed exchange into a fan-in: every record goes to one of two instances,
/// whose ring fills; the idle instance must still learn about each epoch marker (the
/// sender announces control events at once, and wakes every peer before it parks), or an
/// aligned fan-in downstream would wait for it forever.
fn skewed(mode: CheckpointMode) -> Option<u64> {
    let dir = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    query.ring_capacity(4).checkpoint(
        CheckpointConfig::new(dir.path())
            .interval(Duration::from_millis(1))
            .durability(Durability::OsBuffered)
            .mode(mode),
    );
    let out = query
        .from_iter("n", 0..200_000u64)
        .key_by(|_| 0u64) // every record to one of the two instances
        .with_parallelism(2)
        .count()
        .key_by(|(k, _)| *k)
        .with_parallelism(1) // fan-in of the two instances
        .count()
        .to_memory("out");
    let running = query.start().unwrap();
    let result = running.await_termination_timeout(Duration::from_secs(20));
    if result.is_none() {
        running.abort().ok();
        return None;
    }
    Some(out.len() as u64)
}

#[test]
fn skewed_exchange_at_least_once() {
    assert_eq!(skewed(CheckpointMode::AtLeastOnce), Some(200_000));
}

#[test]
fn skewed_exchange_aligned_does_not_hang() {
    assert_eq!(skewed(CheckpointMode::Aligned), Some(200_000));
}

/// A query that ends by itself records one last epoch with every final state: a restart
/// replays nothing and its keyed state continues from the end.
#[test]
fn a_natural_end_is_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |items: std::ops::Range<u64>| {
        let mut query = Query::builder();
        query.checkpoint(
            CheckpointConfig::new(dir.path())
                .interval(Duration::from_secs(3600))
                .durability(Durability::OsBuffered),
        );
        let out = query
            .from_iter("n", items)
            .key_by(|x| x % 2)
            .count()
            .to_memory("out");
        let running = query.start().unwrap();
        running.await_termination().unwrap();
        (out.rows(), running.progress().checkpoint.unwrap())
    };
    let (first, stats) = run(0..100);
    assert_eq!(first.len(), 100);
    assert!(stats.last_complete_epoch.is_some(), "{stats:?}");
    // Same items again: the source resumes at its end offset, nothing is replayed.
    let (second, _) = run(0..100);
    assert!(second.is_empty(), "replayed {} rows", second.len());
    // More items: counting continues from the restored state (50 per key so far).
    let (third, _) = run(0..110);
    assert_eq!(third.len(), 10);
    assert_eq!(third.iter().rfind(|(k, _)| *k == 0), Some(&(0, 55)));
}
