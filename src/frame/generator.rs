//! The generator of a select, `explode(split(s, pattern))`: recognised among the
//! items and bound (the string, the pattern compiled once).

use super::compiled::Compiled;
use super::FrameError;
use crate::expr::{Expr, ExprError};
use crate::row::{DataType, Schema};

/// `(column name, the exploded array)` if `expr` is a generator item: `explode(a)` or
/// `explode(a) AS name`.
pub(super) fn as_generator(expr: &Expr) -> Option<(String, &Expr)> {
    match expr {
        Expr::Explode(array) => Some((expr.output_name(), array)),
        Expr::Alias { expr: inner, name } => match &**inner {
            Expr::Explode(array) => Some((name.clone(), array)),
            _ => None,
        },
        _ => None,
    }
}

/// The string and the compiled pattern of `explode`'s argument, which must be a
/// `split(string, pattern)`.
pub(super) fn bind_split(
    array: &Expr,
    schema: &Schema,
) -> Result<(Compiled, regex::Regex), FrameError> {
    let type_error = |message: String| {
        FrameError::Expr(ExprError::Type {
            expr: format!("explode({array})"),
            message,
        })
    };
    let Expr::Split { expr, pattern } = array else {
        return Err(type_error(
            "explode takes an array, and split(..) is the only one rows make".to_string(),
        ));
    };
    let bound = expr.bind(schema)?;
    if !matches!(bound.data_type(), DataType::String | DataType::Null) {
        return Err(type_error(format!(
            "split takes a string, not {}",
            bound.data_type()
        )));
    }
    let regex = regex::Regex::new(pattern).map_err(|error| {
        type_error(format!("the pattern `{pattern}` does not compile: {error}"))
    })?;
    if regex.is_match("") {
        return Err(type_error(format!(
            "the pattern `{pattern}` matches the empty string; Spark (Java) and rivulet \
             would cut at empty matches differently, so it is refused"
        )));
    }
    Ok((Compiled::new(bound, expr.to_string()), regex))
}
