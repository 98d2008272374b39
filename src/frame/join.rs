//! Static frames ([`StaticFrame`]: rows with a schema, read once) and the stream–static
//! equi-joins of a [`DataFrame`] with them (Spark's stream–static inner and left outer
//! joins), planned as a row step on the stream's thread.

use super::compiled::{Compiled, JoinStep, Step};
use super::{DataFrame, FrameError};
use crate::expr::{col, Expr, ExprError};
use crate::row::{DataType, Field, Row, RowSeed, Schema};
use crate::table::{CsvTable, StaticTable, TableError};
use crate::QueryBuilder;
use std::fmt;
use std::sync::Arc;

/// A static table of rows with a [`Schema`]: the static side of a stream–static join
/// (Spark's batch DataFrame, `spark.read.schema(s).csv(path)`), read once and shared,
/// not copied, by the joins that use it (cloning is cheap).
///
/// ```
/// use rivulet::expr::col;
/// use rivulet::frame::{DataFrame, JoinType, StaticFrame};
/// use rivulet::row::{DataType, Field, Row, Schema, Value};
/// use std::sync::Arc;
///
/// let schema = |names: [&str; 2]| {
///     Arc::new(Schema::new(names.map(|n| Field::new(n, DataType::String))).unwrap())
/// };
/// let row = |a: &str, b: &str| Row::new(vec![Value::string(a), Value::string(b)]);
/// let vendors = StaticFrame::new(
///     schema(["resid", "vendor"]),
///     [row("COHUTTA", "HydroPump"), row("BUTTE", "Pumps Inc")],
/// )?;
///
/// let mut query = rivulet::Query::builder();
/// let alerts = DataFrame::new(
///     query.from_iter("alerts", [row("COHUTTA", "low psi"), row("MOJAVE", "low psi")]),
///     schema(["pump", "why"]),
/// );
/// let joined = alerts.join_static(&vendors, [(col("pump"), col("resid"))], JoinType::LeftOuter)?;
/// assert_eq!(joined.columns(), ["pump", "why", "resid", "vendor"]);
/// let table = joined.to_memory("joined");
/// query.start()?.await_termination()?;
/// assert_eq!(table.rows()[1].values()[3], Value::Null); // MOJAVE has no vendor
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StaticFrame {
    schema: Arc<Schema>,
    rows: Arc<[Row]>,
}

impl fmt::Debug for StaticFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFrame")
            .field("schema", &self.schema.to_string())
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl StaticFrame {
    /// A static frame of `rows`, each a row of `schema`.
    ///
    /// # Errors
    ///
    /// A row that does not fit the schema (its width, a value's type, a null in a
    /// non-nullable column).
    pub fn new(
        schema: Arc<Schema>,
        rows: impl IntoIterator<Item = Row>,
    ) -> Result<StaticFrame, FrameError> {
        let rows: Vec<Row> = rows.into_iter().collect();
        for row in &rows {
            schema.check(row.values())?;
        }
        Ok(StaticFrame {
            schema,
            rows: rows.into(),
        })
    }

    /// The rows of the CSV file `csv` reads, as rows of `schema` (Spark's
    /// `spark.read.schema(schema).csv(path)`), with `csv`'s options and malformed-row mode
    /// (fail-fast by default).
    ///
    /// # Errors
    ///
    /// An unreadable file, or a malformed row with its file and line.
    pub fn read_csv(csv: &CsvTable, schema: Arc<Schema>) -> Result<StaticFrame, TableError> {
        let (rows, _) = csv.read_rows_seeded(RowSeed::new(schema.clone()))?;
        Ok(StaticFrame {
            schema,
            rows: rows.into(),
        })
    }

    /// The schema of its rows.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The rows, in order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.schema.names().map(str::to_string).collect()
    }

    /// Registers the frame under `name` (ignoring case) for
    /// [`QueryBuilder::sql`] on `query`, replacing a view of that name (Spark's
    /// `createOrReplaceTempView` on a static DataFrame). Unlike a streaming view, a
    /// static view can be read by any number of statements.
    pub fn create_or_replace_temp_view(&self, query: &QueryBuilder, name: &str) {
        query.register_static_view(name, self.clone());
    }

    /// The same rows with the columns named `names` (the SQL planner's internal names
    /// for columns that another relation of a join also has).
    pub(crate) fn renamed(&self, names: &[String]) -> Result<StaticFrame, FrameError> {
        let fields = self.schema.fields().iter().zip(names).map(|(field, name)| {
            let renamed = Field::new(name, field.data_type());
            if field.is_nullable() {
                renamed
            } else {
                renamed.not_null()
            }
        });
        Ok(StaticFrame {
            schema: Arc::new(Schema::new(fields)?),
            rows: self.rows.clone(),
        })
    }
}

/// Which rows of a join are kept: of a stream–static join
/// ([`DataFrame::join_static`]: inner and left outer) or a stream–stream join
/// ([`DataFrame::join`]: all four).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinType {
    /// A row per pair of matching rows; rows without a match are dropped.
    Inner,
    /// As [`Inner`](Self::Inner), and a left row without a match gives one row with
    /// nulls for the right side's columns.
    LeftOuter,
    /// As [`Inner`](Self::Inner), and a right row without a match gives one row with
    /// nulls for the left side's columns (stream–stream joins only).
    RightOuter,
    /// Both outer joins at once (stream–stream joins only).
    FullOuter,
}

/// The type two join keys are compared as (Spark's widening), if there is one.
pub(super) fn key_type(left: DataType, right: DataType) -> Option<DataType> {
    use DataType::*;
    if left == right {
        return Some(left);
    }
    Some(match (left, right) {
        (Null, other) | (other, Null) => other,
        (Date, Timestamp) | (Timestamp, Date) => Timestamp,
        (Integer, Long) | (Long, Integer) => Long,
        (Integer | Long, Double) | (Double, Integer | Long) => Double,
        _ => return None,
    })
}

impl DataFrame {
    /// The stream–static equi-join of this frame with `table` (Spark's stream–static
    /// join, the stream on the left): a row per pair of a stream row and a table row
    /// whose keys are equal, each `(left, right)` of `on` comparing an expression of
    /// this frame's rows with one of the table's. The columns are this frame's, then
    /// the table's (nullable in a left outer join). A null key matches nothing, as in
    /// Spark. The join is stateless and runs on the stream's thread with the frame's
    /// other row steps; the table is looked up by hash, its key values cast to the keys'
    /// common type once.
    ///
    /// Only the joins Spark supports with a stream on the left and a static table on the
    /// right exist ([`JoinType`]): a right or full outer join would need to know that no
    /// stream row will ever match a table row.
    ///
    /// # Errors
    ///
    /// No keys, a key that does not bind, keys of types that cannot be compared, a
    /// column name both sides have (rename one with `select(..alias(..))` first), or a
    /// right or full outer join.
    pub fn join_static(
        self,
        table: &StaticFrame,
        on: impl IntoIterator<Item = (Expr, Expr)>,
        how: JoinType,
    ) -> Result<DataFrame, FrameError> {
        if matches!(how, JoinType::RightOuter | JoinType::FullOuter) {
            return Err(FrameError::Invalid(format!(
                "a stream–static join is inner or left outer, not {how:?}: a right or full \
                 outer join would need to know that no stream row will ever match a table row \
                 (Spark refuses it too)"
            )));
        }
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        for (left, right) in on {
            let l = left.bind(&self.schema)?;
            let r = right.bind(&table.schema)?;
            let common = key_type(l.data_type(), r.data_type()).ok_or_else(|| {
                FrameError::Expr(ExprError::Type {
                    expr: format!("{left} = {right}"),
                    message: format!(
                        "join keys of types {} and {} cannot be compared",
                        l.data_type(),
                        r.data_type()
                    ),
                })
            })?;
            let cast = |e: Expr, t: DataType| if t == common { e } else { e.cast(common) };
            let (lt, rt) = (l.data_type(), r.data_type());
            let left = cast(left, lt);
            let right = cast(right, rt);
            left_keys.push(Compiled::new(left.bind(&self.schema)?, left.to_string()));
            right_keys.push(Compiled::new(right.bind(&table.schema)?, right.to_string()));
        }
        if left_keys.is_empty() {
            return Err(FrameError::Invalid(
                "a join needs at least one pair of equal keys".to_string(),
            ));
        }
        let outer = how == JoinType::LeftOuter;
        let mut fields = self.schema.fields().to_vec();
        for field in table.schema.fields() {
            fields.push(if outer {
                Field::new(field.name(), field.data_type())
            } else {
                field.clone()
            });
        }
        let schema = Arc::new(Schema::new(fields)?);
        // Rows with a null key never match: they are left out of the table.
        let pairs = table.rows.iter().filter_map(|row| {
            let key: Vec<_> = right_keys.iter().map(|k| k.eval(row)).collect();
            (!key.iter().any(|v| v.is_null())).then(|| (key, row.clone()))
        });
        let step = JoinStep {
            keys: left_keys.into(),
            table: StaticTable::from_pairs(pairs),
            outer,
            width: table.schema.len(),
        };
        Ok(self.push(Step::Join(Arc::new(step)), schema))
    }

    /// [`join_static`](Self::join_static) on columns of the same name on both sides
    /// (Spark's `join(other, Seq("resid"), joinType)`): each key column appears once, as
    /// this frame's, and the table's other columns follow this frame's.
    ///
    /// # Errors
    ///
    /// As [`join_static`](Self::join_static), or an unknown column.
    pub fn join_static_using(
        self,
        table: &StaticFrame,
        columns: &[&str],
        how: JoinType,
    ) -> Result<DataFrame, FrameError> {
        let mut keep = Vec::new();
        for (i, field) in table.schema.fields().iter().enumerate() {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(field.name())) {
                keep.push(i);
            }
        }
        for c in columns {
            table.schema.index_of(c)?;
        }
        let on: Vec<(Expr, Expr)> = columns.iter().map(|c| (col(c), col(c))).collect();
        let width = self.schema.len();
        let joined = self.join_static(&prefixed(table)?, on_prefixed(on), how)?;
        let mut items: Vec<Expr> = (0..width)
            .map(|i| col(joined.schema.fields()[i].name()))
            .collect();
        for i in keep {
            let name = table.schema.fields()[i].name();
            items.push(col(&format!("{PREFIX}{name}")).alias(name));
        }
        joined.select(items)
    }
}

/// What the table's columns are called inside a using-join, before the projection.
const PREFIX: &str = "\u{1}right.";

fn prefixed(table: &StaticFrame) -> Result<StaticFrame, FrameError> {
    let names: Vec<String> = table
        .schema
        .names()
        .map(|n| format!("{PREFIX}{n}"))
        .collect();
    table.renamed(&names)
}

fn on_prefixed(on: Vec<(Expr, Expr)>) -> Vec<(Expr, Expr)> {
    on.into_iter()
        .map(|(l, r)| match r {
            Expr::Column(name) => (l, col(&format!("{PREFIX}{name}"))),
            other => (l, other),
        })
        .collect()
}
