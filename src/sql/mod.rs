//! SQL over streams: `SELECT` statements on views registered with
//! [`DataFrame::create_or_replace_temp_view`], parsed by the
//! [`sqlparser`](https://docs.rs/sqlparser) crate (its Spark SQL dialect) and planned onto
//! [DataFrame](crate::frame) operations, so onto the same operators as typed queries.
//!
//! ```
//! use rivulet::frame::DataFrame;
//! use rivulet::row::{DataType, Field, Row, Schema, Value};
//! use std::sync::Arc;
//!
//! let schema = Arc::new(Schema::new([
//!     Field::new("resid", DataType::String),
//!     Field::new("psi", DataType::Double),
//! ])?);
//! let rows = [("COHUTTA", 0.25), ("BUTTE", 2.0)]
//!     .map(|(resid, psi)| Row::new(vec![Value::string(resid), Value::Double(psi)]));
//! let mut query = rivulet::Query::builder();
//! DataFrame::new(query.from_iter("sensor", rows), schema).create_or_replace_temp_view("sensor");
//! let alerts = query.sql("SELECT resid, psi * 2 AS twice FROM sensor WHERE psi < 0.5")?;
//! assert_eq!(alerts.columns(), ["resid", "twice"]);
//! let table = alerts.to_memory("alerts");
//! query.start()?.await_termination()?;
//! assert_eq!(table.rows()[0].values(), [Value::string("COHUTTA"), Value::Double(0.5)]);
//!
//! // Unsupported SQL is refused, naming the construct and where it is.
//! let mut query = rivulet::Query::builder();
//! let error = query.sql("SELECT resid FROM sensor ORDER BY resid").unwrap_err();
//! assert!(error.to_string().contains("ORDER BY"), "{error}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What is supported
//!
//! One `SELECT` from one streaming view (name and alias; identifiers ignore case, as
//! Spark's), joined with any number of static views
//! ([`StaticFrame::create_or_replace_temp_view`](crate::frame::StaticFrame::create_or_replace_temp_view))
//! by `[INNER] JOIN` or `LEFT [OUTER] JOIN … ON a.x = b.y [AND …]` (Spark's stream–static
//! joins, planned onto [`DataFrame::join_static`]) and with other streaming views by
//! `[INNER] JOIN`, `LEFT`, `RIGHT` or `FULL [OUTER] JOIN … ON` (Spark's stream–stream
//! joins, planned onto [`DataFrame::join`], so onto the typed
//! [stream–stream join](crate::join) and its rules for late rows, state and outer rows).
//! The ON condition of a stream–stream join is taken apart, conjunct by conjunct:
//! equalities between an expression of each side are the keys (at least one); comparisons
//! (`<`, `<=`, `>`, `>=`, `BETWEEN`) between the two sides' event-time columns (those
//! their frames' `with_watermark` named), each plus or minus Spark interval literals
//! (`INTERVAL 1 HOUR`, `INTERVAL '10' MINUTE`, `interval 1 hour`,
//! `INTERVAL '1 hour 30 minutes'`), are the time bounds, as in
//! `b.t BETWEEN a.t AND a.t + INTERVAL 1 HOUR`; the rest is a residual condition checked
//! as part of the match (as Spark does: in an outer join, a row whose pairs all fail it
//! gets its null row). A left outer join needs a bound on how late a matching right row
//! can come (`b.t <= a.t + …`), a right outer one the converse, a full one both, and all
//! of them watermarks on both views; an inner join needs only a key (without time bounds
//! its state grows without end, as Spark's does). In every join a column that an earlier
//! relation also has must be qualified, and an ambiguous unqualified one is refused as
//! Spark refuses it;
//! select items with aliases, `*` and `t.*`; `WHERE` with comparisons, `AND`, `OR`,
//! `NOT`, arithmetic, `IS [NOT] NULL`, `[NOT] IN (..)`, `[NOT] LIKE`, `BETWEEN`, `CASE`,
//! `CAST`; `GROUP BY` columns and `window(time, "1 hour"[, "slide"])`; `count(*)`,
//! `count(x)`, `sum`, `min`, `max`, `avg`, also inside expressions; `HAVING`;
//! `explode(split(s, 'pattern'))` as a select item (a row per piece; see
//! [`explode`](crate::expr::explode)). A statement's result registered as a view
//! ([`DataFrame::create_or_replace_temp_view`](crate::frame::DataFrame::create_or_replace_temp_view))
//! is read by the next statement, as Spark chains `spark.sql(..)` calls. The window
//! of a grouping is the two columns `window_start` and `window_end` (`window.start`
//! and `window.end` name them; see [`frame`](crate::frame#where-rivulet-differs-from-spark)).
//!
//! Everything else (right and full outer joins with a static view, a stream joined
//! with itself (a streaming view is read once), stream–stream joins without an equality
//! or without the time bound their outer side needs, time conditions on columns other
//! than the event times, intervals of months or years, `USING`, subqueries, `ORDER BY`,
//! `LIMIT`, `DISTINCT`, other functions, …) is refused with [`SqlError::Unsupported`],
//! naming the construct and its line and column: never a panic, never a query that
//! means something else.
//!
//! **Differences from Spark.** Decimal literals (`0.5`) are doubles (Spark's are
//! `DECIMAL`): `psi < 0.5` on a double column means what it means in Spark, but
//! arithmetic between two decimal literals rounds as doubles do. A string is not
//! compared with a number without a `CAST` (see [`expr`](crate::expr#semantics)). `*`
//! over a join whose relations share a column name is refused (a row's column names are
//! unique; Spark keeps both): select the columns, qualified, with aliases.

mod expr;
mod join;

use crate::expr::{col, Expr};
use crate::frame::{AggExpr, DataFrame, FrameError, Grouping, JoinType, StaticFrame, WindowSpec};
use crate::plan::Graph;
use expr::Relation;
use sqlparser::ast::{
    self, GroupByExpr, JoinConstraint, JoinOperator, SelectItem, SetExpr, Spanned, Statement,
    TableFactor,
};
use sqlparser::dialect::SparkSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Span, Token, Tokenizer};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// Where in the statement text: line and column, from 1 (`0:0` if the parser did not
/// say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The line, from 1.
    pub line: u64,
    /// The column, from 1.
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

pub(crate) fn at(span: Span) -> Position {
    Position {
        line: span.start.line,
        column: span.start.column,
    }
}

/// Why a SQL statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The text is not SQL the parser reads (its message says where).
    #[error("SQL syntax error: {0}")]
    Parse(String),
    /// SQL rivulet does not run (yet).
    #[error("unsupported SQL at {position}: {construct}")]
    Unsupported {
        /// What is not supported.
        construct: String,
        /// Where it starts.
        position: Position,
    },
    /// A table or qualifier that is not registered.
    #[error("unknown name `{name}` at {position}; known here: {}", known.join(", "))]
    UnknownName {
        /// The name.
        name: String,
        /// Where it is.
        position: Position,
        /// The names that are known there (views, or the table's name and alias).
        known: Vec<String>,
    },
    /// An unqualified column that more than one relation of a join has.
    #[error("ambiguous column `{name}` at {position}: qualify it ({})", qualifiers.join(", "))]
    Ambiguous {
        /// The name.
        name: String,
        /// Where it is.
        position: Position,
        /// Relations that have it.
        qualifiers: Vec<String>,
    },
    /// The statement does not fit the data: unknown columns (the message lists those
    /// there are), type errors.
    #[error(transparent)]
    Analysis(#[from] FrameError),
}

fn unsupported(construct: impl Into<String>, node: &impl Spanned) -> SqlError {
    SqlError::Unsupported {
        construct: construct.into(),
        position: at(node.span()),
    }
}

fn parser_error(error: sqlparser::parser::ParserError) -> SqlError {
    SqlError::Parse(error.to_string())
}

/// Parses one SQL expression (`"psi < 0.5"`), as `DataFrame::where_` and `select_expr`
/// take them; aggregates are not allowed.
///
/// # Errors
///
/// Text that is not one expression, or one that is not supported.
pub fn parse_expr(text: &str) -> Result<Expr, SqlError> {
    let parsed = parse_ast(text)?;
    let mut scope = expr::Scope {
        relations: &[],
        aggs: Err("a row expression"),
    };
    expr::convert(&parsed, &mut scope)
}

/// One SQL expression, parsed.
fn parse_ast(text: &str) -> Result<ast::Expr, SqlError> {
    let dialect = SparkSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(parser_error)?;
    let parsed = parser.parse_expr().map_err(parser_error)?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError::Parse(format!(
            "expected the end of the expression, found `{}` at {}",
            next.token,
            at(next.span)
        )));
    }
    Ok(parsed)
}

impl DataFrame {
    /// [`filter`](Self::filter) with the condition as SQL text (Spark's
    /// `where("psi < 0.5")`).
    ///
    /// # Errors
    ///
    /// Text that does not parse or is not supported, or a condition that does not bind.
    pub fn where_(self, condition: &str) -> Result<DataFrame, SqlError> {
        let condition = parse_expr(condition)?;
        Ok(self.filter(condition)?)
    }

    /// [`select`](Self::select) with the expressions as SQL text (Spark's
    /// `selectExpr("resid", "psi * 2 AS twice")`; `"*"` for every column).
    ///
    /// # Errors
    ///
    /// Text that does not parse or is not supported, or an expression that does not
    /// bind.
    pub fn select_expr(self, exprs: &[&str]) -> Result<DataFrame, SqlError> {
        let dialect = SparkSqlDialect {};
        let mut converted = Vec::with_capacity(exprs.len());
        for text in exprs {
            let sql = format!("SELECT {text}");
            let statement = Parser::parse_sql(&dialect, &sql).map_err(parser_error)?;
            let item = match statement.as_slice() {
                [Statement::Query(query)] => match &*query.body {
                    SetExpr::Select(select) if select.projection.len() == 1 => {
                        select.projection[0].clone()
                    }
                    _ => return Err(SqlError::Parse(format!("`{text}` is not one expression"))),
                },
                _ => return Err(SqlError::Parse(format!("`{text}` is not one expression"))),
            };
            let mut scope = expr::Scope {
                relations: &[],
                aggs: Err("a row expression"),
            };
            converted.push(match item {
                SelectItem::Wildcard(_) => col("*"),
                SelectItem::UnnamedExpr(e) => expr::convert(&e, &mut scope)?,
                SelectItem::ExprWithAlias { expr: e, alias } => {
                    expr::convert(&e, &mut scope)?.alias(&alias.value)
                }
                other => return Err(unsupported(format!("the select item `{other}`"), &other)),
            });
        }
        Ok(self.select(converted)?)
    }
}

/// Where the last `keyword` before `span` starts: the clause keyword of a node whose
/// span covers only its expressions (sqlparser's `ORDER BY` and `LIMIT`); the node's own
/// start if the text holds no such keyword before it.
fn keyword_before(text: &str, span: Span, keyword: Keyword) -> Position {
    let dialect = SparkSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .unwrap_or_default();
    tokens
        .iter()
        .take_while(|token| token.span.start < span.start)
        .filter(|token| matches!(&token.token, Token::Word(word) if word.keyword == keyword))
        .last()
        .map_or_else(|| at(span), |token| at(token.span))
}

/// `SELECT …` on the views of `graph` (see the module docs).
pub(crate) fn plan(graph: &Rc<RefCell<Graph>>, text: &str) -> Result<DataFrame, SqlError> {
    let dialect = SparkSqlDialect {};
    let statements = Parser::parse_sql(&dialect, text).map_err(parser_error)?;
    let query = match statements.as_slice() {
        [Statement::Query(query)] => query,
        [other] => {
            return Err(unsupported(
                "statements other than SELECT (sql() runs queries)",
                other,
            ))
        }
        _ => {
            return Err(SqlError::Unsupported {
                construct: format!("{} statements (sql() runs one)", statements.len()),
                position: Position { line: 1, column: 1 },
            })
        }
    };
    if let Some(with) = &query.with {
        return Err(unsupported("WITH", with));
    }
    if let Some(order_by) = &query.order_by {
        return Err(SqlError::Unsupported {
            construct: "ORDER BY (a stream has no end to sort by)".to_string(),
            position: keyword_before(text, order_by.span(), Keyword::ORDER),
        });
    }
    if let Some(limit) = &query.limit_clause {
        return Err(SqlError::Unsupported {
            construct: "LIMIT".to_string(),
            position: keyword_before(text, limit.span(), Keyword::LIMIT),
        });
    }
    if query.fetch.is_some()
        || !query.locks.is_empty()
        || query.for_clause.is_some()
        || query.settings.is_some()
        || query.format_clause.is_some()
        || !query.pipe_operators.is_empty()
    {
        return Err(unsupported(
            "FETCH, FOR, SETTINGS, FORMAT or pipe operators",
            &**query,
        ));
    }
    let select = match &*query.body {
        SetExpr::Select(select) => select,
        other => {
            return Err(unsupported(
                "set operations and VALUES (one SELECT only)",
                other,
            ))
        }
    };
    plan_select(graph, select)
}

fn plan_select(graph: &Rc<RefCell<Graph>>, select: &ast::Select) -> Result<DataFrame, SqlError> {
    if select.distinct.is_some() {
        // Spark's streaming guide lists distinct operations among the unsupported ones
        // ("Distinct operations on streaming Datasets are not supported").
        return Err(unsupported(
            "DISTINCT (Spark does not run distinct operations on streams; use \
             DataFrame::drop_duplicates, with a watermark to bound its state)",
            &select.projection[0],
        ));
    }
    if select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.connect_by.is_empty()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || select.value_table_mode.is_some()
        || select.exclude.is_some()
        || select.select_modifiers.is_some()
        || !select.optimizer_hints.is_empty()
        || !matches!(select.flavor, ast::SelectFlavor::Standard)
    {
        return Err(unsupported(
            "TOP, INTO, LATERAL VIEW, CLUSTER/DISTRIBUTE/SORT BY, WINDOW, QUALIFY, hints or \
             other SELECT modifiers",
            select,
        ));
    }
    let (frame, relations) = from(graph, select)?;
    let joined = relations.len() > 1;

    // WHERE
    let mut frame = match &select.selection {
        Some(condition) => {
            let mut scope = expr::Scope {
                relations: &relations,
                aggs: Err("WHERE (use HAVING)"),
            };
            frame.filter(expr::convert(condition, &mut scope)?)?
        }
        None => frame,
    };

    // GROUP BY
    let group_exprs = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.as_slice(),
        other => return Err(unsupported("GROUP BY ALL and GROUP BY modifiers", other)),
    };
    let mut groupings = Vec::with_capacity(group_exprs.len());
    let mut window: Option<WindowSpec> = None;
    for item in group_exprs {
        let mut scope = expr::Scope {
            relations: &relations,
            aggs: Err("GROUP BY"),
        };
        match item {
            ast::Expr::Function(function)
                if function.name.to_string().eq_ignore_ascii_case("window") =>
            {
                let spec = window_spec(function, item, &relations)?;
                window = Some(spec.clone());
                groupings.push(Grouping::Window(spec));
            }
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                groupings.push(Grouping::Expr(expr::convert(item, &mut scope)?));
            }
            other => {
                return Err(unsupported(
                    "GROUP BY an expression (group by columns and window(..))",
                    other,
                ))
            }
        }
    }

    // The SELECT list (and HAVING), aggregates collected.
    let mut aggs: Vec<AggExpr> = Vec::new();
    let mut items = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        let mut scope = expr::Scope {
            relations: &relations,
            aggs: Ok(&mut aggs),
        };
        match item {
            SelectItem::UnnamedExpr(ast::Expr::Function(function))
                if function.name.to_string().eq_ignore_ascii_case("window") =>
            {
                let spec = window_spec(function, item, &relations)?;
                if window.as_ref() != Some(&spec) {
                    return Err(unsupported(
                        "window(..) in SELECT that is not the window of the GROUP BY",
                        item,
                    ));
                }
                items.push(col("window_start"));
                items.push(col("window_end"));
            }
            SelectItem::UnnamedExpr(e) => {
                let converted = expr::convert(e, &mut scope)?;
                // A column renamed for the join keeps the name the statement gave it.
                items.push(match (&converted, e) {
                    (Expr::Column(_), ast::Expr::CompoundIdentifier(parts)) if joined => {
                        converted.alias(&parts[parts.len() - 1].value)
                    }
                    (Expr::Column(_), ast::Expr::Identifier(ident)) if joined => {
                        converted.alias(&ident.value)
                    }
                    _ => converted,
                })
            }
            SelectItem::ExprWithAlias { expr: e, alias } => {
                items.push(expr::convert(e, &mut scope)?.alias(&alias.value))
            }
            SelectItem::Wildcard(options) => {
                check_wildcard(options)?;
                if joined {
                    items.extend(relations.iter().flat_map(relation_columns));
                } else {
                    items.push(col("*"));
                }
            }
            SelectItem::QualifiedWildcard(kind, options) => {
                check_wildcard(options)?;
                let name = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(name) => name.to_string(),
                    ast::SelectItemQualifiedWildcardKind::Expr(e) => {
                        return Err(unsupported("`expr.*`", e))
                    }
                };
                match relations.iter().find(|r| r.is(&name)) {
                    None => {
                        return Err(SqlError::UnknownName {
                            name,
                            position: at(item.span()),
                            known: relations
                                .iter()
                                .flat_map(|r| r.qualifiers.clone())
                                .collect(),
                        })
                    }
                    Some(relation) if joined => items.extend(relation_columns(relation)),
                    Some(_) => items.push(col("*")),
                }
            }
            other => return Err(unsupported("a select item with several aliases", other)),
        }
    }
    let having = match &select.having {
        Some(condition) => {
            let mut scope = expr::Scope {
                relations: &relations,
                aggs: Ok(&mut aggs),
            };
            Some((condition, expr::convert(condition, &mut scope)?))
        }
        None => None,
    };

    let grouped = !groupings.is_empty() || !aggs.is_empty();
    if grouped {
        if items
            .iter()
            .any(|e| matches!(e, Expr::Column(c) if c == "*"))
        {
            return Err(unsupported("`*` in an aggregate query", select));
        }
        frame = frame.group_by(groupings)?.agg(aggs)?;
        if let Some((_, condition)) = having {
            frame = frame.filter(condition)?;
        }
    } else if let Some((condition, _)) = having {
        return Err(unsupported(
            "HAVING without GROUP BY or aggregates",
            condition,
        ));
    }
    Ok(frame.select(items)?)
}

/// A relation's columns under the names the statement knows them by.
fn relation_columns(relation: &Relation) -> Vec<Expr> {
    relation
        .columns
        .iter()
        .map(|(name, planned)| {
            if name == planned {
                col(planned)
            } else {
                col(planned).alias(name)
            }
        })
        .collect()
}

fn check_wildcard(options: &ast::WildcardAdditionalOptions) -> Result<(), SqlError> {
    if options.opt_ilike.is_some()
        || options.opt_exclude.is_some()
        || options.opt_except.is_some()
        || options.opt_replace.is_some()
        || options.opt_rename.is_some()
        || options.opt_alias.is_some()
    {
        return Err(unsupported(
            "`*` with EXCEPT, EXCLUDE, REPLACE or RENAME",
            options,
        ));
    }
    Ok(())
}

/// A view named in FROM or JOIN: the view's name and alias, after checking the table
/// factor is nothing more.
fn view_name(factor: &TableFactor) -> Result<(&ast::ObjectName, Option<&ast::Ident>), SqlError> {
    let (name, alias) = match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            with_ordinality: false,
            partitions,
            json_path: None,
            sample: None,
            index_directives,
            inheritance: None,
        } if with_hints.is_empty() && partitions.is_empty() && index_directives.is_empty() => {
            (name, alias)
        }
        other => {
            return Err(unsupported(
                "FROM something other than a view's name",
                other,
            ))
        }
    };
    if let Some(alias) = alias {
        if !alias.columns.is_empty() {
            return Err(SqlError::Unsupported {
                construct: "column aliases on a table".to_string(),
                position: at(alias.name.span),
            });
        }
    }
    Ok((name, alias.as_ref().map(|alias| &alias.name)))
}

fn unknown_view(graph: &Rc<RefCell<Graph>>, name: &ast::ObjectName) -> SqlError {
    let graph = graph.borrow();
    SqlError::UnknownName {
        name: name.to_string(),
        position: at(name.span()),
        known: graph
            .views
            .iter()
            .map(|(name, _)| name.clone())
            .chain(graph.static_views.iter().map(|(name, _)| name.clone()))
            .collect(),
    }
}

fn static_view(graph: &Rc<RefCell<Graph>>, name: &str) -> Option<StaticFrame> {
    graph
        .borrow()
        .static_views
        .iter()
        .find(|(view, _)| view.eq_ignore_ascii_case(name))
        .map(|(_, frame)| frame.clone())
}

fn qualifiers(name: &ast::ObjectName, alias: Option<&ast::Ident>) -> Vec<String> {
    let mut qualifiers = vec![name.to_string()];
    qualifiers.extend(alias.map(|alias| alias.value.clone()));
    qualifiers
}

/// The frame of the FROM clause (its view, joined with the static views of its JOINs),
/// and its relations.
fn from(
    graph: &Rc<RefCell<Graph>>,
    select: &ast::Select,
) -> Result<(DataFrame, Vec<Relation>), SqlError> {
    let table = match select.from.as_slice() {
        [table] => table,
        [] => return Err(unsupported("SELECT without FROM", select)),
        [_, second, ..] => {
            return Err(unsupported(
                "several tables in FROM (a comma join)",
                &second.relation,
            ))
        }
    };
    let (name, alias) = view_name(&table.relation)?;
    let view = name.to_string();
    // The streaming views' names, before FROM takes its own out of the registry.
    let streams: Vec<String> = graph
        .borrow()
        .views
        .iter()
        .map(|(v, _)| v.clone())
        .collect();
    let mut frame = match crate::frame::take_view(graph, &view) {
        Some(frame) => frame,
        None if static_view(graph, &view).is_some() => {
            return Err(unsupported(
                "a static view first in FROM (sql() plans streaming queries: the stream \
                 comes first, static views are joined to it)",
                name,
            ))
        }
        None => return Err(unknown_view(graph, name)),
    };
    let mut relations = vec![Relation {
        qualifiers: qualifiers(name, alias),
        columns: frame
            .columns()
            .into_iter()
            .map(|c| (c.clone(), c))
            .collect(),
    }];
    for join in &table.joins {
        let (how, constraint) = match &join.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinType::Inner, c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinType::LeftOuter, c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (JoinType::RightOuter, c),
            JoinOperator::FullOuter(c) => (JoinType::FullOuter, c),
            _ => {
                return Err(unsupported(
                    "this kind of JOIN ([INNER] JOIN, LEFT, RIGHT or FULL [OUTER] JOIN … ON)",
                    &join.relation,
                ))
            }
        };
        let condition = match constraint {
            JoinConstraint::On(condition) => condition,
            _ => {
                return Err(unsupported(
                    "a JOIN without ON (USING, NATURAL or none: write ON a.c = b.c)",
                    &join.relation,
                ))
            }
        };
        let (name, alias) = view_name(&join.relation)?;
        let view = name.to_string();
        let Some(table) = static_view(graph, &view) else {
            if !streams.iter().any(|v| v.eq_ignore_ascii_case(&view)) {
                return Err(unknown_view(graph, name));
            }
            let Some(right) = crate::frame::take_view(graph, &view) else {
                return Err(unsupported(
                    "a JOIN of a streaming view with itself, or with a view read already (a \
                     streaming view is read once: register another read of the source under \
                     another name)",
                    &join.relation,
                ));
            };
            let (joined, right) = join::join_streams(
                frame,
                &relations,
                right,
                qualifiers(name, alias),
                condition,
                how,
            )?;
            frame = joined;
            relations.push(right);
            continue;
        };
        if matches!(how, JoinType::RightOuter | JoinType::FullOuter) {
            return Err(unsupported(
                "a RIGHT or FULL OUTER JOIN of a stream with a static view (Spark joins a stream \
                 with a static table INNER or LEFT OUTER, the stream on the left)",
                &join.relation,
            ));
        }
        // A column another relation also has is planned as `qualifier.column`.
        let qualifier = alias.map_or_else(|| view.clone(), |alias| alias.value.clone());
        let columns: Vec<(String, String)> = table
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
        let table = table.renamed(&planned)?;
        let right = Relation {
            qualifiers: qualifiers(name, alias),
            columns,
        };
        let mut on = Vec::new();
        for conjunct in conjuncts(condition) {
            on.push(equi_key(conjunct, &relations, &right, &frame, &table)?);
        }
        frame = frame.join_static(&table, on, how)?;
        relations.push(right);
    }
    Ok((frame, relations))
}

/// The conjuncts of `a AND b AND …`.
fn conjuncts(condition: &ast::Expr) -> Vec<&ast::Expr> {
    match condition {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(left);
            all.extend(conjuncts(right));
            all
        }
        ast::Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// One equality of an ON condition as (the stream side's key, the static side's key).
fn equi_key(
    conjunct: &ast::Expr,
    left: &[Relation],
    right: &Relation,
    frame: &DataFrame,
    table: &StaticFrame,
) -> Result<(Expr, Expr), SqlError> {
    let not_equality = || {
        unsupported(
            "an ON condition other than equalities of the two sides joined by AND (filter in \
             WHERE)",
            conjunct,
        )
    };
    let ast::Expr::BinaryOp {
        left: a,
        op: ast::BinaryOperator::Eq,
        right: b,
    } = conjunct
    else {
        return Err(not_equality());
    };
    let side = |e: &ast::Expr, relations: &[Relation], schema: &crate::row::Schema| {
        let mut scope = expr::Scope {
            relations,
            aggs: Err("ON"),
        };
        expr::convert(e, &mut scope)
            .ok()
            .filter(|converted| converted.bind(schema).is_ok())
    };
    let right = std::slice::from_ref(right);
    if let (Some(l), Some(r)) = (
        side(a, left, frame.schema()),
        side(b, right, table.schema()),
    ) {
        return Ok((l, r));
    }
    if let (Some(l), Some(r)) = (
        side(b, left, frame.schema()),
        side(a, right, table.schema()),
    ) {
        return Ok((l, r));
    }
    // Neither way round: let the first side's own error speak where there is one.
    let mut scope = expr::Scope {
        relations: left,
        aggs: Err("ON"),
    };
    expr::convert(a, &mut scope)?;
    Err(not_equality())
}

/// `window(time, "length"[, "slide"])`.
fn window_spec(
    function: &ast::Function,
    node: &impl Spanned,
    relations: &[Relation],
) -> Result<WindowSpec, SqlError> {
    let as_expr = ast::Expr::Function(function.clone());
    let args = expr::plain_args(function, &as_expr)?.unwrap_or_default();
    let string = |e: &ast::Expr| match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => Ok(s.clone()),
            _ => Err(unsupported("a window length that is not a string", e)),
        },
        _ => Err(unsupported("a window length that is not a string", e)),
    };
    let column = |e: &ast::Expr| {
        let mut scope = expr::Scope {
            relations,
            aggs: Err("window(..)"),
        };
        match expr::convert(e, &mut scope)? {
            Expr::Column(name) => Ok(name),
            _ => Err(unsupported(
                "window(..) over an expression (name a column)",
                e,
            )),
        }
    };
    let (time, length, slide) = match args.as_slice() {
        [time, length] => (column(time)?, string(length)?, None),
        [time, length, slide] => (column(time)?, string(length)?, Some(string(slide)?)),
        _ => {
            return Err(unsupported(
                "window(..) takes a time column, a length and optionally a slide",
                node,
            ))
        }
    };
    Ok(match slide {
        None => crate::frame::window(&time, &length)?,
        Some(slide) => crate::frame::window_sliding(&time, &length, &slide)?,
    })
}
