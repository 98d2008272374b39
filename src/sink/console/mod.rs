//! A sink that prints records (Spark's `console` sink): a table per micro-batch, a line
//! per record in continuous epochs.
//!
//! This module is the sink: what to print, when, and in which order. `table` turns a
//! record into a row of named cells and draws a batch as Spark's `Dataset.show` does.

mod table;

use super::{EpochCommit, Sink, SinkContext};
use crate::error::BoxError;
use crate::event::Epoch;
use crate::trigger::{EmitMode, ExecutionMode, OutputMode};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use table::{Name, Table};

/// Spark's line above and below the batch label.
const RULE: &str = "-------------------------------------------";

/// Rows shown per batch unless told otherwise (Spark's `numRows` default).
const DEFAULT_NUM_ROWS: usize = 20;

/// The width cells are cut to when truncation is on (Spark's `Dataset.show` default).
const DEFAULT_TRUNCATE: usize = 20;

/// Prints records as Spark's console sink does. Each record is converted through serde:
/// a struct or map gives one column per field, a tuple or sequence columns `_1`, `_2`, …,
/// anything else one column `value`; nested values print as compact JSON, strings
/// without quotes, missing values as `NULL`.
///
/// - In a **micro-batch** epoch, and in every epoch in [`OutputMode::Complete`] (whose
///   rows are the whole result table), the epoch's rows are printed at its end as Spark
///   prints a batch: a `Batch: N` banner and the table as `Dataset.show` draws it (the
///   first [`num_rows`](ConsoleSink::num_rows) rows, cells right-aligned and cut to
///   [`truncate`](ConsoleSink::truncate) characters). With parallel instances, their rows
///   of a batch are printed as one table (in instance order) once every instance has
///   finished the batch.
/// - In a **continuous** epoch, each record is one line, `[a,2]` (Spark's `Row`
///   format). Lines are buffered and written at the end of each step of work, so a record
///   appears within microseconds without a system call per record.
///
/// Spark's console options `numRows` and `truncate` are [`num_rows`](ConsoleSink::num_rows)
/// and [`truncate`](ConsoleSink::truncate), or by name [`option`](ConsoleSink::option).
/// Every printed line starts with the [`prefix`](ConsoleSink::prefix) (empty by
/// default). Output goes to standard output, or to any writer shared by the clones
/// ([`ConsoleSink::to_writer`]). A write that fails (a closed pipe, say) stops the query
/// with the error.
///
/// ```
/// use rivulet::sink::{ConsoleSink, Sink};
/// use rivulet::{Epoch, ExecutionMode, OutputMode};
/// use rivulet::trigger::EmitMode;
/// use std::sync::{Arc, Mutex};
///
/// let out = Arc::new(Mutex::new(Vec::<u8>::new()));
/// let mut sink = ConsoleSink::to_writer(out.clone());
/// let batch = EmitMode { execution: ExecutionMode::MicroBatch, output: OutputMode::Update };
/// Sink::<(&str, u32)>::begin_epoch(&mut sink, Epoch(1), batch)?;
/// sink.write(("a", 2))?;
/// sink.write(("b", 10))?;
/// Sink::<(&str, u32)>::prepare_commit(&mut sink, Epoch(1))?;
/// let printed = String::from_utf8(out.lock().unwrap().clone())?;
/// assert_eq!(printed, "\
/// -------------------------------------------
/// Batch: 1
/// -------------------------------------------
/// +---+---+
/// | _1| _2|
/// +---+---+
/// |  a|  2|
/// |  b| 10|
/// +---+---+
///
/// ");
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub struct ConsoleSink {
    prefix: String,
    num_rows: usize,
    truncate: usize,
    out: Arc<Mutex<dyn Write + Send>>,
    /// Batches waiting for the other instances, shared by the clones.
    board: Arc<Mutex<Board>>,
    /// This instance's name, number and count of instances (from [`Sink::open`]).
    name: String,
    instance: usize,
    parallelism: usize,
    /// The current epoch and its mode.
    epoch: Epoch,
    mode: EmitMode,
    /// Continuous lines not written yet.
    lines: String,
    /// The current batch's rows, at most `num_rows + 1` (enough to know some were left
    /// out).
    batch: Table,
    /// The columns of the last record seen: the header of a batch without rows.
    columns: Vec<Name>,
}

/// Batches of a sink whose instances have not all finished them, by sink name and epoch.
#[derive(Default)]
struct Board {
    batches: BTreeMap<(String, u64), Batch>,
    /// Instances of each sink that have closed.
    closed: HashMap<String, usize>,
}

/// One batch's rows, one part per instance.
struct Batch {
    parts: Vec<Option<Part>>,
    arrived: usize,
}

struct Part {
    table: Table,
    columns: Vec<Name>,
}

impl fmt::Debug for ConsoleSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSink")
            .field("prefix", &self.prefix)
            .field("num_rows", &self.num_rows)
            .field("truncate", &self.truncate)
            .field("instance", &self.instance)
            .field("epoch", &self.epoch)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Clone for ConsoleSink {
    /// Another instance printing to the same output.
    fn clone(&self) -> Self {
        ConsoleSink {
            prefix: self.prefix.clone(),
            num_rows: self.num_rows,
            truncate: self.truncate,
            out: self.out.clone(),
            board: self.board.clone(),
            ..ConsoleSink::fresh(self.out.clone())
        }
    }
}

impl ConsoleSink {
    /// Prints to standard output, every line starting with `prefix` (may be empty).
    pub fn new(prefix: impl Into<String>) -> Self {
        ConsoleSink::to_writer(Arc::new(Mutex::new(std::io::stdout()))).prefix(prefix)
    }

    /// Prints to `out`, which all clones of this sink share (each batch or run of lines
    /// is written and flushed under its lock, so instances never interleave within one).
    ///
    /// ```
    /// use rivulet::sink::ConsoleSink;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    /// let sink = ConsoleSink::to_writer(captured.clone()).prefix("> ");
    /// # drop(sink);
    /// ```
    pub fn to_writer(out: Arc<Mutex<dyn Write + Send>>) -> Self {
        ConsoleSink::fresh(out)
    }

    fn fresh(out: Arc<Mutex<dyn Write + Send>>) -> Self {
        ConsoleSink {
            prefix: String::new(),
            num_rows: DEFAULT_NUM_ROWS,
            truncate: DEFAULT_TRUNCATE,
            out,
            board: Arc::default(),
            name: String::new(),
            instance: 0,
            parallelism: 1,
            epoch: Epoch(1),
            mode: EmitMode::default(),
            lines: String::new(),
            batch: Table::default(),
            columns: Vec::new(),
        }
    }

    /// Starts every printed line with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Prints at most `rows` rows of each batch, then `only showing top N rows` (Spark's
    /// `numRows` option; 20 by default).
    pub fn num_rows(mut self, rows: usize) -> Self {
        self.num_rows = rows;
        self
    }

    /// Cuts table cells longer than `width` characters (ending them in `...`) and aligns
    /// cells right; 0 prints cells whole, aligned left (Spark's `truncate` option: 20
    /// when on, the default, and 0 when off).
    pub fn truncate(mut self, width: usize) -> Self {
        self.truncate = width;
        self
    }

    /// Sets one of Spark's console sink options by its name, as
    /// `writeStream.format("console").option(key, value)` does:
    ///
    /// | key | value | default | same as |
    /// |---|---|---|---|
    /// | `numRows` | rows shown per batch, then `only showing top N rows`; a negative count shows none (as Spark's `Dataset.show`) | `20` | [`num_rows`](Self::num_rows) |
    /// | `truncate` | `true`: cells longer than 20 characters are cut to 17 and `...`, all cells right-aligned; `false`: cells whole, left-aligned | `true` | [`truncate`](Self::truncate)`(20)` / `(0)` |
    ///
    /// Keys are case-insensitive and `true`/`false` too, as in Spark.
    ///
    /// ```
    /// use rivulet::sink::ConsoleSink;
    ///
    /// let sink = ConsoleSink::new("").option("numRows", "5")?.option("truncate", "false")?;
    /// assert!(ConsoleSink::new("").option("numRows", "many").is_err());
    /// # drop(sink);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) for a value that does not parse, naming the
    /// option, and for an unknown key. Spark ignores options it does not know; rivulet
    /// refuses them, so that a misspelt option is not silently without effect.
    pub fn option(self, key: &str, value: &str) -> crate::Result<Self> {
        let bad = |expected: &str| {
            crate::Error::config(format!(
                "console sink option `{key}`: {value:?} is not {expected}"
            ))
        };
        match key.to_ascii_lowercase().as_str() {
            "numrows" => {
                let rows: i64 = value.trim().parse().map_err(|_| bad("a number of rows"))?;
                Ok(self.num_rows(usize::try_from(rows.max(0)).unwrap_or(usize::MAX)))
            }
            "truncate" => match value.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(self.truncate(DEFAULT_TRUNCATE)),
                "false" => Ok(self.truncate(0)),
                _ => Err(bad("true or false")),
            },
            _ => Err(crate::Error::config(format!(
                "the console sink has no option `{key}` (it has `numRows` and `truncate`)"
            ))),
        }
    }

    /// Whether the current epoch prints a table (rather than lines).
    fn tabular(&self) -> bool {
        self.mode.execution == ExecutionMode::MicroBatch || self.mode.output == OutputMode::Complete
    }

    fn remember(&mut self, names: &[Name]) {
        if self.columns != names {
            self.columns = names.to_vec();
        }
    }

    fn flush_lines(&mut self) -> Result<(), BoxError> {
        if !self.lines.is_empty() {
            let mut out = lock(&self.out);
            out.write_all(self.lines.as_bytes())?;
            out.flush()?;
            self.lines.clear();
        }
        Ok(())
    }

    /// Hands the current batch's rows to the board as `epoch`'s, and prints the batch if
    /// this instance was the last to finish it.
    fn finish_batch(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        let part = Part {
            table: std::mem::take(&mut self.batch),
            columns: self.columns.clone(),
        };
        let mut board = lock(&self.board);
        let key = (self.name.clone(), epoch.0);
        let batch = board.batches.entry(key.clone()).or_insert_with(|| Batch {
            parts: Vec::new(),
            arrived: 0,
        });
        if batch.parts.len() <= self.instance {
            batch.parts.resize_with(self.instance + 1, || None);
        }
        match &mut batch.parts[self.instance] {
            Some(earlier) => earlier.table.append(part.table),
            slot => {
                *slot = Some(part);
                batch.arrived += 1;
            }
        }
        if batch.arrived >= self.parallelism {
            if let Some(batch) = board.batches.remove(&key) {
                // Printed under the board's lock, so batches come out in epoch order.
                self.print(epoch, batch)?;
            }
        }
        Ok(())
    }

    /// Prints one batch: Spark's banner, then the table and an empty line.
    fn print(&self, epoch: Epoch, batch: Batch) -> Result<(), BoxError> {
        let mut merged = Table::default();
        let mut columns = Vec::new();
        for part in batch.parts.into_iter().flatten() {
            if columns.is_empty() {
                columns = part.columns;
            }
            merged.append(part.table);
        }
        merged.truncate_rows(self.num_rows.saturating_add(1));
        if merged.headers().is_empty() {
            merged = Table::with_headers(columns);
        }
        let text = format!(
            "{RULE}\nBatch: {}\n{RULE}\n{}\n",
            epoch.0,
            merged.render(self.num_rows, self.truncate)
        );
        let mut out = lock(&self.out);
        if self.prefix.is_empty() {
            out.write_all(text.as_bytes())?;
        } else {
            let mut prefixed = String::with_capacity(text.len() * 2);
            for line in text.split_inclusive('\n') {
                if line != "\n" {
                    prefixed.push_str(&self.prefix);
                }
                prefixed.push_str(line);
            }
            out.write_all(prefixed.as_bytes())?;
        }
        out.flush()?;
        Ok(())
    }
}

/// Locks `mutex`, even if a thread panicked holding it: the writer and the board stay
/// usable (at worst a partly written batch, which a panicking writer caused anyway).
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Serialize> Sink<T> for ConsoleSink {
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        self.name = context.name.clone();
        self.instance = context.instance;
        self.parallelism = context.parallelism.max(1);
        self.epoch = context.first_epoch;
        self.mode.output = context.output_mode;
        Ok(())
    }

    fn begin_epoch(&mut self, epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        self.flush_lines()?;
        if !self.batch.is_empty() {
            // The previous epoch ended without `prepare_commit`: print its rows anyway.
            self.finish_batch(self.epoch)?;
        }
        self.epoch = epoch;
        self.mode = mode;
        Ok(())
    }

    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        let tabular = self.tabular();
        if tabular && self.batch.len() > self.num_rows {
            // Enough rows to fill the table and show that more came.
            return Ok(());
        }
        let row = table::row(&record)
            .map_err(|error| format!("the console sink cannot print a record: {error}"))?;
        self.remember(&row.names);
        if tabular {
            self.batch.push(row);
        } else {
            self.lines.push_str(&self.prefix);
            row.write_line(&mut self.lines);
            self.lines.push('\n');
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.flush_lines()
    }

    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        self.flush_lines()?;
        if self.tabular() {
            self.finish_batch(epoch)?;
        }
        Ok(None)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.flush_lines()?;
        if !self.batch.is_empty() {
            // Rows of an epoch that never ended.
            self.finish_batch(self.epoch)?;
        }
        let mut board = lock(&self.board);
        let closed = board.closed.entry(self.name.clone()).or_insert(0);
        *closed += 1;
        if *closed >= self.parallelism {
            // Every instance is done: print what some instances never finished.
            board.closed.remove(&self.name);
            let keys: Vec<(String, u64)> = board
                .batches
                .keys()
                .filter(|(name, _)| *name == self.name)
                .cloned()
                .collect();
            for key in keys {
                if let Some(batch) = board.batches.remove(&key) {
                    self.print(Epoch(key.1), batch)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn captured() -> (Arc<Mutex<Vec<u8>>>, ConsoleSink) {
        let out = Arc::new(Mutex::new(Vec::new()));
        (out.clone(), ConsoleSink::to_writer(out))
    }

    fn text(out: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8(out.lock().unwrap().clone()).unwrap()
    }

    const BATCH: EmitMode = EmitMode {
        execution: ExecutionMode::MicroBatch,
        output: OutputMode::Update,
    };
    const CONTINUOUS: EmitMode = EmitMode {
        execution: ExecutionMode::Continuous,
        output: OutputMode::Update,
    };

    type Pair = (&'static str, u32);

    #[test]
    fn continuous_lines_wait_for_flush() {
        let (out, sink) = captured();
        let mut sink = sink.prefix("> ");
        Sink::<Pair>::begin_epoch(&mut sink, Epoch(1), CONTINUOUS).unwrap();
        sink.write(("a", 1)).unwrap();
        sink.write(("b", 2)).unwrap();
        assert_eq!(text(&out), "");
        Sink::<Pair>::flush(&mut sink).unwrap();
        assert_eq!(text(&out), "> [a,1]\n> [b,2]\n");
    }

    #[test]
    fn prefix_starts_every_table_line() {
        let (out, sink) = captured();
        let mut sink = sink.prefix("q| ");
        Sink::<u8>::begin_epoch(&mut sink, Epoch(3), BATCH).unwrap();
        sink.write(7u8).unwrap();
        Sink::<u8>::prepare_commit(&mut sink, Epoch(3)).unwrap();
        assert_eq!(
            text(&out),
            "q| -------------------------------------------\n\
             q| Batch: 3\n\
             q| -------------------------------------------\n\
             q| +-----+\n\
             q| |value|\n\
             q| +-----+\n\
             q| |    7|\n\
             q| +-----+\n\
             \n"
        );
    }

    #[test]
    fn only_the_shown_rows_are_kept() {
        let (out, sink) = captured();
        let mut sink = sink.num_rows(2);
        Sink::<u32>::begin_epoch(&mut sink, Epoch(1), BATCH).unwrap();
        for i in 0..1000u32 {
            sink.write(i).unwrap();
        }
        assert_eq!(sink.batch.len(), 3);
        Sink::<u32>::prepare_commit(&mut sink, Epoch(1)).unwrap();
        assert!(text(&out).ends_with("|    1|\n+-----+\nonly showing top 2 rows\n\n"));
    }

    #[test]
    fn spark_options_by_name() {
        let sink = ConsoleSink::new("");
        assert_eq!((sink.num_rows, sink.truncate), (20, 20), "Spark's defaults");
        let sink = sink.option("numRows", "3").unwrap();
        assert_eq!(sink.num_rows, 3);
        let sink = sink.option("NUMROWS", " -4 ").unwrap();
        assert_eq!(
            sink.num_rows, 0,
            "a negative count shows no rows, as in Spark"
        );
        let sink = sink.option("truncate", "FALSE").unwrap();
        assert_eq!(sink.truncate, 0);
        let sink = sink.option("Truncate", "true").unwrap();
        assert_eq!(sink.truncate, 20);
        for (key, value, words) in [
            (
                "numRows",
                "many",
                "`numRows`: \"many\" is not a number of rows",
            ),
            ("numRows", "", "is not a number"),
            (
                "truncate",
                "yes",
                "`truncate`: \"yes\" is not true or false",
            ),
            ("numrow", "3", "no option `numrow`"),
        ] {
            let error = ConsoleSink::new("").option(key, value).unwrap_err();
            assert!(matches!(error, crate::Error::Config(_)), "{error:?}");
            assert!(error.to_string().contains(words), "{error}");
        }
    }

    #[test]
    fn default_truncation_cuts_long_cells_to_seventeen_and_dots() {
        let (out, mut sink) = captured();
        Sink::<(&str, &str)>::begin_epoch(&mut sink, Epoch(1), BATCH).unwrap();
        sink.write(("exactly twenty chars", "twenty-one characters"))
            .unwrap();
        Sink::<(&str, &str)>::prepare_commit(&mut sink, Epoch(1)).unwrap();
        assert_eq!(
            text(&out),
            "-------------------------------------------\n\
             Batch: 1\n\
             -------------------------------------------\n\
             +--------------------+--------------------+\n\
             |                  _1|                  _2|\n\
             +--------------------+--------------------+\n\
             |exactly twenty chars|twenty-one charac...|\n\
             +--------------------+--------------------+\n\
             \n"
        );
    }

    #[test]
    fn options_through_a_query() {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = ConsoleSink::to_writer(out.clone())
            .option("numRows", "2")
            .unwrap()
            .option("truncate", "false")
            .unwrap();
        let mut query = crate::Query::builder();
        query.trigger(crate::Trigger::AvailableNow);
        let words = ["a word longer than twenty chars", "b", "c"].map(str::to_string);
        query.from_iter("words", words).sink("console", sink);
        let running = query.start().unwrap();
        running
            .await_termination_timeout(std::time::Duration::from_secs(60))
            .expect("the query ends (hang guard)")
            .unwrap();
        let printed = text(&out);
        assert!(
            printed.starts_with(
                "-------------------------------------------\n\
                 Batch: 1\n\
                 -------------------------------------------\n\
                 +-------------------------------+\n\
                 |value                          |\n\
                 +-------------------------------+\n\
                 |a word longer than twenty chars|\n\
                 |b                              |\n\
                 +-------------------------------+\n\
                 only showing top 2 rows\n\
                 \n"
            ),
            "{printed}"
        );
    }

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_output_is_an_error() {
        let mut sink = ConsoleSink::to_writer(Arc::new(Mutex::new(Closed)));
        sink.write(1u8).unwrap();
        let error = Sink::<u8>::flush(&mut sink).unwrap_err();
        let io = error.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    }
}
