//! The part files' formats ([`FileFormat`]), and encoding records into a part file and
//! decoding them back, generic over the byte stream so tests can feed a writer that
//! fails (a full disk) without touching a disk.

use crate::error::BoxError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io::{self, BufWriter, Read, Write};

/// How a [`FileSink`](super::FileSink) encodes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileFormat {
    /// Comma-separated values (extension `csv`), encoded with the `csv` crate's serde
    /// support. Each part file starts with a header row when the record type has field
    /// names (a struct); tuples and scalars have none. Records must be flat: the csv
    /// crate refuses maps, and cannot name the columns of a struct inside a struct.
    Csv,
    /// One JSON value per line (extension `jsonl`): an object for a struct, an array
    /// for a tuple.
    JsonLines,
}

impl FileFormat {
    /// The part files' extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
        }
    }

    /// The format with this extension.
    pub(crate) fn from_extension(extension: &str) -> Option<FileFormat> {
        match extension {
            "csv" => Some(FileFormat::Csv),
            "jsonl" => Some(FileFormat::JsonLines),
            _ => None,
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Csv => "CSV",
            FileFormat::JsonLines => "JSON lines",
        })
    }
}

/// Bytes buffered before a write reaches the file: large enough that a write system call
/// is rare on the hot path, small enough not to matter per sink instance.
const BUFFER_BYTES: usize = 64 * 1024;

/// Why a record could not be written.
#[derive(Debug)]
pub(crate) enum EncodeError {
    /// The byte stream refused the bytes (full disk, file size limit, I/O error).
    Io(io::Error),
    /// The record cannot be expressed in the format (say, a nested map in CSV).
    Format(BoxError),
}

impl EncodeError {
    fn from_csv(error: csv::Error) -> Self {
        if !error.is_io_error() {
            return EncodeError::Format(Box::new(error));
        }
        match error.into_kind() {
            csv::ErrorKind::Io(error) => EncodeError::Io(error),
            // `is_io_error` said it is one; keep whatever it is rather than panic.
            other => EncodeError::Format(format!("{other:?}").into()),
        }
    }

    fn from_json(error: serde_json::Error) -> Self {
        if error.is_io() {
            // For I/O errors this hands back the original `io::Error`, kind included.
            EncodeError::Io(io::Error::from(error))
        } else {
            EncodeError::Format(Box::new(error))
        }
    }
}

/// The encoder behind one part file.
enum Out<W: Write> {
    /// CSV before the first record: whether the file gets a header row depends on the
    /// record type, which only the first record shows.
    CsvFirst(Option<W>),
    /// CSV after the first record. `csv::Writer` buffers like a `BufWriter` does (it
    /// writes to `W` only when its buffer is full), so it is not wrapped in another.
    /// Boxed: it is large, and allocated once per part file.
    Csv(Box<csv::Writer<W>>),
    /// One JSON value per line.
    JsonLines(BufWriter<W>),
}

/// Writes records of one part file in one format into `W` (a file, in the sink).
///
/// Encoding does not allocate per record: both encoders write into a buffer that lives
/// as long as the writer.
pub(crate) struct RecordWriter<W: Write> {
    out: Out<W>,
    records: u64,
    header: bool,
}

/// What [`RecordWriter::finish`] hands back.
#[derive(Debug)]
pub(crate) struct Finished<W> {
    /// The byte stream, with everything written to it.
    pub(crate) inner: W,
    /// Records written.
    pub(crate) records: u64,
    /// Whether the output starts with a CSV header row.
    pub(crate) header: bool,
}

impl<W: Write> RecordWriter<W> {
    /// A writer that encodes records as `format` into `inner`.
    pub(crate) fn new(format: FileFormat, inner: W) -> Self {
        let out = match format {
            FileFormat::Csv => Out::CsvFirst(Some(inner)),
            FileFormat::JsonLines => Out::JsonLines(BufWriter::with_capacity(BUFFER_BYTES, inner)),
        };
        RecordWriter {
            out,
            records: 0,
            header: false,
        }
    }

    /// Encodes one record.
    ///
    /// After an error the output is unusable (it may end with part of a record).
    #[inline]
    pub(crate) fn write<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<(), EncodeError> {
        match &mut self.out {
            Out::Csv(writer) => writer.serialize(record).map_err(EncodeError::from_csv)?,
            Out::JsonLines(writer) => {
                serde_json::to_writer(&mut *writer, record).map_err(EncodeError::from_json)?;
                writer.write_all(b"\n").map_err(EncodeError::Io)?;
            }
            Out::CsvFirst(inner) => {
                let Some(inner) = inner.take() else {
                    // Only reachable if an earlier call panicked half-way.
                    return Err(EncodeError::Format("the CSV writer is unusable".into()));
                };
                self.header = csv_has_header(record);
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(self.header)
                    .buffer_capacity(BUFFER_BYTES)
                    .from_writer(inner);
                let written = writer.serialize(record);
                self.out = Out::Csv(Box::new(writer));
                written.map_err(EncodeError::from_csv)?;
            }
        }
        self.records += 1;
        Ok(())
    }

    /// Writes out everything buffered and hands back the byte stream.
    pub(crate) fn finish(self) -> Result<Finished<W>, EncodeError> {
        let inner = match self.out {
            Out::CsvFirst(Some(inner)) => inner,
            Out::CsvFirst(None) => {
                return Err(EncodeError::Format("the CSV writer is unusable".into()))
            }
            Out::Csv(writer) => writer
                .into_inner()
                .map_err(|error| EncodeError::Io(error.into_error()))?,
            Out::JsonLines(writer) => writer
                .into_inner()
                .map_err(|error| EncodeError::Io(error.into_error()))?,
        };
        Ok(Finished {
            inner,
            records: self.records,
            header: self.header,
        })
    }
}

/// Whether CSV output of records like `record` starts with a header row: yes when the
/// record is a struct (or map) with field names, no for tuples and scalars. Decided by
/// encoding the record both ways into scratch buffers, once per part file.
fn csv_has_header<T: Serialize + ?Sized>(record: &T) -> bool {
    fn encoded_len<T: Serialize + ?Sized>(record: &T, headers: bool) -> Option<usize> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(headers)
            .from_writer(Vec::new());
        writer.serialize(record).ok()?;
        writer.flush().ok()?;
        Some(writer.get_ref().len())
    }
    // A type csv cannot give headers (a tuple holding a struct) is written without;
    // a type it cannot encode at all fails on the real write, with csv's message.
    match (encoded_len(record, true), encoded_len(record, false)) {
        (Some(with), Some(without)) => with > without,
        _ => false,
    }
}

/// Decodes every record of one part file into `out`.
pub(crate) fn read_records<R: DeserializeOwned>(
    input: impl Read,
    format: FileFormat,
    header: bool,
    out: &mut Vec<R>,
) -> Result<(), BoxError> {
    match format {
        FileFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(header)
                .from_reader(input);
            for record in reader.deserialize() {
                out.push(record?);
            }
        }
        FileFormat::JsonLines => {
            let input = io::BufReader::new(input);
            for record in serde_json::Deserializer::from_reader(input).into_iter() {
                out.push(record?);
            }
        }
    }
    Ok(())
}
