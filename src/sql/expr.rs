//! sqlparser's expressions to rivulet's [`Expr`], aggregate calls collected on the way.

use super::{at, SqlError};
use crate::expr::{col, lit, Expr};
use crate::frame::{AggExpr, AggFunc};
use crate::row::{DataType, Value};
use sqlparser::ast::{
    self, BinaryOperator, CastKind, FunctionArg, FunctionArgExpr, FunctionArguments, Spanned,
    UnaryOperator,
};

/// A relation of the FROM clause: the names that qualify its columns (`s` in `s.psi`:
/// the view's name and alias), and its columns as the statement names them with the
/// names they have in the planned frame (different where an earlier relation of a join
/// has a column of the same name: `p.resid`).
#[derive(Debug, Clone)]
pub(super) struct Relation {
    pub(super) qualifiers: Vec<String>,
    pub(super) columns: Vec<(String, String)>,
}

impl Relation {
    /// Whether `name` qualifies this relation's columns.
    pub(super) fn is(&self, name: &str) -> bool {
        self.qualifiers.iter().any(|q| q.eq_ignore_ascii_case(name))
    }

    /// The planned name of the column `name`, if the relation has one.
    pub(super) fn column(&self, name: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(column, _)| column.eq_ignore_ascii_case(name))
            .map(|(_, planned)| planned.as_str())
    }
}

/// What an expression may refer to, and where its aggregate calls go.
pub(super) struct Scope<'a> {
    /// The relations of the FROM clause (none for a lone expression); with one, names
    /// are the frame's own.
    pub(super) relations: &'a [Relation],
    /// Where aggregate calls are collected (each becomes a column named as Spark names
    /// it, `max(hz)`); `None` where aggregates are not allowed, with the clause's name.
    pub(super) aggs: Result<&'a mut Vec<AggExpr>, &'static str>,
}

fn unsupported(what: impl Into<String>, node: &impl Spanned) -> SqlError {
    SqlError::Unsupported {
        construct: what.into(),
        position: at(node.span()),
    }
}

/// `expr` as a rivulet expression.
pub(super) fn convert(expr: &ast::Expr, scope: &mut Scope<'_>) -> Result<Expr, SqlError> {
    Ok(match expr {
        ast::Expr::Identifier(ident) => identifier(ident, scope, expr)?,
        ast::Expr::CompoundIdentifier(parts) => compound(parts, scope, expr)?,
        ast::Expr::Value(value) => literal(&value.value, expr)?,
        ast::Expr::Nested(inner) => convert(inner, scope)?,
        ast::Expr::BinaryOp { left, op, right } => {
            let (l, r) = (convert(left, scope)?, convert(right, scope)?);
            match op {
                BinaryOperator::Plus => l + r,
                BinaryOperator::Minus => l - r,
                BinaryOperator::Multiply => l * r,
                BinaryOperator::Divide => l / r,
                BinaryOperator::Modulo => l % r,
                BinaryOperator::Eq => l.eq(r),
                BinaryOperator::NotEq => l.not_eq(r),
                BinaryOperator::Lt => l.lt(r),
                BinaryOperator::LtEq => l.lt_eq(r),
                BinaryOperator::Gt => l.gt(r),
                BinaryOperator::GtEq => l.gt_eq(r),
                BinaryOperator::And => l.and(r),
                BinaryOperator::Or => l.or(r),
                other => return Err(unsupported(format!("the operator `{other}`"), expr)),
            }
        }
        ast::Expr::UnaryOp { op, expr: inner } => match (op, &**inner) {
            (UnaryOperator::Not, _) => convert(inner, scope)?.not(),
            (UnaryOperator::Plus, _) => convert(inner, scope)?,
            (UnaryOperator::Minus, ast::Expr::Value(v)) => match &v.value {
                ast::Value::Number(text, _) => number(&format!("-{text}"), expr)?,
                _ => -convert(inner, scope)?,
            },
            (UnaryOperator::Minus, _) => -convert(inner, scope)?,
            (other, _) => return Err(unsupported(format!("the operator `{other}`"), expr)),
        },
        ast::Expr::IsNull(inner) => convert(inner, scope)?.is_null(),
        ast::Expr::IsNotNull(inner) => convert(inner, scope)?.is_not_null(),
        ast::Expr::In {
            expr: inner,
            target: ast::InTarget::List(list),
            negated,
            global: false,
        } => Expr::InList {
            expr: Box::new(convert(inner, scope)?),
            list: list
                .iter()
                .map(|item| convert(item, scope))
                .collect::<Result<_, _>>()?,
            negated: *negated,
        },
        ast::Expr::Between {
            expr: inner,
            negated,
            low,
            high,
        } => {
            let value = convert(inner, scope)?;
            let within = value
                .clone()
                .gt_eq(convert(low, scope)?)
                .and(value.lt_eq(convert(high, scope)?));
            if *negated {
                within.not()
            } else {
                within
            }
        }
        ast::Expr::Like {
            negated,
            any: false,
            expr: inner,
            pattern,
            escape_char: None,
        } => {
            let text = match &**pattern {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                        s.clone()
                    }
                    _ => {
                        return Err(unsupported(
                            "LIKE with a pattern that is not a string constant",
                            &**pattern,
                        ))
                    }
                },
                _ => {
                    return Err(unsupported(
                        "LIKE with a pattern that is not a string constant",
                        &**pattern,
                    ))
                }
            };
            Expr::Like {
                expr: Box::new(convert(inner, scope)?),
                pattern: text,
                negated: *negated,
            }
        }
        ast::Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let operand = operand.as_deref().map(|o| convert(o, scope)).transpose()?;
            let mut branches = Vec::with_capacity(conditions.len());
            for when in conditions {
                let condition = convert(&when.condition, scope)?;
                let condition = match &operand {
                    Some(operand) => operand.clone().eq(condition),
                    None => condition,
                };
                branches.push((condition, convert(&when.result, scope)?));
            }
            Expr::Case {
                branches,
                otherwise: else_result
                    .as_deref()
                    .map(|e| convert(e, scope).map(Box::new))
                    .transpose()?,
            }
        }
        ast::Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr: inner,
            data_type,
            format: None,
        } => convert(inner, scope)?.cast(data_type_of(data_type, expr)?),
        ast::Expr::Function(function) => return call(function, scope, expr),
        ast::Expr::Interval(_) => {
            return Err(unsupported(
                format!(
                    "`{expr}` outside the time condition of a JOIN of two streams (INTERVAL \
                     offsets an event-time column there: b.t <= a.t + INTERVAL 1 HOUR)"
                ),
                expr,
            ))
        }
        other => {
            let text = other.to_string();
            let shown: String = text.chars().take(40).collect();
            return Err(unsupported(format!("the expression `{shown}`"), other));
        }
    })
}

/// `q.c`: a column of the table `q`, or `window.start` / `window.end`.
fn compound(parts: &[ast::Ident], scope: &Scope<'_>, expr: &ast::Expr) -> Result<Expr, SqlError> {
    match parts {
        [window, field]
            if window.value.eq_ignore_ascii_case("window")
                && (field.value.eq_ignore_ascii_case("start")
                    || field.value.eq_ignore_ascii_case("end")) =>
        {
            Ok(col(&format!("window_{}", field.value.to_ascii_lowercase())))
        }
        [table, column] => {
            let qualifiers = || {
                scope
                    .relations
                    .iter()
                    .flat_map(|r| r.qualifiers.iter().cloned())
                    .collect()
            };
            match scope.relations.iter().find(|r| r.is(&table.value)) {
                None => Err(SqlError::UnknownName {
                    name: table.value.clone(),
                    position: at(expr.span()),
                    known: qualifiers(),
                }),
                Some(relation) => match relation.column(&column.value) {
                    // One relation: binding reports the unknown column, listing those
                    // there are.
                    None if scope.relations.len() == 1 => Ok(col(&column.value)),
                    Some(planned) => Ok(col(planned)),
                    None => Err(SqlError::UnknownName {
                        name: format!("{}.{}", table.value, column.value),
                        position: at(expr.span()),
                        known: relation.columns.iter().map(|(c, _)| c.clone()).collect(),
                    }),
                },
            }
        }
        _ => Err(unsupported(format!("the name `{expr}`"), expr)),
    }
}

/// An unqualified column: the frame's own name with one relation; in a join, the
/// column of the one relation that has it.
fn identifier(ident: &ast::Ident, scope: &Scope<'_>, expr: &ast::Expr) -> Result<Expr, SqlError> {
    if let [relation] = scope.relations {
        return Ok(col(relation.column(&ident.value).unwrap_or(&ident.value)));
    }
    let mut found = scope
        .relations
        .iter()
        .filter_map(|r| r.column(&ident.value).map(|planned| (r, planned)));
    match (found.next(), found.next()) {
        (Some((_, planned)), None) => Ok(col(planned)),
        // Unknown: binding names the columns there are.
        (None, _) => Ok(col(&ident.value)),
        (Some((first, _)), Some((second, _))) => Err(SqlError::Ambiguous {
            name: ident.value.clone(),
            position: at(expr.span()),
            qualifiers: vec![first.qualifiers[0].clone(), second.qualifiers[0].clone()],
        }),
    }
}

fn number(text: &str, node: &impl Spanned) -> Result<Expr, SqlError> {
    let is_integer = text
        .trim_start_matches('-')
        .bytes()
        .all(|b| b.is_ascii_digit());
    if is_integer {
        if let Ok(n) = text.parse::<i32>() {
            return Ok(lit(n));
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(lit(n));
        }
    }
    text.parse::<f64>()
        .map(lit)
        .map_err(|_| unsupported(format!("the number `{text}`"), node))
}

fn literal(value: &ast::Value, expr: &ast::Expr) -> Result<Expr, SqlError> {
    Ok(match value {
        ast::Value::Number(text, _) => number(text, expr)?,
        // Spark reads "…" as a string, as '…'.
        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => lit(s.as_str()),
        ast::Value::Boolean(b) => lit(*b),
        ast::Value::Null => Expr::Literal(Value::Null),
        other => return Err(unsupported(format!("the literal `{other}`"), expr)),
    })
}

fn data_type_of(data_type: &ast::DataType, expr: &ast::Expr) -> Result<DataType, SqlError> {
    let text = data_type.to_string().to_ascii_uppercase();
    Ok(match text.as_str() {
        "INT" | "INTEGER" => DataType::Integer,
        "BIGINT" | "LONG" => DataType::Long,
        "DOUBLE" => DataType::Double,
        "STRING" => DataType::String,
        "BOOLEAN" => DataType::Boolean,
        "TIMESTAMP" => DataType::Timestamp,
        "DATE" => DataType::Date,
        _ => return Err(unsupported(format!("CAST to {text}"), expr)),
    })
}

/// The arguments of a plain call `f(a, b)`, or `None` for `f(*)`.
pub(super) fn plain_args<'f>(
    function: &'f ast::Function,
    expr: &ast::Expr,
) -> Result<Option<Vec<&'f ast::Expr>>, SqlError> {
    let name = function.name.to_string();
    if function.filter.is_some()
        || function.over.is_some()
        || function.null_treatment.is_some()
        || !function.within_group.is_empty()
        || !matches!(function.parameters, FunctionArguments::None)
    {
        return Err(unsupported(
            format!("`{name}` with FILTER, OVER, WITHIN GROUP or parameters"),
            expr,
        ));
    }
    let list = match &function.args {
        FunctionArguments::List(list) => list,
        FunctionArguments::None => return Ok(Some(Vec::new())),
        FunctionArguments::Subquery(_) => {
            return Err(unsupported(
                format!("a subquery as `{name}`'s argument"),
                expr,
            ))
        }
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return Err(unsupported(
            format!("`{name}` with DISTINCT, ALL or clauses in its arguments"),
            expr,
        ));
    }
    let mut args = Vec::with_capacity(list.args.len());
    for arg in &list.args {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
            FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if list.args.len() == 1 => {
                return Ok(None)
            }
            _ => {
                return Err(unsupported(
                    format!("the argument `{arg}` of `{name}`"),
                    expr,
                ))
            }
        }
    }
    Ok(Some(args))
}

fn call(
    function: &ast::Function,
    scope: &mut Scope<'_>,
    expr: &ast::Expr,
) -> Result<Expr, SqlError> {
    let name = function.name.to_string();
    if name.eq_ignore_ascii_case("split") || name.eq_ignore_ascii_case("explode") {
        return generator_call(&name, function, scope, expr);
    }
    let Some(func) = AggFunc::from_name(&name) else {
        if name.eq_ignore_ascii_case("window") {
            return Err(unsupported(
                "window(..) outside GROUP BY and the SELECT list of a query grouped by it",
                expr,
            ));
        }
        return Err(unsupported(format!("the function `{name}`"), expr));
    };
    let args = plain_args(function, expr)?;
    let agg = match args.as_deref() {
        None if func == AggFunc::Count => AggExpr::new(func, None),
        Some([arg]) => {
            // Spark's count(1) (any non-null constant) counts rows, as count(*).
            let mut inner = Scope {
                relations: scope.relations,
                aggs: Err("the argument of an aggregate"),
            };
            let arg = convert(arg, &mut inner)?;
            match (&arg, func) {
                (Expr::Literal(value), AggFunc::Count) if !value.is_null() => {
                    AggExpr::new(func, None)
                }
                _ => AggExpr::new(func, Some(arg)),
            }
        }
        _ => {
            return Err(SqlError::Unsupported {
                construct: format!("`{name}` takes one argument"),
                position: at(expr.span()),
            })
        }
    };
    match &mut scope.aggs {
        Ok(aggs) => {
            let column = agg.output_name();
            if !aggs.contains(&agg) {
                aggs.push(agg);
            }
            Ok(col(&column))
        }
        Err(clause) => Err(SqlError::Unsupported {
            construct: format!("the aggregate `{expr}` in {clause}"),
            position: at(expr.span()),
        }),
    }
}

/// `split(str, 'pattern')` and `explode(array)`: a select's generator (the DataFrame
/// layer refuses them anywhere else, naming the expression).
fn generator_call(
    name: &str,
    function: &ast::Function,
    scope: &mut Scope<'_>,
    expr: &ast::Expr,
) -> Result<Expr, SqlError> {
    let args = plain_args(function, expr)?.unwrap_or_default();
    if name.eq_ignore_ascii_case("explode") {
        return match args.as_slice() {
            [array] => Ok(crate::expr::explode(convert(array, scope)?)),
            _ => Err(unsupported("`explode` takes one argument", expr)),
        };
    }
    match args.as_slice() {
        [text, pattern] => match convert(pattern, scope)? {
            Expr::Literal(Value::String(pattern)) => {
                Ok(crate::expr::split(convert(text, scope)?, &pattern))
            }
            _ => Err(unsupported(
                "`split` with a pattern that is not a string constant",
                expr,
            )),
        },
        _ => Err(unsupported(
            "`split` with other than two arguments (a string and a constant pattern; \
             no limit)",
            expr,
        )),
    }
}
