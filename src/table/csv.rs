//! Loading a [`StaticTable`] from a CSV file: [`CsvTable`], with the decoder the file
//! sources use (the record type is the schema, columns fill its fields by position) and
//! Spark's malformed-row modes.

use super::StaticTable;
use crate::format::{
    CsvOptions, DecodeOptions, Decoder, Format, FormatError, LineReader, Malformed, ParseMode,
    RecordSeed, Typed, Verdict,
};
use serde::de::DeserializeOwned;
use std::fs::File;
use std::hash::Hash;
use std::io;
use std::path::{Path, PathBuf};

/// Why a table could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The file could not be opened or read.
    #[error("cannot read the table {}: {source}", path.display())]
    Io {
        /// The table's file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A malformed row in [`ParseMode::FailFast`] (the default for tables).
    #[error("{}:{line}: malformed row ({malformed}): {:?}", path.display(), malformed.record)]
    Malformed {
        /// The table's file.
        path: PathBuf,
        /// The row's line number, from 1.
        line: u64,
        /// The field that failed, why, and the row's text.
        malformed: Box<Malformed>,
    },
    /// The row type cannot be read from CSV at all (a map, say).
    #[error("cannot load the table {}: {source}", path.display())]
    Format {
        /// The table's file.
        path: PathBuf,
        /// What the decoder refused.
        #[source]
        source: FormatError,
    },
}

/// What loading a table met besides good rows: malformed rows repaired
/// ([`ParseMode::Permissive`]) or dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Rows in the table.
    pub rows: usize,
    /// Malformed rows kept with their failed fields `None` (permissive mode).
    pub repaired: u64,
    /// Malformed rows left out (drop-malformed mode, or permissive mode when a failed
    /// field is not an `Option`).
    pub dropped: u64,
    /// The first [`LoadReport::KEPT`] malformed rows (repaired or dropped): line number
    /// and what was wrong.
    pub malformed: Vec<(u64, Malformed)>,
}

impl LoadReport {
    /// How many malformed rows a report describes in [`malformed`](Self::malformed).
    pub const KEPT: usize = 100;

    fn note(&mut self, line: u64, malformed: Malformed) {
        if self.malformed.len() < Self::KEPT {
            self.malformed.push((line, malformed));
        }
    }
}

/// A table in a CSV file: where it is, how its lines split, what a malformed row does.
///
/// Rows decode as the file source decodes them (the [`format`](crate::format) module:
/// a serde struct or tuple whose fields the columns fill by position). The default mode
/// is [`ParseMode::FailFast`], where Spark's reader defaults to `PERMISSIVE`: a table is
/// loaded once, before the query runs, and a row lost there would silently drop every
/// record that joins with it, so a bad row stops the load with an error naming the file,
/// the line and the field. [`mode`](Self::mode) picks Spark's other modes.
///
/// ```
/// use rivulet::format::ParseMode;
/// use rivulet::table::{CsvTable, TableError};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Vendor {
///     resid: String,
///     vendor: String,
/// }
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("vendor.csv");
/// std::fs::write(&path, "COHUTTA,HydroPump\nBUTTE,Pumps Inc\nMOJAVE\n")?;
///
/// // Fail-fast (the default): the third line has one field of two.
/// let error = CsvTable::new(&path).load(|v: &Vendor| v.resid.clone()).unwrap_err();
/// assert!(matches!(error, TableError::Malformed { line: 3, .. }));
/// assert!(error.to_string().contains("vendor.csv:3"), "{error}");
///
/// // Drop-malformed: the row is left out and reported.
/// let (table, report) = CsvTable::new(&path)
///     .mode(ParseMode::DropMalformed)
///     .load_with_report(|v: &Vendor| v.resid.clone())?;
/// assert_eq!(table.get("BUTTE")[0].vendor, "Pumps Inc");
/// assert_eq!((report.rows, report.dropped, report.malformed[0].0), (2, 1, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTable {
    path: PathBuf,
    csv: CsvOptions,
    decode: DecodeOptions,
}

impl CsvTable {
    /// The table in the file at `path`: Spark's CSV defaults ([`CsvOptions`]: `,`, no
    /// header), fail-fast on a malformed row.
    pub fn new(path: impl AsRef<Path>) -> Self {
        CsvTable {
            path: path.as_ref().to_path_buf(),
            csv: CsvOptions::default(),
            decode: DecodeOptions::default().mode(ParseMode::FailFast),
        }
    }

    /// How lines split into fields (delimiter, quote, header, comment).
    pub fn csv_options(mut self, csv: CsvOptions) -> Self {
        self.csv = csv;
        self
    }

    /// The decoding options (mode, corrupt-record field, invalid UTF-8, longest row).
    pub fn decode_options(mut self, decode: DecodeOptions) -> Self {
        self.decode = decode;
        self
    }

    /// The malformed-row mode (default [`ParseMode::FailFast`]).
    pub fn mode(mut self, mode: ParseMode) -> Self {
        self.decode = self.decode.mode(mode);
        self
    }

    /// The table's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the table, each row under the key `key` extracts from it.
    ///
    /// # Errors
    ///
    /// The file cannot be read ([`TableError::Io`]); a malformed row in fail-fast mode
    /// ([`TableError::Malformed`], with its line); a row type CSV cannot fill
    /// ([`TableError::Format`]).
    pub fn load<K, V>(&self, key: impl FnMut(&V) -> K) -> Result<StaticTable<K, V>, TableError>
    where
        K: Hash + Eq,
        V: DeserializeOwned + 'static,
    {
        self.load_with_report(key).map(|(table, _)| table)
    }

    /// Loads the table as [`load`](Self::load) does, and says which rows were malformed.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn load_with_report<K, V>(
        &self,
        key: impl FnMut(&V) -> K,
    ) -> Result<(StaticTable<K, V>, LoadReport), TableError>
    where
        K: Hash + Eq,
        V: DeserializeOwned + 'static,
    {
        let (rows, report) = self.read_rows()?;
        Ok((StaticTable::from_rows(rows, key), report))
    }

    /// The file's rows in file order, with the report.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn read_rows<V: DeserializeOwned + 'static>(
        &self,
    ) -> Result<(Vec<V>, LoadReport), TableError> {
        self.read_rows_seeded(Typed::<V>::new())
    }

    /// [`read_rows`](Self::read_rows) with the records built by `seed` (a
    /// [`RowSeed`](crate::row::RowSeed) for rows of a schema known at run time, as
    /// [`StaticFrame::read_csv`](crate::frame::StaticFrame::read_csv) reads them).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn read_rows_seeded<V, S: RecordSeed<Value = V>>(
        &self,
        seed: S,
    ) -> Result<(Vec<V>, LoadReport), TableError> {
        let io_error = |source| TableError::Io {
            path: self.path.clone(),
            source,
        };
        let mut decoder: Decoder<V, S> =
            Decoder::with_seed(seed, &Format::Csv(self.csv.clone()), &self.decode).map_err(
                |source| TableError::Format {
                    path: self.path.clone(),
                    source,
                },
            )?;
        let file = File::open(&self.path).map_err(io_error)?;
        let mut lines = LineReader::new(io::BufReader::new(file), self.decode.max_record_len());
        let mut rows = Vec::new();
        let mut report = LoadReport::default();
        decoder.start_file();
        while let Some(line) = lines.next_line().map_err(io_error)? {
            match decoder.decode(line.bytes, line.too_long) {
                Verdict::Row(row) => rows.push(row),
                Verdict::Skipped => {}
                Verdict::Repaired(row, malformed) => {
                    rows.push(row);
                    report.repaired += 1;
                    report.note(line.number, *malformed);
                }
                Verdict::Dropped(malformed) => {
                    report.dropped += 1;
                    report.note(line.number, *malformed);
                }
                Verdict::Failed(malformed) => {
                    return Err(TableError::Malformed {
                        path: self.path.clone(),
                        line: line.number,
                        malformed,
                    })
                }
            }
        }
        report.rows = rows.len();
        Ok((rows, report))
    }
}

impl<K: Hash + Eq, V: DeserializeOwned + 'static> StaticTable<K, V> {
    /// Loads the table in the CSV file at `path` with [`CsvTable`]'s defaults (Spark's
    /// CSV options, no header, fail-fast on a malformed row), each row under the key
    /// `key` extracts. Use [`CsvTable`] for other options.
    ///
    /// # Errors
    ///
    /// As [`CsvTable::load`]: an unreadable file, or a malformed row with its file and
    /// line.
    pub fn from_csv(path: impl AsRef<Path>, key: impl FnMut(&V) -> K) -> Result<Self, TableError> {
        CsvTable::new(path).load(key)
    }
}
