//! Rows of a schema from lines: [`LineDecoding`] says how socket lines become
//! [`Row`]s ([`QueryBuilder::socket_rows_with_schema`](crate::QueryBuilder::socket_rows_with_schema)),
//! and [`DecodeLines`] is the operator that decodes them, with the file source's
//! malformed-record verdicts ([`format`](crate::format)).

use crate::format::{CsvOptions, DecodeOptions, Decoder, Format, Malformed, ParseMode, Verdict};
use crate::operator::{Context, Operator};
use crate::row::{Row, RowSeed, Schema};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Counter of malformed lines (repaired, dropped or failing), as the file source's.
pub const MALFORMED_ROWS: &str = "malformed_rows";
/// Counter of malformed lines dropped (and quarantined where a directory is set).
pub const DROPPED_ROWS: &str = "dropped_rows";

/// How lines become rows of a schema: the line format (CSV or JSON lines), Spark's
/// malformed-record mode and options ([`DecodeOptions`]), and where dropped lines are
/// quarantined.
///
/// ```
/// use rivulet::format::{DecodeOptions, ParseMode};
/// use rivulet::source::socket::LineDecoding;
///
/// let csv = LineDecoding::csv().options(DecodeOptions::default().mode(ParseMode::DropMalformed));
/// assert_eq!(csv.decode_options().parse_mode(), ParseMode::DropMalformed);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LineDecoding {
    format: Format,
    options: DecodeOptions,
    quarantine_dir: Option<PathBuf>,
}

impl LineDecoding {
    /// Each line a CSV record (default [`CsvOptions`], no header), its fields filling
    /// the schema's columns by position.
    pub fn csv() -> Self {
        Self::csv_with(CsvOptions::default())
    }

    /// Each line a CSV record split by `csv`. A header option is ignored: a socket
    /// stream has no header line.
    pub fn csv_with(csv: CsvOptions) -> Self {
        LineDecoding::new(Format::Csv(csv))
    }

    /// Each line the one string column's value, whole (Spark's `socket` and `text`
    /// sources: a `value` column).
    pub fn text() -> Self {
        LineDecoding::new(Format::Text)
    }

    /// Each line a JSON object, its fields filling the schema's columns by name
    /// (ignoring case).
    pub fn json() -> Self {
        LineDecoding::new(Format::JsonLines)
    }

    fn new(format: Format) -> Self {
        LineDecoding {
            format,
            options: DecodeOptions::default(),
            quarantine_dir: None,
        }
    }

    /// The malformed-record mode and decoding options (default: Spark's `PERMISSIVE`).
    pub fn options(mut self, options: DecodeOptions) -> Self {
        self.options = options;
        self
    }

    /// Writes dropped lines ([`ParseMode::DropMalformed`], or lines permissive mode
    /// cannot repair) to `<dir>/_quarantine/<name>.jsonl`, one JSON object per line with
    /// `source`, `line` (its number among the lines the query read since it started),
    /// `field`, `error` and `record`. Without it they are only counted.
    pub fn quarantine_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.quarantine_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The line format.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The decoding options.
    pub fn decode_options(&self) -> &DecodeOptions {
        &self.options
    }
}

/// Decodes each line (a `String`) into a [`Row`] of a schema, with the verdicts of
/// [`format`](crate::format): a well-formed line is a row; in permissive mode a
/// malformed one comes through with nulls (counted as `malformed_rows`); a dropped one
/// is counted (`malformed_rows`, `dropped_rows`) and quarantined; in fail-fast mode a
/// malformed line fails the query
/// ([`Error::OperatorPanicked`](crate::Error::OperatorPanicked)) with the source's name,
/// the line's number, the field and the reason. Blank lines are skipped.
///
/// Decoding is deterministic, so lines replayed from the ingest log after a restart get
/// the verdicts they got before.
pub struct DecodeLines {
    source: Arc<str>,
    schema: Arc<Schema>,
    decoding: LineDecoding,
    /// The decoder, or why the schema cannot be decoded from the format (reported by
    /// `start()`).
    decoder: Result<Decoder<Row, RowSeed>, String>,
    /// Lines seen by this instance since it started.
    line: u64,
    quarantine: Option<BufWriter<File>>,
}

impl fmt::Debug for DecodeLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeLines")
            .field("source", &self.source)
            .field("schema", &self.schema.to_string())
            .field("decoding", &self.decoding)
            .finish_non_exhaustive()
    }
}

impl DecodeLines {
    /// The decoder of lines from the source `source` into rows of `schema`. A schema
    /// the format cannot fill is reported by [`check`](Self::check).
    pub fn new(source: &str, schema: Arc<Schema>, decoding: LineDecoding) -> Self {
        let decoder = Decoder::with_seed(
            RowSeed::new(schema.clone()),
            &decoding.format,
            &decoding.options,
        )
        .map(|mut decoder| {
            // A stream has no file start: no header, no byte-order mark.
            decoder.resume_file(false);
            decoder
        })
        .map_err(|error| error.0);
        DecodeLines {
            source: source.into(),
            schema,
            decoding,
            decoder,
            line: 0,
            quarantine: None,
        }
    }

    /// Whether the format can fill the schema (`Err` says why not).
    ///
    /// # Errors
    ///
    /// A schema the format cannot fill: text lines need one column.
    pub fn check(&self) -> Result<(), String> {
        self.decoder.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn quarantine(&mut self, malformed: &Malformed) {
        let Some(dir) = &self.decoding.quarantine_dir else {
            return;
        };
        let path = dir
            .join("_quarantine")
            .join(format!("{}.jsonl", self.source));
        let fail = |what: &str, error: std::io::Error| -> ! {
            panic!(
                "socket rows `{}`: cannot {what} {}: {error}",
                self.source,
                path.display()
            )
        };
        if self.quarantine.is_none() {
            if let Err(error) = std::fs::create_dir_all(dir.join("_quarantine")) {
                fail("create", error);
            }
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                Ok(file) => self.quarantine = Some(BufWriter::new(file)),
                Err(error) => fail("open", error),
            }
        }
        #[derive(Serialize)]
        struct Entry<'a> {
            source: &'a str,
            line: u64,
            field: Option<&'a str>,
            error: &'a str,
            record: &'a str,
        }
        let entry = Entry {
            source: &self.source,
            line: self.line,
            field: malformed.field.as_deref(),
            error: &malformed.reason,
            record: &malformed.record,
        };
        let writer = self.quarantine.as_mut().expect("opened above");
        let written = serde_json::to_writer(&mut *writer, &entry)
            .map_err(std::io::Error::other)
            .and_then(|()| writer.write_all(b"\n"));
        if let Err(error) = written {
            fail("write", error);
        }
    }

    fn flush(&mut self) {
        if let Some(writer) = &mut self.quarantine {
            if let Err(error) = writer.flush() {
                panic!(
                    "socket rows `{}`: cannot write the quarantine: {error}",
                    self.source
                );
            }
        }
    }
}

impl Clone for DecodeLines {
    fn clone(&self) -> Self {
        DecodeLines::new(&self.source, self.schema.clone(), self.decoding.clone())
    }
}

impl Operator<String> for DecodeLines {
    type Out = Row;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<Row>>(&mut self, line: String, ctx: &mut C) {
        self.line += 1;
        let decoder = match &mut self.decoder {
            Ok(decoder) => decoder,
            Err(error) => panic!("socket rows `{}`: {error}", self.source),
        };
        match decoder.decode(line.as_bytes(), None) {
            Verdict::Row(row) => ctx.push(row),
            Verdict::Repaired(row, _) => {
                ctx.count(MALFORMED_ROWS, 1);
                ctx.push(row);
            }
            Verdict::Skipped => {}
            Verdict::Dropped(malformed) => {
                ctx.count(MALFORMED_ROWS, 1);
                ctx.count(DROPPED_ROWS, 1);
                self.quarantine(&malformed);
            }
            Verdict::Failed(malformed) => panic!(
                "socket rows `{}`: malformed line {} ({}): {malformed}: {}",
                self.source,
                self.line,
                match self.decoding.options.parse_mode() {
                    ParseMode::FailFast => "FAILFAST",
                    _ => "cannot be decoded",
                },
                malformed.record
            ),
        }
    }

    fn on_marker<C: Context<Row>>(&mut self, _epoch: crate::event::Epoch, _ctx: &mut C) {
        self.flush();
    }

    fn on_end<C: Context<Row>>(&mut self, _ctx: &mut C) {
        self.flush();
    }
}
