//! [`RowSeed`]: decoding [`Row`]s of a schema given at run time (Spark's
//! `readStream.schema(userSchema).csv(dir)`), through the same decoders typed records
//! use, so CSV, JSON lines and text get the same malformed-row verdicts either way.

use super::schema::Schema;
use super::value::{DataType, Value};
use super::Row;
use crate::event::Timestamp;
use crate::format::date::{parse_iso_date, parse_iso_timestamp, Date};
use crate::format::RecordSeed;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// Builds [`Row`]s of `schema` in a [`Decoder`](crate::format::Decoder): CSV columns
/// fill the schema's columns in order, JSON objects by name (ignoring case). An empty
/// CSV field or a JSON `null` is a null value; in a column declared
/// [not null](super::Field::not_null), or a value that does not parse as the column's
/// type, the record is malformed (handled by the decoder's [`ParseMode`](crate::format::ParseMode),
/// as for typed records). A `string` column named as the decoder's corrupt-record field
/// (`_corrupt_record` by default) receives the raw line of a malformed record, as in
/// Spark.
///
/// `timestamp` and `date` columns read ISO-8601 text (`2014-03-10T01:01:00Z`,
/// `2014-03-10`); JSON numbers in them are microseconds and days since the epoch.
///
/// ```
/// use rivulet::format::{CsvOptions, DecodeOptions, Decoder, Format, Verdict};
/// use rivulet::row::{DataType, Field, Row, RowSeed, Schema, Value};
/// use std::sync::Arc;
///
/// let schema = Arc::new(Schema::new([
///     Field::new("resid", DataType::String),
///     Field::new("psi", DataType::Double),
/// ])?);
/// let mut decoder = Decoder::with_seed(
///     RowSeed::new(schema),
///     &Format::Csv(CsvOptions::default()),
///     &DecodeOptions::default(),
/// )?;
/// decoder.start_file();
/// let Verdict::Row(row) = decoder.decode(b"COHUTTA,0.4", None) else { panic!() };
/// assert_eq!(row, Row::new(vec![Value::string("COHUTTA"), Value::Double(0.4)]));
/// let Verdict::Row(row) = decoder.decode(b"COHUTTA,", None) else { panic!() };
/// assert_eq!(row.get(1), Some(&Value::Null));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RowSeed {
    schema: Arc<Schema>,
    /// The column names, interned (serde wants a struct's field names `'static`).
    names: &'static [&'static str],
}

impl RowSeed {
    /// Rows of `schema`.
    pub fn new(schema: Arc<Schema>) -> RowSeed {
        let names = intern_names(&schema);
        RowSeed { schema, names }
    }

    /// The schema of the rows.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }
}

/// The names of `schema` as a `'static` list. Names are interned once per process (a
/// query started again reuses them), so the memory this keeps is bounded by the distinct
/// schemas a process ever decodes.
fn intern_names(schema: &Schema) -> &'static [&'static str] {
    type Interned = Mutex<HashSet<&'static [&'static str]>>;
    static LISTS: OnceLock<Interned> = OnceLock::new();
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let names: Vec<&'static str> = {
        let mut interned = NAMES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        schema
            .names()
            .map(|name| match interned.get(name) {
                Some(known) => *known,
                None => {
                    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
                    interned.insert(leaked);
                    leaked
                }
            })
            .collect()
    };
    let mut lists = LISTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match lists.get(names.as_slice()) {
        Some(known) => known,
        None => {
            let leaked: &'static [&'static str] = Box::leak(names.into_boxed_slice());
            lists.insert(leaked);
            leaked
        }
    }
}

impl RecordSeed for RowSeed {
    type Value = Row;

    fn deserialize<'de, D: Deserializer<'de>>(&self, deserializer: D) -> Result<Row, D::Error> {
        deserializer.deserialize_struct(
            "Row",
            self.names,
            RowVisitor {
                schema: &self.schema,
            },
        )
    }

    fn describe(&self) -> String {
        format!("rows of {}", self.schema)
    }
}

struct RowVisitor<'s> {
    schema: &'s Schema,
}

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row of {}", self.schema)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Row, A::Error> {
        let mut values = Vec::with_capacity(self.schema.len());
        for (index, field) in self.schema.fields().iter().enumerate() {
            let seed = ColumnSeed {
                data_type: field.data_type(),
                nullable: field.is_nullable(),
            };
            match seq.next_element_seed(seed)? {
                Some(value) => values.push(value),
                None => return Err(de::Error::invalid_length(index, &self)),
            }
        }
        Ok(Row::new(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let mut values = vec![None; self.schema.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.schema.find(&key) {
                Some(index) => {
                    let field = &self.schema.fields()[index];
                    let seed = ColumnSeed {
                        data_type: field.data_type(),
                        nullable: field.is_nullable(),
                    };
                    values[index] = Some(map.next_value_seed(seed)?);
                }
                None => {
                    // Spark ignores fields the schema does not name.
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let mut row = Vec::with_capacity(values.len());
        for (value, field) in values.into_iter().zip(self.schema.fields()) {
            match value {
                Some(value) => row.push(value),
                None if field.is_nullable() => row.push(Value::Null),
                None => return Err(de::Error::missing_field(intern_one(field.name()))),
            }
        }
        Ok(Row::new(row))
    }
}

/// `name` as a `'static` str (only for an error message about a missing field).
fn intern_one(name: &str) -> &'static str {
    let schema = Schema::new([super::Field::new(name, DataType::String)]).expect("one field");
    intern_names(&schema)[0]
}

/// One column's value, of its declared type.
#[derive(Clone, Copy)]
struct ColumnSeed {
    data_type: DataType,
    nullable: bool,
}

impl<'de> DeserializeSeed<'de> for ColumnSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.nullable {
            deserializer.deserialize_option(NullableVisitor(self.data_type))
        } else {
            typed(self.data_type, deserializer)
        }
    }
}

struct NullableVisitor(DataType);

impl<'de> Visitor<'de> for NullableVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} or null", self.0)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        typed(self.0, deserializer)
    }
}

/// A non-null value of `data_type`.
fn typed<'de, D: Deserializer<'de>>(
    data_type: DataType,
    deserializer: D,
) -> Result<Value, D::Error> {
    use serde::Deserialize;
    Ok(match data_type {
        DataType::Null => {
            de::IgnoredAny::deserialize(deserializer)?;
            Value::Null
        }
        DataType::Boolean => Value::Boolean(bool::deserialize(deserializer)?),
        DataType::Integer => Value::Integer(i32::deserialize(deserializer)?),
        DataType::Long => Value::Long(i64::deserialize(deserializer)?),
        DataType::Double => Value::Double(f64::deserialize(deserializer)?),
        DataType::String => Value::String(Arc::from(std::borrow::Cow::<'de, str>::deserialize(
            deserializer,
        )?)),
        DataType::Timestamp => deserializer.deserialize_any(TimeVisitor(DataType::Timestamp))?,
        DataType::Date => deserializer.deserialize_any(TimeVisitor(DataType::Date))?,
    })
}

/// A timestamp or date from ISO text, or from a number (microseconds, days).
struct TimeVisitor(DataType);

impl Visitor<'_> for TimeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DataType::Date => f.write_str("a date (yyyy-MM-dd)"),
            _ => f.write_str("a timestamp (ISO 8601)"),
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        match self.0 {
            DataType::Date => parse_iso_date(text).map(Value::Date).map_err(E::custom),
            _ => parse_iso_timestamp(text)
                .map(Value::Timestamp)
                .map_err(E::custom),
        }
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        match self.0 {
            DataType::Date => i32::try_from(n)
                .map(|days| Value::Date(Date::from_days(days)))
                .map_err(E::custom),
            _ => Ok(Value::Timestamp(Timestamp(n))),
        }
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        i64::try_from(n)
            .map_err(E::custom)
            .and_then(|n| self.visit_i64(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{CsvOptions, DecodeOptions, Decoder, Format, ParseMode, Verdict};
    use crate::row::Field;

    fn schema() -> Arc<Schema> {
        Arc::new(
            Schema::new([
                Field::new("resid", DataType::String),
                Field::new("date", DataType::Date),
                Field::new("at", DataType::Timestamp),
                Field::new("hz", DataType::Double),
                Field::new("count", DataType::Long).not_null(),
                Field::new("ok", DataType::Boolean),
                Field::new("_corrupt_record", DataType::String),
            ])
            .unwrap(),
        )
    }

    fn decoder(format: Format, mode: ParseMode) -> Decoder<Row, RowSeed> {
        let options = DecodeOptions::default().mode(mode);
        let mut decoder = Decoder::with_seed(RowSeed::new(schema()), &format, &options).unwrap();
        decoder.start_file();
        decoder
    }

    fn csv() -> Format {
        Format::Csv(CsvOptions::default())
    }

    #[test]
    fn csv_fills_every_type_and_nulls() {
        let mut decoder = decoder(csv(), ParseMode::FailFast);
        let verdict = decoder.decode(b"COHUTTA,2014-03-10,2014-03-10T01:01:00Z,84.5,7,TRUE", None);
        assert_eq!(
            verdict,
            Verdict::Row(Row::new(vec![
                Value::string("COHUTTA"),
                Value::Date(Date::from_days(16139)),
                Value::Timestamp(Timestamp(1_394_413_260_000_000)),
                Value::Double(84.5),
                Value::Long(7),
                Value::Boolean(true),
                Value::Null,
            ]))
        );
        let Verdict::Row(row) = decoder.decode(b",,,,3,", None) else {
            panic!("empty fields are nulls")
        };
        assert_eq!(
            row.values()[..4],
            [Value::Null, Value::Null, Value::Null, Value::Null]
        );
    }

    #[test]
    fn malformed_csv_rows_follow_the_mode() {
        let line = b"COHUTTA,2014-03-10,,high,7,true";
        let mut permissive = decoder(csv(), ParseMode::Permissive);
        let Verdict::Repaired(row, malformed) = permissive.decode(line, None) else {
            panic!("permissive keeps the row")
        };
        assert_eq!(row.values()[3], Value::Null, "the failed field is null");
        assert_eq!(row.values()[0], Value::string("COHUTTA"), "the others kept");
        assert_eq!(
            row.values()[6],
            Value::string("COHUTTA,2014-03-10,,high,7,true"),
            "the raw line in the corrupt-record column"
        );
        assert_eq!(malformed.field.as_deref(), Some("`hz` (column 4)"));
        // A null in a column that is not nullable cannot be repaired with a null.
        let mut permissive = decoder(csv(), ParseMode::Permissive);
        assert!(matches!(
            permissive.decode(b"COHUTTA,2014-03-10,,1.0,,true", None),
            Verdict::Dropped(_)
        ));
        let mut dropping = decoder(csv(), ParseMode::DropMalformed);
        assert!(matches!(dropping.decode(line, None), Verdict::Dropped(_)));
        let mut failing = decoder(csv(), ParseMode::FailFast);
        assert!(matches!(failing.decode(line, None), Verdict::Failed(_)));
    }

    #[test]
    fn json_objects_fill_columns_by_name_ignoring_case() {
        let mut decoder = decoder(Format::JsonLines, ParseMode::FailFast);
        let line =
            br#"{"RESID": "BALDER", "count": 2, "hz": 1, "unknown": [1, 2], "date": "2014-03-10"}"#;
        let Verdict::Row(row) = decoder.decode(line, None) else {
            panic!("a good JSON record")
        };
        assert_eq!(
            row.values(),
            &[
                Value::string("BALDER"),
                Value::Date(Date::from_days(16139)),
                Value::Null,
                Value::Double(1.0),
                Value::Long(2),
                Value::Null,
                Value::Null,
            ]
        );
        // The not-null column missing is malformed.
        assert!(matches!(
            decoder.decode(br#"{"resid": "BALDER"}"#, None),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn names_are_interned_once() {
        let a = RowSeed::new(schema());
        let b = RowSeed::new(schema());
        assert!(std::ptr::eq(a.names, b.names));
    }
}
