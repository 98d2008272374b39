//! serde deserializers over text fields: one field ([`FieldDe`]), a row of fields in a
//! record type's order ([`RowDe`]), and a probe that learns a record type's shape
//! ([`shape_of`]).
//!
//! They parse text the way Spark's CSV reader converts a column (booleans in any case,
//! `NaN`/`Inf`/`-Inf` for floats, an empty field is null), and every error knows the
//! field it came from, which the malformed-row modes need (a `Permissive` row gets that
//! field as `None`; `FailFast` names it).

use serde::de::{self, DeserializeSeed, IntoDeserializer, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// Why a field or row did not deserialize (boxed: one word, so results of fields stay
/// small on the hot path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError(Box<FieldErrorInner>);

/// What a [`FieldError`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldErrorInner {
    /// The index (in the record type's field order) of the field that failed, if the
    /// failure belongs to one field.
    pub(crate) field: Option<usize>,
    /// What went wrong.
    pub(crate) message: String,
    /// The field was null (empty, or missing from a short row) and its type is not an
    /// `Option`.
    pub(crate) null: bool,
}

impl std::ops::Deref for FieldError {
    type Target = FieldErrorInner;

    fn deref(&self) -> &FieldErrorInner {
        &self.0
    }
}

impl FieldError {
    /// An error of the whole record (no field).
    #[cold]
    #[inline(never)]
    pub(crate) fn new(message: String) -> Self {
        FieldError(Box::new(FieldErrorInner {
            field: None,
            message,
            null: false,
        }))
    }

    #[cold]
    #[inline(never)]
    fn null() -> Self {
        FieldError(Box::new(FieldErrorInner {
            field: None,
            message: "the field is null (empty, or missing from a short row) and its type is \
                      not an Option"
                .into(),
            null: true,
        }))
    }

    /// `text` did not parse as `what`.
    #[cold]
    #[inline(never)]
    fn unparsable(text: &str, what: &str) -> Self {
        if text.is_empty() {
            FieldError::null()
        } else {
            FieldError::new(format!("cannot parse {text:?} as {what}"))
        }
    }

    /// Attributes the error to field `index` unless it already names one.
    #[cold]
    #[inline(never)]
    fn at(mut self, index: usize) -> Self {
        self.0.field.get_or_insert(index);
        self
    }

    /// The message.
    pub(crate) fn into_message(self) -> String {
        self.0.message
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FieldError::new(msg.to_string())
    }
}

/// Parses a float as Spark does: `NaN`, `Inf`, `+Inf`, `-Inf` (Spark's `nanValue`,
/// `positiveInf`, `negativeInf` defaults), surrounding ASCII whitespace ignored (Java's
/// `Double.parseDouble` trims), otherwise Rust's float syntax (which also takes `inf`,
/// `infinity` and `nan` in any case).
#[inline]
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    match parse_plain_decimal(text.as_bytes()) {
        Some(value) => Some(value),
        None => parse_float_slow(text),
    }
}

/// Exact powers of ten: every one up to `1e22` is an `f64` without rounding.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The fast path of [`parse_float`]: a plain decimal `-?digits(.digits)?` of at most 19
/// bytes whose digits, read as one integer, are at most 2^53. Then the integer and the
/// power of ten are both exact `f64`s and one division rounds correctly (Clinger's fast
/// path), so the result is bit for bit what `str::parse` gives; anything else (a sign
/// `+`, an exponent, whitespace, `inf`, a longer number) is `None`, left to `str::parse`.
#[inline(always)]
fn parse_plain_decimal(bytes: &[u8]) -> Option<f64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    // At most 19 digits: the integer fits in a u64.
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut at = 0;
    while let Some(digit) = digits.get(at).and_then(|b| b.checked_sub(b'0')) {
        if digit > 9 {
            break;
        }
        mantissa = mantissa * 10 + u64::from(digit);
        at += 1;
    }
    if at == 0 {
        return None;
    }
    let mut scale = 0;
    if at < digits.len() {
        if digits[at] != b'.' {
            return None;
        }
        at += 1;
        let fraction = at;
        while let Some(digit) = digits.get(at).and_then(|b| b.checked_sub(b'0')) {
            if digit > 9 {
                break;
            }
            mantissa = mantissa * 10 + u64::from(digit);
            at += 1;
        }
        scale = at - fraction;
        if scale == 0 || at != digits.len() {
            return None;
        }
    }
    if mantissa > 1 << 53 {
        return None;
    }
    // `scale` <= 18 here: within the table.
    let value = mantissa as f64 / POW10[scale];
    Some(if negative { -value } else { value })
}

/// [`parse_float`] for everything the fast path leaves: whitespace, `NaN`, `Inf`,
/// exponents, long numbers.
#[inline(never)]
fn parse_float_slow(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let trimmed = match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if *first > b' ' && *last > b' ' => text,
        _ => text.trim_matches(|c: char| c <= ' '),
    };
    // Rust's syntax also takes `inf`, `Inf`, `+inf`, `infinity` and `nan` in any case,
    // which covers Spark's `NaN`, `Inf` and `-Inf`.
    trimmed.parse().ok()
}

/// One text field, or a null.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldDe<'a> {
    /// The field's text.
    Text(&'a str),
    /// No value: an empty field the type asked as an `Option`, a field missing from a
    /// short row, a field `Permissive` mode gave up on.
    Null,
}

impl<'a> FieldDe<'a> {
    #[inline(always)]
    fn text(self) -> Result<&'a str, FieldError> {
        match self {
            FieldDe::Text(text) => Ok(text),
            FieldDe::Null => Err(FieldError::null()),
        }
    }

    #[inline]
    fn parse_int<T: std::str::FromStr>(self, what: &str) -> Result<T, FieldError> {
        let text = self.text()?;
        text.parse().map_err(|_| FieldError::unparsable(text, what))
    }

    #[inline(always)]
    fn parse_float(self) -> Result<f64, FieldError> {
        let text = self.text()?;
        match parse_float(text) {
            Some(value) => Ok(value),
            None => Err(FieldError::unparsable(text, "a number")),
        }
    }
}

macro_rules! int_methods {
    ($($method:ident $visit:ident $ty:ty, $what:literal;)*) => {
        $(
            #[inline]
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
                visitor.$visit(self.parse_int::<$ty>($what)?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for FieldDe<'_> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        // Untyped (an untagged enum, a JSON value): guess as the csv crate does.
        let text = match self {
            FieldDe::Null => return visitor.visit_none(),
            FieldDe::Text(text) => text,
        };
        if text.eq_ignore_ascii_case("true") {
            visitor.visit_bool(true)
        } else if text.eq_ignore_ascii_case("false") {
            visitor.visit_bool(false)
        } else if let Ok(n) = text.parse::<u64>() {
            visitor.visit_u64(n)
        } else if let Ok(n) = text.parse::<i64>() {
            visitor.visit_i64(n)
        } else if let Ok(n) = text.parse::<f64>() {
            visitor.visit_f64(n)
        } else {
            visitor.visit_str(text)
        }
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let text = self.text()?;
        if text.eq_ignore_ascii_case("true") {
            visitor.visit_bool(true)
        } else if text.eq_ignore_ascii_case("false") {
            visitor.visit_bool(false)
        } else if text.is_empty() {
            Err(FieldError::null())
        } else {
            Err(FieldError::new(format!(
                "cannot parse {text:?} as a boolean"
            )))
        }
    }

    int_methods! {
        deserialize_i8 visit_i8 i8, "an integer (i8)";
        deserialize_i16 visit_i16 i16, "an integer (i16)";
        deserialize_i32 visit_i32 i32, "an integer (i32)";
        deserialize_i64 visit_i64 i64, "an integer (i64)";
        deserialize_i128 visit_i128 i128, "an integer (i128)";
        deserialize_u8 visit_u8 u8, "an unsigned integer (u8)";
        deserialize_u16 visit_u16 u16, "an unsigned integer (u16)";
        deserialize_u32 visit_u32 u32, "an unsigned integer (u32)";
        deserialize_u64 visit_u64 u64, "an unsigned integer (u64)";
        deserialize_u128 visit_u128 u128, "an unsigned integer (u128)";
    }

    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_f32(self.parse_float()? as f32)
    }

    #[inline(always)]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_f64(self.parse_float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let text = self.text()?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(FieldError::new(format!(
                "cannot parse {text:?} as one character"
            ))),
        }
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_str(self.text()?)
    }

    #[inline(always)]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_bytes(self.text()?.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_bytes(self.text()?.as_bytes())
    }

    #[inline(always)]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self {
            // Spark's `nullValue` default: an empty field is null.
            FieldDe::Null | FieldDe::Text("") => visitor.visit_none(),
            FieldDe::Text(_) => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self {
            FieldDe::Null | FieldDe::Text("") => visitor.visit_unit(),
            FieldDe::Text(text) => Err(FieldError::new(format!(
                "expected an empty field, found {text:?}"
            ))),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldError> {
        Err(FieldError::new(
            "a text field cannot hold a sequence".into(),
        ))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        Err(FieldError::new("a text field cannot hold a tuple".into()))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        Err(FieldError::new("a text field cannot hold a tuple".into()))
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldError> {
        Err(FieldError::new("a text field cannot hold a map".into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        Err(FieldError::new(format!(
            "a text field cannot hold the struct {name}"
        )))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        // Unit variants, by name.
        let text: &str = self.text()?;
        visitor.visit_enum(IntoDeserializer::<FieldError>::into_deserializer(text))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_unit()
    }
}

/// What a slot of the record type holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Column `i` of the row.
    Column(usize),
    /// The corrupt-record field.
    Corrupt,
}

/// The record type's fields, in order, and where each comes from.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The field names (`None` for tuples and single values).
    pub(crate) names: Vec<Option<&'static str>>,
    pub(crate) slots: Vec<Slot>,
    /// Columns the rows should have (`None`: any count is fine).
    pub(crate) columns: Option<usize>,
    /// Field `i` is column `i` (no corrupt-record field).
    pub(crate) direct: bool,
}

impl Layout {
    /// The layout of a record type of `shape` whose corrupt-record field (if it has one)
    /// is named `corrupt`.
    pub(crate) fn new(shape: &Shape, corrupt: &str) -> Layout {
        match shape {
            Shape::Struct(fields) => {
                let mut column = 0;
                let slots = fields
                    .iter()
                    .map(|name| {
                        if *name == corrupt {
                            Slot::Corrupt
                        } else {
                            column += 1;
                            Slot::Column(column - 1)
                        }
                    })
                    .collect();
                Layout {
                    names: fields.iter().map(|name| Some(*name)).collect(),
                    direct: column == fields.len(),
                    slots,
                    columns: Some(column),
                }
            }
            Shape::Tuple(len) => Layout {
                names: vec![None; *len],
                slots: (0..*len).map(Slot::Column).collect(),
                columns: Some(*len),
                direct: true,
            },
            Shape::Single => Layout {
                names: vec![None],
                slots: vec![Slot::Column(0)],
                columns: Some(1),
                direct: true,
            },
        }
    }

    /// Whether the type has a corrupt-record field.
    pub(crate) fn has_corrupt(&self) -> bool {
        self.slots.contains(&Slot::Corrupt)
    }

    /// Describes field `index` for messages: "`psi` (column 8)".
    pub(crate) fn describe(&self, index: usize) -> String {
        match (
            self.names.get(index).copied().flatten(),
            self.slots.get(index),
        ) {
            (Some(name), Some(Slot::Column(column))) => format!("`{name}` (column {})", column + 1),
            (Some(name), _) => format!("`{name}`"),
            (None, Some(Slot::Column(column))) => format!("column {}", column + 1),
            (None, _) => format!("field {}", index + 1),
        }
    }
}

/// A row to deserialize: the fields' texts by column, which record fields are forced
/// to null, and the corrupt-record text.
#[derive(Debug)]
pub(crate) struct RowDe<'r, 'a> {
    pub(crate) layout: &'r Layout,
    /// The text the columns are cut from.
    pub(crate) base: &'a str,
    /// The columns: byte ranges of `base`.
    pub(crate) ranges: &'r [(usize, usize)],
    /// Record fields (by index) forced to null; empty: none.
    pub(crate) nulls: &'r [bool],
    /// The corrupt-record field's value (`None`: null).
    pub(crate) corrupt: Option<&'a str>,
}

impl<'a> RowDe<'_, 'a> {
    #[inline(always)]
    fn field(&self, index: usize) -> FieldDe<'a> {
        if self.layout.direct && self.nulls.is_empty() {
            // The common case: field `i` is column `i`, nothing forced to null.
            return match self.ranges.get(index) {
                Some(&(start, end)) => FieldDe::Text(self.base.get(start..end).unwrap_or("")),
                None => FieldDe::Null,
            };
        }
        if self.nulls.get(index).copied().unwrap_or(false) {
            return FieldDe::Null;
        }
        match self.layout.slots[index] {
            Slot::Column(column) => match self.ranges.get(column) {
                // Ranges sit next to ASCII delimiters, so `get` always succeeds.
                Some(&(start, end)) => FieldDe::Text(self.base.get(start..end).unwrap_or("")),
                None => FieldDe::Null,
            },
            Slot::Corrupt => match self.corrupt {
                Some(text) => FieldDe::Text(text),
                None => FieldDe::Null,
            },
        }
    }
}

/// The fields of a row, handed to a struct's or tuple's visitor in order.
struct Fields<'x, 'r, 'a> {
    row: &'x RowDe<'r, 'a>,
    next: usize,
}

impl<'de> SeqAccess<'de> for Fields<'_, '_, '_> {
    type Error = FieldError;

    #[inline(always)]
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, FieldError> {
        let index = self.next;
        if index >= self.row.layout.slots.len() {
            return Ok(None);
        }
        self.next += 1;
        seed.deserialize(self.row.field(index))
            .map(Some)
            .map_err(|error| error.at(index))
    }

    /// Overridden only to be inlined into the record type's visitor (serde's default
    /// is `#[inline]`, which LLVM declines for a field this size).
    #[inline(always)]
    fn next_element<T: de::Deserialize<'de>>(&mut self) -> Result<Option<T>, FieldError> {
        self.next_element_seed(std::marker::PhantomData)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.layout.slots.len() - self.next)
    }
}

macro_rules! single_methods {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
                self.single()?.$method(visitor).map_err(|error| error.at(0))
            }
        )*
    };
}

impl<'a> RowDe<'_, 'a> {
    fn single(&self) -> Result<FieldDe<'a>, FieldError> {
        Ok(self.field(0))
    }

    #[inline]
    fn seq<'de, V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_seq(Fields { row: self, next: 0 })
    }
}

impl<'de> de::Deserializer<'de> for &RowDe<'_, '_> {
    type Error = FieldError;

    single_methods! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.single()?.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldError> {
        Err(FieldError::new(
            "rows deserialize into structs, tuples or single values, not maps \
             (#[serde(flatten)] needs a map)"
                .into(),
        ))
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.single()?
            .deserialize_enum(name, variants, visitor)
            .map_err(|error| error.at(0))
    }
}

/// How a record type deserializes, as far as rows care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A struct with these fields (serde names, in order).
    Struct(&'static [&'static str]),
    /// A tuple or tuple struct of this many fields.
    Tuple(usize),
    /// One value.
    Single,
}

/// Asks `T` how it deserializes. `Err` for shapes rows cannot fill (maps, sequences of
/// unknown length).
pub(crate) fn shape_of<S: super::seed::RecordSeed>(seed: &S) -> Result<Shape, String> {
    let found = Cell::new(None);
    let _ = seed.deserialize(Probe { found: &found });
    match found.take() {
        Some(Ok(shape)) => Ok(shape),
        Some(Err(message)) => Err(message),
        None => Ok(Shape::Single),
    }
}

/// A deserializer that records the first request a type makes, then fails.
struct Probe<'c> {
    found: &'c Cell<Option<Result<Shape, String>>>,
}

impl Probe<'_> {
    fn found<T>(self, shape: Result<Shape, String>) -> Result<T, FieldError> {
        self.found.set(Some(shape));
        Err(FieldError::new("probed".into()))
    }
}

macro_rules! probe_single {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldError> {
                self.found(Ok(Shape::Single))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = FieldError;

    probe_single! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.found(Ok(Shape::Single))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldError> {
        self.found(Err("a sequence of unknown length".into()))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.found(Ok(Shape::Tuple(len)))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.found(Ok(Shape::Tuple(len)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldError> {
        self.found(Err("a map (or a struct with #[serde(flatten)])".into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.found(Ok(Shape::Struct(fields)))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.found(Ok(Shape::Single))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::format::seed::Typed;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Reading {
        id: String,
        psi: Option<f64>,
        ok: bool,
        #[serde(rename = "_corrupt_record")]
        corrupt: Option<String>,
        count: u32,
    }

    /// The row of `columns`, joined into one text with ranges.
    fn with_row<R>(
        layout: &Layout,
        columns: &[&str],
        nulls: &[bool],
        f: impl FnOnce(&RowDe<'_, '_>) -> R,
    ) -> R {
        let base = columns.concat();
        let mut ranges = Vec::new();
        let mut start = 0;
        for column in columns {
            ranges.push((start, start + column.len()));
            start += column.len();
        }
        f(&RowDe {
            layout,
            base: &base,
            ranges: &ranges,
            nulls,
            corrupt: None,
        })
    }

    #[test]
    fn probes_shapes() {
        assert_eq!(
            shape_of(&Typed::<Reading>::new()).unwrap(),
            Shape::Struct(&["id", "psi", "ok", "_corrupt_record", "count"])
        );
        assert_eq!(
            shape_of(&Typed::<(u32, String)>::new()).unwrap(),
            Shape::Tuple(2)
        );
        assert_eq!(shape_of(&Typed::<String>::new()).unwrap(), Shape::Single);
        assert_eq!(
            shape_of(&Typed::<Option<u64>>::new()).unwrap(),
            Shape::Single
        );
        assert!(shape_of(&Typed::<std::collections::HashMap<String, String>>::new()).is_err());
    }

    #[test]
    fn fills_structs_in_column_order_around_the_corrupt_field() {
        let layout = Layout::new(
            &shape_of(&Typed::<Reading>::new()).unwrap(),
            "_corrupt_record",
        );
        assert_eq!(layout.columns, Some(4));
        let nulls = [false; 5];
        let columns = ["p1", " 0.5 ", "TRUE", "7"];
        let reading = with_row(&layout, &columns, &nulls, |r| Reading::deserialize(r)).unwrap();
        assert_eq!(
            reading,
            Reading {
                id: "p1".into(),
                psi: Some(0.5),
                ok: true,
                corrupt: None,
                count: 7
            }
        );
        // An empty field is None for an Option.
        let columns = ["p1", "", "false", "7"];
        let reading = with_row(&layout, &columns, &nulls, |r| Reading::deserialize(r)).unwrap();
        assert_eq!(reading.psi, None);
    }

    #[test]
    fn errors_name_their_field() {
        let layout = Layout::new(
            &shape_of(&Typed::<Reading>::new()).unwrap(),
            "_corrupt_record",
        );
        let nulls = [false; 5];
        let error = with_row(&layout, &["p1", "x", "true", "7"], &nulls, |r| {
            Reading::deserialize(r)
        })
        .unwrap_err();
        assert_eq!(error.field, Some(1));
        assert_eq!(layout.describe(1), "`psi` (column 2)");
        let error = with_row(&layout, &["p1", "1", "yes", "7"], &nulls, |r| {
            Reading::deserialize(r)
        })
        .unwrap_err();
        assert_eq!(error.field, Some(2));
        // A short row: the missing count is null, and u32 is not an Option.
        let error = with_row(&layout, &["p1", "1", "true"], &nulls, |r| {
            Reading::deserialize(r)
        })
        .unwrap_err();
        assert_eq!((error.field, error.null), (Some(4), true));
        assert_eq!(layout.describe(4), "`count` (column 4)");
    }

    #[test]
    fn floats_follow_spark() {
        assert_eq!(parse_float("NaN").map(f64::is_nan), Some(true));
        assert_eq!(parse_float("Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(" 1.5\t"), Some(1.5));
        assert_eq!(parse_float("1,5"), None);
        for text in [
            "1.",
            ".5",
            "+1.5",
            "-0",
            "-0.0",
            "1e3",
            "007.50",
            "-",
            "-.",
            "1.2.3",
            "9007199254740992",
            "9007199254740993",
            "9.007199254740993",
            "0.1",
            "1.7976931348623157",
            "18446744073709551615",
            "1234567890.123456789",
            "0.0000000000000000001",
        ] {
            assert_eq!(
                parse_float(text).map(f64::to_bits),
                text.parse::<f64>().ok().map(f64::to_bits),
                "{text}"
            );
        }
        assert_eq!(parse_float(""), None);
    }

    #[test]
    fn single_values_and_enums() {
        #[derive(Debug, Deserialize, PartialEq)]
        enum Kind {
            Pump,
            Valve,
        }
        let layout = Layout::new(&Shape::Single, "_corrupt_record");
        let nulls = [false];
        assert_eq!(
            with_row(&layout, &["hello"], &nulls, |r| String::deserialize(r)).unwrap(),
            "hello"
        );
        assert_eq!(
            with_row(&layout, &["42"], &nulls, |r| u64::deserialize(r)).unwrap(),
            42
        );
        assert_eq!(
            with_row(&layout, &["Valve"], &nulls, |r| Kind::deserialize(r)).unwrap(),
            Kind::Valve
        );
        assert!(with_row(&layout, &["Pipe"], &nulls, |r| Kind::deserialize(r)).is_err());
        let _ = Kind::Pump;
    }

    proptest::proptest! {
        /// The fast path gives exactly `str::parse`'s float (the reference) on plain
        /// decimals of every length around its limits (19 bytes, 2^53).
        #[test]
        fn plain_decimals_parse_as_std(
            negative: bool,
            whole: u64,
            digits in 0usize..=20,
            split in 0usize..=20,
        ) {
            let number = whole.to_string();
            let number = &number[..digits.min(number.len()).max(1)];
            let sign = if negative { "-" } else { "" };
            let text = if split > 0 && split < number.len() {
                format!("{sign}{}.{}", &number[..split], &number[split..])
            } else {
                format!("{sign}{number}")
            };
            proptest::prop_assert_eq!(
                parse_float(&text).map(f64::to_bits),
                text.parse::<f64>().ok().map(f64::to_bits),
                "{}", text
            );
        }
    }
}
