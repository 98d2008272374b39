//! Rows with a schema: the untyped layer DataFrames and SQL work on, on top of the typed
//! core (Spark's `Row` and `StructType`).
//!
//! A [`Row`] is a list of [`Value`]s; the [`Schema`] that names and types them belongs
//! to the stream (or table) the row is in, not to each row, so a row costs its values
//! and nothing more. Rows convert to and from serde types by column name (ignoring
//! case, as Spark matches names), so typed and untyped code can meet anywhere:
//!
//! ```
//! use rivulet::row::{DataType, Field, Row, Schema, Value};
//!
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Alert {
//!     resid: String,
//!     psi: f64,
//!     #[serde(rename = "chlPPM")]
//!     chl_ppm: Option<f64>,
//! }
//!
//! let schema = Schema::new([
//!     Field::new("resid", DataType::String),
//!     Field::new("psi", DataType::Double),
//!     Field::new("CHLppm", DataType::Double),
//! ])?;
//! let alert = Alert { resid: "COHUTTA".into(), psi: 0.25, chl_ppm: None };
//! let row = Row::from_struct(&alert, &schema)?;
//! assert_eq!(row.values(), &[Value::string("COHUTTA"), Value::Double(0.25), Value::Null]);
//! assert_eq!(row.to_struct::<Alert>(&schema)?, alert);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `value.rs` | [`DataType`], [`Value`] with Spark's equality and ordering |
//! | `schema.rs` | [`Schema`], [`Field`], [`SchemaError`] |
//! | `seed.rs` | [`RowSeed`]: rows of a schema given at run time from the CSV, JSON-lines and text decoders |
//! | `convert.rs` | serde: rows from structs ([`Row::from_struct`]) and back ([`Row::to_struct`]) |

mod convert;
mod schema;
mod seed;
mod value;

pub use convert::ConvertError;
pub use schema::{Field, Schema, SchemaError};
pub use seed::RowSeed;
pub use value::{DataType, Value};

use serde::{Deserialize, Serialize};
use std::fmt;

/// One row: a value per column of its [`Schema`], in the schema's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// A row of `values`.
    pub fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The values, to change in place.
    pub fn values_mut(&mut self) -> &mut [Value] {
        &mut self.values
    }

    /// The value of column `index`, `None` past the end.
    pub fn get(&self, index: usize) -> Option<&Value> {
        self.values.get(index)
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, by value.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

impl From<Vec<Value>> for Row {
    fn from(values: Vec<Value>) -> Row {
        Row { values }
    }
}

impl FromIterator<Value> for Row {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Row {
        Row {
            values: iter.into_iter().collect(),
        }
    }
}

/// `[v1,v2,...]`, as Spark prints a `Row`.
impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{value}")?;
        }
        f.write_str("]")
    }
}
