//! Expressions over rows: Spark's `Column` expressions (`col("psi") < 0.5`,
//! `when(..).otherwise(..)`, `IN`, `LIKE`, `CAST`), what DataFrame operations and SQL
//! compile to.
//!
//! An [`Expr`] names columns; [`Expr::bind`] resolves it against a [`Schema`] once
//! (columns to positions, ignoring case; types checked and coerced as Spark coerces
//! them) into a [`BoundExpr`], which evaluates rows without looking anything up, parsing
//! anything or allocating for fixed-width values.
//!
//! ```
//! use rivulet::expr::{col, lit, when};
//! use rivulet::row::{DataType, Field, Row, Schema, Value};
//!
//! let schema = Schema::new([
//!     Field::new("resid", DataType::String),
//!     Field::new("psi", DataType::Double),
//! ])?;
//! let low = col("PSI").lt(lit(0.5)).and(col("resid").like("COHU%"));
//! let bound = low.bind(&schema)?;
//! assert_eq!(bound.data_type(), DataType::Boolean);
//! let row = Row::new(vec![Value::string("COHUTTA"), Value::Double(0.25)]);
//! assert_eq!(bound.eval(&row)?, Value::Boolean(true));
//!
//! let level = when(col("psi").lt(lit(1)), lit("low")).otherwise(lit("ok"));
//! assert_eq!(level.bind(&schema)?.eval(&row)?, Value::string("low"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Semantics
//!
//! Spark SQL's, with ANSI mode on (Spark 4's default):
//!
//! * **Nulls** propagate through arithmetic, comparisons, `LIKE` and casts; `AND`, `OR`
//!   and `NOT` use three-valued logic (`false AND null` is `false`, `true OR null` is
//!   `true`); `x IN (..)` is null when `x` is null, or when nothing matched and the list
//!   holds a null; `IS NULL` is never null. A `WHEN` whose condition is null does not
//!   match.
//! * **Numbers** widen `int` → `bigint` → `double` to a common type. `/` always divides
//!   as doubles (`7 / 2` is `3.5`); `+`, `-`, `*`, `%` keep integer types. An integer
//!   overflow, a division or remainder by zero, and a cast that cannot hold its value
//!   are errors (ANSI), which fail the query.
//! * **Comparisons** are between numbers (widened), strings (by code point), booleans,
//!   and dates/timestamps (a date compares as its midnight). Spark would also compare a
//!   string with a number by casting the string; rivulet refuses that at bind time
//!   (write the `CAST`), so a comparison never means something else silently.
//! * Doubles compare as Spark's do: `NaN = NaN` is true and `NaN` is greater than any
//!   other double.

mod bind;
mod eval;
mod like;

pub use bind::{BoundExpr, ExprError};
pub use eval::EvalError;

use crate::row::{DataType, Schema, Value};
use std::fmt;

/// An expression over the columns of a row, not yet bound to a schema. Build one with
/// [`col`], [`lit`], [`when`] and the methods below (or the `+ - * / %` operators).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The column of this name (matched ignoring case when bound).
    Column(String),
    /// A constant.
    Literal(Value),
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Its left operand.
        left: Box<Expr>,
        /// Its right operand.
        right: Box<Expr>,
    },
    /// Logical negation.
    Not(Box<Expr>),
    /// Arithmetic negation.
    Negate(Box<Expr>),
    /// `IS NULL` (or `IS NOT NULL` when `negated`).
    IsNull {
        /// The operand.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `expr IN (list)` (or `NOT IN` when `negated`).
    InList {
        /// The value looked for.
        expr: Box<Expr>,
        /// The candidates.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `expr LIKE pattern` (or `NOT LIKE`), `%` any run of characters, `_` one; `\`
    /// escapes.
    Like {
        /// The text matched.
        expr: Box<Expr>,
        /// The pattern (a constant).
        pattern: String,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `CASE WHEN c1 THEN v1 … ELSE e END`.
    Case {
        /// The `(condition, value)` branches, in order.
        branches: Vec<(Expr, Expr)>,
        /// The value when no branch matches (null if absent).
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(expr AS type)`.
    Cast {
        /// The value cast.
        expr: Box<Expr>,
        /// The type cast to.
        to: DataType,
    },
    /// `expr AS name`: the same value under another name (for projections).
    Alias {
        /// The value.
        expr: Box<Expr>,
        /// Its name.
        name: String,
    },
    /// `split(expr, pattern)`: the string cut at every match of the regular expression
    /// `pattern` (Spark's `split`, an array). Rows hold no arrays, so it is taken only
    /// as the argument of [`Expr::Explode`]: see [`split`].
    Split {
        /// The string split.
        expr: Box<Expr>,
        /// The regular expression (Java's syntax in Spark, the `regex` crate's here).
        pattern: String,
    },
    /// `explode(array)`: a generator, one output row per element (Spark's `explode`).
    /// Only a `select` item may be one: see [`explode`].
    Explode(Box<Expr>),
}

/// The binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Subtract,
    /// `*`
    Multiply,
    /// `/` (always as doubles)
    Divide,
    /// `%`
    Remainder,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
}

impl BinaryOp {
    /// The operator as SQL writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Remainder => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
        }
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

/// The column named `name` (Spark's `col`).
pub fn col(name: &str) -> Expr {
    Expr::Column(name.to_string())
}

/// A constant (Spark's `lit`).
pub fn lit(value: impl Into<Value>) -> Expr {
    Expr::Literal(value.into())
}

/// `split(expr, pattern)`: `expr`, a string, cut at every match of the regular
/// expression `pattern` (Spark's `split(str, regex)` with its default limit: empty
/// pieces are kept, a trailing one included; a null string gives no pieces).
///
/// Spark's `split` returns an array; rivulet's rows hold no arrays, so a split is taken
/// only as the argument of [`explode`] (its elements become rows): anywhere else
/// binding refuses it. The pattern is compiled once, when the select is bound, with the
/// `regex` crate, whose syntax is Java's for the usual cases (classes, `\\s+`,
/// alternation; no look-around or back-references). A pattern that can match the
/// empty string is refused (Java and `regex` cut at empty matches differently).
///
/// ```
/// use rivulet::expr::{col, explode, split};
/// let words = explode(split(col("value"), "\\s+")).alias("word");
/// assert_eq!(words.output_name(), "word");
/// assert_eq!(explode(split(col("value"), " ")).output_name(), "col");
/// ```
pub fn split(expr: Expr, pattern: &str) -> Expr {
    Expr::Split {
        expr: Box::new(expr),
        pattern: pattern.to_string(),
    }
}

/// `explode(array)`: one output row per element of the array, the element in the
/// generator's column (named `col` unless aliased) and the select's other items
/// repeated (Spark's `explode`; a null or empty array gives no row). It is a select
/// item, at most one per select, and its argument is a [`split`] (the only array
/// rivulet makes).
///
/// ```
/// use rivulet::expr::{col, explode, split};
/// use rivulet::frame::DataFrame;
/// use rivulet::row::{DataType, Field, Row, Schema, Value};
/// use std::sync::Arc;
///
/// let schema = Arc::new(Schema::new([Field::new("value", DataType::String)])?);
/// let mut query = rivulet::Query::builder();
/// let lines = DataFrame::new(
///     query.from_iter("lines", [Row::new(vec![Value::string("to be or")])]),
///     schema,
/// );
/// let words = lines.select([explode(split(col("value"), " +")).alias("word")])?;
/// assert_eq!(words.columns(), ["word"]);
/// let table = words.to_memory("words");
/// query.start()?.await_termination()?;
/// let words: Vec<Value> = table.rows().into_iter().map(|row| row.values()[0].clone()).collect();
/// assert_eq!(words, ["to", "be", "or"].map(Value::string));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn explode(array: Expr) -> Expr {
    Expr::Explode(Box::new(array))
}

/// `CASE WHEN condition THEN value …`: add branches with [`Expr::when`], end with
/// [`Expr::otherwise`] (Spark's `when(..).when(..).otherwise(..)`).
pub fn when(condition: Expr, value: Expr) -> Expr {
    Expr::Case {
        branches: vec![(condition, value)],
        otherwise: None,
    }
}

impl Expr {
    fn binary(self, op: BinaryOp, right: Expr) -> Expr {
        Expr::Binary {
            op,
            left: Box::new(self),
            right: Box::new(right),
        }
    }

    /// `self = other`.
    pub fn eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Eq, other)
    }

    /// `self <> other`.
    pub fn not_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::NotEq, other)
    }

    /// `self < other`.
    pub fn lt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Lt, other)
    }

    /// `self <= other`.
    pub fn lt_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::LtEq, other)
    }

    /// `self > other`.
    pub fn gt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Gt, other)
    }

    /// `self >= other`.
    pub fn gt_eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::GtEq, other)
    }

    /// `self AND other`.
    pub fn and(self, other: Expr) -> Expr {
        self.binary(BinaryOp::And, other)
    }

    /// `self OR other`.
    pub fn or(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Or, other)
    }

    /// `NOT self`.
    #[allow(clippy::should_implement_trait)] // `!expr` reads as Rust's, not SQL's, NOT
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// `self IS NULL`.
    pub fn is_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: false,
        }
    }

    /// `self IS NOT NULL`.
    pub fn is_not_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: true,
        }
    }

    /// `self IN (list)` (Spark's `isin`).
    pub fn is_in(self, list: impl IntoIterator<Item = Expr>) -> Expr {
        Expr::InList {
            expr: Box::new(self),
            list: list.into_iter().collect(),
            negated: false,
        }
    }

    /// `self LIKE pattern`.
    pub fn like(self, pattern: &str) -> Expr {
        Expr::Like {
            expr: Box::new(self),
            pattern: pattern.to_string(),
            negated: false,
        }
    }

    /// `CAST(self AS to)`.
    pub fn cast(self, to: DataType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            to,
        }
    }

    /// `self AS name`.
    pub fn alias(self, name: &str) -> Expr {
        Expr::Alias {
            expr: Box::new(self),
            name: name.to_string(),
        }
    }

    /// Another `WHEN condition THEN value` branch of a [`when`] expression.
    ///
    /// # Panics
    ///
    /// If `self` is not a `CASE` expression without an `ELSE` yet.
    pub fn when(self, condition: Expr, value: Expr) -> Expr {
        match self {
            Expr::Case {
                mut branches,
                otherwise: None,
            } => {
                branches.push((condition, value));
                Expr::Case {
                    branches,
                    otherwise: None,
                }
            }
            other => panic!("`when` continues a `when(..)` expression, not {other}"),
        }
    }

    /// The `ELSE value` of a [`when`] expression.
    ///
    /// # Panics
    ///
    /// If `self` is not a `CASE` expression without an `ELSE` yet.
    pub fn otherwise(self, value: Expr) -> Expr {
        match self {
            Expr::Case {
                branches,
                otherwise: None,
            } => Expr::Case {
                branches,
                otherwise: Some(Box::new(value)),
            },
            other => panic!("`otherwise` ends a `when(..)` expression, not {other}"),
        }
    }

    /// The name a projection gives this expression's column: an alias, a column's own
    /// name, else the expression's text (as Spark names unaliased columns).
    pub fn output_name(&self) -> String {
        match self {
            Expr::Alias { name, .. } => name.clone(),
            Expr::Column(name) => name.clone(),
            // Spark names an unaliased generator's column `col`.
            Expr::Explode(_) => "col".to_string(),
            other => other.to_string(),
        }
    }

    /// Resolves the expression against `schema`: see [`BoundExpr`].
    ///
    /// # Errors
    ///
    /// An unknown column (the error lists the columns there are), or types the
    /// operation does not take.
    pub fn bind(&self, schema: &Schema) -> Result<BoundExpr, ExprError> {
        bind::bind(self, schema)
    }
}

macro_rules! arithmetic {
    ($($trait:ident $method:ident $op:ident;)*) => {
        $(impl std::ops::$trait for Expr {
            type Output = Expr;
            fn $method(self, right: Expr) -> Expr {
                self.binary(BinaryOp::$op, right)
            }
        })*
    };
}

arithmetic! {
    Add add Add;
    Sub sub Subtract;
    Mul mul Multiply;
    Div div Divide;
    Rem rem Remainder;
}

impl std::ops::Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::Negate(Box::new(self))
    }
}

/// The expression as SQL text (what an unaliased projection names its column).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(name) => f.write_str(name),
            Expr::Literal(Value::String(s)) => write!(f, "{s}"),
            Expr::Literal(value) => write!(f, "{value}"),
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Not(expr) => write!(f, "(NOT {expr})"),
            Expr::Negate(expr) => write!(f, "(- {expr})"),
            Expr::IsNull { expr, negated } => {
                write!(f, "({expr} IS {}NULL)", if *negated { "NOT " } else { "" })
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                write!(f, "({expr} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("))")
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => write!(
                f,
                "{expr} {}LIKE {pattern}",
                if *negated { "NOT " } else { "" }
            ),
            Expr::Case {
                branches,
                otherwise,
            } => {
                f.write_str("CASE")?;
                for (condition, value) in branches {
                    write!(f, " WHEN {condition} THEN {value}")?;
                }
                if let Some(otherwise) = otherwise {
                    write!(f, " ELSE {otherwise}")?;
                }
                f.write_str(" END")
            }
            Expr::Cast { expr, to } => {
                write!(f, "CAST({expr} AS {})", to.simple_string().to_uppercase())
            }
            Expr::Alias { expr, name } => write!(f, "{expr} AS {name}"),
            Expr::Split { expr, pattern } => write!(f, "split({expr}, {pattern})"),
            Expr::Explode(expr) => write!(f, "explode({expr})"),
        }
    }
}
