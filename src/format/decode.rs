//! [`Decoder`]: one line of text, CSV or JSON into a serde record, with Spark's
//! malformed-row modes.

use super::csv::{CsvOptions, Tokenizer};
use super::de::{shape_of, FieldError, Layout, RowDe, Shape, Slot};
use super::lines::PREVIEW_BYTES;
use super::seed::{BySeed, RecordSeed, Typed};
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// What a line holds: Spark's `text`, `csv` and `json` (JSON lines) formats.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Each line is one record, the whole line (Spark's `text` source: one `value`
    /// column). The record type is a `String` (or another single value parsed from the
    /// line, or a struct with one field).
    Text,
    /// Each line is one CSV record, split by [`CsvOptions`]; its fields fill the record
    /// type's fields by position.
    Csv(CsvOptions),
    /// Each line is one JSON value (JSON lines; Spark's `json` with its default
    /// `multiLine = false`), deserialized with `serde_json`.
    JsonLines,
}

impl Format {
    /// A short name: `text`, `csv`, `json`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Csv(_) => "csv",
            Format::JsonLines => "json",
        }
    }
}

/// What happens to a malformed record: Spark's `mode` option. See the
/// [module docs](crate::format) for the verdict on each kind of malformed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ParseMode {
    /// Spark's `PERMISSIVE` (its default): the record comes through with the fields that
    /// did not parse as `None` and the raw line in the corrupt-record field, if the
    /// record type has one ([`DecodeOptions::corrupt_record_field`], by default
    /// `_corrupt_record`). A record type whose failed field is not an `Option` cannot
    /// hold the row: it is then dropped and quarantined as in `DropMalformed`.
    #[default]
    Permissive,
    /// Spark's `DROPMALFORMED`: the record is dropped, counted (`malformed_rows`) and
    /// written to the quarantine file with its file and line number.
    DropMalformed,
    /// Spark's `FAILFAST`: the query fails with an error naming the file, the line and
    /// the field.
    FailFast,
}

/// What to do with bytes that are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum InvalidUtf8 {
    /// Replace each invalid sequence with U+FFFD and parse the line (Spark decodes lines
    /// with Java's decoder, which does the same): a `String` field keeps the
    /// replacement characters, a number field with one fails as usual.
    #[default]
    Replace,
    /// The whole line is a malformed record.
    Malformed,
}

/// Decoding settings shared by the formats.
///
/// ```
/// use rivulet::format::{DecodeOptions, ParseMode};
///
/// let options = DecodeOptions::default()
///     .mode(ParseMode::DropMalformed)
///     .max_record_bytes(64 * 1024);
/// assert_eq!(options.parse_mode(), ParseMode::DropMalformed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    mode: ParseMode,
    corrupt_record_field: String,
    invalid_utf8: InvalidUtf8,
    max_record_bytes: usize,
}

/// The default longest record: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            mode: ParseMode::Permissive,
            corrupt_record_field: "_corrupt_record".into(),
            invalid_utf8: InvalidUtf8::Replace,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl DecodeOptions {
    /// The malformed-record mode (default [`ParseMode::Permissive`]).
    pub fn mode(mut self, mode: ParseMode) -> Self {
        self.mode = mode;
        self
    }

    /// The serde name of the record type's field that receives the raw line of a
    /// malformed record in [`ParseMode::Permissive`] (Spark's
    /// `columnNameOfCorruptRecord`; default `_corrupt_record`). The field must be an
    /// `Option<String>`; it takes no column of the input. A record type without such a
    /// field gets no raw line.
    pub fn corrupt_record_field(mut self, name: &str) -> Self {
        self.corrupt_record_field = name.to_string();
        self
    }

    /// What to do with bytes that are not UTF-8 (default [`InvalidUtf8::Replace`], as
    /// Spark).
    pub fn invalid_utf8(mut self, policy: InvalidUtf8) -> Self {
        self.invalid_utf8 = policy;
        self
    }

    /// The longest record (line) kept, in bytes (default 1 MiB). A longer one is a
    /// malformed record that never enters memory whole. Spark has no such limit by
    /// default.
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes.max(1);
        self
    }

    /// The malformed-record mode.
    pub fn parse_mode(&self) -> ParseMode {
        self.mode
    }

    /// The corrupt-record field's name.
    pub fn corrupt_record_field_name(&self) -> &str {
        &self.corrupt_record_field
    }

    /// The longest record kept.
    pub fn max_record_len(&self) -> usize {
        self.max_record_bytes
    }
}

/// A record that did not parse, for a quarantine entry or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The field that failed, described ("`psi` (column 8)"), when one did.
    pub field: Option<String>,
    /// Why the record is malformed.
    pub reason: String,
    /// The record's text (at most 1 KiB of an over-long one; invalid UTF-8 replaced).
    pub record: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field {field}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// The outcome of decoding one line.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<T> {
    /// A well-formed record.
    Row(T),
    /// A malformed record that [`ParseMode::Permissive`] let through with nulls (and
    /// its raw line in the corrupt-record field, if the type has one).
    Repaired(T, Box<Malformed>),
    /// A line that is no record: blank (CSV, JSON), a comment, a header.
    Skipped,
    /// A malformed record to drop, count and quarantine.
    Dropped(Box<Malformed>),
    /// A malformed record that fails the query ([`ParseMode::FailFast`], or a record
    /// type that cannot be decoded at all).
    Failed(Box<Malformed>),
}

impl<T> Verdict<T> {
    fn repaired(value: T, malformed: Malformed) -> Self {
        Verdict::Repaired(value, Box::new(malformed))
    }

    fn dropped(malformed: Malformed) -> Self {
        Verdict::Dropped(Box::new(malformed))
    }

    fn failed(malformed: Malformed) -> Self {
        Verdict::Failed(Box::new(malformed))
    }
}

/// The format-specific state.
#[derive(Debug)]
enum Kind {
    Text,
    Csv {
        tokenizer: Box<Tokenizer>,
        header: bool,
        comment: Option<u8>,
    },
    Json {
        /// The corrupt-record field's name, if the type has that field.
        corrupt: Option<String>,
    },
}

/// Decodes lines of one format into records of type `T`, one file after another:
/// [`start_file`](Self::start_file) before each file's first line (its header and
/// byte-order mark), then [`decode`](Self::decode) per line.
///
/// ```
/// use rivulet::format::{CsvOptions, DecodeOptions, Decoder, Format, ParseMode, Verdict};
///
/// #[derive(Debug, PartialEq, serde::Deserialize)]
/// struct Reading {
///     pump: String,
///     psi: Option<f64>,
///     _corrupt_record: Option<String>,
/// }
///
/// let mut decoder: Decoder<Reading> =
///     Decoder::new(&Format::Csv(CsvOptions::default()), &DecodeOptions::default())?;
/// decoder.start_file();
/// assert_eq!(
///     decoder.decode(b"p1,0.4", None),
///     Verdict::Row(Reading { pump: "p1".into(), psi: Some(0.4), _corrupt_record: None })
/// );
/// // Permissive (the default): the bad field is None, the raw line kept.
/// let Verdict::Repaired(row, malformed) = decoder.decode(b"p2,high", None) else { panic!() };
/// assert_eq!(row.psi, None);
/// assert_eq!(row._corrupt_record.as_deref(), Some("p2,high"));
/// assert_eq!(malformed.field.as_deref(), Some("`psi` (column 2)"));
/// assert_eq!(decoder.decode(b"   ", None), Verdict::Skipped);
/// # Ok::<(), rivulet::format::FormatError>(())
/// ```
#[derive(Debug)]
pub struct Decoder<T, S = Typed<T>> {
    seed: S,
    kind: Kind,
    layout: Layout,
    mode: ParseMode,
    invalid_utf8: InvalidUtf8,
    max_record_bytes: usize,
    /// The next line is a file's first.
    first_line: bool,
    /// The file's header is still to come.
    header_pending: bool,
    /// Scratch: record fields forced to null.
    nulls: Vec<bool>,
    /// Scratch: the single range of a text line.
    whole: [(usize, usize); 1],
    _records: PhantomData<fn() -> T>,
}

/// A record type or option that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl<T: DeserializeOwned + 'static> Decoder<T> {
    /// A decoder for `format` with `options`.
    ///
    /// # Errors
    ///
    /// The record type cannot be filled from the format: a map (or a struct with
    /// `#[serde(flatten)]`) for CSV or text, a type of more than one field for text.
    pub fn new(format: &Format, options: &DecodeOptions) -> Result<Self, FormatError> {
        Decoder::with_seed(Typed::new(), format, options)
    }
}

impl<T, S: RecordSeed<Value = T>> Decoder<T, S> {
    /// A decoder for `format` with `options` that builds its records with `seed` (a
    /// [`RowSeed`](crate::row::RowSeed) for rows of a schema known at run time).
    ///
    /// # Errors
    ///
    /// As [`new`](Decoder::new), for the records the seed builds.
    pub fn with_seed(
        seed: S,
        format: &Format,
        options: &DecodeOptions,
    ) -> Result<Self, FormatError> {
        let type_name = seed.describe();
        let shape = match shape_of(&seed) {
            Ok(shape) => shape,
            Err(what) if *format == Format::JsonLines => {
                // JSON decodes maps fine; only permissive repairs need the fields.
                let _ = what;
                Shape::Single
            }
            Err(what) => {
                return Err(FormatError(format!(
                    "{} lines cannot fill {type_name}: it deserializes as {what}; use a \
                     struct, a tuple or a single value",
                    format.name()
                )))
            }
        };
        let layout = Layout::new(&shape, &options.corrupt_record_field);
        let kind = match format {
            Format::Text => {
                if layout.columns != Some(1) {
                    return Err(FormatError(format!(
                        "text lines fill a record type of one field (a String), not \
                         {type_name}"
                    )));
                }
                Kind::Text
            }
            Format::Csv(csv) => Kind::Csv {
                tokenizer: Box::new(Tokenizer::new(csv)),
                header: csv.has_header(),
                comment: csv.comment_byte(),
            },
            Format::JsonLines => Kind::Json {
                corrupt: layout
                    .has_corrupt()
                    .then(|| options.corrupt_record_field.clone()),
            },
        };
        Ok(Decoder {
            seed,
            kind,
            nulls: vec![false; layout.slots.len()],
            layout,
            mode: options.mode,
            invalid_utf8: options.invalid_utf8,
            max_record_bytes: options.max_record_bytes,
            first_line: true,
            header_pending: false,
            whole: [(0, 0)],
            _records: PhantomData,
        })
    }

    /// The next line is the first of a new file: a CSV header is skipped, a UTF-8
    /// byte-order mark removed.
    pub fn start_file(&mut self) {
        self.first_line = true;
        self.header_pending = matches!(self.kind, Kind::Csv { header: true, .. });
    }

    /// Continues a file in the middle, its header already read (`header_pending`
    /// `false`) or not.
    pub fn resume_file(&mut self, header_pending: bool) {
        self.first_line = false;
        self.header_pending = header_pending && matches!(self.kind, Kind::Csv { header: true, .. });
    }

    /// Whether the current file's header is still to come (for a checkpoint).
    pub fn header_pending(&self) -> bool {
        self.header_pending
    }

    /// Decodes one line (without its terminator). `too_long`: the line was longer than
    /// the reader's limit, `line` holds its first bytes and this its length (see
    /// [`LineReader`](super::LineReader)).
    pub fn decode(&mut self, line: &[u8], too_long: Option<u64>) -> Verdict<T> {
        let mut bytes = line;
        if std::mem::take(&mut self.first_line) {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if let Some(length) = too_long {
            let limit = self.max_record_bytes.min(length as usize);
            let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(PREVIEW_BYTES)]);
            let record = format!("{preview}…");
            let reason = format!(
                "the record is {length} bytes long, over the limit of {limit} bytes \
                 (max_record_bytes)"
            );
            return self.unusable(record, reason);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(error) => {
                let lossy = String::from_utf8_lossy(bytes).into_owned();
                if self.invalid_utf8 == InvalidUtf8::Malformed {
                    let reason = format!("invalid UTF-8 at byte {}", error.valid_up_to());
                    return self.unusable(truncate(lossy), reason);
                }
                Cow::Owned(lossy)
            }
        };
        match &self.kind {
            Kind::Text => self.decode_columns(&text, false),
            Kind::Csv { comment, .. } => {
                // Spark skips lines that are empty after `trim` (every byte <= ' ') and
                // comment lines, then takes the first remaining line as the header.
                if text.bytes().all(|b| b <= b' ') {
                    return Verdict::Skipped;
                }
                if comment.is_some_and(|c| text.as_bytes().first() == Some(&c)) {
                    return Verdict::Skipped;
                }
                if std::mem::take(&mut self.header_pending) {
                    return Verdict::Skipped;
                }
                self.decode_columns(&text, true)
            }
            Kind::Json { .. } => {
                if text.bytes().all(|b| b.is_ascii_whitespace()) {
                    return Verdict::Skipped;
                }
                self.decode_json(&text)
            }
        }
    }

    /// A record with no usable fields (too long, not UTF-8): by the mode, a row of nulls
    /// (if the type can hold one), a drop, or a failure.
    #[cold]
    #[inline(never)]
    fn unusable(&mut self, record: String, reason: String) -> Verdict<T> {
        let malformed = Malformed {
            field: None,
            reason,
            record,
        };
        match self.mode {
            ParseMode::FailFast => Verdict::failed(malformed),
            ParseMode::DropMalformed => Verdict::dropped(malformed),
            ParseMode::Permissive => {
                let all_null = match &self.kind {
                    Kind::Json { corrupt } => {
                        let mut map = serde_json::Map::new();
                        if let Some(name) = corrupt {
                            map.insert(name.clone(), malformed.record.clone().into());
                        }
                        self.seed.deserialize(&serde_json::Value::Object(map)).ok()
                    }
                    _ => {
                        self.nulls.fill(true);
                        if let Some(corrupt) = self.corrupt_index() {
                            self.nulls[corrupt] = false;
                        }
                        let row = RowDe {
                            layout: &self.layout,
                            base: "",
                            ranges: &[],
                            nulls: &self.nulls,
                            corrupt: Some(&malformed.record),
                        };
                        let value = self.seed.deserialize(&row).ok();
                        self.nulls.fill(false);
                        value
                    }
                };
                match all_null {
                    Some(value) => Verdict::repaired(value, malformed),
                    None => Verdict::dropped(cannot_hold(malformed)),
                }
            }
        }
    }

    fn corrupt_index(&self) -> Option<usize> {
        self.layout
            .slots
            .iter()
            .position(|slot| *slot == Slot::Corrupt)
    }

    /// Decodes `text` as columns (CSV fields, or the whole line when `split` is false).
    #[inline]
    fn decode_columns(&mut self, text: &str, split: bool) -> Verdict<T> {
        let Decoder {
            seed,
            kind,
            layout,
            nulls,
            whole,
            mode,
            ..
        } = self;
        let (base, ranges): (&str, &[(usize, usize)]) = match kind {
            Kind::Csv { tokenizer, .. } if split => {
                let tokens = tokenizer.split(text);
                (tokens.base, tokens.ranges)
            }
            _ => {
                whole[0] = (0, text.len());
                (text, &whole[..])
            }
        };
        let count = ranges.len();
        let mismatch = layout.columns.filter(|columns| *columns != count);
        let first_error: FieldError = match mismatch {
            None => {
                // The slow paths leave no null behind (see `malformed_columns`).
                let row = RowDe {
                    layout,
                    base,
                    ranges,
                    nulls: &[],
                    corrupt: None,
                };
                match seed.deserialize(&row) {
                    Ok(value) => return Verdict::Row(value),
                    Err(error) => error,
                }
            }
            Some(columns) => FieldError::new(format!(
                "the record has {count} field{}, the record type {columns}",
                if count == 1 { "" } else { "s" }
            )),
        };
        malformed_columns(
            &*seed,
            layout,
            nulls,
            *mode,
            base,
            ranges,
            text,
            first_error,
        )
    }

    #[inline(never)]
    fn decode_json(&mut self, text: &str) -> Verdict<T> {
        if let Ok(value) = json_record(&self.seed, text) {
            return Verdict::Row(value);
        }
        // The slow path: find the failing field for the message.
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let malformed = match tracked(&self.seed, &mut deserializer) {
            // The value parses; what failed above is what follows it.
            Ok(_) => Malformed {
                field: None,
                reason: match deserializer.end() {
                    Err(error) => error.to_string(),
                    Ok(()) => "not a JSON record".into(),
                },
                record: truncate(text.to_string()),
            },
            Err(error) => {
                let path = error.path().to_string();
                Malformed {
                    field: (path != ".").then(|| format!("`{path}`")),
                    reason: error.into_inner().to_string(),
                    record: truncate(text.to_string()),
                }
            }
        };
        match self.mode {
            ParseMode::FailFast => Verdict::failed(malformed),
            ParseMode::DropMalformed => Verdict::dropped(malformed),
            ParseMode::Permissive => {
                let corrupt = match &self.kind {
                    Kind::Json { corrupt } => corrupt.clone(),
                    _ => None,
                };
                let mut map = match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(serde_json::Value::Object(map)) => map,
                    // Not JSON, or not an object: a row of nulls (Spark's verdict).
                    _ => serde_json::Map::new(),
                };
                if let Some(name) = &corrupt {
                    map.insert(name.clone(), text.into());
                }
                let mut value = serde_json::Value::Object(map);
                for _ in 0..64 {
                    match tracked(&self.seed, &value) {
                        Ok(row) => return Verdict::repaired(row, malformed),
                        Err(error) => {
                            let key = match error.path().iter().next() {
                                Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
                                _ => break,
                            };
                            if corrupt.as_deref() == Some(key.as_str()) {
                                return Verdict::failed(Malformed {
                                    reason: format!(
                                        "the corrupt-record field must be an Option<String> ({})",
                                        error.into_inner()
                                    ),
                                    ..malformed
                                });
                            }
                            let serde_json::Value::Object(map) = &mut value else {
                                break;
                            };
                            match map.get_mut(&key) {
                                Some(field) if !field.is_null() => *field = serde_json::Value::Null,
                                _ => break,
                            }
                        }
                    }
                }
                Verdict::dropped(cannot_hold(malformed))
            }
        }
    }
}

/// A malformed row of columns: the verdict by `mode` (the slow path of
/// [`Decoder::decode`]).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn malformed_columns<T, S: RecordSeed<Value = T>>(
    seed: &S,
    layout: &Layout,
    nulls: &mut [bool],
    mode: ParseMode,
    base: &str,
    ranges: &[(usize, usize)],
    text: &str,
    first_error: FieldError,
) -> Verdict<T> {
    let corrupt = layout.slots.iter().position(|slot| *slot == Slot::Corrupt);
    if first_error.field.is_some() && first_error.field == corrupt {
        return Verdict::failed(Malformed {
            field: first_error.field.map(|i| layout.describe(i)),
            reason: format!(
                "the corrupt-record field must be an Option<String> ({})",
                first_error.message
            ),
            record: truncate(text.to_string()),
        });
    }
    let malformed = Malformed {
        field: first_error.field.map(|i| layout.describe(i)),
        reason: first_error.into_message(),
        record: truncate(text.to_string()),
    };
    match mode {
        ParseMode::FailFast => Verdict::failed(malformed),
        ParseMode::DropMalformed => Verdict::dropped(malformed),
        ParseMode::Permissive => {
            // Spark's partial result: every field that fails becomes null, the
            // others keep their values; missing columns are null, extra ones
            // ignored. Null one failing field at a time.
            let mut repaired = None;
            for _ in 0..=nulls.len() {
                let row = RowDe {
                    layout,
                    base,
                    ranges,
                    nulls,
                    corrupt: Some(text),
                };
                match seed.deserialize(&row) {
                    Ok(value) => {
                        repaired = Some(value);
                        break;
                    }
                    Err(error) => match error.field {
                        Some(index) if !nulls[index] && Some(index) != corrupt => {
                            nulls[index] = true;
                        }
                        _ => break,
                    },
                }
            }
            // The fast path expects no null left behind.
            nulls.fill(false);
            match repaired {
                Some(value) => Verdict::repaired(value, malformed),
                None => Verdict::dropped(cannot_hold(malformed)),
            }
        }
    }
}

/// One JSON record: `text` holds exactly one value that `seed` accepts.
fn json_record<S: RecordSeed>(seed: &S, text: &str) -> Result<S::Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Deserializes with `seed`, tracking the path to a failure (which field failed).
fn tracked<'de, S: RecordSeed, D: serde::Deserializer<'de>>(
    seed: &S,
    deserializer: D,
) -> Result<S::Value, serde_path_to_error::Error<D::Error>> {
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
    serde::de::DeserializeSeed::deserialize(BySeed(seed), tracked)
        .map_err(|error| serde_path_to_error::Error::new(track.path(), error))
}

/// `malformed`, noting that Permissive mode could not keep it.
fn cannot_hold(mut malformed: Malformed) -> Malformed {
    malformed.reason.push_str(
        " (dropped: the record type cannot hold this row with nulls; make its fields \
         Option to keep such rows in Permissive mode)",
    );
    malformed
}

/// `text` cut to at most [`PREVIEW_BYTES`] (on a character boundary).
fn truncate(mut text: String) -> String {
    if text.len() > PREVIEW_BYTES {
        let mut end = PREVIEW_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
