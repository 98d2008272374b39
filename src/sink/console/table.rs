//! Records as rows of named cells, and tables of them drawn as Spark's `Dataset.show` draws
//! them. Used by the [`ConsoleSink`](super::ConsoleSink).
//!
//! A record becomes a [`Row`] through serde: a struct or map gives one column per field or
//! key (in serialization order), a tuple or sequence gives columns `_1`, `_2`, … (Spark's
//! names for tuple fields), anything else one column `value`. Cells are strings: scalars
//! as themselves (strings without quotes, a missing value as `NULL`), nested values as
//! compact JSON.
//!
//! [`Table::render`] follows Spark's `Dataset.showString` (truncate mode): columns at
//! least 3 wide, cells right-aligned and cut to `truncate` characters ending in `...`
//! (left-aligned and whole when `truncate` is 0), control characters escaped, widths in
//! half-widths (a full-width East Asian character counts 2), and a footer when rows were
//! left out.

use serde::ser::{self, Impossible, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// A column name: borrowed from the type (field names) or owned (map keys).
pub(crate) type Name = Cow<'static, str>;

/// What Spark prints for a missing value.
const NULL: &str = "NULL";

/// Spark's names of tuple fields, `_1` to `_22` (Scala's largest tuple); later ones are
/// formatted when needed.
const POSITIONAL: [&str; 22] = [
    "_1", "_2", "_3", "_4", "_5", "_6", "_7", "_8", "_9", "_10", "_11", "_12", "_13", "_14", "_15",
    "_16", "_17", "_18", "_19", "_20", "_21", "_22",
];

fn positional(index: usize) -> Name {
    match POSITIONAL.get(index) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("_{}", index + 1)),
    }
}

/// One record as named cells, in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// Column names, one per cell.
    pub(crate) names: Vec<Name>,
    /// The cells, unescaped and whole.
    pub(crate) cells: Vec<String>,
}

impl Row {
    fn value(cell: String) -> Row {
        Row {
            names: vec![Cow::Borrowed("value")],
            cells: vec![cell],
        }
    }

    /// The row as Spark's `Row.toString` prints it, `[a,2]`, with control characters
    /// escaped so that it stays on one line.
    pub(crate) fn write_line(&self, out: &mut String) {
        out.push('[');
        for (i, cell) in self.cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&escape_meta(cell));
        }
        out.push(']');
    }
}

/// Converts `record` to a row.
///
/// # Errors
///
/// When serde_json cannot write a nested value (a map with keys that are not strings or
/// numbers) or the record's `Serialize` implementation fails.
pub(crate) fn row<T: Serialize + ?Sized>(record: &T) -> Result<Row, serde_json::Error> {
    record.serialize(RowSerializer)
}

/// Rows under one header, ready to be drawn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    headers: Vec<Name>,
    /// Cells aligned with `headers`; a row may be shorter than the header (columns added
    /// after it came), its missing cells are `NULL`.
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns and no rows.
    pub(crate) fn with_headers(headers: Vec<Name>) -> Table {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// `true` if the table has no rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The column names.
    pub(crate) fn headers(&self) -> &[Name] {
        &self.headers
    }

    /// Adds a row. Columns the table does not have yet are added at the end (earlier rows
    /// read `NULL` there); columns the row lacks read `NULL`.
    pub(crate) fn push(&mut self, row: Row) {
        self.push_named(&row.names, row.cells);
    }

    /// Appends `other`'s rows, matching columns by name.
    pub(crate) fn append(&mut self, other: Table) {
        if self.rows.is_empty() && self.headers.is_empty() {
            *self = other;
            return;
        }
        for cells in other.rows {
            self.push_named(&other.headers[..cells.len()], cells);
        }
        for name in other.headers {
            if !self.headers.contains(&name) {
                self.headers.push(name);
            }
        }
    }

    /// Keeps the first `len` rows.
    pub(crate) fn truncate_rows(&mut self, len: usize) {
        self.rows.truncate(len);
    }

    fn push_named(&mut self, names: &[Name], cells: Vec<String>) {
        if names.len() <= self.headers.len() && self.headers[..names.len()] == *names {
            // The common case: the same columns as the rows before.
            self.rows.push(cells);
            return;
        }
        let mut placed: Vec<Option<String>> = vec![None; self.headers.len()];
        for (name, cell) in names.iter().zip(cells) {
            let column = match self.headers.iter().position(|header| header == name) {
                Some(column) => column,
                None => {
                    self.headers.push(name.clone());
                    placed.push(None);
                    self.headers.len() - 1
                }
            };
            placed[column] = Some(cell);
        }
        self.rows.push(
            placed
                .into_iter()
                .map(|cell| cell.unwrap_or_else(|| NULL.to_string()))
                .collect(),
        );
    }

    /// Draws the table as Spark's `Dataset.showString(num_rows, truncate)` does: the first
    /// `num_rows` rows, then `only showing top N rows` if there were more. With `truncate`
    /// above 0, cells longer than `truncate` characters are cut (ending in `...` when
    /// `truncate` is at least 4) and all cells are right-aligned; with 0 they are whole
    /// and left-aligned. The text ends in a newline.
    pub(crate) fn render(&self, num_rows: usize, truncate: usize) -> String {
        if self.headers.is_empty() {
            // No row has been seen yet, so no column is known (Spark knows them from the
            // schema and draws the header): say so instead of drawing an empty frame.
            return "(no rows yet)\n".to_string();
        }
        let shown = &self.rows[..self.rows.len().min(num_rows)];
        let header: Vec<String> = self
            .headers
            .iter()
            .map(|h| escape_meta(h).into_owned())
            .collect();
        let body: Vec<Vec<String>> = shown
            .iter()
            .map(|row| {
                (0..self.headers.len())
                    .map(|column| {
                        let cell = row.get(column).map_or(NULL, String::as_str);
                        cut(escape_meta(cell).into_owned(), truncate)
                    })
                    .collect()
            })
            .collect();

        const MIN_WIDTH: usize = 3;
        let mut widths = vec![MIN_WIDTH; header.len()];
        for row in std::iter::once(&header).chain(&body) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(half_width(cell));
            }
        }

        let mut out = String::new();
        let separator = {
            let mut line = String::from("+");
            for (i, width) in widths.iter().enumerate() {
                if i > 0 {
                    line.push('+');
                }
                line.extend(std::iter::repeat_n('-', *width));
            }
            line.push_str("+\n");
            line
        };
        let draw_row = |out: &mut String, row: &[String]| {
            out.push('|');
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    out.push('|');
                }
                let padding = width - half_width(cell);
                if truncate > 0 {
                    out.extend(std::iter::repeat_n(' ', padding));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.extend(std::iter::repeat_n(' ', padding));
                }
            }
            out.push_str("|\n");
        };
        out.push_str(&separator);
        draw_row(&mut out, &header);
        out.push_str(&separator);
        for row in &body {
            draw_row(&mut out, row);
        }
        out.push_str(&separator);
        if self.rows.len() > num_rows {
            let noun = if num_rows == 1 { "row" } else { "rows" };
            out.push_str(&format!("only showing top {num_rows} {noun}\n"));
        }
        out
    }
}

/// Cuts `cell` to `truncate` characters as Spark does (0: never).
fn cut(cell: String, truncate: usize) -> String {
    if truncate == 0 || cell.chars().count() <= truncate {
        return cell;
    }
    if truncate < 4 {
        cell.chars().take(truncate).collect()
    } else {
        let mut cut: String = cell.chars().take(truncate - 3).collect();
        cut.push_str("...");
        cut
    }
}

/// Spark's `SchemaUtils.escapeMetaCharacters`: control characters that would break a
/// table line, written as escapes.
fn escape_meta(text: &str) -> Cow<'_, str> {
    const META: [char; 7] = ['\n', '\r', '\t', '\x0C', '\x08', '\x0B', '\x07'];
    if !text.contains(META) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\x0C' => escaped.push_str("\\f"),
            '\x08' => escaped.push_str("\\b"),
            '\x0B' => escaped.push_str("\\v"),
            '\x07' => escaped.push_str("\\a"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// The width of `text` on a terminal as Spark's `Utils.stringHalfWidth` counts it: one per
/// character, two for the full-width ranges Spark lists (CJK, Hangul, full-width forms).
fn half_width(text: &str) -> usize {
    text.chars()
        .map(|c| {
            let full = matches!(c,
                '\u{1100}'..='\u{115F}'
                | '\u{2E80}'..='\u{A4CF}'
                | '\u{AC00}'..='\u{D7A3}'
                | '\u{F900}'..='\u{FAFF}'
                | '\u{FE10}'..='\u{FE19}'
                | '\u{FE30}'..='\u{FE6F}'
                | '\u{FF00}'..='\u{FF60}'
                | '\u{FFE0}'..='\u{FFE6}');
            if full {
                2
            } else {
                1
            }
        })
        .sum()
}

/// The cell text of one value: a scalar as itself, anything nested as compact JSON.
fn cell<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    match value.serialize(ScalarCell) {
        Ok(text) => Ok(text),
        Err(NotScalar) => serde_json::to_string(value),
    }
}

/// Java's (and so Spark's) spelling of a float, for the values JSON cannot hold.
fn float_cell(value: f64, json: impl FnOnce() -> Result<String, serde_json::Error>) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        json().unwrap_or_else(|_| value.to_string())
    }
}

/// Spark's spelling of binary data: `[01 A0 FF]`.
fn bytes_cell(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!("[{}]", hex.join(" "))
}

/// The value was not a scalar (or failed): [`cell`] writes it as JSON instead.
#[derive(Debug)]
struct NotScalar;

impl fmt::Display for NotScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a scalar")
    }
}

impl std::error::Error for NotScalar {}

impl ser::Error for NotScalar {
    fn custom<M: fmt::Display>(_: M) -> Self {
        NotScalar
    }
}

/// Writes a scalar value as cell text; refuses anything with parts.
struct ScalarCell;

macro_rules! display_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<String, NotScalar> {
            Ok(v.to_string())
        })*
    };
}

impl Serializer for ScalarCell {
    type Ok = String;
    type Error = NotScalar;
    type SerializeSeq = Impossible<String, NotScalar>;
    type SerializeTuple = Impossible<String, NotScalar>;
    type SerializeTupleStruct = Impossible<String, NotScalar>;
    type SerializeTupleVariant = Impossible<String, NotScalar>;
    type SerializeMap = Impossible<String, NotScalar>;
    type SerializeStruct = Impossible<String, NotScalar>;
    type SerializeStructVariant = Impossible<String, NotScalar>;

    display_scalars!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str,
    );

    fn serialize_f32(self, v: f32) -> Result<String, NotScalar> {
        Ok(float_cell(f64::from(v), || serde_json::to_string(&v)))
    }

    fn serialize_f64(self, v: f64) -> Result<String, NotScalar> {
        Ok(float_cell(v, || serde_json::to_string(&v)))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<String, NotScalar> {
        Ok(bytes_cell(v))
    }

    fn serialize_none(self) -> Result<String, NotScalar> {
        Ok(NULL.to_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, NotScalar> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<String, NotScalar> {
        Ok(NULL.to_string())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<String, NotScalar> {
        Ok(NULL.to_string())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, NotScalar> {
        Ok(variant.to_string())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String, NotScalar> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, NotScalar> {
        Err(NotScalar)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotScalar> {
        Err(NotScalar)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotScalar> {
        Err(NotScalar)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotScalar> {
        Err(NotScalar)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotScalar> {
        Err(NotScalar)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotScalar> {
        Err(NotScalar)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotScalar> {
        Err(NotScalar)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotScalar> {
        Err(NotScalar)
    }
}

/// Turns a record into a [`Row`].
struct RowSerializer;

type JsonResult<T> = Result<T, serde_json::Error>;

/// A scalar record: one column `value`.
fn scalar(text: Result<String, NotScalar>) -> JsonResult<Row> {
    // ScalarCell accepts every scalar, and RowSerializer calls it only for scalars.
    text.map(Row::value)
        .map_err(|_| ser::Error::custom("a scalar was not a scalar"))
}

macro_rules! scalar_rows {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, v: $ty) -> JsonResult<Row> {
            scalar(ScalarCell.$method(v))
        })*
    };
}

impl Serializer for RowSerializer {
    type Ok = Row;
    type Error = serde_json::Error;
    type SerializeSeq = Positional;
    type SerializeTuple = Positional;
    type SerializeTupleStruct = Positional;
    type SerializeTupleVariant = VariantColumn;
    type SerializeMap = Keyed;
    type SerializeStruct = Keyed;
    type SerializeStructVariant = VariantColumn;

    scalar_rows!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str,
        serialize_bytes: &[u8], serialize_unit_struct: &'static str,
    );

    fn serialize_none(self) -> JsonResult<Row> {
        scalar(ScalarCell.serialize_none())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> JsonResult<Row> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> JsonResult<Row> {
        scalar(ScalarCell.serialize_unit())
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> JsonResult<Row> {
        scalar(ScalarCell.serialize_unit_variant(name, index, variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> JsonResult<Row> {
        value.serialize(self)
    }

    /// As serde_json writes it, `{"Variant": value}`: one column named after the variant.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> JsonResult<Row> {
        Ok(Row {
            names: vec![Cow::Borrowed(variant)],
            cells: vec![cell(value)?],
        })
    }

    fn serialize_seq(self, len: Option<usize>) -> JsonResult<Positional> {
        Ok(Positional(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, len: usize) -> JsonResult<Positional> {
        Ok(Positional(Vec::with_capacity(len)))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> JsonResult<Positional> {
        Ok(Positional(Vec::with_capacity(len)))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> JsonResult<VariantColumn> {
        Ok(VariantColumn::new(variant, '['))
    }

    fn serialize_map(self, len: Option<usize>) -> JsonResult<Keyed> {
        Ok(Keyed::new(len.unwrap_or(0)))
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> JsonResult<Keyed> {
        Ok(Keyed::new(len))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> JsonResult<VariantColumn> {
        Ok(VariantColumn::new(variant, '{'))
    }
}

/// Columns `_1`, `_2`, … of a tuple or sequence.
struct Positional(Vec<String>);

impl Positional {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> JsonResult<()> {
        self.0.push(cell(value)?);
        Ok(())
    }

    fn finish(self) -> Row {
        Row {
            names: (0..self.0.len()).map(positional).collect(),
            cells: self.0,
        }
    }
}

impl ser::SerializeSeq for Positional {
    type Ok = Row;
    type Error = serde_json::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> JsonResult<()> {
        self.push(value)
    }

    fn end(self) -> JsonResult<Row> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for Positional {
    type Ok = Row;
    type Error = serde_json::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> JsonResult<()> {
        self.push(value)
    }

    fn end(self) -> JsonResult<Row> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for Positional {
    type Ok = Row;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> JsonResult<()> {
        self.push(value)
    }

    fn end(self) -> JsonResult<Row> {
        Ok(self.finish())
    }
}

/// Columns named by struct fields or map keys, in the order they come.
struct Keyed {
    row: Row,
}

impl Keyed {
    fn new(len: usize) -> Keyed {
        Keyed {
            row: Row {
                names: Vec::with_capacity(len),
                cells: Vec::with_capacity(len),
            },
        }
    }
}

impl ser::SerializeMap for Keyed {
    type Ok = Row;
    type Error = serde_json::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> JsonResult<()> {
        self.row.names.push(Cow::Owned(cell(key)?));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> JsonResult<()> {
        self.row.cells.push(cell(value)?);
        Ok(())
    }

    fn end(self) -> JsonResult<Row> {
        Ok(self.row)
    }
}

impl ser::SerializeStruct for Keyed {
    type Ok = Row;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> JsonResult<()> {
        self.row.names.push(Cow::Borrowed(key));
        self.row.cells.push(cell(value)?);
        Ok(())
    }

    fn end(self) -> JsonResult<Row> {
        Ok(self.row)
    }
}

/// A tuple or struct variant, as serde_json writes it (`{"Variant": [..]}` or
/// `{"Variant": {..}}`): one column named after the variant holding the JSON of its
/// fields (built here so that struct fields keep their order).
struct VariantColumn {
    variant: &'static str,
    json: String,
    open: char,
}

impl VariantColumn {
    fn new(variant: &'static str, open: char) -> VariantColumn {
        VariantColumn {
            variant,
            json: String::from(open),
            open,
        }
    }

    fn separate(&mut self) {
        if self.json.len() > 1 {
            self.json.push(',');
        }
    }

    fn finish(mut self) -> Row {
        self.json.push(if self.open == '[' { ']' } else { '}' });
        Row {
            names: vec![Cow::Borrowed(self.variant)],
            cells: vec![self.json],
        }
    }
}

impl ser::SerializeTupleVariant for VariantColumn {
    type Ok = Row;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> JsonResult<()> {
        self.separate();
        self.json.push_str(&serde_json::to_string(value)?);
        Ok(())
    }

    fn end(self) -> JsonResult<Row> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for VariantColumn {
    type Ok = Row;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> JsonResult<()> {
        self.separate();
        self.json.push_str(&serde_json::to_string(key)?);
        self.json.push(':');
        self.json.push_str(&serde_json::to_string(value)?);
        Ok(())
    }

    fn end(self) -> JsonResult<Row> {
        Ok(self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn names(row: &Row) -> Vec<&str> {
        row.names.iter().map(|n| n.as_ref()).collect()
    }

    fn table<T: Serialize>(records: &[T]) -> Table {
        let mut table = Table::default();
        for record in records {
            table.push(row(record).unwrap());
        }
        table
    }

    #[derive(Serialize)]
    struct Word {
        word: String,
        count: u64,
        nested: Inner,
    }

    #[derive(Serialize)]
    struct Inner {
        z: u8,
        a: Option<u8>,
    }

    #[derive(Serialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Line(u8, u8),
        Rect { w: u8, h: u8 },
    }

    #[derive(Serialize)]
    struct Id(u32);

    #[test]
    fn tuples_are_positional() {
        let row = row(&("a", 2, 'x')).unwrap();
        assert_eq!(names(&row), ["_1", "_2", "_3"]);
        assert_eq!(row.cells, ["a", "2", "x"]);
    }

    #[test]
    fn structs_keep_field_order_and_nest_as_json() {
        let record = Word {
            word: "hi".into(),
            count: 3,
            nested: Inner { z: 1, a: None },
        };
        let row = row(&record).unwrap();
        assert_eq!(names(&row), ["word", "count", "nested"]);
        assert_eq!(row.cells, ["hi", "3", r#"{"z":1,"a":null}"#]);
    }

    #[test]
    fn scalars_are_one_value_column() {
        assert_eq!(row(&7u8).unwrap(), Row::value("7".into()));
        assert_eq!(row("say \"hi\"").unwrap(), Row::value("say \"hi\"".into()));
        assert_eq!(row(&Id(9)).unwrap(), Row::value("9".into()));
        assert_eq!(row(&None::<u8>).unwrap(), Row::value("NULL".into()));
        assert_eq!(row(&Some(1.5)).unwrap(), Row::value("1.5".into()));
        assert_eq!(row(&f64::NAN).unwrap(), Row::value("NaN".into()));
        assert_eq!(
            row(&f32::NEG_INFINITY).unwrap(),
            Row::value("-Infinity".into())
        );
        assert_eq!(row(&Shape::Dot).unwrap(), Row::value("Dot".into()));
    }

    #[test]
    fn sequences_maps_and_variants() {
        let seq = row(&vec![vec![1, 2], vec![3]]).unwrap();
        assert_eq!(names(&seq), ["_1", "_2"]);
        assert_eq!(seq.cells, ["[1,2]", "[3]"]);

        let map: BTreeMap<u32, &str> = [(2, "b"), (1, "a")].into();
        let map = row(&map).unwrap();
        assert_eq!(names(&map), ["1", "2"]);
        assert_eq!(map.cells, ["a", "b"]);

        let cells = |row: &Row| (names(row).join(" "), row.cells.join(" "));
        let circle = row(&Shape::Circle(2.0)).unwrap();
        assert_eq!(cells(&circle), ("Circle".into(), "2.0".into()));
        let line = row(&Shape::Line(1, 2)).unwrap();
        assert_eq!(cells(&line), ("Line".into(), "[1,2]".into()));
        let rect = row(&Shape::Rect { w: 3, h: 4 }).unwrap();
        assert_eq!(cells(&rect), ("Rect".into(), r#"{"w":3,"h":4}"#.into()));
        // A nested string keeps its JSON quotes; a top-level one loses them.
        let nested = row(&("a", ("b", None::<u8>))).unwrap();
        assert_eq!(nested.cells, ["a", r#"["b",null]"#]);
    }

    #[test]
    fn unprintable_nested_values_are_errors() {
        let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(row(&("x", map)).is_err());
    }

    #[test]
    fn lines_escape_control_characters() {
        let mut line = String::new();
        row(&("a\nb", 1)).unwrap().write_line(&mut line);
        assert_eq!(line, r"[a\nb,1]");
    }

    #[test]
    fn renders_right_aligned_with_minimum_width() {
        let text = table(&[("a", 2), ("bb", 10)]).render(20, 20);
        assert_eq!(
            text,
            "+---+---+\n\
             | _1| _2|\n\
             +---+---+\n\
             |  a|  2|\n\
             | bb| 10|\n\
             +---+---+\n"
        );
    }

    #[test]
    fn without_truncation_cells_are_whole_and_left_aligned() {
        let long = "abcdefghijklmnopqrstuvwxyz";
        let text = table(&[(long, 1)]).render(20, 0);
        assert_eq!(
            text,
            "+--------------------------+---+\n\
             |_1                        |_2 |\n\
             +--------------------------+---+\n\
             |abcdefghijklmnopqrstuvwxyz|1  |\n\
             +--------------------------+---+\n"
        );
    }

    #[test]
    fn truncation_cuts_to_width_with_ellipsis() {
        assert_eq!(
            cut("abcdefghijklmnopqrstuvwxyz".into(), 20),
            "abcdefghijklmnopq..."
        );
        assert_eq!(
            cut("exactly twenty chars".into(), 20),
            "exactly twenty chars"
        );
        assert_eq!(cut("abcdef".into(), 3), "abc");
        assert_eq!(cut("ééééééé".into(), 5), "éé...");
        let text = table(&[("abcdefghijklmnopqrstuvwxyz",)]).render(20, 20);
        assert!(text.contains("|abcdefghijklmnopq...|\n"), "{text}");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        assert_eq!(half_width("héllo"), 5);
        assert_eq!(half_width("日本"), 4);
        let text = table(&[("héllo",), ("日本",)]).render(20, 20);
        assert_eq!(
            text,
            "+-----+\n\
             |   _1|\n\
             +-----+\n\
             |héllo|\n\
             | 日本|\n\
             +-----+\n"
        );
    }

    #[test]
    fn empty_tables() {
        let empty = Table::with_headers(vec!["word".into(), "count".into()]);
        assert_eq!(
            empty.render(20, 20),
            "+----+-----+\n\
             |word|count|\n\
             +----+-----+\n\
             +----+-----+\n"
        );
        // No columns known yet (no row seen): said in words. Spark knows the columns from
        // the schema; rivulet learns them from the first row.
        assert_eq!(Table::default().render(20, 20), "(no rows yet)\n");
    }

    #[test]
    fn footer_when_rows_are_left_out() {
        let records: Vec<(u8,)> = (0..3).map(|i| (i,)).collect();
        let text = table(&records).render(2, 20);
        assert!(
            text.ends_with("|  1|\n+---+\nonly showing top 2 rows\n"),
            "{text}"
        );
        assert!(table(&records)
            .render(1, 20)
            .ends_with("only showing top 1 row\n"));
        assert!(!table(&records).render(3, 20).contains("only showing"));
    }

    #[test]
    fn ragged_rows_share_one_header() {
        let mut table = table(&[vec![1], vec![2, 3]]);
        let only_second: BTreeMap<&str, u8> = [("_2", 9)].into();
        table.push(row(&only_second).unwrap());
        assert_eq!(
            table.render(20, 20),
            "+----+----+\n\
             |  _1|  _2|\n\
             +----+----+\n\
             |   1|NULL|\n\
             |   2|   3|\n\
             |NULL|   9|\n\
             +----+----+\n"
        );
    }

    #[test]
    fn appended_tables_match_columns_by_name() {
        let mut left = table(&[("a", 1)]);
        left.append(table(&[vec![("b", 2)]]));
        left.append(Table::with_headers(vec!["extra".into()]));
        assert_eq!(left.headers(), ["_1", "_2", "extra"]);
        assert_eq!(
            left.render(20, 0),
            "+-------+----+-----+\n\
             |_1     |_2  |extra|\n\
             +-------+----+-----+\n\
             |a      |1   |NULL |\n\
             |[\"b\",2]|NULL|NULL |\n\
             +-------+----+-----+\n"
        );
    }
}
