//! Decoding records from text, shared by the sources that read lines: text lines, CSV
//! and JSON lines into serde types ([`Decoder`]), lines split with bounded memory
//! ([`LineReader`]), dates and timestamps from text ([`date`]), and Spark's three
//! malformed-record modes ([`ParseMode`]).
//!
//! The record type is the schema: a serde struct (or tuple) whose fields the CSV columns
//! fill by position, or that a JSON object fills by name. Spark's streaming file
//! sources need a schema; here it is the type.
//!
//! ```
//! use rivulet::format::{CsvOptions, DecodeOptions, Decoder, Format, ParseMode, Verdict};
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Sensor {
//!     resid: String,
//!     psi: f64,
//! }
//!
//! let options = DecodeOptions::default().mode(ParseMode::DropMalformed);
//! let mut decoder: Decoder<Sensor> = Decoder::new(&Format::Csv(CsvOptions::default()), &options)?;
//! decoder.start_file();
//! let mut kept = Vec::new();
//! for line in ["COHUTTA,0.4", "", "NANTAHALA,low", "BALDER,1.2,extra"] {
//!     match decoder.decode(line.as_bytes(), None) {
//!         Verdict::Row(row) => kept.push(row.resid),
//!         Verdict::Dropped(why) => println!("dropped {line:?}: {why}"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! assert_eq!(kept, ["COHUTTA"]);
//! # Ok::<(), rivulet::format::FormatError>(())
//! ```
//!
//! ## Malformed records: the verdicts
//!
//! Spark's CSV reader (`UnivocityParser`, `FailureSafeParser`, `CSVExprUtils`, Spark 3)
//! decides per line; rivulet follows it, with the differences marked. "Malformed"
//! means: in `Permissive` the record comes through with the failed fields `None` and
//! the raw line in the corrupt-record field (`_corrupt_record`, if the type has it); in
//! `DropMalformed` it is dropped, counted and quarantined; in `FailFast` the query fails
//! naming file, line and field.
//!
//! | input (CSV) | Spark | rivulet |
//! |---|---|---|
//! | empty line, or only spaces/tabs/control characters | skipped, not a record | same |
//! | line starting with the `comment` byte (off by default) | skipped | same |
//! | first line of a file, `header = true` | skipped (after blank and comment lines); columns by position (`enforceSchema`) | same |
//! | too few fields | malformed; `PERMISSIVE` keeps the fields it has, the missing ones null | same (a missing field that is not an `Option` makes the row unholdable: dropped and quarantined) |
//! | too many fields | malformed; `PERMISSIVE` keeps the first ones | same |
//! | a field that does not parse (`abc` as a number) | malformed; that field null, the others kept | same |
//! | empty field | null, not malformed | `None` for an `Option` field (not malformed); `""` for a `String`; malformed for other non-`Option` types, which cannot be null |
//! | invalid UTF-8 | decoded with U+FFFD replacements; malformed only if a typed field then fails | same ([`InvalidUtf8::Replace`]); [`InvalidUtf8::Malformed`] makes the line malformed |
//! | a header row where none is expected | the header is a data row: malformed when a non-string field fails to parse (a header of only string fields passes as data) | same |
//! | a line longer than `max_record_bytes` (1 MiB) | no limit by default | malformed, never held in memory whole; `Permissive` gives a row of nulls with the first 1 KiB in the corrupt field |
//! | a binary file | lines split at `\n`/`\r`, mostly malformed | same |
//! | `TRUE`/`False` for a boolean; ` 1.5 ` (spaces), `NaN`, `Inf`, `-Inf` for a float | parsed | same (integers are not trimmed, in both) |
//! | a quoted field with the delimiter, `""` or `\"` inside | one field | same (csv_core) |
//! | a field quoted but not closed | univocity's handling | the rest of the line is the field |
//!
//! | input (JSON lines) | Spark | rivulet |
//! |---|---|---|
//! | blank line | skipped | same |
//! | not JSON, or not an object | malformed, a row of nulls | same |
//! | a field of the wrong type | malformed; that field null, the others kept (partial results) | same |
//! | a field missing | null, not malformed | `None` for an `Option`; malformed otherwise |
//! | a number where a string is expected | the number's text | malformed (serde is strict) |
//!
//! Text lines: every line is a record, empty ones included (Spark's `text` source); only
//! an over-long line (or, with [`InvalidUtf8::Malformed`], a line that is not UTF-8) is
//! malformed.
//!
//! `Permissive` differs from Spark in one way that the types force: Spark's streaming
//! schemas are all nullable, a Rust field need not be. A malformed record whose failed
//! field is not an `Option` cannot come through with a null there: rivulet drops and
//! quarantines it, as `DropMalformed` does, and counts it. Declare fields `Option` to
//! keep every row.
//!
//! Malformed records in every mode are counted; sources show the count in progress
//! (the file source: counters `malformed_rows` and `dropped_rows`).

pub mod csv;
pub mod date;
pub(crate) mod de;
mod decode;
pub mod lines;
mod seed;

pub use self::csv::CsvOptions;
pub use decode::{
    DecodeOptions, Decoder, Format, FormatError, InvalidUtf8, Malformed, ParseMode, Verdict,
    DEFAULT_MAX_RECORD_BYTES,
};
pub use lines::{Line, LineReader, PREVIEW_BYTES};
pub use seed::{RecordSeed, Typed};
