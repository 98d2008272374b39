//! The push source's ingest write-ahead log: records a checkpointed query took from a
//! push handle survive a crash (here: an abort, which drops everything in flight) and are
//! replayed after a restart, so every record reaches the sink at least once and the
//! restored keyed state plus the replay gives exactly the reference counts.

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::sink::MemoryTable;
use rivulet::source::{IngestLogged, PushSource, Source};
use rivulet::{Epoch, PushHandle, Query, Trigger};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const KEYS: u64 = 7;

type Output = MemoryTable<(u64, (u64, u64))>;

fn start(dir: &Path) -> (rivulet::Query, PushHandle<u64>, Output) {
    try_start(dir).expect("the query starts")
}

fn try_start(dir: &Path) -> rivulet::Result<(rivulet::Query, PushHandle<u64>, Output)> {
    let mut query = Query::builder();
    query.checkpoint(
        CheckpointConfig::new(dir)
            .interval(Duration::from_millis(5))
            .durability(Durability::OsBuffered)
            .segment_bytes(4096),
    );
    let (handle, ids) = query.push_source::<u64>("ids");
    let output = ids
        .key_by(|id| id % KEYS)
        .fold((0u64, 0u64), |(count, last), id| {
            *count += 1;
            *last = id;
        })
        .to_memory("out");
    Ok((query.start()?, handle, output))
}

fn push_range(handle: &PushHandle<u64>, ids: std::ops::Range<u64>) {
    for id in ids {
        handle.push(id).unwrap();
        if id % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(handle.flush(Duration::from_secs(30)), "records not logged");
}

#[test]
fn pushed_records_survive_an_abort_and_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (running, handle, first) = start(dir.path());
    push_range(&handle, 0..1_000);
    std::thread::sleep(Duration::from_millis(40));
    // No epoch may complete after the next records (so the restart must replay them from
    // the log, however slow the machine): one-hour epochs from the next one on; wait
    // until it has started (and a little more, for its marker to pass the source).
    let triggered = || running.progress().checkpoint.unwrap().epochs_triggered;
    let before_switch = triggered();
    running
        .set_trigger(Trigger::Continuous {
            checkpoint_interval: Duration::from_secs(3600),
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while triggered() <= before_switch {
        assert!(
            std::time::Instant::now() < deadline,
            "no epoch started (hang)"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    push_range(&handle, 1_000..1_500);
    // Crash: everything after the last complete epoch is dropped in flight.
    running.abort().unwrap();
    drop(handle);
    let before: BTreeSet<u64> = first.rows().into_iter().map(|(_, (_, id))| id).collect();

    let (running, handle, second) = start(dir.path());
    let recovered = running.progress().checkpoint.unwrap().recovered_epoch;
    assert!(recovered.is_some_and(|epoch| epoch > 0), "no recovery");
    push_range(&handle, 1_500..2_000);
    drop(handle);
    running.await_termination().unwrap();

    let rows = second.rows();
    let after: BTreeSet<u64> = rows.iter().map(|(_, (_, id))| *id).collect();
    let missing: Vec<u64> = (0..2_000)
        .filter(|id| !before.contains(id) && !after.contains(id))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(
        after.iter().any(|id| *id < 1_500),
        "the restart replayed nothing from the ingest log"
    );
    let mut last = BTreeMap::new();
    for (key, (count, _)) in rows {
        last.insert(key, count);
    }
    let mut reference = BTreeMap::new();
    for id in 0..2_000u64 {
        *reference.entry(id % KEYS).or_insert(0u64) += 1;
    }
    assert_eq!(last, reference);
}

#[test]
fn a_graceful_stop_checkpoints_everything_so_a_restart_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (running, handle, _) = start(dir.path());
    push_range(&handle, 0..500);
    running.stop().unwrap();
    drop(handle);

    let (running, handle, second) = start(dir.path());
    drop(handle);
    running.await_termination().unwrap();
    assert!(
        second.is_empty(),
        "replayed after a clean stop: {}",
        second.len()
    );
}

/// Without checkpointing a push source keeps no ingest log: it delivers everything, and
/// asking it for an offset is an error. (The wrapper `push_source` puts around it says it
/// can replay because it opens its log whenever the query checkpoints: `Source::open`
/// gets the checkpoint directory.)
#[test]
fn without_checkpointing_the_push_source_has_no_log() {
    let mut query = Query::builder();
    let (handle, ids) = query.push_source::<u64>("ids");
    let out = ids.to_memory("out");
    let running = query.start().unwrap();
    push_range(&handle, 0..10);
    drop(handle);
    running.await_termination().unwrap();
    assert_eq!(out.len(), 10);

    let signal = std::sync::Arc::new(rivulet::edge::WakeSignal::new());
    let (_handle, source) = PushSource::<u64>::new(16, signal);
    assert!(!source.can_replay(), "the push source alone cannot replay");
    let mut source = IngestLogged::new(source);
    assert!(source.can_replay());
    assert!(source.checkpoint(Epoch(1)).is_err());
}

/// The numbers of the log segments (`segment-<16 hex digits>.log`) in `dir`.
fn segment_numbers(dir: &Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| {
                    let name = entry.ok()?.file_name().into_string().ok()?;
                    let hex = name.strip_prefix("segment-")?.strip_suffix(".log")?;
                    u64::from_str_radix(hex, 16).ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn log_segments(dir: &Path) -> usize {
    segment_numbers(dir).len()
}

#[test]
fn old_segments_are_removed_behind_retained_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    query.checkpoint(
        CheckpointConfig::new(dir.path())
            .interval(Duration::from_millis(2))
            .durability(Durability::OsBuffered)
            .retain(2)
            .segment_bytes(256),
    );
    let (handle, ids) = query.push_source::<u64>("ids");
    ids.key_by(|id| id % KEYS).count().for_each(|_| {});
    let running = query.start().unwrap();
    // Enough records and epochs to fill hundreds of 256-byte segments without retention.
    for round in 0..100u64 {
        push_range(&handle, round * 100..(round + 1) * 100);
        std::thread::sleep(Duration::from_millis(2));
    }
    let ingest = dir.path().join("ingest-ids");
    running.stop().unwrap();
    drop(handle);
    let stats = running.progress().checkpoint.unwrap();
    assert!(stats.last_complete_epoch.unwrap() > 20, "{stats:?}");
    // Counted once the query has stopped, not while it runs. Without retention: one
    // checkpoint segment per epoch or two, hundreds of ingest ones. The checkpoint log
    // applies retention when the last epoch completes. The ingest log trims when the
    // source checkpoints, behind the epochs complete at that moment, so what it keeps
    // at the end depends on how far the coordinator lagged then (63 segments on a
    // loaded CI machine, under 20 on a quiet one): the check is that retention removed
    // nearly all of what was written.
    let after = (log_segments(dir.path()), log_segments(&ingest));
    assert!(after.0 < 20, "checkpoint segments kept: {}", after.0);
    let written = segment_numbers(&ingest).into_iter().max().unwrap() + 1;
    assert!(written > 200, "only {written} ingest segments were written");
    assert!(
        (after.1 as u64) * 4 < written,
        "ingest segments kept: {} of {written}",
        after.1
    );
}

#[test]
fn a_damaged_ingest_log_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (running, handle, _) = start(dir.path());
    push_range(&handle, 0..1_000);
    running.abort().unwrap();
    drop(handle);
    let ingest = dir.path().join("ingest-ids");
    let mut segments: Vec<_> = std::fs::read_dir(&ingest)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    segments.sort();
    assert!(
        segments.len() >= 2,
        "the test needs several ingest segments"
    );
    // Flip a payload byte of the first record in the second segment.
    let mut bytes = std::fs::read(&segments[1]).unwrap();
    bytes[24 + 9] ^= 0xFF;
    std::fs::write(&segments[1], &bytes).unwrap();

    let error = try_start(dir.path())
        .map(|_| ())
        .expect_err("damage must be reported");
    assert!(error.to_string().contains("damaged"), "{error}");
}
