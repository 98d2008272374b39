//! `JOIN` of two streaming views (and [`DataFrame::join_expr`]): the ON condition taken
//! apart into the equal keys, the time bounds between the two sides' event-time columns
//! and the rest, planned onto [`DataFrame::join`].

use super::expr::{self, Relation, Scope};
use super::{conjuncts, parse_ast, unsupported, SqlError};
use crate::expr::Expr;
use crate::frame::{parse_duration, DataFrame, JoinCondition, JoinType};
use crate::row::Schema;
use sqlparser::ast::{self, BinaryOperator};

/// The two sides of a join as the ON condition sees them.
struct Sides<'a> {
    /// The relations of the left side (the FROM view and what it was joined with).
    left: &'a [Relation],
    /// The right side's relation.
    right: &'a Relation,
    left_schema: &'a Schema,
    right_schema: &'a Schema,
    /// The planned names of the sides' event-time columns, where they have one.
    left_time: Option<String>,
    right_time: Option<String>,
}

/// A time term: a side's event-time column plus an offset in µs.
#[derive(Debug, Clone, Copy)]
struct TimeTerm {
    left: bool,
    offset: i64,
}

impl Sides<'_> {
    fn all(&self) -> Vec<Relation> {
        let mut all = self.left.to_vec();
        all.push(self.right.clone());
        all
    }

    /// `e` as an expression of one side's rows, if it is one.
    fn side_expr(&self, e: &ast::Expr, left: bool) -> Option<Expr> {
        let (relations, schema) = if left {
            (self.left, self.left_schema)
        } else {
            (std::slice::from_ref(self.right), self.right_schema)
        };
        let mut scope = Scope {
            relations,
            aggs: Err("ON"),
        };
        expr::convert(e, &mut scope)
            .ok()
            .filter(|converted| converted.bind(schema).is_ok())
    }

    /// `a = b` as a pair of equal keys (left, right), if it is one.
    fn key(&self, a: &ast::Expr, b: &ast::Expr) -> Option<(Expr, Expr)> {
        if let (Some(l), Some(r)) = (self.side_expr(a, true), self.side_expr(b, false)) {
            return Some((l, r));
        }
        if let (Some(l), Some(r)) = (self.side_expr(b, true), self.side_expr(a, false)) {
            return Some((l, r));
        }
        None
    }

    /// `e` as a time term (`t`, `t + INTERVAL …`, `t - INTERVAL …`), if it is one.
    fn time_term(&self, e: &ast::Expr) -> Result<Option<TimeTerm>, SqlError> {
        Ok(match e {
            ast::Expr::Nested(inner) => self.time_term(inner)?,
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                let relations = self.all();
                let mut scope = Scope {
                    relations: &relations,
                    aggs: Err("ON"),
                };
                let Ok(Expr::Column(name)) = expr::convert(e, &mut scope) else {
                    return Ok(None);
                };
                let is = |time: &Option<String>| {
                    time.as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case(&name))
                };
                if is(&self.left_time) {
                    Some(TimeTerm {
                        left: true,
                        offset: 0,
                    })
                } else if is(&self.right_time) {
                    Some(TimeTerm {
                        left: false,
                        offset: 0,
                    })
                } else {
                    None
                }
            }
            ast::Expr::BinaryOp {
                left: a,
                op: op @ (BinaryOperator::Plus | BinaryOperator::Minus),
                right: b,
            } => match (&**a, &**b) {
                (term, ast::Expr::Interval(interval)) => match self.time_term(term)? {
                    Some(t) => {
                        let d = interval_micros(interval, b)?;
                        let offset = if *op == BinaryOperator::Plus {
                            t.offset.saturating_add(d)
                        } else {
                            t.offset.saturating_sub(d)
                        };
                        Some(TimeTerm { offset, ..t })
                    }
                    None => None,
                },
                (ast::Expr::Interval(interval), term) if *op == BinaryOperator::Plus => {
                    match self.time_term(term)? {
                        Some(t) => Some(TimeTerm {
                            offset: t.offset.saturating_add(interval_micros(interval, a)?),
                            ..t
                        }),
                        None => None,
                    }
                }
                _ => None,
            },
            _ => None,
        })
    }

    fn times(&self) -> String {
        let name = |t: &Option<String>| {
            t.as_deref()
                .map_or("none: no with_watermark".to_string(), |t| format!("`{t}`"))
        };
        format!(
            "left {}, right {}",
            name(&self.left_time),
            name(&self.right_time)
        )
    }

    /// `a op b` between two time terms as bounds on `left.time - right.time`; `Ok(false)`
    /// if `a` and `b` are not both time terms (the conjunct is then not a time bound).
    fn bound(
        &self,
        a: &ast::Expr,
        op: &BinaryOperator,
        b: &ast::Expr,
        node: &ast::Expr,
        on: &mut JoinCondition,
    ) -> Result<bool, SqlError> {
        let (ta, tb) = (self.time_term(a)?, self.time_term(b)?);
        let (Some(ta), Some(tb)) = (ta, tb) else {
            if has_interval(a) || has_interval(b) {
                return Err(unsupported(
                    format!(
                        "this time condition: a stream–stream join's time condition compares \
                         the two sides' event-time columns ({}), with INTERVAL offsets",
                        self.times()
                    ),
                    node,
                ));
            }
            return Ok(false);
        };
        if ta.left == tb.left {
            return Err(unsupported(
                "a time condition between two times of one side (it does not relate the two \
                 sides' rows; filter in WHERE)",
                node,
            ));
        }
        // a.t + oa  op  b.t + ob, as left.t - right.t  op'  bound.
        let (op, bound) = if ta.left {
            (op.clone(), tb.offset.saturating_sub(ta.offset))
        } else {
            (flip(op), ta.offset.saturating_sub(tb.offset))
        };
        *on = match op {
            BinaryOperator::LtEq => on.clone().time_at_most(bound),
            BinaryOperator::Lt => on.clone().time_at_most(bound.saturating_sub(1)),
            BinaryOperator::GtEq => on.clone().time_at_least(bound),
            BinaryOperator::Gt => on.clone().time_at_least(bound.saturating_add(1)),
            BinaryOperator::Eq => on.clone().time_at_least(bound).time_at_most(bound),
            _ => return Ok(false),
        };
        Ok(true)
    }

    /// The ON condition taken apart (see the module docs).
    fn condition(&self, on: &ast::Expr) -> Result<JoinCondition, SqlError> {
        let mut keys = Vec::new();
        let mut condition = JoinCondition::keys([]);
        let mut residual: Vec<Expr> = Vec::new();
        for conjunct in conjuncts(on) {
            let handled = match conjunct {
                ast::Expr::BinaryOp {
                    left: a,
                    op: BinaryOperator::Eq,
                    right: b,
                } => match self.key(a, b) {
                    Some(key) => {
                        keys.push(key);
                        true
                    }
                    None if has_interval(a) || has_interval(b) => {
                        self.bound(a, &BinaryOperator::Eq, b, conjunct, &mut condition)?
                    }
                    None => false,
                },
                ast::Expr::BinaryOp {
                    left: a,
                    op:
                        op @ (BinaryOperator::Lt
                        | BinaryOperator::LtEq
                        | BinaryOperator::Gt
                        | BinaryOperator::GtEq),
                    right: b,
                } => self.bound(a, op, b, conjunct, &mut condition)?,
                ast::Expr::Between {
                    expr: value,
                    negated: false,
                    low,
                    high,
                } => {
                    // Both halves looked at: an INTERVAL in either is refused if it is
                    // not a time condition.
                    let mut both = condition.clone();
                    let low = self.bound(value, &BinaryOperator::GtEq, low, conjunct, &mut both)?;
                    let high =
                        self.bound(value, &BinaryOperator::LtEq, high, conjunct, &mut both)?;
                    if low && high {
                        condition = both;
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            };
            if !handled {
                let relations = self.all();
                let mut scope = Scope {
                    relations: &relations,
                    aggs: Err("ON"),
                };
                residual.push(expr::convert(conjunct, &mut scope)?);
            }
        }
        if keys.is_empty() {
            return Err(unsupported(
                "a JOIN of two streams without an equality between the two sides (Spark plans \
                 stream–stream joins as equi-joins: add a.key = b.key to ON)",
                on,
            ));
        }
        let (lower, upper) = condition.time_bounds();
        let mut on_condition = JoinCondition::keys(keys);
        if let Some(lower) = lower {
            on_condition = on_condition.time_at_least(lower);
        }
        if let Some(upper) = upper {
            on_condition = on_condition.time_at_most(upper);
        }
        for r in residual {
            on_condition = on_condition.and(r);
        }
        Ok(on_condition)
    }
}

/// `a op b` read as `b op' a`.
fn flip(op: &BinaryOperator) -> BinaryOperator {
    match op {
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        other => other.clone(),
    }
}

/// Whether `e` holds an `INTERVAL` (in the shapes a time condition takes).
fn has_interval(e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Interval(_) => true,
        ast::Expr::Nested(inner) => has_interval(inner),
        ast::Expr::BinaryOp { left, right, .. } => has_interval(left) || has_interval(right),
        ast::Expr::UnaryOp { expr, .. } => has_interval(expr),
        _ => false,
    }
}

/// Spark's interval literal (`INTERVAL 1 HOUR`, `INTERVAL '10' MINUTE`,
/// `INTERVAL '1 hour 30 minutes'`) in µs.
fn interval_micros(interval: &ast::Interval, node: &ast::Expr) -> Result<i64, SqlError> {
    let refuse = |why: String| unsupported(format!("the interval `{interval}`: {why}"), node);
    if interval.last_field.is_some()
        || interval.leading_precision.is_some()
        || interval.fractional_seconds_precision.is_some()
    {
        return Err(refuse(
            "write a whole number and one unit (INTERVAL 1 HOUR, INTERVAL '10' MINUTE)".into(),
        ));
    }
    let value = match &*interval.value {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.clone(),
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            _ => return Err(refuse("not a number or a string".into())),
        },
        _ => return Err(refuse("not a number or a string".into())),
    };
    let text = match &interval.leading_field {
        None => value,
        Some(unit) => format!("{value} {unit}"),
    };
    let duration = parse_duration(&text).map_err(|error| refuse(error.to_string()))?;
    Ok(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX / 4))
}

/// The name of a frame's event-time column, if it has one.
fn time_column(frame: &DataFrame) -> Option<String> {
    frame
        .event_time_column()
        .map(|i| frame.schema().fields()[i].name().to_string())
}

/// What the join type needs of the time bounds, refused at the ON condition.
fn check_bounds(on: &JoinCondition, how: JoinType, node: &ast::Expr) -> Result<(), SqlError> {
    let (lower, upper) = on.time_bounds();
    let (left, right) = match how {
        JoinType::LeftOuter => (true, false),
        JoinType::RightOuter => (false, true),
        JoinType::FullOuter => (true, true),
        _ => (false, false),
    };
    let name = match how {
        JoinType::LeftOuter => "LEFT OUTER",
        JoinType::RightOuter => "RIGHT OUTER",
        _ => "FULL OUTER",
    };
    if left && lower.is_none() {
        return Err(unsupported(
            format!(
                "a {name} JOIN of two streams without a time condition that bounds how late a \
                 matching right row can be (right.t <= left.t + INTERVAL …, or right.t \
                 BETWEEN left.t AND left.t + INTERVAL …): no left row would ever be known to \
                 have no match (Spark refuses it too)"
            ),
            node,
        ));
    }
    if right && upper.is_none() {
        return Err(unsupported(
            format!(
                "a {name} JOIN of two streams without a time condition that bounds how late a \
                 matching left row can be (left.t <= right.t + INTERVAL …): no right row \
                 would ever be known to have no match (Spark refuses it too)"
            ),
            node,
        ));
    }
    Ok(())
}

/// `left JOIN right ON on` of two streams (`right`'s columns renamed where an earlier
/// relation has the name: `qualifier.column`); the joined frame and `right`'s relation.
pub(super) fn join_streams(
    left: DataFrame,
    relations: &[Relation],
    right: DataFrame,
    qualifiers: Vec<String>,
    on: &ast::Expr,
    how: JoinType,
) -> Result<(DataFrame, Relation), SqlError> {
    let qualifier = qualifiers.last().cloned().unwrap_or_default();
    let columns: Vec<(String, String)> = right
        .columns()
        .into_iter()
        .map(|c| {
            let clash = relations.iter().any(|r| r.column(&c).is_some());
            let planned = if clash {
                format!("{qualifier}.{c}")
            } else {
                c.clone()
            };
            (c, planned)
        })
        .collect();
    let planned: Vec<String> = columns.iter().map(|(_, p)| p.clone()).collect();
    let right = right.renamed(&planned)?;
    let relation = Relation {
        qualifiers,
        columns,
    };
    let sides = Sides {
        left: relations,
        right: &relation,
        left_schema: left.schema(),
        right_schema: right.schema(),
        left_time: time_column(&left),
        right_time: time_column(&right),
    };
    let condition = sides.condition(on)?;
    check_bounds(&condition, how, on)?;
    Ok((left.join(right, condition, how)?, relation))
}

impl DataFrame {
    /// [`join`](Self::join) with the condition as SQL text, as Spark's
    /// `impressions.join(clicks, expr("clickAdId = impressionAdId AND clickTime >=
    /// impressionTime AND clickTime <= impressionTime + interval 1 hour"), "leftOuter")`
    /// writes it: equalities between the two frames' columns are the keys; comparisons
    /// (`<`, `<=`, `>`, `>=`, `=`, `BETWEEN`) between the frames' event-time columns,
    /// with `INTERVAL` offsets, are the time bounds; the rest is the residual condition.
    /// Column names are the frames' own (no qualifiers).
    ///
    /// ```
    /// # use rivulet::frame::{DataFrame, JoinType};
    /// # use rivulet::row::{DataType, Field, Row, Schema};
    /// # use std::sync::Arc;
    /// let schema = |id: &str, time: &str| {
    ///     Arc::new(Schema::new([
    ///         Field::new(id, DataType::Long),
    ///         Field::new(time, DataType::Timestamp),
    ///     ]).unwrap())
    /// };
    /// let mut query = rivulet::Query::builder();
    /// let impressions = DataFrame::new(query.from_iter("i", Vec::<Row>::new()), schema("impressionAdId", "impressionTime"))
    ///     .with_watermark("impressionTime", "2 hours")?;
    /// let clicks = DataFrame::new(query.from_iter("c", Vec::<Row>::new()), schema("clickAdId", "clickTime"))
    ///     .with_watermark("clickTime", "3 hours")?;
    /// let joined = impressions.join_expr(
    ///     clicks,
    ///     "clickAdId = impressionAdId AND clickTime >= impressionTime AND \
    ///      clickTime <= impressionTime + interval 1 hour",
    ///     JoinType::LeftOuter,
    /// )?;
    /// assert_eq!(joined.columns().len(), 4);
    /// # joined.to_memory("joined");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Text that does not parse, a condition without an equality between the frames,
    /// an outer join without the time bound it needs, or what [`join`](Self::join)
    /// refuses.
    pub fn join_expr(
        self,
        other: DataFrame,
        condition: &str,
        how: JoinType,
    ) -> Result<DataFrame, SqlError> {
        let on = parse_ast(condition)?;
        let own = |frame: &DataFrame| Relation {
            qualifiers: Vec::new(),
            columns: frame
                .columns()
                .into_iter()
                .map(|c| (c.clone(), c))
                .collect(),
        };
        let (left_relation, right_relation) = (own(&self), own(&other));
        let sides = Sides {
            left: std::slice::from_ref(&left_relation),
            right: &right_relation,
            left_schema: self.schema(),
            right_schema: other.schema(),
            left_time: time_column(&self),
            right_time: time_column(&other),
        };
        let joined = sides.condition(&on)?;
        check_bounds(&joined, how, &on)?;
        Ok(self.join(other, joined, how)?)
    }
}
