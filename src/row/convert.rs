//! serde conversions between rows and typed values: [`Row::from_struct`] serializes a
//! struct (or tuple) into a row of a given schema, [`Row::to_struct`] deserializes one.
//!
//! Struct fields meet columns by name, ignoring ASCII case (so `#[serde(rename)]`
//! decides a field's column); tuples and tuple structs meet them by position. Values
//! widen where Spark widens implicitly (`int` → `bigint` → `double`); a field holding
//! rivulet's [`Timestamp`] or [`Date`] fills a `timestamp` or `date` column (as does
//! their ISO text), and a unit enum variant fills a `string` column with its name.

use super::schema::{Schema, SchemaError};
use super::value::{DataType, Value};
use super::Row;
use crate::event::Timestamp;
use crate::format::date::{format_iso_timestamp, parse_iso_date, parse_iso_timestamp, Date};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Impossible, Serialize};
use std::fmt;

/// Why a row and a typed value did not convert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The row or the type does not fit the schema.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A column's value does not fit the field it is meant for.
    #[error("column `{column}`: {message}")]
    Column {
        /// The column.
        column: String,
        /// What went wrong.
        message: String,
    },
    /// Anything else serde reported.
    #[error("{0}")]
    Other(String),
}

impl ConvertError {
    fn at(self, column: &str) -> ConvertError {
        match self {
            ConvertError::Other(message) => ConvertError::Column {
                column: column.to_string(),
                message,
            },
            other => other,
        }
    }
}

impl de::Error for ConvertError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ConvertError::Other(message.to_string())
    }
}

impl ser::Error for ConvertError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ConvertError::Other(message.to_string())
    }
}

impl Row {
    /// The row `value` makes under `schema`: a struct's fields fill the columns of their
    /// names (ignoring case), a tuple's fill them in order. A column no field fills is
    /// null.
    ///
    /// # Errors
    ///
    /// A field with no column, a value of a type the column cannot take, a null in a
    /// column that is not nullable, or a value that is neither a struct nor a tuple.
    pub fn from_struct<T: Serialize + ?Sized>(
        value: &T,
        schema: &Schema,
    ) -> Result<Row, ConvertError> {
        let mut values = vec![Value::Null; schema.len()];
        value.serialize(RowSerializer {
            schema,
            values: &mut values,
        })?;
        schema.check(&values)?;
        Ok(Row::new(values))
    }

    /// The typed value this row (under `schema`) makes: a struct's fields are taken from
    /// the columns of their names (ignoring case), a tuple's in order. An `Option` field
    /// is `None` for a null (or missing) column.
    ///
    /// # Errors
    ///
    /// A row that does not fit the schema, a required field with no column, or a value
    /// the field's type cannot hold (a null in a field that is not an `Option` included).
    pub fn to_struct<T: DeserializeOwned>(&self, schema: &Schema) -> Result<T, ConvertError> {
        if self.len() != schema.len() {
            return Err(SchemaError::Arity {
                expected: schema.len(),
                found: self.len(),
            }
            .into());
        }
        T::deserialize(RowDeserializer { row: self, schema })
    }
}

// ---------------------------------------------------------------------------------------
// Row → typed value

struct RowDeserializer<'a> {
    row: &'a Row,
    schema: &'a Schema,
}

impl<'de> de::Deserializer<'de> for RowDeserializer<'_> {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        visitor.visit_seq(Columns {
            row: self.row,
            schema: self.schema,
            next: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        visitor.visit_map(NamedFields {
            row: self.row,
            schema: self.schema,
            fields,
            next: 0,
            current: None,
        })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        visitor.visit_map(AllColumns {
            row: self.row,
            schema: self.schema,
            next: 0,
        })
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct identifier ignored_any enum
    }
}

/// A row's values in order (a tuple's fields).
struct Columns<'a> {
    row: &'a Row,
    schema: &'a Schema,
    next: usize,
}

impl<'de> de::SeqAccess<'de> for Columns<'_> {
    type Error = ConvertError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConvertError> {
        let Some(value) = self.row.get(self.next) else {
            return Ok(None);
        };
        let column = self.schema.fields()[self.next].name();
        self.next += 1;
        seed.deserialize(ValueDeserializer(value))
            .map(Some)
            .map_err(|error| error.at(column))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.len() - self.next)
    }
}

/// A struct's fields, each from the column of its name.
struct NamedFields<'a> {
    row: &'a Row,
    schema: &'a Schema,
    fields: &'static [&'static str],
    next: usize,
    /// The column of the field whose key was handed out last.
    current: Option<usize>,
}

impl<'de> de::MapAccess<'de> for NamedFields<'_> {
    type Error = ConvertError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConvertError> {
        while let Some(field) = self.fields.get(self.next) {
            self.next += 1;
            // A field without a column is left out: serde makes an `Option` field `None`
            // and reports any other as missing.
            if let Some(column) = self.schema.find(field) {
                self.current = Some(column);
                return seed.deserialize(field.into_deserializer()).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConvertError> {
        let column = self.current.take().expect("a key before its value");
        seed.deserialize(ValueDeserializer(&self.row.values()[column]))
            .map_err(|error| error.at(self.schema.fields()[column].name()))
    }
}

/// Every column as a map entry, keyed by its name.
struct AllColumns<'a> {
    row: &'a Row,
    schema: &'a Schema,
    next: usize,
}

impl<'de> de::MapAccess<'de> for AllColumns<'_> {
    type Error = ConvertError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConvertError> {
        match self.schema.fields().get(self.next) {
            Some(field) => seed.deserialize(field.name().into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConvertError> {
        let column = self.next;
        self.next += 1;
        seed.deserialize(ValueDeserializer(&self.row.values()[column]))
            .map_err(|error| error.at(self.schema.fields()[column].name()))
    }
}

/// One value, as the field it fills asks for it.
struct ValueDeserializer<'a>(&'a Value);

impl<'de> de::Deserializer<'de> for ValueDeserializer<'_> {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Value::Null => Err(ConvertError::Other(
                "the value is null and the field is not an Option".to_string(),
            )),
            Value::Boolean(b) => visitor.visit_bool(*b),
            Value::Integer(n) => visitor.visit_i32(*n),
            Value::Long(n) => visitor.visit_i64(*n),
            Value::Double(x) => visitor.visit_f64(*x),
            Value::String(s) => visitor.visit_str(s),
            Value::Timestamp(t) => visitor.visit_i64(t.0),
            Value::Date(d) => visitor.visit_i32(d.0),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        visitor.visit_newtype_struct(self)
    }

    /// Text for a string field; a timestamp or date as ISO text (what fields read with
    /// `format::date::iso_timestamp` expect).
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Value::Timestamp(t) => visitor.visit_string(format_iso_timestamp(*t)),
            Value::Date(d) => visitor.visit_string(d.to_string()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_str(visitor)
    }

    /// A unit enum variant from its name in a string column.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self.0 {
            Value::String(s) => {
                visitor.visit_enum(de::value::StrDeserializer::<ConvertError>::new(s))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

// ---------------------------------------------------------------------------------------
// Typed value → row

/// Serializes a struct or tuple into `values` (one slot per column of `schema`).
struct RowSerializer<'a> {
    schema: &'a Schema,
    values: &'a mut Vec<Value>,
}

fn not_a_row(what: &str) -> ConvertError {
    ConvertError::Other(format!(
        "a row is made from a struct or a tuple, not {what}"
    ))
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) $what:literal;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), ConvertError> {
            Err(not_a_row($what))
        })*
    };
}

impl<'a> ser::Serializer for RowSerializer<'a> {
    type Ok = ();
    type Error = ConvertError;
    type SerializeSeq = Positional<'a>;
    type SerializeTuple = Positional<'a>;
    type SerializeTupleStruct = Positional<'a>;
    type SerializeTupleVariant = Impossible<(), ConvertError>;
    type SerializeMap = Impossible<(), ConvertError>;
    type SerializeStruct = Named<'a>;
    type SerializeStructVariant = Impossible<(), ConvertError>;

    refuse! {
        serialize_bool(bool) "a boolean";
        serialize_i8(i8) "a number";
        serialize_i16(i16) "a number";
        serialize_i32(i32) "a number";
        serialize_i64(i64) "a number";
        serialize_u8(u8) "a number";
        serialize_u16(u16) "a number";
        serialize_u32(u32) "a number";
        serialize_u64(u64) "a number";
        serialize_f32(f32) "a number";
        serialize_f64(f64) "a number";
        serialize_char(char) "a character";
        serialize_str(&str) "a string";
        serialize_bytes(&[u8]) "bytes";
        serialize_none() "None";
        serialize_unit() "()";
        serialize_unit_struct(&'static str) "a unit struct";
        serialize_unit_variant(&'static str, u32, &'static str) "an enum";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), ConvertError> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), ConvertError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), ConvertError> {
        Err(not_a_row("an enum"))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Positional<'a>, ConvertError> {
        Ok(Positional {
            schema: self.schema,
            values: self.values,
            next: 0,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Positional<'a>, ConvertError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Positional<'a>, ConvertError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ConvertError> {
        Err(not_a_row("an enum"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, ConvertError> {
        Err(not_a_row("a map"))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Named<'a>, ConvertError> {
        Ok(Named {
            schema: self.schema,
            values: self.values,
        })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ConvertError> {
        Err(not_a_row("an enum"))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A tuple's fields, filling the columns in order.
struct Positional<'a> {
    schema: &'a Schema,
    values: &'a mut Vec<Value>,
    next: usize,
}

impl Positional<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        let index = self.next;
        self.next += 1;
        let Some(field) = self.schema.fields().get(index) else {
            return Err(SchemaError::Arity {
                expected: self.schema.len(),
                found: index + 1,
            }
            .into());
        };
        self.values[index] = to_value(value, field.data_type()).map_err(|e| e.at(field.name()))?;
        Ok(())
    }

    fn finish(self) -> Result<(), ConvertError> {
        if self.next != self.schema.len() {
            return Err(SchemaError::Arity {
                expected: self.schema.len(),
                found: self.next,
            }
            .into());
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Positional<'_> {
    type Ok = ();
    type Error = ConvertError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.element(value)
    }
    fn end(self) -> Result<(), ConvertError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Positional<'_> {
    type Ok = ();
    type Error = ConvertError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.element(value)
    }
    fn end(self) -> Result<(), ConvertError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Positional<'_> {
    type Ok = ();
    type Error = ConvertError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.element(value)
    }
    fn end(self) -> Result<(), ConvertError> {
        self.finish()
    }
}

/// A struct's fields, each filling the column of its name.
struct Named<'a> {
    schema: &'a Schema,
    values: &'a mut Vec<Value>,
}

impl ser::SerializeStruct for Named<'_> {
    type Ok = ();
    type Error = ConvertError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ConvertError> {
        let index = self.schema.index_of(key)?;
        let field = &self.schema.fields()[index];
        self.values[index] = to_value(value, field.data_type()).map_err(|e| e.at(field.name()))?;
        Ok(())
    }

    fn end(self) -> Result<(), ConvertError> {
        Ok(())
    }
}

/// The value `value` makes in a column of type `column`.
fn to_value<T: Serialize + ?Sized>(value: &T, column: DataType) -> Result<Value, ConvertError> {
    let raw = value.serialize(ValueSerializer)?;
    coerce(raw, column)
}

/// `value` as a value of type `column`, widening or reading text where Spark would.
fn coerce(value: Value, column: DataType) -> Result<Value, ConvertError> {
    let mismatch = |value: &Value| {
        ConvertError::Other(format!(
            "a {} value ({value}) does not fit a {column} column",
            value.data_type().map_or("null", DataType::simple_string)
        ))
    };
    Ok(match (value, column) {
        (Value::Null, _) => Value::Null,
        (value, column) if value.data_type() == Some(column) => value,
        (Value::Integer(n), DataType::Long) => Value::Long(i64::from(n)),
        (Value::Integer(n), DataType::Double) => Value::Double(f64::from(n)),
        (Value::Long(n), DataType::Double) => Value::Double(n as f64),
        (Value::Long(n), DataType::Integer) => match i32::try_from(n) {
            Ok(n) => Value::Integer(n),
            Err(_) => return Err(mismatch(&Value::Long(n))),
        },
        (Value::Long(micros), DataType::Timestamp) => Value::Timestamp(Timestamp(micros)),
        (Value::Integer(days), DataType::Date) => Value::Date(Date::from_days(days)),
        (Value::String(text), DataType::Timestamp) => match parse_iso_timestamp(&text) {
            Ok(t) => Value::Timestamp(t),
            Err(_) => return Err(mismatch(&Value::String(text))),
        },
        (Value::String(text), DataType::Date) => match parse_iso_date(&text) {
            Ok(d) => Value::Date(d),
            Err(_) => return Err(mismatch(&Value::String(text))),
        },
        (value, _) => return Err(mismatch(&value)),
    })
}

/// Serializes one field into the [`Value`] it naturally is.
struct ValueSerializer;

fn not_a_value(what: &str) -> ConvertError {
    ConvertError::Other(format!("{what} does not fit in one column"))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ConvertError;
    type SerializeSeq = Impossible<Value, ConvertError>;
    type SerializeTuple = Impossible<Value, ConvertError>;
    type SerializeTupleStruct = Impossible<Value, ConvertError>;
    type SerializeTupleVariant = Impossible<Value, ConvertError>;
    type SerializeMap = Impossible<Value, ConvertError>;
    type SerializeStruct = Impossible<Value, ConvertError>;
    type SerializeStructVariant = Impossible<Value, ConvertError>;

    fn serialize_bool(self, v: bool) -> Result<Value, ConvertError> {
        Ok(Value::Boolean(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ConvertError> {
        Ok(Value::Integer(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ConvertError> {
        Ok(Value::Integer(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ConvertError> {
        Ok(Value::Integer(v))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ConvertError> {
        Ok(Value::Long(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ConvertError> {
        Ok(Value::Integer(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ConvertError> {
        Ok(Value::Integer(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ConvertError> {
        Ok(Value::Long(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ConvertError> {
        i64::try_from(v)
            .map(Value::Long)
            .map_err(|_| ConvertError::Other(format!("{v} does not fit a bigint")))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ConvertError> {
        Ok(Value::Double(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ConvertError> {
        Ok(Value::Double(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ConvertError> {
        Ok(Value::String(v.to_string().into()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ConvertError> {
        Ok(Value::string(v))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<Value, ConvertError> {
        Err(not_a_value("bytes"))
    }
    fn serialize_none(self) -> Result<Value, ConvertError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ConvertError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ConvertError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ConvertError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ConvertError> {
        Ok(Value::string(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ConvertError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Value, ConvertError> {
        Err(not_a_value("an enum variant with data"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, ConvertError> {
        Err(not_a_value("a sequence"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, ConvertError> {
        Err(not_a_value("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, ConvertError> {
        Err(not_a_value("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ConvertError> {
        Err(not_a_value("an enum variant with data"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, ConvertError> {
        Err(not_a_value("a map"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, ConvertError> {
        Err(not_a_value("a struct (nested types are not supported yet)"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ConvertError> {
        Err(not_a_value("an enum variant with data"))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Field;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum PumpType {
        Hydraulic,
        Electric,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Reading {
        resid: String,
        date: Date,
        at: Timestamp,
        hz: f64,
        count: u32,
        kind: PumpType,
        #[serde(rename = "chlPPM")]
        chl_ppm: Option<f64>,
    }

    fn schema() -> Schema {
        Schema::new([
            Field::new("resid", DataType::String),
            Field::new("DATE", DataType::Date),
            Field::new("at", DataType::Timestamp),
            Field::new("hz", DataType::Double),
            Field::new("count", DataType::Long),
            Field::new("kind", DataType::String),
            Field::new("chlppm", DataType::Double),
            Field::new("extra", DataType::Integer),
        ])
        .unwrap()
    }

    fn reading() -> Reading {
        Reading {
            resid: "NANTAHALA".into(),
            date: Date::from_days(16139),
            at: Timestamp(1_394_413_260_000_000),
            hz: 84.5,
            count: 7,
            kind: PumpType::Electric,
            chl_ppm: None,
        }
    }

    #[test]
    fn structs_round_trip_by_column_name_ignoring_case() {
        let row = Row::from_struct(&reading(), &schema()).unwrap();
        assert_eq!(
            row.values(),
            &[
                Value::string("NANTAHALA"),
                Value::Date(Date::from_days(16139)),
                Value::Timestamp(Timestamp(1_394_413_260_000_000)),
                Value::Double(84.5),
                Value::Long(7),
                Value::string("Electric"),
                Value::Null,
                Value::Null,
            ]
        );
        assert_eq!(row.to_struct::<Reading>(&schema()).unwrap(), reading());
        assert_eq!(
            row.to_string(),
            "[NANTAHALA,2014-03-10,2014-03-10 01:01:00,84.5,7,Electric,null,null]"
        );
        let _ = PumpType::Hydraulic;
    }

    #[test]
    fn tuples_fill_columns_in_order() {
        let schema = Schema::new([
            Field::new("a", DataType::Long),
            Field::new("b", DataType::Double),
            Field::new("c", DataType::String),
        ])
        .unwrap();
        let row = Row::from_struct(&(1i32, 2i64, "x"), &schema).unwrap();
        assert_eq!(
            row.values(),
            &[Value::Long(1), Value::Double(2.0), Value::string("x")]
        );
        let back: (i64, f64, String) = row.to_struct(&schema).unwrap();
        assert_eq!(back, (1, 2.0, "x".to_string()));
        assert_eq!(
            Row::from_struct(&(1i32, 2i64), &schema)
                .unwrap_err()
                .to_string(),
            "the row has 2 values, the schema 3 columns"
        );
    }

    #[test]
    fn misfits_name_the_column() {
        let schema = schema();
        // A string where a double goes.
        let mut row = Row::from_struct(&reading(), &schema).unwrap();
        row.values_mut()[3] = Value::string("high");
        let error = row.to_struct::<Reading>(&schema).unwrap_err().to_string();
        assert!(error.starts_with("column `hz`:"), "{error}");
        // A null where the field is not an Option.
        row.values_mut()[3] = Value::Null;
        let error = row.to_struct::<Reading>(&schema).unwrap_err().to_string();
        assert_eq!(
            error,
            "column `hz`: the value is null and the field is not an Option"
        );
        // A field the schema has no column for.
        #[derive(Serialize)]
        struct Stray {
            psi: f64,
        }
        let error = Row::from_struct(&Stray { psi: 1.0 }, &schema)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("no column `psi`; the columns are: resid, DATE"),
            "{error}"
        );
        // A text that is no timestamp.
        #[derive(Serialize)]
        struct BadTime {
            at: &'static str,
        }
        let error = Row::from_struct(&BadTime { at: "yesterday" }, &schema)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "column `at`: a string value (yesterday) does not fit a timestamp column"
        );
        // Not a struct at all.
        assert_eq!(
            Row::from_struct(&42u8, &schema).unwrap_err().to_string(),
            "a row is made from a struct or a tuple, not a number"
        );
    }

    #[test]
    fn iso_text_fields_fill_and_read_time_columns() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Event {
            #[serde(with = "crate::format::date::iso_timestamp")]
            at: Timestamp,
            day: String,
        }
        let schema = Schema::new([
            Field::new("at", DataType::Timestamp),
            Field::new("day", DataType::Date),
        ])
        .unwrap();
        let event = Event {
            at: Timestamp(1_394_413_260_000_000),
            day: "2014-03-10".into(),
        };
        let row = Row::from_struct(&event, &schema).unwrap();
        assert_eq!(
            row.values(),
            &[
                Value::Timestamp(Timestamp(1_394_413_260_000_000)),
                Value::Date(Date::from_days(16139)),
            ]
        );
        assert_eq!(row.to_struct::<Event>(&schema).unwrap(), event);
    }
}
