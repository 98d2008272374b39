//! Expressions over rows against Spark SQL's documented results (ANSI mode, Spark 4's
//! default) and, for random rows, against the same predicates written as plain Rust.

mod common;

use common::Rng;
use rivulet::expr::{col, lit, when, EvalError, Expr, ExprError};
use rivulet::row::{DataType, Field, Row, Schema, Value};

fn schema() -> Schema {
    Schema::new([
        Field::new("i", DataType::Integer),
        Field::new("l", DataType::Long),
        Field::new("d", DataType::Double),
        Field::new("s", DataType::String),
        Field::new("b", DataType::Boolean),
        Field::new("chlPPM", DataType::Double),
    ])
    .unwrap()
}

fn row(i: Option<i32>, l: Option<i64>, d: Option<f64>, s: Option<&str>, b: Option<bool>) -> Row {
    Row::new(vec![
        i.into(),
        l.into(),
        d.into(),
        s.into(),
        b.into(),
        Value::Double(1.5),
    ])
}

fn eval(expr: Expr, row: &Row) -> Result<Value, EvalError> {
    expr.bind(&schema()).expect("binds").eval(row)
}

fn null() -> Expr {
    lit(Value::Null)
}

#[test]
fn three_valued_logic() {
    let r = row(None, None, None, None, None);
    let t = || lit(true);
    let f = || lit(false);
    let cases = [
        (null().and(f()), Value::Boolean(false)),
        (f().and(null()), Value::Boolean(false)),
        (null().and(t()), Value::Null),
        (null().or(t()), Value::Boolean(true)),
        (t().or(null()), Value::Boolean(true)),
        (null().or(f()), Value::Null),
        (null().not(), Value::Null),
        (col("b").is_null(), Value::Boolean(true)),
        (col("b").is_not_null(), Value::Boolean(false)),
        (col("i").eq(col("i")), Value::Null),
    ];
    for (expr, expected) in cases {
        let text = expr.to_string();
        assert_eq!(eval(expr, &r).unwrap(), expected, "{text}");
    }
}

#[test]
fn in_lists_with_nulls() {
    let r = row(Some(2), None, None, None, None);
    let cases = [
        (lit(1).is_in([lit(1), null()]), Value::Boolean(true)),
        (col("i").is_in([lit(1), null()]), Value::Null),
        (col("i").is_in([lit(1), lit(3)]), Value::Boolean(false)),
        (col("i").is_in([lit(1i64), lit(2.0)]), Value::Boolean(true)),
        (col("l").is_in([lit(1)]), Value::Null),
        (
            Expr::InList {
                expr: Box::new(col("i")),
                list: vec![lit(1), null()],
                negated: true,
            },
            Value::Null,
        ),
        (
            Expr::InList {
                expr: Box::new(col("i")),
                list: vec![lit(1), lit(3)],
                negated: true,
            },
            Value::Boolean(true),
        ),
    ];
    for (expr, expected) in cases {
        let text = expr.to_string();
        assert_eq!(eval(expr, &r).unwrap(), expected, "{text}");
    }
}

#[test]
fn arithmetic_types_and_ansi_errors() {
    let r = row(Some(7), Some(1 << 40), Some(0.5), Some(" 12 "), Some(true));
    let ok = [
        (lit(7) / lit(2), Value::Double(3.5)),
        (col("i") % lit(3), Value::Integer(1)),
        (lit(-7) % lit(3), Value::Integer(-1)),
        (col("i") + col("l"), Value::Long(7 + (1 << 40))),
        (col("i") * col("d"), Value::Double(3.5)),
        (-col("i"), Value::Integer(-7)),
        (col("i") + null(), Value::Null),
        (col("s").cast(DataType::Integer), Value::Integer(12)),
        (lit(3.9).cast(DataType::Integer), Value::Integer(3)),
        (lit(-3.9).cast(DataType::Integer), Value::Integer(-3)),
        (lit("YES").cast(DataType::Boolean), Value::Boolean(true)),
        (col("d").cast(DataType::String), Value::string("0.5")),
        (
            lit(1i64 << 40).cast(DataType::Double),
            Value::Double(1099511627776.0),
        ),
    ];
    for (expr, expected) in ok {
        let text = expr.to_string();
        assert_eq!(eval(expr, &r).unwrap(), expected, "{text}");
    }
    let overflow = eval(lit(i32::MAX) + lit(1), &r).unwrap_err();
    assert!(matches!(overflow, EvalError::Overflow(_)), "{overflow}");
    assert_eq!(
        eval(lit(1) / lit(0), &r).unwrap_err(),
        EvalError::DivideByZero
    );
    assert_eq!(
        eval(lit(1) % lit(0), &r).unwrap_err(),
        EvalError::DivideByZero
    );
    assert!(matches!(
        eval(lit("abc").cast(DataType::Integer), &r).unwrap_err(),
        EvalError::Cast { .. }
    ));
    assert!(matches!(
        eval(lit(1e10).cast(DataType::Integer), &r).unwrap_err(),
        EvalError::Cast { .. }
    ));
}

#[test]
fn doubles_compare_as_spark_does() {
    let r = row(None, None, Some(f64::NAN), None, None);
    assert_eq!(
        eval(col("d").eq(lit(f64::NAN)), &r).unwrap(),
        Value::Boolean(true)
    );
    assert_eq!(
        eval(col("d").gt(lit(1e308)), &r).unwrap(),
        Value::Boolean(true)
    );
    assert_eq!(
        eval(lit(0.0).eq(lit(-0.0)), &r).unwrap(),
        Value::Boolean(true)
    );
    assert_eq!(eval(lit(1).lt(lit(1.5)), &r).unwrap(), Value::Boolean(true));
}

#[test]
fn case_when_and_like() {
    let r = row(Some(5), None, None, Some("COHUTTA"), None);
    let level = when(col("b"), lit("flag"))
        .when(col("i").gt(lit(3)), lit("high"))
        .otherwise(lit("low"));
    assert_eq!(
        eval(level, &r).unwrap(),
        Value::string("high"),
        "a null condition does not match"
    );
    let no_else = when(col("i").lt(lit(0)), lit(1));
    assert_eq!(eval(no_else, &r).unwrap(), Value::Null);
    let mixed = when(col("i").lt(lit(0)), lit(1)).otherwise(lit(2.5));
    let bound = mixed.bind(&schema()).unwrap();
    assert_eq!(bound.data_type(), DataType::Double);
    assert_eq!(bound.eval(&r).unwrap(), Value::Double(2.5));
    assert_eq!(
        eval(col("s").like("%HUT%"), &r).unwrap(),
        Value::Boolean(true)
    );
    assert_eq!(
        eval(col("S").like("C_H%A"), &r).unwrap(),
        Value::Boolean(true)
    );
    let nulls = row(None, None, None, None, None);
    assert_eq!(eval(col("s").like("%"), &nulls).unwrap(), Value::Null);
}

#[test]
fn binding_errors_name_columns_and_types() {
    let schema = schema();
    let unknown = col("psi").lt(lit(0.5)).bind(&schema).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "no column `psi`; the columns are: i, l, d, s, b, chlPPM"
    );
    assert!(col("CHLppm").bind(&schema).is_ok(), "names ignore case");
    let mismatch = col("s").eq(lit(1)).bind(&schema).unwrap_err();
    assert!(matches!(mismatch, ExprError::Type { .. }));
    assert!(
        mismatch
            .to_string()
            .contains("cannot compare string with int"),
        "{mismatch}"
    );
    let not_bool = col("i").and(lit(true)).bind(&schema).unwrap_err();
    assert!(
        not_bool.to_string().contains("must be boolean"),
        "{not_bool}"
    );
    let bad_like = col("i").like("1%").bind(&schema).unwrap_err();
    assert!(
        bad_like.to_string().contains("LIKE matches strings"),
        "{bad_like}"
    );
}

/// Random rows through a compound filter, against the same predicate in plain Rust
/// with SQL's null rules written out.
#[test]
fn random_rows_match_a_hand_written_predicate() {
    let mut rng = Rng::new(11);
    let filter = col("i")
        .lt(lit(50))
        .and(col("d").gt_eq(lit(0.25)).or(col("s").like("a%")))
        .and(col("l").is_in([lit(1), lit(2), lit(3)]).not());
    let bound = filter.bind(&schema()).unwrap();
    let maybe = |rng: &mut Rng| rng.below(8) != 0;
    for _ in 0..20_000 {
        let i = maybe(&mut rng).then(|| rng.below(100) as i32);
        let l = maybe(&mut rng).then(|| rng.below(6) as i64);
        let d = maybe(&mut rng).then(|| rng.below(100) as f64 / 100.0);
        let s = maybe(&mut rng).then(|| ["abc", "bcd", "a", ""][rng.below(4) as usize]);
        let r = row(i, l, d, s, None);
        // Three-valued logic in Option<bool>.
        let and = |a: Option<bool>, b: Option<bool>| match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        };
        let or = |a: Option<bool>, b: Option<bool>| match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        };
        let lt50 = i.map(|i| i < 50);
        let dge = d.map(|d| d >= 0.25);
        let like_a = s.map(|s| s.starts_with('a'));
        let not_in = l.map(|l| !(1..=3).contains(&l));
        let expected = and(and(lt50, or(dge, like_a)), not_in) == Some(true);
        assert_eq!(bound.eval_predicate(&r).unwrap(), expected, "{r}");
    }
}
