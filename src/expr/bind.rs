//! Binding an [`Expr`] to a [`Schema`]: columns become positions, types are checked and
//! operands cast to a common type, `LIKE` patterns compiled. What is left for each row
//! is [`BoundExpr::eval`](super::eval).

use super::like::LikePattern;
use super::{BinaryOp, Expr};
use crate::row::{DataType, Schema, SchemaError, Value};

/// Why an expression cannot be bound to a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// A column the schema does not have (the message lists those it has).
    #[error(transparent)]
    Column(#[from] SchemaError),
    /// Operand types the operation does not take.
    #[error("{expr}: {message}")]
    Type {
        /// The expression, as SQL text.
        expr: String,
        /// What is wrong with its types.
        message: String,
    },
}

fn type_error(expr: &Expr, message: String) -> ExprError {
    ExprError::Type {
        expr: expr.to_string(),
        message,
    }
}

/// An expression resolved against a schema: ready to [`eval`](Self::eval)uate rows of
/// it. Built by [`Expr::bind`].
#[derive(Debug, Clone)]
pub struct BoundExpr {
    pub(super) node: Node,
    data_type: DataType,
}

/// The operation of a bound expression. Operands already have the types the operation
/// works in (casts inserted by binding).
#[derive(Debug, Clone)]
pub(super) enum Node {
    Column(usize),
    Literal(Value),
    /// `+ - * %` on two operands of `kind`.
    Arithmetic {
        op: BinaryOp,
        kind: DataType,
        operands: Box<[BoundExpr; 2]>,
    },
    /// `/` on two doubles.
    Divide(Box<[BoundExpr; 2]>),
    /// A comparison of two operands of one type.
    Compare {
        op: BinaryOp,
        operands: Box<[BoundExpr; 2]>,
    },
    And(Box<[BoundExpr; 2]>),
    Or(Box<[BoundExpr; 2]>),
    Not(Box<BoundExpr>),
    Negate(Box<BoundExpr>),
    IsNull {
        expr: Box<BoundExpr>,
        negated: bool,
    },
    InList {
        expr: Box<BoundExpr>,
        list: Vec<BoundExpr>,
        negated: bool,
    },
    Like {
        expr: Box<BoundExpr>,
        pattern: LikePattern,
        negated: bool,
    },
    Case {
        branches: Vec<(BoundExpr, BoundExpr)>,
        otherwise: Option<Box<BoundExpr>>,
    },
    Cast {
        expr: Box<BoundExpr>,
        from: DataType,
    },
}

impl BoundExpr {
    /// The type of the values it evaluates to.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The column this expression reads directly, if it is nothing else (a projection
    /// of plain columns can then move values without evaluating).
    pub fn as_column(&self) -> Option<usize> {
        match self.node {
            Node::Column(index) => Some(index),
            _ => None,
        }
    }

    fn new(node: Node, data_type: DataType) -> BoundExpr {
        BoundExpr { node, data_type }
    }

    /// `self` cast to `to` (itself if it already is one).
    fn cast_to(self, to: DataType) -> BoundExpr {
        if self.data_type == to {
            return self;
        }
        let from = self.data_type;
        if let Node::Literal(Value::Null) = self.node {
            return BoundExpr::new(Node::Literal(Value::Null), to);
        }
        BoundExpr::new(
            Node::Cast {
                expr: Box::new(self),
                from,
            },
            to,
        )
    }
}

/// The type of a literal; a null literal is typed by what it meets (binding casts it).
fn literal_type(value: &Value) -> DataType {
    value.data_type().unwrap_or(DataType::Null)
}

/// The numeric type both `a` and `b` widen to, if both are numbers (or null).
fn wider_numeric(a: DataType, b: DataType) -> Option<DataType> {
    let rank = |t: DataType| match t {
        DataType::Null => Some(0),
        DataType::Integer => Some(1),
        DataType::Long => Some(2),
        DataType::Double => Some(3),
        _ => None,
    };
    let (ra, rb) = (rank(a)?, rank(b)?);
    Some(match ra.max(rb) {
        0 | 1 => DataType::Integer,
        2 => DataType::Long,
        _ => DataType::Double,
    })
}

/// The type two compared (or combined, as `CASE` branches, `IN` items) values share.
fn common_type(a: DataType, b: DataType) -> Option<DataType> {
    if a == b {
        return Some(a);
    }
    match (a, b) {
        (DataType::Null, other) | (other, DataType::Null) => Some(other),
        (DataType::Date, DataType::Timestamp) | (DataType::Timestamp, DataType::Date) => {
            Some(DataType::Timestamp)
        }
        _ => wider_numeric(a, b),
    }
}

/// Whether a value of `from` can be cast to `to` (some casts still fail per value).
fn castable(from: DataType, to: DataType) -> bool {
    use DataType::*;
    match (from, to) {
        (a, b) if a == b => true,
        (Null, _) => true,
        (_, String) => true,
        (String, _) => true,
        (Boolean | Integer | Long | Double, Boolean | Integer | Long | Double) => true,
        (Date, Timestamp) | (Timestamp, Date) => true,
        (Timestamp, Long | Double) | (Integer | Long | Double, Timestamp) => true,
        _ => false,
    }
}

pub(super) fn bind(expr: &Expr, schema: &Schema) -> Result<BoundExpr, ExprError> {
    Ok(match expr {
        Expr::Column(name) => {
            let index = schema.index_of(name)?;
            BoundExpr::new(Node::Column(index), schema.fields()[index].data_type())
        }
        Expr::Literal(value) => BoundExpr::new(Node::Literal(value.clone()), literal_type(value)),
        Expr::Alias { expr, .. } => bind(expr, schema)?,
        Expr::Split { .. } => {
            return Err(type_error(
                expr,
                "split returns an array, which rows do not hold: use it as \
                 explode(split(..)), a select item"
                    .to_string(),
            ))
        }
        Expr::Explode(_) => {
            return Err(type_error(
                expr,
                "explode is a generator: it may only be a select item (at most one per \
                 select), not part of another expression or clause"
                    .to_string(),
            ))
        }
        Expr::Binary { op, left, right } => {
            let left_bound = bind(left, schema)?;
            let right_bound = bind(right, schema)?;
            bind_binary(expr, *op, left_bound, right_bound)?
        }
        Expr::Not(inner) => {
            let inner = boolean(bind(inner, schema)?, expr)?;
            BoundExpr::new(Node::Not(Box::new(inner)), DataType::Boolean)
        }
        Expr::Negate(inner) => {
            let inner = bind(inner, schema)?;
            let kind = wider_numeric(inner.data_type, DataType::Null)
                .ok_or_else(|| type_error(expr, format!("cannot negate {}", inner.data_type)))?;
            let inner = inner.cast_to(kind);
            BoundExpr::new(Node::Negate(Box::new(inner)), kind)
        }
        Expr::IsNull {
            expr: inner,
            negated,
        } => BoundExpr::new(
            Node::IsNull {
                expr: Box::new(bind(inner, schema)?),
                negated: *negated,
            },
            DataType::Boolean,
        ),
        Expr::InList {
            expr: inner,
            list,
            negated,
        } => {
            let value = bind(inner, schema)?;
            let items = list
                .iter()
                .map(|item| bind(item, schema))
                .collect::<Result<Vec<_>, _>>()?;
            let mut common = value.data_type;
            for item in &items {
                common = common_type(common, item.data_type).ok_or_else(|| {
                    type_error(
                        expr,
                        format!(
                            "cannot look for {} among values of type {}",
                            value.data_type, item.data_type
                        ),
                    )
                })?;
            }
            BoundExpr::new(
                Node::InList {
                    expr: Box::new(value.cast_to(common)),
                    list: items.into_iter().map(|item| item.cast_to(common)).collect(),
                    negated: *negated,
                },
                DataType::Boolean,
            )
        }
        Expr::Like {
            expr: inner,
            pattern,
            negated,
        } => {
            let text = bind(inner, schema)?;
            if !matches!(text.data_type, DataType::String | DataType::Null) {
                return Err(type_error(
                    expr,
                    format!("LIKE matches strings, not {}", text.data_type),
                ));
            }
            let pattern = LikePattern::new(pattern).map_err(|message| type_error(expr, message))?;
            BoundExpr::new(
                Node::Like {
                    expr: Box::new(text.cast_to(DataType::String)),
                    pattern,
                    negated: *negated,
                },
                DataType::Boolean,
            )
        }
        Expr::Case {
            branches,
            otherwise,
        } => {
            let mut bound = Vec::with_capacity(branches.len());
            let mut common = DataType::Null;
            for (condition, value) in branches {
                let condition = boolean(bind(condition, schema)?, expr)?;
                let value = bind(value, schema)?;
                common = common_type(common, value.data_type).ok_or_else(|| {
                    type_error(
                        expr,
                        format!(
                            "the branches give values of types {common} and {}",
                            value.data_type
                        ),
                    )
                })?;
                bound.push((condition, value));
            }
            let otherwise = match otherwise {
                Some(value) => {
                    let value = bind(value, schema)?;
                    common = common_type(common, value.data_type).ok_or_else(|| {
                        type_error(
                            expr,
                            format!(
                                "the branches give values of types {common} and {}",
                                value.data_type
                            ),
                        )
                    })?;
                    Some(value)
                }
                None => None,
            };
            BoundExpr::new(
                Node::Case {
                    branches: bound
                        .into_iter()
                        .map(|(condition, value)| (condition, value.cast_to(common)))
                        .collect(),
                    otherwise: otherwise.map(|value| Box::new(value.cast_to(common))),
                },
                common,
            )
        }
        Expr::Cast { expr: inner, to } => {
            let value = bind(inner, schema)?;
            if !castable(value.data_type, *to) {
                return Err(type_error(
                    expr,
                    format!("cannot cast {} to {to}", value.data_type),
                ));
            }
            value.cast_to(*to)
        }
    })
}

/// `bound` if it is a boolean (or a null, typed boolean).
fn boolean(bound: BoundExpr, expr: &Expr) -> Result<BoundExpr, ExprError> {
    match bound.data_type {
        DataType::Boolean => Ok(bound),
        DataType::Null => Ok(bound.cast_to(DataType::Boolean)),
        other => Err(type_error(
            expr,
            format!("a condition must be boolean, not {other}"),
        )),
    }
}

fn bind_binary(
    expr: &Expr,
    op: BinaryOp,
    left: BoundExpr,
    right: BoundExpr,
) -> Result<BoundExpr, ExprError> {
    let (lt, rt) = (left.data_type, right.data_type);
    match op {
        BinaryOp::And | BinaryOp::Or => {
            let operands = Box::new([boolean(left, expr)?, boolean(right, expr)?]);
            let node = if op == BinaryOp::And {
                Node::And(operands)
            } else {
                Node::Or(operands)
            };
            Ok(BoundExpr::new(node, DataType::Boolean))
        }
        BinaryOp::Divide => {
            wider_numeric(lt, rt)
                .ok_or_else(|| type_error(expr, format!("cannot divide {lt} by {rt}")))?;
            Ok(BoundExpr::new(
                Node::Divide(Box::new([
                    left.cast_to(DataType::Double),
                    right.cast_to(DataType::Double),
                ])),
                DataType::Double,
            ))
        }
        BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply | BinaryOp::Remainder => {
            let kind = wider_numeric(lt, rt).ok_or_else(|| {
                type_error(
                    expr,
                    format!("`{}` takes numbers, not {lt} and {rt}", op.symbol()),
                )
            })?;
            Ok(BoundExpr::new(
                Node::Arithmetic {
                    op,
                    kind,
                    operands: Box::new([left.cast_to(kind), right.cast_to(kind)]),
                },
                kind,
            ))
        }
        _ => {
            debug_assert!(op.is_comparison());
            let common = common_type(lt, rt).ok_or_else(|| {
                type_error(
                    expr,
                    format!(
                        "cannot compare {lt} with {rt} (cast one of them: rivulet does not \
                         convert strings to numbers or dates implicitly)"
                    ),
                )
            })?;
            Ok(BoundExpr::new(
                Node::Compare {
                    op,
                    operands: Box::new([left.cast_to(common), right.cast_to(common)]),
                },
                DataType::Boolean,
            ))
        }
    }
}
