//! Spark's output modes on a small worked example, with every expected row written by
//! hand from the documented semantics (none is computed by the engine or a reference).
//!
//! Word counts over two batches of lines: batch 1 is `["cat dog", "dog dog"]`, batch 2 is
//! `["owl cat"]`. Each batch is pushed as one record (a group of lines), so it cannot be
//! split across two micro-batches; the next group is pushed only once the previous batch
//! has been emitted.
//!
//! * Update, micro-batch: per batch, only the keys that changed, with their new counts.
//! * Complete, micro-batch: per batch, the whole result table.
//! * Update, continuous: one row per record, in input order (parallelism 1).
//! * Complete, continuous: nothing per record; the whole table as it stands at each
//!   epoch end.
//! * The memory sink in Complete mode holds the current table, not every table so far.
//! * `start()` refuses Complete without an aggregation and Append with one, saying which
//!   mode is wrong; Append without an aggregation emits every record once.
//!
//! Epochs run on the trigger's clock whether or not input arrived, so some epochs are
//! empty: in Update mode they emit nothing (filtered out below); in Complete mode they
//! emit the unchanged table again.

mod common;

use common::{finish_ok, sorted, wait_until};
use rivulet::error::BoxError;
use rivulet::sink::Sink;
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Error, ExecutionMode, OutputMode, PushHandle, Query, Trigger};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A word and its count.
type Row = (String, u64);

/// Batch 1: two lines.
const BATCH_1: [&str; 2] = ["cat dog", "dog dog"];
/// Batch 2: one line.
const BATCH_2: [&str; 1] = ["owl cat"];

/// Rows from `(word, count)` pairs, sorted (a batch's rows come in no particular order).
fn rows(pairs: &[(&str, u64)]) -> Vec<Row> {
    sorted(
        pairs
            .iter()
            .map(|(word, count)| (word.to_string(), *count))
            .collect(),
    )
}

fn group(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|line| line.to_string()).collect()
}

/// Instances of the count: on the source's thread, or behind a keyed exchange.
const PARALLELISMS: [usize; 2] = [1, 3];

fn micro_batch() -> Trigger {
    Trigger::MicroBatch {
        interval: Duration::from_millis(2),
    }
}

// ------------------------------------------------------------- a sink that sees epochs

/// What [`EpochSink`] instances saw, per epoch.
#[derive(Debug)]
struct Epochs<T> {
    /// Rows written in each epoch (an entry for every epoch begun, empty or not).
    rows: BTreeMap<u64, Vec<T>>,
    /// How each epoch ran.
    modes: BTreeMap<u64, EmitMode>,
    /// Instances that wrote all their rows of each epoch (`prepare_commit` ran).
    prepared: BTreeMap<u64, usize>,
}

/// Records every row with the epoch it was written in.
#[derive(Debug)]
struct EpochSink<T> {
    seen: Arc<Mutex<Epochs<T>>>,
    /// Instances of the sink.
    instances: usize,
    epoch: u64,
}

impl<T> Clone for EpochSink<T> {
    fn clone(&self) -> Self {
        EpochSink {
            seen: self.seen.clone(),
            instances: self.instances,
            epoch: 0,
        }
    }
}

impl<T: Clone> EpochSink<T> {
    /// A sink that will run as `instances` instances.
    fn new(instances: usize) -> Self {
        EpochSink {
            seen: Arc::new(Mutex::new(Epochs {
                rows: BTreeMap::new(),
                modes: BTreeMap::new(),
                prepared: BTreeMap::new(),
            })),
            instances,
            epoch: 0,
        }
    }

    /// The rows of each epoch that every instance finished and that has any, oldest
    /// first.
    fn prepared_batches(&self) -> Vec<(u64, Vec<T>)> {
        let seen = self.seen.lock().unwrap();
        seen.prepared
            .iter()
            .filter(|(_, instances)| **instances == self.instances)
            .filter_map(|(epoch, _)| {
                let rows = seen.rows.get(epoch)?;
                (!rows.is_empty()).then(|| (*epoch, rows.clone()))
            })
            .collect()
    }

    fn modes(&self) -> BTreeMap<u64, EmitMode> {
        self.seen.lock().unwrap().modes.clone()
    }
}

impl<T: Send + 'static> Sink<T> for EpochSink<T> {
    fn begin_epoch(&mut self, epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        self.epoch = epoch.0;
        let mut seen = self.seen.lock().unwrap();
        seen.rows.entry(epoch.0).or_default();
        seen.modes.insert(epoch.0, mode);
        Ok(())
    }

    fn write(&mut self, record: T) -> Result<(), BoxError> {
        let mut seen = self.seen.lock().unwrap();
        seen.rows.entry(self.epoch).or_default().push(record);
        Ok(())
    }

    fn prepare_commit(
        &mut self,
        epoch: Epoch,
    ) -> Result<Option<rivulet::sink::EpochCommit>, BoxError> {
        *self
            .seen
            .lock()
            .unwrap()
            .prepared
            .entry(epoch.0)
            .or_default() += 1;
        Ok(None)
    }
}

// ------------------------------------------------------------------------ the query

/// Word counts over groups of lines pushed into the query, counted by `parallelism`
/// instances, into `sink`.
fn word_counts<K>(
    trigger: Trigger,
    mode: OutputMode,
    parallelism: usize,
    sink: K,
) -> (PushHandle<Vec<String>>, Query)
where
    K: Sink<Row> + Clone,
{
    let mut query = Query::builder();
    query.trigger(trigger).output_mode(mode);
    let (handle, groups) = query.push_source::<Vec<String>>("lines");
    groups
        .flat_map(|lines: Vec<String>| {
            lines
                .iter()
                .flat_map(|line| line.split(' ').map(str::to_string))
                .collect::<Vec<_>>()
        })
        .key_by(|word: &String| word.clone())
        .with_parallelism(parallelism)
        .count()
        .sink("counts", sink);
    let running = query.start().expect("start");
    (handle, running)
}

/// Runs the two batches through a micro-batch query in `mode` (the count at
/// `parallelism`), pushing batch 2 only once batch 1 was emitted, and returns the
/// non-empty epochs' rows (sorted), oldest first, with the sink's view of each epoch's
/// mode.
fn two_micro_batches(
    mode: OutputMode,
    parallelism: usize,
) -> (Vec<Vec<Row>>, BTreeMap<u64, EmitMode>) {
    let sink = EpochSink::<Row>::new(parallelism);
    let (handle, running) = word_counts(micro_batch(), mode, parallelism, sink.clone());
    handle.push(group(&BATCH_1)).expect("push batch 1");
    wait_until("batch 1 emitted", || !sink.prepared_batches().is_empty());
    handle.push(group(&BATCH_2)).expect("push batch 2");
    wait_until("batch 2 emitted", || {
        sink.prepared_batches()
            .iter()
            .any(|(_, rows)| rows.iter().any(|(word, _)| word == "owl"))
    });
    drop(handle);
    finish_ok(&running, "word counts");
    let batches = sink
        .prepared_batches()
        .into_iter()
        .map(|(_, rows)| sorted(rows))
        .collect();
    (batches, sink.modes())
}

// -------------------------------------------------------------------------- update

/// Update mode, micro-batch: each batch emits only the keys it changed, once each, with
/// their counts after the batch (dog went 1, 2, 3 within batch 1 but is emitted once, as
/// 3; batch 2 leaves dog alone, so dog is not emitted again).
#[test]
fn update_mode_micro_batches_emit_only_changed_keys() {
    for parallelism in PARALLELISMS {
        let (batches, modes) = two_micro_batches(OutputMode::Update, parallelism);
        assert_eq!(
            batches,
            vec![
                rows(&[("cat", 1), ("dog", 3)]),
                rows(&[("owl", 1), ("cat", 2)])
            ],
            "rows per non-empty batch, parallelism {parallelism}"
        );
        assert!(
            modes.values().all(|mode| *mode
                == EmitMode {
                    execution: ExecutionMode::MicroBatch,
                    output: OutputMode::Update,
                }),
            "every epoch runs as an update-mode micro-batch: {modes:?}"
        );
    }
}

// ------------------------------------------------------------------------ complete

/// Complete mode, micro-batch: each batch emits the whole result table, including keys
/// the batch did not touch (dog in batch 2).
#[test]
fn complete_mode_micro_batches_emit_the_whole_table() {
    let table_1 = rows(&[("cat", 1), ("dog", 3)]);
    let table_2 = rows(&[("cat", 2), ("dog", 3), ("owl", 1)]);
    for parallelism in PARALLELISMS {
        let (batches, modes) = two_micro_batches(OutputMode::Complete, parallelism);
        // Epochs without input re-emit the unchanged table, so batch 1's table may appear
        // in several epochs before batch 2's; collapse repeats.
        let mut tables = batches.clone();
        tables.dedup();
        assert_eq!(
            tables,
            vec![table_1.clone(), table_2.clone()],
            "tables per non-empty epoch, parallelism {parallelism} (all: {batches:?})"
        );
        assert!(
            modes
                .values()
                .all(|mode| mode.output == OutputMode::Complete
                    && mode.execution == ExecutionMode::MicroBatch),
            "every epoch runs as a complete-mode micro-batch: {modes:?}"
        );
    }
}

/// Complete mode, continuous: nothing per record; at each epoch end the whole table as
/// it stands then. After both batches the last epoch holds the final table.
#[test]
fn complete_mode_continuous_emits_the_whole_table_per_epoch() {
    let tables = [
        rows(&[]),
        rows(&[("cat", 1)]),
        rows(&[("cat", 1), ("dog", 1)]),
        rows(&[("cat", 1), ("dog", 2)]),
        rows(&[("cat", 1), ("dog", 3)]),
        rows(&[("cat", 1), ("dog", 3), ("owl", 1)]),
        rows(&[("cat", 2), ("dog", 3), ("owl", 1)]),
    ];
    for parallelism in PARALLELISMS {
        let sink = EpochSink::<Row>::new(parallelism);
        let continuous = Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        };
        let (handle, running) =
            word_counts(continuous, OutputMode::Complete, parallelism, sink.clone());
        handle.push(group(&BATCH_1)).expect("push batch 1");
        handle.push(group(&BATCH_2)).expect("push batch 2");
        drop(handle);
        finish_ok(&running, "continuous complete mode");
        let batches = sink.prepared_batches();
        // Epoch boundaries fall anywhere between records, so each epoch's table is the
        // table after some prefix of the words; and tables only grow.
        let mut last = 0;
        for (epoch, rows) in &batches {
            let rows = sorted(rows.clone());
            let position = tables.iter().position(|table| *table == rows);
            let Some(position) = position else {
                panic!("epoch {epoch}: not a table after any prefix of the input: {rows:?}")
            };
            assert!(position >= last, "epoch {epoch}: the table went back");
            last = position;
        }
        assert_eq!(
            batches.last().map(|(_, rows)| sorted(rows.clone())),
            Some(tables[6].clone()),
            "the last epoch holds the final table, parallelism {parallelism}"
        );
    }
}

/// The memory sink in Complete mode (Spark's `memory` sink) holds the current result
/// table: after each batch, `rows()` is exactly that batch's table, however many epochs
/// have passed since. (The check runs between batches, so it expects the table to be
/// replaced whole at an epoch end, never shown half-written.)
#[test]
fn complete_mode_memory_sink_holds_the_current_table() {
    let mut query = Query::builder();
    query
        .trigger(micro_batch())
        .output_mode(OutputMode::Complete);
    let (handle, groups) = query.push_source::<Vec<String>>("lines");
    let table = groups
        .flat_map(|lines: Vec<String>| {
            lines
                .iter()
                .flat_map(|line| line.split(' ').map(str::to_string))
                .collect::<Vec<_>>()
        })
        .key_by(|word: &String| word.clone())
        .count()
        .to_memory("counts");
    let running = query.start().expect("start");
    // After a batch shows up, let a few batch intervals pass (batches without new data
    // do not run, as in Spark): the table must not change.
    let settle = || std::thread::sleep(Duration::from_millis(20));

    handle.push(group(&BATCH_1)).expect("push batch 1");
    wait_until("batch 1 in the table", || !table.is_empty());
    settle();
    assert_eq!(
        sorted(table.rows()),
        rows(&[("cat", 1), ("dog", 3)]),
        "memory table after batch 1"
    );

    handle.push(group(&BATCH_2)).expect("push batch 2");
    wait_until("batch 2 in the table", || {
        table.with_rows(|rows| rows.iter().any(|(word, _)| word == "owl"))
    });
    settle();
    assert_eq!(
        sorted(table.rows()),
        rows(&[("cat", 2), ("dog", 3), ("owl", 1)]),
        "memory table after batch 2"
    );
    drop(handle);
    finish_ok(&running, "complete-mode memory sink");
}

// ---------------------------------------------------------------------- continuous

/// Update mode, continuous: a row per record, at once, in input order.
#[test]
fn continuous_update_emits_a_row_per_record_in_order() {
    let mut query = Query::builder();
    query
        .trigger(Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        })
        .output_mode(OutputMode::Update)
        .parallelism(1);
    let (handle, groups) = query.push_source::<Vec<String>>("lines");
    let table = groups
        .flat_map(|lines: Vec<String>| {
            lines
                .iter()
                .flat_map(|line| line.split(' ').map(str::to_string))
                .collect::<Vec<_>>()
        })
        .key_by(|word: &String| word.clone())
        .count()
        .to_memory("counts");
    let running = query.start().expect("start");
    handle.push(group(&BATCH_1)).expect("push batch 1");
    handle.push(group(&BATCH_2)).expect("push batch 2");
    drop(handle);
    finish_ok(&running, "continuous word counts");
    let expected: Vec<Row> = [
        ("cat", 1),
        ("dog", 1),
        ("dog", 2),
        ("dog", 3),
        ("owl", 1),
        ("cat", 2),
    ]
    .iter()
    .map(|(word, count)| (word.to_string(), *count))
    .collect();
    assert_eq!(table.rows(), expected);
}

// ----------------------------------------------------------- what start() refuses

fn config_error(result: rivulet::Result<Query>, what: &str) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("{what}: expected Error::Config, got {other}"),
        Ok(query) => {
            query.abort().ok();
            panic!("{what}: start() accepted it")
        }
    }
}

/// Complete mode needs an aggregation: there is no result table to emit otherwise.
#[test]
fn complete_without_aggregation_is_refused() {
    for trigger in [None, Some(micro_batch())] {
        let mut query = Query::builder();
        if let Some(trigger) = trigger {
            query.trigger(trigger);
        }
        query.output_mode(OutputMode::Complete);
        let _rows = query
            .from_iter("words", ["cat", "dog"])
            .map(str::to_uppercase)
            .to_memory("out");
        let message = config_error(query.start(), "complete without aggregation");
        let lower = message.to_lowercase();
        assert!(
            lower.contains("complete") && lower.contains("aggregation"),
            "the message should name complete mode and the missing aggregation: {message}"
        );
    }
}

/// Append mode on an aggregation needs watermarks (not supported): refused.
#[test]
fn append_with_aggregation_is_refused() {
    for trigger in [None, Some(micro_batch())] {
        let mut query = Query::builder();
        if let Some(trigger) = trigger {
            query.trigger(trigger);
        }
        query.output_mode(OutputMode::Append);
        let _rows = query
            .from_iter("words", ["cat", "dog", "cat"])
            .key_by(|word: &&str| word.to_string())
            .count()
            .to_memory("counts");
        let message = config_error(query.start(), "append with aggregation");
        assert!(
            message.to_lowercase().contains("append"),
            "the message should name append mode: {message}"
        );
    }
}

/// Append without an aggregation: every record is emitted exactly once, under either
/// trigger (and without one).
#[test]
fn append_without_aggregation_emits_each_record_once() {
    let words: Vec<String> = ["cat dog", "dog dog", "owl cat"]
        .iter()
        .flat_map(|line| line.split(' ').map(str::to_string))
        .collect();
    let triggers = [
        None,
        Some(Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        }),
        Some(micro_batch()),
        Some(Trigger::AvailableNow),
    ];
    for trigger in triggers {
        let mut query = Query::builder();
        if let Some(trigger) = trigger {
            query.trigger(trigger);
        }
        query.output_mode(OutputMode::Append).max_batch_records(2);
        let table = query
            .from_iter("lines", ["cat dog", "dog dog", "owl cat"])
            .flat_map(|line: &str| line.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter(|word| !word.is_empty())
            .to_memory("words");
        let running = query.start().expect("append without aggregation starts");
        finish_ok(&running, "append without aggregation");
        assert_eq!(table.rows(), words, "trigger {trigger:?}");
    }
}
