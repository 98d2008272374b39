//! The part files' formats ([`FileFormat`]), and encoding records into a part file and
//! decoding them back, generic over the byte stream so tests can feed a writer that
//! fails (a full disk) without touching a disk. The text format's serde plumbing (a
//! record as one line, a line as a record) is the `text` submodule at the end.

use crate::error::BoxError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io::{self, BufRead, BufWriter, Read, Write};

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
    /// One line of text per record (extension `txt`): Spark's `text` format, whose rows
    /// are a single string column (Spark refuses other column types; rivulet also writes
    /// scalars, as their text). A record is written as its one value: a string as it
    /// is; a number, `bool` or `char` as its text (floats as Rust's `{:?}` writes them,
    /// `1.0`, `NaN`); `None` and `()` as an empty line; a newtype, a one-field struct or
    /// a one-element tuple as its inner value; a unit enum variant as its name. To write
    /// anything else (a struct of several fields, say) as text, map it to a `String`
    /// first, with its `Display` or a closure:
    ///
    /// ```
    /// use rivulet::sink::file::read_committed;
    /// use rivulet::sink::FileFormat;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut query = rivulet::Query::builder();
    /// query
    ///     .from_iter("readings", [("COHUTTA", 0.4), ("BUTTE", 85.0)])
    ///     .map(|(pump, psi)| format!("{pump} psi={psi}"))
    ///     .to_files(dir.path(), FileFormat::Text);
    /// query.start()?.await_termination()?;
    /// let lines: Vec<String> = read_committed(dir.path(), FileFormat::Text)?;
    /// assert_eq!(lines, ["COHUTTA psi=0.4", "BUTTE psi=85"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A record that is not one value (a sequence, a map, a struct of several fields)
    /// fails the query with an encoding error naming the sink's file; so does a string
    /// holding a line break (`\n` or `\r`), which Spark writes as it is but which would
    /// read back as two records. Reading back
    /// ([`read_committed`](super::read_committed)) gives each line to the record type as
    /// a string: `String`, numbers and `bool` parse from it, an empty line is `None` for
    /// an `Option`.
    Text,
}

impl FileFormat {
    /// The part files' extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
            FileFormat::Text => "txt",
        }
    }

    /// The format with this extension.
    pub(crate) fn from_extension(extension: &str) -> Option<FileFormat> {
        match extension {
            "csv" => Some(FileFormat::Csv),
            "jsonl" => Some(FileFormat::JsonLines),
            "txt" => Some(FileFormat::Text),
            _ => None,
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Csv => "CSV",
            FileFormat::JsonLines => "JSON lines",
            FileFormat::Text => "text",
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
    /// One value per line, each first written into `line` (kept, so no allocation per
    /// record) to check it holds no line break.
    Text { out: BufWriter<W>, line: String },
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
            FileFormat::Text => Out::Text {
                out: BufWriter::with_capacity(BUFFER_BYTES, inner),
                line: String::new(),
            },
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
            Out::Text { out, line } => {
                line.clear();
                text::write_line(record, line).map_err(|e| EncodeError::Format(e.into()))?;
                line.push('\n');
                out.write_all(line.as_bytes()).map_err(EncodeError::Io)?;
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
            Out::JsonLines(writer) | Out::Text { out: writer, .. } => writer
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
        FileFormat::Text => {
            // Lines end in `\n` (the writer refuses records holding `\n` or `\r`).
            for (number, line) in io::BufReader::new(input).split(b'\n').enumerate() {
                let line = String::from_utf8(line?)
                    .map_err(|_| format!("line {} is not UTF-8", number + 1))?;
                let record = R::deserialize(text::LineDeserializer(&line))
                    .map_err(|error| format!("line {}: {error}", number + 1))?;
                out.push(record);
            }
        }
    }
    Ok(())
}

/// [`FileFormat::Text`]: a record as one line ([`write_line`](text::write_line)) and a
/// line as a record ([`LineDeserializer`](text::LineDeserializer)).
mod text {
    use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
    use serde::ser::{self, Impossible, Serialize};
    use std::fmt::{self, Write as _};

    /// Why a record cannot be a line, or a line a record.
    #[derive(Debug)]
    pub(super) struct TextError(String);

    impl fmt::Display for TextError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for TextError {}

    impl ser::Error for TextError {
        fn custom<T: fmt::Display>(message: T) -> Self {
            TextError(message.to_string())
        }
    }

    impl de::Error for TextError {
        fn custom<T: fmt::Display>(message: T) -> Self {
            TextError(message.to_string())
        }
    }

    /// The error for a record that is not one value.
    fn not_one_value(what: &str) -> TextError {
        TextError(format!(
            "the text format writes one value per record, and this record is {what}: map it \
             to a String first (with its Display, say: `.map(|r| r.to_string())`)"
        ))
    }

    /// Writes `record` as one line (without its newline) into `line`.
    ///
    /// # Errors
    ///
    /// A record that is not one value, or whose text holds a line break.
    pub(super) fn write_line<T: Serialize + ?Sized>(
        record: &T,
        line: &mut String,
    ) -> Result<(), TextError> {
        record.serialize(LineSerializer { line })?;
        if line.contains(['\n', '\r']) {
            let start: String = line.chars().take(80).collect();
            return Err(TextError(format!(
                "the text format writes one line per record, and this record holds a line \
                 break: {start:?}{}",
                if start.len() < line.len() { "…" } else { "" }
            )));
        }
        Ok(())
    }

    /// Writes one value's text.
    struct LineSerializer<'a> {
        line: &'a mut String,
    }

    impl LineSerializer<'_> {
        fn text(self, value: impl fmt::Display) -> Result<(), TextError> {
            // Writing into a String cannot fail.
            let _ = write!(self.line, "{value}");
            Ok(())
        }
    }

    /// The one field of a struct or element of a tuple.
    struct One<'a> {
        line: &'a mut String,
        written: bool,
    }

    impl One<'_> {
        fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TextError> {
            if self.written {
                return Err(not_one_value("of several values"));
            }
            self.written = true;
            value.serialize(LineSerializer {
                line: &mut *self.line,
            })
        }
    }

    impl ser::SerializeTuple for One<'_> {
        type Ok = ();
        type Error = TextError;

        fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TextError> {
            self.value(value)
        }

        fn end(self) -> Result<(), TextError> {
            Ok(())
        }
    }

    impl ser::SerializeTupleStruct for One<'_> {
        type Ok = ();
        type Error = TextError;

        fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TextError> {
            self.value(value)
        }

        fn end(self) -> Result<(), TextError> {
            Ok(())
        }
    }

    impl ser::SerializeStruct for One<'_> {
        type Ok = ();
        type Error = TextError;

        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            _key: &'static str,
            value: &T,
        ) -> Result<(), TextError> {
            self.value(value)
        }

        fn end(self) -> Result<(), TextError> {
            Ok(())
        }
    }

    impl<'a> ser::Serializer for LineSerializer<'a> {
        type Ok = ();
        type Error = TextError;
        type SerializeSeq = Impossible<(), TextError>;
        type SerializeTuple = One<'a>;
        type SerializeTupleStruct = One<'a>;
        type SerializeTupleVariant = Impossible<(), TextError>;
        type SerializeMap = Impossible<(), TextError>;
        type SerializeStruct = One<'a>;
        type SerializeStructVariant = Impossible<(), TextError>;

        fn serialize_bool(self, v: bool) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_i8(self, v: i8) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_i16(self, v: i16) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_i32(self, v: i32) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_i64(self, v: i64) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_i128(self, v: i128) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_u8(self, v: u8) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_u16(self, v: u16) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_u32(self, v: u32) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_u64(self, v: u64) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_u128(self, v: u128) -> Result<(), TextError> {
            self.text(v)
        }
        fn serialize_f32(self, v: f32) -> Result<(), TextError> {
            self.text(format_args!("{v:?}"))
        }
        fn serialize_f64(self, v: f64) -> Result<(), TextError> {
            self.text(format_args!("{v:?}"))
        }
        fn serialize_char(self, v: char) -> Result<(), TextError> {
            self.line.push(v);
            Ok(())
        }
        fn serialize_str(self, v: &str) -> Result<(), TextError> {
            self.line.push_str(v);
            Ok(())
        }
        fn serialize_bytes(self, _v: &[u8]) -> Result<(), TextError> {
            Err(not_one_value("bytes"))
        }
        fn serialize_none(self) -> Result<(), TextError> {
            Ok(())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), TextError> {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), TextError> {
            Ok(())
        }
        fn serialize_unit_struct(self, _name: &'static str) -> Result<(), TextError> {
            Ok(())
        }
        fn serialize_unit_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
        ) -> Result<(), TextError> {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            value: &T,
        ) -> Result<(), TextError> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
            _value: &T,
        ) -> Result<(), TextError> {
            Err(not_one_value(&format!(
                "the enum variant `{variant}` with a value"
            )))
        }
        fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, TextError> {
            Err(not_one_value("a sequence"))
        }
        fn serialize_tuple(self, len: usize) -> Result<One<'a>, TextError> {
            match len {
                1 => Ok(One {
                    line: self.line,
                    written: false,
                }),
                _ => Err(not_one_value(&format!("a tuple of {len}"))),
            }
        }
        fn serialize_tuple_struct(
            self,
            name: &'static str,
            len: usize,
        ) -> Result<One<'a>, TextError> {
            match len {
                1 => Ok(One {
                    line: self.line,
                    written: false,
                }),
                _ => Err(not_one_value(&format!("`{name}`, a tuple of {len}"))),
            }
        }
        fn serialize_tuple_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
            _len: usize,
        ) -> Result<Self::SerializeTupleVariant, TextError> {
            Err(not_one_value(&format!(
                "the enum variant `{variant}` with values"
            )))
        }
        fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, TextError> {
            Err(not_one_value("a map"))
        }
        fn serialize_struct(self, name: &'static str, len: usize) -> Result<One<'a>, TextError> {
            match len {
                1 => Ok(One {
                    line: self.line,
                    written: false,
                }),
                _ => Err(not_one_value(&format!(
                    "`{name}`, a struct of {len} fields"
                ))),
            }
        }
        fn serialize_struct_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
            _len: usize,
        ) -> Result<Self::SerializeStructVariant, TextError> {
            Err(not_one_value(&format!(
                "the enum variant `{variant}` with fields"
            )))
        }
    }

    /// A line read back as a record: its text for strings, parsed for numbers and
    /// `bool`, `None` when empty for an `Option`; a newtype, a one-field struct or a
    /// one-element tuple gets the line as its value.
    pub(super) struct LineDeserializer<'a>(pub(super) &'a str);

    impl LineDeserializer<'_> {
        fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, TextError> {
            self.0
                .parse()
                .map_err(|_| TextError(format!("{:?} is not {what}", self.0)))
        }
    }

    /// The one element of a struct or tuple read from a line.
    struct OneElement<'a>(Option<LineDeserializer<'a>>);

    impl<'de> SeqAccess<'de> for OneElement<'_> {
        type Error = TextError;

        fn next_element_seed<S: DeserializeSeed<'de>>(
            &mut self,
            seed: S,
        ) -> Result<Option<S::Value>, TextError> {
            self.0.take().map(|line| seed.deserialize(line)).transpose()
        }

        fn size_hint(&self) -> Option<usize> {
            Some(usize::from(self.0.is_some()))
        }
    }

    macro_rules! parse_as {
        ($($method:ident => $visit:ident as $ty:ty, $what:literal;)*) => {
            $(
                fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
                    visitor.$visit(self.parse::<$ty>($what)?)
                }
            )*
        };
    }

    impl<'de> de::Deserializer<'de> for LineDeserializer<'_> {
        type Error = TextError;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            visitor.visit_str(self.0)
        }

        parse_as! {
            deserialize_bool => visit_bool as bool, "true or false";
            deserialize_i8 => visit_i8 as i8, "an i8";
            deserialize_i16 => visit_i16 as i16, "an i16";
            deserialize_i32 => visit_i32 as i32, "an i32";
            deserialize_i64 => visit_i64 as i64, "an i64";
            deserialize_i128 => visit_i128 as i128, "an i128";
            deserialize_u8 => visit_u8 as u8, "a u8";
            deserialize_u16 => visit_u16 as u16, "a u16";
            deserialize_u32 => visit_u32 as u32, "a u32";
            deserialize_u64 => visit_u64 as u64, "a u64";
            deserialize_u128 => visit_u128 as u128, "a u128";
            deserialize_f32 => visit_f32 as f32, "a number";
            deserialize_f64 => visit_f64 as f64, "a number";
            deserialize_char => visit_char as char, "one character";
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            if self.0.is_empty() {
                visitor.visit_none()
            } else {
                visitor.visit_some(self)
            }
        }

        fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            if self.0.is_empty() {
                visitor.visit_unit()
            } else {
                Err(TextError(format!("{:?} is not an empty line", self.0)))
            }
        }

        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, TextError> {
            self.deserialize_unit(visitor)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, TextError> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, TextError> {
            visitor.visit_seq(OneElement(Some(self)))
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, TextError> {
            visitor.visit_seq(OneElement(Some(self)))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, TextError> {
            visitor.visit_seq(OneElement(Some(self)))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, TextError> {
            visitor.visit_enum(de::value::StrDeserializer::<TextError>::new(self.0))
        }

        serde::forward_to_deserialize_any! {
            str string bytes byte_buf seq map identifier ignored_any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn encode<T: Serialize>(records: &[T]) -> Result<String, EncodeError> {
        let mut writer = RecordWriter::new(FileFormat::Text, Vec::new());
        for record in records {
            writer.write(record)?;
        }
        let finished = writer.finish()?;
        assert_eq!(finished.records, records.len() as u64);
        assert!(!finished.header);
        Ok(String::from_utf8(finished.inner).unwrap())
    }

    fn decode<R: DeserializeOwned>(text: &str) -> Result<Vec<R>, BoxError> {
        let mut out = Vec::new();
        read_records(text.as_bytes(), FileFormat::Text, false, &mut out)?;
        Ok(out)
    }

    fn format_error(error: EncodeError) -> String {
        match error {
            EncodeError::Format(error) => error.to_string(),
            EncodeError::Io(error) => panic!("not a format error: {error}"),
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    enum Level {
        Low,
        High,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Line {
        text: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Psi(f64);

    #[test]
    fn text_writes_one_value_per_line_and_reads_it_back() {
        let lines = ["COHUTTA,3/10/14,1:01", "", "naïve ✓", "  spaces kept  "];
        let text = encode(&lines).unwrap();
        assert_eq!(text, "COHUTTA,3/10/14,1:01\n\nnaïve ✓\n  spaces kept  \n");
        assert_eq!(decode::<String>(&text).unwrap(), lines);

        let numbers = [0u64, 7, u64::MAX];
        assert_eq!(encode(&numbers).unwrap(), format!("0\n7\n{}\n", u64::MAX));
        assert_eq!(decode::<u64>(&encode(&numbers).unwrap()).unwrap(), numbers);

        let floats = [1.0, 0.1, -2.5e-300, f64::INFINITY];
        let text = encode(&floats).unwrap();
        assert_eq!(text, "1.0\n0.1\n-2.5e-300\ninf\n");
        assert_eq!(decode::<f64>(&text).unwrap(), floats);
        let nan = decode::<f64>(&encode(&[f64::NAN]).unwrap()).unwrap();
        assert!(nan[0].is_nan());

        let options = [Some("a".to_string()), None];
        assert_eq!(encode(&options).unwrap(), "a\n\n");
        assert_eq!(decode::<Option<String>>("a\n\n").unwrap(), options);

        let mixed = (true, 'x', Level::High);
        assert_eq!(encode(&[mixed.0]).unwrap(), "true\n");
        assert_eq!(encode(&[mixed.1]).unwrap(), "x\n");
        assert_eq!(encode(&[Level::Low, mixed.2]).unwrap(), "Low\nHigh\n");
        assert_eq!(
            decode::<Level>("Low\nHigh\n").unwrap(),
            [Level::Low, Level::High]
        );
        assert_eq!(decode::<bool>("true\nfalse\n").unwrap(), [true, false]);
        assert_eq!(decode::<char>("x\n").unwrap(), ['x']);
    }

    #[test]
    fn text_unwraps_newtypes_one_field_structs_and_one_tuples() {
        let structs = [Line { text: "a".into() }, Line { text: "b".into() }];
        let text = encode(&structs).unwrap();
        assert_eq!(text, "a\nb\n");
        assert_eq!(decode::<Line>(&text).unwrap(), structs);
        let newtypes = [Psi(0.4), Psi(85.0)];
        assert_eq!(encode(&newtypes).unwrap(), "0.4\n85.0\n");
        assert_eq!(decode::<Psi>("0.4\n85.0\n").unwrap(), newtypes);
        assert_eq!(encode(&[("only",)]).unwrap(), "only\n");
        assert_eq!(
            decode::<(String,)>("only\n").unwrap(),
            [("only".to_string(),)]
        );
    }

    #[test]
    fn text_refuses_records_that_are_not_one_line() {
        #[derive(Serialize)]
        struct Reading {
            resid: &'static str,
            psi: f64,
        }
        let error = format_error(
            encode(&[Reading {
                resid: "BUTTE",
                psi: 0.4,
            }])
            .unwrap_err(),
        );
        assert!(
            error.contains("`Reading`, a struct of 2 fields") && error.contains("to_string()"),
            "{error}"
        );
        let error = format_error(encode(&[("a", 1)]).unwrap_err());
        assert!(error.contains("a tuple of 2"), "{error}");
        let error = format_error(encode(&[vec![1, 2]]).unwrap_err());
        assert!(error.contains("a sequence"), "{error}");
        let mut map = std::collections::BTreeMap::new();
        map.insert("k", 1);
        let error = format_error(encode(&[map]).unwrap_err());
        assert!(error.contains("a map"), "{error}");
        for broken in ["two\nlines", "carriage\rreturn", "ends with newline\n"] {
            let error = format_error(encode(&[broken]).unwrap_err());
            assert!(error.contains("line break"), "{error}");
        }
    }

    #[test]
    fn text_lines_that_are_not_the_type_name_their_line() {
        let error = decode::<u64>("1\n2\nthree\n").unwrap_err().to_string();
        assert_eq!(error, "line 3: \"three\" is not a u64");
        let error = decode::<()>("x\n").unwrap_err().to_string();
        assert!(error.contains("not an empty line"), "{error}");
        let error = decode::<String>("ok\n\u{0}\u{ff}\n").map(|_| ());
        assert!(error.is_ok(), "NUL and ÿ are UTF-8");
        let mut out: Vec<String> = Vec::new();
        let error = read_records(&b"ok\n\xff\xfe\n"[..], FileFormat::Text, false, &mut out)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "line 2 is not UTF-8");
    }

    #[test]
    fn text_format_names() {
        assert_eq!(FileFormat::Text.extension(), "txt");
        assert_eq!(FileFormat::from_extension("txt"), Some(FileFormat::Text));
        assert_eq!(FileFormat::Text.to_string(), "text");
    }

    /// Through a query in micro-batches: part files `part-….txt`, one line per record,
    /// read back with `read_committed`; a record the format cannot write fails the query
    /// naming the sink.
    #[test]
    fn text_files_through_a_query() {
        use crate::sink::file::{committed_parts, read_committed};
        use std::time::Duration;

        let dir = tempfile::tempdir().unwrap();
        let mut query = crate::Query::builder();
        query
            .trigger(crate::Trigger::AvailableNow)
            .max_batch_records(4);
        let readings: Vec<(String, f64)> = (0..10)
            .map(|i| (format!("pump-{i}"), f64::from(i) / 4.0))
            .collect();
        query
            .from_iter("readings", readings.clone())
            .map(|(pump, psi)| format!("{pump} {psi}"))
            .to_files(dir.path(), FileFormat::Text);
        let running = query.start().unwrap();
        running
            .await_termination_timeout(Duration::from_secs(60))
            .expect("the query ends (hang guard)")
            .unwrap();
        let lines: Vec<String> = read_committed(dir.path(), FileFormat::Text).unwrap();
        let want: Vec<String> = readings
            .iter()
            .map(|(pump, psi)| format!("{pump} {psi}"))
            .collect();
        assert_eq!(lines, want);
        let parts = committed_parts(dir.path()).unwrap();
        assert!(parts.len() >= 3, "batches of at most 4 records: {parts:?}");
        let mut concatenated = String::new();
        for part in &parts {
            assert_eq!(part.format, FileFormat::Text);
            assert!(part.path.to_string_lossy().ends_with(".txt"), "{part:?}");
            concatenated.push_str(&std::fs::read_to_string(&part.path).unwrap());
        }
        assert_eq!(concatenated, want.join("\n") + "\n");
        // Reading the text files as another format is refused.
        assert!(read_committed::<String>(dir.path(), FileFormat::Csv).is_err());

        let failing = tempfile::tempdir().unwrap();
        let mut query = crate::Query::builder();
        query.trigger(crate::Trigger::AvailableNow);
        query
            .from_iter("pairs", [("a", 1u32)])
            .to_files(failing.path(), FileFormat::Text);
        let running = query.start().unwrap();
        let error = running
            .await_termination_timeout(Duration::from_secs(60))
            .expect("the query ends (hang guard)")
            .unwrap_err()
            .to_string();
        assert!(error.contains("one value per record"), "{error}");
    }
}
