//! [`Schema`] and [`Field`]: the names, types and nullability of a row's columns
//! (Spark's `StructType` and `StructField`).

use super::value::{DataType, Value};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One column of a [`Schema`] (Spark's `StructField`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    name: String,
    data_type: DataType,
    nullable: bool,
}

impl Field {
    /// A column named `name` of type `data_type`, nullable as Spark's columns are by
    /// default (see [`not_null`](Self::not_null)).
    pub fn new(name: impl Into<String>, data_type: DataType) -> Field {
        Field {
            name: name.into(),
            data_type,
            nullable: true,
        }
    }

    /// The same column, declared never null.
    pub fn not_null(mut self) -> Field {
        self.nullable = false;
        self
    }

    /// The column's name as declared.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// Whether the column may hold nulls.
    pub fn is_nullable(&self) -> bool {
        self.nullable
    }
}

/// The columns of a row: names, types, nullability, in order (Spark's `StructType`).
///
/// Column names are matched without regard to ASCII case, as Spark does by default
/// (`spark.sql.caseSensitive=false`): `chlPPM` and `chlppm` are the same column, and a
/// schema cannot have both.
///
/// ```
/// use rivulet::row::{DataType, Field, Schema};
///
/// let schema = Schema::new([
///     Field::new("resid", DataType::String),
///     Field::new("date", DataType::Date),
///     Field::new("hz", DataType::Double),
///     Field::new("chlPPM", DataType::Double),
/// ])?;
/// assert_eq!(schema.index_of("chlppm")?, 3);
/// let unknown = schema.index_of("psi").unwrap_err();
/// assert_eq!(
///     unknown.to_string(),
///     "no column `psi`; the columns are: resid, date, hz, chlPPM"
/// );
/// assert_eq!(
///     schema.tree_string(),
///     "root\n |-- resid: string (nullable = true)\n |-- date: date (nullable = true)\n \
///      |-- hz: double (nullable = true)\n |-- chlPPM: double (nullable = true)\n"
/// );
/// # Ok::<(), rivulet::row::SchemaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schema {
    fields: Vec<Field>,
}

/// A schema that cannot be, or a column it does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// Two columns have the same name (ignoring case).
    #[error("duplicate column `{name}` (names are matched without regard to case)")]
    Duplicate {
        /// The name that appears twice.
        name: String,
    },
    /// No column has the name asked for.
    #[error("no column `{name}`; the columns are: {}", available.join(", "))]
    NoSuchColumn {
        /// The name asked for.
        name: String,
        /// The names the schema has.
        available: Vec<String>,
    },
    /// A value does not fit its column.
    #[error("column `{column}` is {expected}, found {found}")]
    TypeMismatch {
        /// The column.
        column: String,
        /// Its type (with `not null` if it is not nullable).
        expected: String,
        /// What the value was.
        found: String,
    },
    /// A row has more or fewer values than the schema has columns.
    #[error("the row has {found} values, the schema {expected} columns")]
    Arity {
        /// Columns in the schema.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
}

impl Schema {
    /// A schema of `fields`, in order.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Duplicate`] if two fields have the same name ignoring case.
    pub fn new(fields: impl IntoIterator<Item = Field>) -> Result<Schema, SchemaError> {
        let fields: Vec<Field> = fields.into_iter().collect();
        for (i, field) in fields.iter().enumerate() {
            if fields[..i]
                .iter()
                .any(|earlier| earlier.name.eq_ignore_ascii_case(&field.name))
            {
                return Err(SchemaError::Duplicate {
                    name: field.name.clone(),
                });
            }
        }
        Ok(Schema { fields })
    }

    /// The columns, in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the schema has no columns.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The column names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|field| field.name.as_str())
    }

    /// The position of the column `name` (ignoring ASCII case), if there is one.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|field| field.name.eq_ignore_ascii_case(name))
    }

    /// The position of the column `name` (ignoring ASCII case).
    ///
    /// # Errors
    ///
    /// [`SchemaError::NoSuchColumn`], listing the columns there are.
    pub fn index_of(&self, name: &str) -> Result<usize, SchemaError> {
        self.find(name).ok_or_else(|| SchemaError::NoSuchColumn {
            name: name.to_string(),
            available: self.names().map(str::to_string).collect(),
        })
    }

    /// The column `name` (ignoring ASCII case).
    ///
    /// # Errors
    ///
    /// [`SchemaError::NoSuchColumn`], listing the columns there are.
    pub fn field(&self, name: &str) -> Result<&Field, SchemaError> {
        self.index_of(name).map(|i| &self.fields[i])
    }

    /// Checks that `values` fit the columns: as many, each null (where the column is
    /// nullable) or of the column's type.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Arity`] or [`SchemaError::TypeMismatch`] for the first misfit.
    pub fn check(&self, values: &[Value]) -> Result<(), SchemaError> {
        if values.len() != self.fields.len() {
            return Err(SchemaError::Arity {
                expected: self.fields.len(),
                found: values.len(),
            });
        }
        for (field, value) in self.fields.iter().zip(values) {
            let fits = match value.data_type() {
                None => field.nullable,
                Some(data_type) => data_type == field.data_type,
            };
            if !fits {
                return Err(SchemaError::TypeMismatch {
                    column: field.name.clone(),
                    expected: if field.nullable {
                        field.data_type.to_string()
                    } else {
                        format!("{} not null", field.data_type)
                    },
                    found: match value.data_type() {
                        None => "null".to_string(),
                        Some(data_type) => format!("{data_type} {value}"),
                    },
                });
            }
        }
        Ok(())
    }

    /// The schema as Spark's `printSchema()` prints it.
    pub fn tree_string(&self) -> String {
        let mut out = String::from("root\n");
        for field in &self.fields {
            out.push_str(&format!(
                " |-- {}: {} (nullable = {})\n",
                field.name, field.data_type, field.nullable
            ));
        }
        out
    }
}

/// `struct<name:type,...>`, as Spark's `simpleString`.
impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct<")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", field.name, field.data_type)?;
        }
        f.write_str(">")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_ignoring_case() {
        let error = Schema::new([
            Field::new("chlPPM", DataType::Double),
            Field::new("CHLppm", DataType::Double),
        ])
        .unwrap_err();
        assert_eq!(
            error,
            SchemaError::Duplicate {
                name: "CHLppm".into()
            }
        );
    }

    #[test]
    fn check_names_the_first_misfit() {
        let schema = Schema::new([
            Field::new("id", DataType::Long).not_null(),
            Field::new("name", DataType::String),
        ])
        .unwrap();
        assert_eq!(schema.check(&[Value::Long(1), Value::Null]), Ok(()));
        assert_eq!(
            schema
                .check(&[Value::Null, Value::Null])
                .unwrap_err()
                .to_string(),
            "column `id` is bigint not null, found null"
        );
        assert_eq!(
            schema
                .check(&[Value::Integer(1), Value::Null])
                .unwrap_err()
                .to_string(),
            "column `id` is bigint not null, found int 1"
        );
        assert_eq!(
            schema.check(&[Value::Long(1)]).unwrap_err().to_string(),
            "the row has 1 values, the schema 2 columns"
        );
        assert_eq!(schema.to_string(), "struct<id:bigint,name:string>");
    }
}
