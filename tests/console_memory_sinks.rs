//! The console and memory sinks driven directly through the `Sink` methods, in the order
//! the engine calls them: `open`, then per epoch `begin_epoch`, `write`s and `flush`es,
//! `prepare_commit`; `close` at the end.

use rivulet::sink::{ConsoleSink, MemorySink, MemoryTable, Sink, SinkContext};
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, ExecutionMode, OutputMode};
use serde::Serialize;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

type Output = Arc<Mutex<Vec<u8>>>;

fn console() -> (Output, ConsoleSink) {
    let out: Output = Arc::default();
    (out.clone(), ConsoleSink::to_writer(out))
}

/// Everything printed so far, cleared.
fn printed(out: &Output) -> String {
    String::from_utf8(std::mem::take(&mut *out.lock().unwrap())).unwrap()
}

fn mode(execution: ExecutionMode, output: OutputMode) -> EmitMode {
    EmitMode { execution, output }
}

const BATCH: EmitMode = EmitMode {
    execution: ExecutionMode::MicroBatch,
    output: OutputMode::Update,
};
const CONTINUOUS: EmitMode = EmitMode {
    execution: ExecutionMode::Continuous,
    output: OutputMode::Update,
};

/// Runs one epoch of `records` through `sink` (a flush after each record, as a busy
/// engine thread would).
fn epoch<T, S: Sink<T>>(sink: &mut S, epoch: u64, mode: EmitMode, records: Vec<T>) {
    sink.begin_epoch(Epoch(epoch), mode).unwrap();
    for record in records {
        sink.write(record).unwrap();
        sink.flush().unwrap();
    }
    sink.flush().unwrap();
    assert!(sink.prepare_commit(Epoch(epoch)).unwrap().is_none());
}

#[test]
fn micro_batch_of_tuples_prints_spark_tables() {
    let (out, mut sink) = console();
    Sink::<(String, u64)>::open(&mut sink, &SinkContext::new("console", 0, 1)).unwrap();
    epoch(
        &mut sink,
        1,
        BATCH,
        vec![("a".to_string(), 2), ("b".to_string(), 10)],
    );
    epoch(&mut sink, 2, BATCH, vec![("cat".to_string(), 1234)]);
    Sink::<(String, u64)>::close(&mut sink).unwrap();
    assert_eq!(
        printed(&out),
        "\
-------------------------------------------
Batch: 1
-------------------------------------------
+---+---+
| _1| _2|
+---+---+
|  a|  2|
|  b| 10|
+---+---+

-------------------------------------------
Batch: 2
-------------------------------------------
+---+----+
| _1|  _2|
+---+----+
|cat|1234|
+---+----+

"
    );
}

#[derive(Serialize)]
struct WordCount {
    word: String,
    count: u64,
    window: Window,
    note: Option<String>,
}

#[derive(Serialize)]
struct Window {
    start: u32,
    end: u32,
}

fn word(word: &str, count: u64, note: Option<&str>) -> WordCount {
    WordCount {
        word: word.to_string(),
        count,
        window: Window { start: 0, end: 100 },
        note: note.map(str::to_string),
    }
}

#[test]
fn micro_batch_of_structs_names_columns_by_field() {
    let (out, mut sink) = console();
    let records = vec![
        word("streaming", 3, None),
        word(
            "naïve",
            12,
            Some("a note much longer than twenty characters"),
        ),
    ];
    epoch(&mut sink, 7, BATCH, records);
    assert_eq!(
        printed(&out),
        "\
-------------------------------------------
Batch: 7
-------------------------------------------
+---------+-----+--------------------+--------------------+
|     word|count|              window|                note|
+---------+-----+--------------------+--------------------+
|streaming|    3|{\"start\":0,\"end\":...|                NULL|
|    naïve|   12|{\"start\":0,\"end\":...|a note much longe...|
+---------+-----+--------------------+--------------------+

"
    );
}

#[test]
fn truncation_off_prints_whole_left_aligned_cells() {
    let (out, sink) = console();
    let mut sink = sink.truncate(0);
    epoch(
        &mut sink,
        1,
        BATCH,
        vec![word("x", 1, Some("longer than twenty characters"))],
    );
    assert_eq!(
        printed(&out),
        "\
-------------------------------------------
Batch: 1
-------------------------------------------
+----+-----+---------------------+-----------------------------+
|word|count|window               |note                         |
+----+-----+---------------------+-----------------------------+
|x   |1    |{\"start\":0,\"end\":100}|longer than twenty characters|
+----+-----+---------------------+-----------------------------+

"
    );
}

#[test]
fn long_batches_show_the_first_rows_and_a_footer() {
    let (out, sink) = console();
    let mut sink = sink.num_rows(2);
    epoch(&mut sink, 4, BATCH, (1..=5u32).collect());
    assert_eq!(
        printed(&out),
        "\
-------------------------------------------
Batch: 4
-------------------------------------------
+-----+
|value|
+-----+
|    1|
|    2|
+-----+
only showing top 2 rows

"
    );
}

#[test]
fn an_empty_batch_prints_its_banner_and_an_empty_table() {
    let (out, mut sink) = console();
    // Before any record the columns are unknown (Spark knows them from the schema):
    // said in words rather than drawn as a table without columns.
    epoch::<(u8, u8), _>(&mut sink, 1, BATCH, vec![]);
    assert_eq!(
        printed(&out),
        "\
-------------------------------------------
Batch: 1
-------------------------------------------
(no rows yet)

"
    );
    // Later empty batches keep the columns of the last record.
    epoch(&mut sink, 2, BATCH, vec![(1u8, 2u8)]);
    printed(&out);
    epoch::<(u8, u8), _>(&mut sink, 3, BATCH, vec![]);
    assert_eq!(
        printed(&out),
        "\
-------------------------------------------
Batch: 3
-------------------------------------------
+---+---+
| _1| _2|
+---+---+
+---+---+

"
    );
}

#[test]
fn continuous_epochs_print_one_line_per_record_at_flush() {
    let (out, sink) = console();
    let mut sink = sink.prefix("[q] ");
    Sink::<(&str, u32)>::begin_epoch(&mut sink, Epoch(1), CONTINUOUS).unwrap();
    sink.write(("a", 1)).unwrap();
    sink.write(("b\tc", 2)).unwrap();
    assert_eq!(printed(&out), "", "nothing is written before a flush");
    Sink::<(&str, u32)>::flush(&mut sink).unwrap();
    assert_eq!(printed(&out), "[q] [a,1]\n[q] [b\\tc,2]\n");
    // Flushing with nothing pending writes nothing.
    Sink::<(&str, u32)>::flush(&mut sink).unwrap();
    assert_eq!(printed(&out), "");
    sink.write(("d", 3)).unwrap();
    assert!(Sink::<(&str, u32)>::prepare_commit(&mut sink, Epoch(1))
        .unwrap()
        .is_none());
    assert_eq!(
        printed(&out),
        "[q] [d,3]\n",
        "a continuous epoch prints no table"
    );

    // The mode can change at any epoch.
    epoch(&mut sink, 2, BATCH, vec![("e", 4)]);
    assert!(printed(&out).starts_with("[q] ---"));
    epoch(&mut sink, 3, CONTINUOUS, vec![("f", 5)]);
    assert_eq!(printed(&out), "[q] [f,5]\n");
}

#[test]
fn complete_mode_prints_the_result_table_even_in_continuous_epochs() {
    let (out, mut sink) = console();
    let context = SinkContext::new("console", 0, 1).output_mode(OutputMode::Complete);
    Sink::<(&str, u64)>::open(&mut sink, &context).unwrap();
    let complete = mode(ExecutionMode::Continuous, OutputMode::Complete);
    epoch(&mut sink, 1, complete, vec![("a", 1), ("b", 1)]);
    epoch(&mut sink, 2, complete, vec![("a", 2), ("b", 1)]);
    let text = printed(&out);
    assert!(text.contains("Batch: 1\n"), "{text}");
    assert!(
        text.ends_with("|  a|  2|\n|  b|  1|\n+---+---+\n\n"),
        "{text}"
    );
}

#[test]
fn parallel_instances_print_one_table_per_batch() {
    let (out, first) = console();
    let mut first = first;
    let mut second = first.clone();
    Sink::<(&str, u8)>::open(&mut first, &SinkContext::new("console", 0, 2)).unwrap();
    Sink::<(&str, u8)>::open(&mut second, &SinkContext::new("console", 1, 2)).unwrap();
    // Instance 1 finishes first; the table waits for instance 0 and lists it first.
    epoch(&mut second, 1, BATCH, vec![("y", 2)]);
    assert_eq!(printed(&out), "");
    epoch(&mut first, 1, BATCH, vec![("x", 1)]);
    assert_eq!(
        printed(&out),
        "\
-------------------------------------------
Batch: 1
-------------------------------------------
+---+---+
| _1| _2|
+---+---+
|  x|  1|
|  y|  2|
+---+---+

"
    );
    // A batch only one instance finished is printed when the last instance closes.
    epoch(&mut first, 2, BATCH, vec![("z", 3)]);
    Sink::<(&str, u8)>::close(&mut first).unwrap();
    assert_eq!(printed(&out), "");
    Sink::<(&str, u8)>::close(&mut second).unwrap();
    assert!(printed(&out).contains("Batch: 2\n"));
}

struct BrokenPipe;

impl Write for BrokenPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_output_fails_the_sink_without_panicking() {
    let mut sink = ConsoleSink::to_writer(Arc::new(Mutex::new(BrokenPipe)));
    Sink::<u8>::begin_epoch(&mut sink, Epoch(1), BATCH).unwrap();
    sink.write(1u8).unwrap();
    let error = Sink::<u8>::prepare_commit(&mut sink, Epoch(1))
        .err()
        .expect("the write fails");
    assert_eq!(
        error.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::BrokenPipe)
    );
}

fn memory_instances<T: Send + 'static>(
    table: &MemoryTable<T>,
    output: OutputMode,
) -> Vec<MemorySink<T>> {
    let sink = MemorySink::new(table.clone());
    (0..2)
        .map(|instance| {
            let mut sink = sink.clone();
            sink.open(&SinkContext::new("table", instance, 2).output_mode(output))
                .unwrap();
            sink
        })
        .collect()
}

#[test]
fn complete_mode_replaces_each_instances_partition_per_epoch() {
    let table = MemoryTable::new();
    let mut sinks = memory_instances(&table, OutputMode::Complete);
    let complete = mode(ExecutionMode::MicroBatch, OutputMode::Complete);

    epoch(&mut sinks[0], 1, complete, vec![("a", 1)]);
    epoch(&mut sinks[1], 1, complete, vec![("b", 1)]);
    assert_eq!(table.rows(), [("a", 1), ("b", 1)]);

    // Epoch 2: instance 1's result grows, instance 0's changes.
    epoch(&mut sinks[1], 2, complete, vec![("b", 2), ("d", 1)]);
    assert_eq!(table.rows(), [("a", 1), ("b", 2), ("d", 1)]);
    epoch(&mut sinks[0], 2, complete, vec![("a", 3), ("c", 1)]);
    assert_eq!(table.rows(), [("a", 3), ("c", 1), ("b", 2), ("d", 1)]);

    // Rows of an epoch are not visible before it ends, flushes or not.
    sinks[0].begin_epoch(Epoch(3), complete).unwrap();
    sinks[0].write(("a", 4)).unwrap();
    sinks[0].flush().unwrap();
    assert_eq!(table.len(), 4);
    // ...unless the stream ends first: `close` publishes them.
    sinks[0].close().unwrap();
    sinks[1].close().unwrap();
    assert_eq!(table.rows(), [("a", 4), ("b", 2), ("d", 1)]);
}

#[test]
fn readers_never_see_a_half_replaced_partition() {
    const EPOCHS: u64 = 300;
    let table = MemoryTable::<(usize, u64)>::new();
    let sinks = memory_instances(&table, OutputMode::Complete);
    let complete = mode(ExecutionMode::Continuous, OutputMode::Complete);
    // In epoch e, instance i's result is e + i rows, each (i, e).
    let writers: Vec<_> = sinks
        .into_iter()
        .enumerate()
        .map(|(instance, mut sink)| {
            thread::spawn(move || {
                for e in 1..=EPOCHS {
                    let rows = (0..e + instance as u64).map(|_| (instance, e)).collect();
                    epoch(&mut sink, e, complete, rows);
                }
                sink.close().unwrap();
            })
        })
        .collect();
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        table.with_rows(|rows| {
            let mut at = 0;
            for instance in 0..2 {
                let part: Vec<_> = rows[at..].iter().take_while(|r| r.0 == instance).collect();
                if let Some((_, e)) = part.first() {
                    assert!(part.iter().all(|r| r.1 == *e), "one epoch per partition");
                    assert_eq!(part.len() as u64, e + instance as u64, "whole partition");
                }
                at += part.len();
            }
            assert_eq!(at, rows.len(), "partitions in instance order");
        });
        if done {
            break;
        }
    }
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(table.len() as u64, 2 * EPOCHS + 1);
}

#[test]
fn update_mode_appends_every_row_at_flush() {
    let table = MemoryTable::new();
    let mut sinks = memory_instances(&table, OutputMode::Update);
    sinks[0].begin_epoch(Epoch(1), BATCH).unwrap();
    sinks[0].write(1).unwrap();
    assert!(table.is_empty(), "rows wait for the flush");
    sinks[0].flush().unwrap();
    assert_eq!(table.rows(), [1]);
    sinks[1].begin_epoch(Epoch(1), BATCH).unwrap();
    sinks[1].write(10).unwrap();
    sinks[1].flush().unwrap();
    sinks[0].write(2).unwrap();
    sinks[0].prepare_commit(Epoch(1)).unwrap();
    sinks[1].prepare_commit(Epoch(1)).unwrap();
    // Epochs add rows; nothing is replaced.
    epoch(&mut sinks[0], 2, CONTINUOUS, vec![3]);
    sinks[0].write(4).unwrap();
    sinks[0].close().unwrap();
    sinks[1].close().unwrap();
    assert_eq!(table.rows(), [1, 10, 2, 3, 4]);
    assert_eq!(table.take(), [1, 10, 2, 3, 4]);
    assert!(table.is_empty());
}

#[test]
fn wait_for_sees_rows_from_another_thread() {
    let table = MemoryTable::new();
    let mut sinks = memory_instances(&table, OutputMode::Complete);
    let mut sink = sinks.remove(1);
    let writer = thread::spawn(move || {
        let complete = mode(ExecutionMode::MicroBatch, OutputMode::Complete);
        for e in 1..=3 {
            thread::sleep(Duration::from_millis(2));
            epoch(&mut sink, e, complete, vec![e; e as usize]);
        }
    });
    assert!(table.wait_for(|rows| rows == [3, 3, 3], Duration::from_secs(10)));
    assert_eq!(table.wait_for_len(3, Duration::ZERO), 3);
    writer.join().unwrap();
}
