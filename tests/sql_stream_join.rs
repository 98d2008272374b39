//! Stream–stream joins in SQL (`JOIN … ON a.k = b.k AND b.t BETWEEN …`), in the DataFrame
//! API (`DataFrame::join`, `DataFrame::join_expr`) and in the typed API, against a
//! nested-loop reference join of the same input: inner, left, right and full outer, both
//! trigger modes, late rows, null keys, residual conditions; and what is refused.
//!
//! Determinism: one source carries both sides' rows in time order (each row at most
//! `JITTER` before the newest, less than the watermark delay, so no ordinary row is ever
//! late) and is split into the two sides. The injected late rows are `MARGIN` rows of
//! event time behind their position, far more than the watermark can trail the source
//! (the rings between them hold a few hundred rows, a side's watermark is sent at least
//! every 1,024 of its rows, a micro-batch holds at most `BATCH` rows): whatever the
//! interleaving of the threads, the join's watermark has passed them when they arrive,
//! and they are dropped. The output is then fixed: every pair of on-time rows that
//! matches, and for outer joins every unmatched on-time row that the final watermark
//! (`min(max left, max right) − delay`) made final.

mod common;

use common::{finish_ok, sorted, Rng};
use rivulet::expr::col;
use rivulet::frame::{DataFrame, JoinCondition, JoinType, StaticFrame};
use rivulet::join::TimeRange;
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::sql::SqlError;
use rivulet::window::ROWS_DROPPED_BY_WATERMARK;
use rivulet::{Query, QueryBuilder, Stream, Timestamp, Trigger};
use std::sync::Arc;
use std::time::Duration;

/// A row of either side: (side 0 left / 1 right, id, key, event time in seconds).
type Rec = (u8, i64, Option<i64>, i64);
/// What a join emits: the ids of the left and right rows.
type Pair = (Option<i64>, Option<i64>);

/// Seconds of event time between two rows of the source.
const STEP: i64 = 5;
/// The watermark delay of both sides, seconds.
const DELAY: i64 = 100;
/// Out-of-orderness, seconds (less than the delay).
const JITTER: u64 = 60;
/// How many rows of the source a late row is behind.
const MARGIN: i64 = 5_000;
/// The time condition: left.time − right.time BETWEEN LOWER AND UPPER (seconds).
const LOWER: i64 = -60;
const UPPER: i64 = 90;
/// Rows per micro-batch at most.
const BATCH: usize = 257;

fn micros(seconds: i64) -> i64 {
    seconds * 1_000_000
}

/// `n` rows in time order (with jitter) on random sides and keys, every 13th key null;
/// from row `late_from` on, every 100th row is a late copy of an earlier row of the
/// other side (its key and time, `MARGIN` rows behind), which would match if it were
/// not dropped. The last two rows end both sides at the same time on keys of their own.
/// Returns the rows and the ids of the late ones.
fn input(n: i64, late_from: i64, seed: u64) -> (Vec<Rec>, Vec<i64>) {
    let mut rng = Rng::new(seed);
    let mut rows: Vec<Rec> = Vec::new();
    let mut late = Vec::new();
    for i in 0..n {
        if i >= late_from && i % 100 == 0 {
            let earlier = rows[(i - MARGIN) as usize];
            late.push(i);
            rows.push((1 - earlier.0, i, earlier.2, earlier.3));
            continue;
        }
        let key = (i % 13 != 0).then(|| rng.below(6) as i64);
        let time = i * STEP - rng.below(JITTER) as i64;
        rows.push(((rng.below(2)) as u8, i, key, time));
    }
    let end = n * STEP;
    rows.push((0, n, Some(1_000), end));
    rows.push((1, n + 1, Some(1_001), end));
    (rows, late)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
}

impl Kind {
    fn join_type(self) -> JoinType {
        match self {
            Kind::Inner => JoinType::Inner,
            Kind::LeftOuter => JoinType::LeftOuter,
            Kind::RightOuter => JoinType::RightOuter,
            Kind::FullOuter => JoinType::FullOuter,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Kind::Inner => "JOIN",
            Kind::LeftOuter => "LEFT OUTER JOIN",
            Kind::RightOuter => "RIGHT JOIN",
            Kind::FullOuter => "FULL OUTER JOIN",
        }
    }

    fn preserves(self) -> (bool, bool) {
        match self {
            Kind::Inner => (false, false),
            Kind::LeftOuter => (true, false),
            Kind::RightOuter => (false, true),
            Kind::FullOuter => (true, true),
        }
    }
}

/// The nested-loop join of the on-time rows; `residual` must hold for a pair to match.
fn reference(
    kind: Kind,
    rows: &[Rec],
    late: &[i64],
    residual: &dyn Fn(&Rec, &Rec) -> bool,
) -> Vec<Pair> {
    let side = |s: u8| -> Vec<Rec> {
        rows.iter()
            .filter(|r| r.0 == s && !late.contains(&r.1))
            .copied()
            .collect()
    };
    let (left, right) = (side(0), side(1));
    let max = |rows: &[Rec]| rows.iter().map(|r| r.3).max().unwrap();
    let watermark = max(&left).min(max(&right)) - DELAY;
    let (keep_left, keep_right) = kind.preserves();
    let mut out = Vec::new();
    let mut right_matched = vec![false; right.len()];
    for l in &left {
        let mut matched = false;
        for (j, r) in right.iter().enumerate() {
            let d = l.3 - r.3;
            if l.2.is_some() && l.2 == r.2 && (LOWER..=UPPER).contains(&d) && residual(l, r) {
                matched = true;
                right_matched[j] = true;
                out.push((Some(l.1), Some(r.1)));
            }
        }
        // Final once no right row still to come (all later than the watermark) can match.
        if keep_left && !matched && l.3 - LOWER <= watermark {
            out.push((Some(l.1), None));
        }
    }
    for (j, r) in right.iter().enumerate() {
        if keep_right && !right_matched[j] && r.3 + UPPER <= watermark {
            out.push((None, Some(r.1)));
        }
    }
    out
}

/// The two sides of the source, each on its own branch: (side's rows, the branch).
fn sides(
    query: &mut QueryBuilder,
    rows: &[Rec],
) -> [Stream<impl rivulet::stream::Chain<Out = Rec>>; 2] {
    let mut branches = query.from_iter("rows", rows.to_vec()).fan_out(2);
    let right = branches.pop().unwrap().filter(on_side(1));
    let left = branches.pop().unwrap().filter(on_side(0));
    [left, right]
}

/// Whether a row is on `side` (one closure type for both sides).
fn on_side(side: u8) -> impl FnMut(&Rec) -> bool + Clone + Send + 'static {
    move |r: &Rec| r.0 == side
}

fn schema(names: [&str; 3]) -> Arc<Schema> {
    Arc::new(
        Schema::new([
            Field::new(names[0], DataType::Long).not_null(),
            Field::new(names[1], DataType::Long),
            Field::new(names[2], DataType::Timestamp).not_null(),
        ])
        .unwrap(),
    )
}

fn to_row(r: &Rec) -> Row {
    Row::new(vec![
        Value::Long(r.1),
        r.2.map_or(Value::Null, Value::Long),
        Value::Timestamp(Timestamp(micros(r.3))),
    ])
}

const LEFT: [&str; 3] = ["impId", "adId", "impTime"];
const RIGHT: [&str; 3] = ["clkId", "clickAdId", "clickTime"];

/// The two sides as DataFrames with watermarks on their time columns.
fn frames(query: &mut QueryBuilder, rows: &[Rec]) -> (DataFrame, DataFrame) {
    let [left, right] = sides(query, rows);
    let delay = format!("{DELAY} seconds");
    let left = DataFrame::new(left.map(|r| to_row(&r)), schema(LEFT))
        .with_watermark("impTime", &delay)
        .unwrap();
    let right = DataFrame::new(right.map(|r| to_row(&r)), schema(RIGHT))
        .with_watermark("clickTime", &delay)
        .unwrap();
    (left, right)
}

fn pair(row: &Row) -> Pair {
    let id = |v: &Value| match v {
        Value::Long(id) => Some(*id),
        Value::Null => None,
        other => panic!("an id, not {other:?}"),
    };
    (id(&row.values()[0]), id(&row.values()[1]))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Typed,
    Frame,
    FrameExpr,
    Sql,
}

fn configured(trigger: Trigger) -> QueryBuilder {
    let mut query = Query::builder();
    query
        .trigger(trigger)
        .parallelism(2)
        .ring_capacity(64)
        .max_batch_records(BATCH);
    query
}

/// The late rows that reach the join operator and are dropped there: all of them in
/// the typed form; in the others, a row with a null key on a side the join does not
/// preserve is dropped before the join (it can match nothing), as Spark's inferred
/// `IS NOT NULL` filter on inner join keys drops it.
fn late_at_join(form: Form, kind: Kind, rows: &[Rec], late: &[i64]) -> u64 {
    let (keep_left, keep_right) = kind.preserves();
    rows.iter()
        .filter(|r| late.contains(&r.1))
        .filter(|r| {
            form == Form::Typed || r.2.is_some() || if r.0 == 0 { keep_left } else { keep_right }
        })
        .count() as u64
}

/// Runs the join `kind` in `form`; returns its pairs and the rows it dropped as late.
fn run(form: Form, kind: Kind, trigger: Trigger, rows: &[Rec]) -> (Vec<Pair>, u64) {
    let mut query = configured(trigger);
    let range = TimeRange::from_micros(micros(LOWER), micros(UPPER)).unwrap();
    let table = match form {
        Form::Typed => {
            let [left, right] = sides(&mut query, rows);
            let time = |r: &Rec| Timestamp(micros(r.3));
            let delay = Duration::from_secs(DELAY as u64);
            // A null key matches nothing: it gets a key of its side's own.
            let key = |side: u8| move |r: &Rec| (r.2, if r.2.is_none() { side } else { 2 });
            let joined = left
                .with_event_time(time)
                .with_watermark(delay)
                .key_by(key(0))
                .join(
                    right
                        .with_event_time(time)
                        .with_watermark(delay)
                        .key_by(key(1)),
                )
                .event_time(time, time)
                .within(range);
            let pairs = match kind {
                Kind::Inner => joined
                    .inner(|_, l, r| (Some(l.1), Some(r.1)))
                    .to_memory("joined"),
                Kind::LeftOuter => joined
                    .left_outer(|_, l, r| (Some(l.1), r.map(|r| r.1)))
                    .to_memory("joined"),
                Kind::RightOuter => joined
                    .right_outer(|_, l, r| (l.map(|l| l.1), Some(r.1)))
                    .to_memory("joined"),
                Kind::FullOuter => joined
                    .full_outer(|_, l, r| (l.map(|l| l.1), r.map(|r| r.1)))
                    .to_memory("joined"),
            };
            let running = query.start().expect("start");
            finish_ok(&running, "typed join");
            return (pairs.rows(), dropped(&running));
        }
        Form::Frame => {
            let (left, right) = frames(&mut query, rows);
            let on = JoinCondition::keys([(col("adId"), col("clickAdId"))]).within(range);
            left.join(right, on, kind.join_type())
                .unwrap()
                .select([col("impId"), col("clkId")])
                .unwrap()
                .to_memory("joined")
        }
        Form::FrameExpr => {
            let (left, right) = frames(&mut query, rows);
            left.join_expr(
                right,
                "adId = clickAdId AND clickTime >= impTime - INTERVAL '90' SECOND AND \
                 clickTime <= impTime + interval 1 minute",
                kind.join_type(),
            )
            .unwrap()
            .select_expr(&["impId", "clkId"])
            .unwrap()
            .to_memory("joined")
        }
        Form::Sql => {
            let (left, right) = frames(&mut query, rows);
            left.create_or_replace_temp_view("impressions");
            right.create_or_replace_temp_view("clicks");
            let text = format!(
                "SELECT i.impId, c.clkId FROM impressions i {} clicks c \
                 ON i.adId = c.clickAdId \
                 AND c.clickTime BETWEEN i.impTime - INTERVAL 90 SECONDS AND i.impTime + INTERVAL 1 MINUTE",
                kind.sql()
            );
            query.sql(&text).unwrap().to_memory("joined")
        }
    };
    let running = query.start().expect("start");
    finish_ok(&running, "join");
    (table.rows().iter().map(pair).collect(), dropped(&running))
}

fn dropped(running: &rivulet::Query) -> u64 {
    let progress = running.progress();
    let join = progress.operator("join").expect("the join's progress");
    join.counters
        .get(ROWS_DROPPED_BY_WATERMARK)
        .copied()
        .unwrap_or(0)
}

fn triggers() -> [Trigger; 2] {
    [
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        },
        Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        },
    ]
}

#[test]
fn sql_frame_and_typed_joins_equal_the_nested_loop_join_in_both_modes() {
    let (rows, late) = input(12_000, 6_000, 7);
    assert!(late.len() > 50);
    assert!(rows.iter().any(|r| late.contains(&r.1) && r.2.is_none()));
    for kind in [
        Kind::Inner,
        Kind::LeftOuter,
        Kind::RightOuter,
        Kind::FullOuter,
    ] {
        let expected = sorted(reference(kind, &rows, &late, &|_, _| true));
        let outer_rows = expected
            .iter()
            .filter(|(l, r)| l.is_none() || r.is_none())
            .count();
        assert!(expected.len() > 1_000, "{kind:?}: {} rows", expected.len());
        assert_eq!(outer_rows > 100, kind != Kind::Inner, "{kind:?}");
        for trigger in triggers() {
            for form in [Form::Typed, Form::Frame, Form::FrameExpr, Form::Sql] {
                let what = format!("{kind:?} {form:?} {trigger:?}");
                let (pairs, dropped) = run(form, kind, trigger, &rows);
                assert_eq!(sorted(pairs), expected, "{what}");
                let expected_dropped = late_at_join(form, kind, &rows, &late);
                assert_eq!(dropped, expected_dropped, "{what}: late rows dropped");
            }
        }
    }
}

#[test]
fn a_residual_condition_is_part_of_the_match() {
    let (rows, late) = input(9_000, 6_000, 11);
    // Pairs whose ids differ by a multiple of 3 do not match: in an outer join a row whose
    // only partners fail the condition is emitted with nulls.
    let residual = |l: &Rec, r: &Rec| (l.1 - r.1) % 3 != 0;
    for kind in [Kind::Inner, Kind::LeftOuter, Kind::FullOuter] {
        let expected = sorted(reference(kind, &rows, &late, &residual));
        for trigger in triggers() {
            let mut query = configured(trigger);
            let (left, right) = frames(&mut query, &rows);
            left.create_or_replace_temp_view("l");
            right.create_or_replace_temp_view("r");
            let text = format!(
                "SELECT impId, clkId FROM l {} r ON r.clickTime >= l.impTime - INTERVAL 90 SECONDS \
                 AND (impId - clkId) % 3 <> 0 AND clickAdId = adId \
                 AND r.clickTime <= l.impTime + INTERVAL '60' SECONDS",
                kind.sql()
            );
            let table = query.sql(&text).unwrap().to_memory("joined");
            let running = query.start().expect("start");
            finish_ok(&running, "residual join");
            let pairs: Vec<Pair> = table.rows().iter().map(pair).collect();
            assert_eq!(sorted(pairs), expected, "{kind:?} {trigger:?}");
        }
    }
}

#[test]
fn an_inner_join_without_time_condition_joins_every_pair() {
    // No watermarks, no time condition: Spark's unbounded inner join.
    let rows: Vec<Rec> = (0..600)
        .map(|i| ((i % 2) as u8, i, (i % 7 != 0).then_some(i % 5), i))
        .collect();
    let expected: Vec<Pair> = {
        let mut out = Vec::new();
        for l in rows.iter().filter(|r| r.0 == 0) {
            for r in rows.iter().filter(|r| r.0 == 1) {
                if l.2.is_some() && l.2 == r.2 && l.1 < r.1 + 100 {
                    out.push((Some(l.1), Some(r.1)));
                }
            }
        }
        sorted(out)
    };
    for trigger in triggers() {
        let mut query = configured(trigger);
        let [left, right] = sides(&mut query, &rows);
        DataFrame::new(left.map(|r| to_row(&r)), schema(LEFT)).create_or_replace_temp_view("a");
        DataFrame::new(right.map(|r| to_row(&r)), schema(RIGHT)).create_or_replace_temp_view("b");
        let table = query
            .sql("SELECT * FROM a INNER JOIN b ON a.adId = b.clickAdId AND a.impId < b.clkId + 100")
            .unwrap()
            .select_expr(&["impId", "clkId"])
            .unwrap()
            .to_memory("joined");
        let running = query.start().expect("start");
        finish_ok(&running, "unbounded join");
        let pairs: Vec<Pair> = table.rows().iter().map(pair).collect();
        assert_eq!(sorted(pairs), expected, "{trigger:?}");
    }
}

#[test]
fn the_joined_schema_is_both_sides_nullable_on_the_outer_side() {
    let mut query = Query::builder();
    let (left, right) = frames(&mut query, &[]);
    left.create_or_replace_temp_view("impressions");
    right.create_or_replace_temp_view("clicks");
    let joined = query
        .sql(
            "SELECT * FROM impressions LEFT JOIN clicks ON adId = clickAdId \
             AND clickTime BETWEEN impTime AND impTime + INTERVAL 1 HOUR",
        )
        .unwrap();
    let nullable: Vec<(String, bool)> = joined
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().to_string(), f.is_nullable()))
        .collect();
    let expected: Vec<(String, bool)> = [
        ("impId", false),
        ("adId", true),
        ("impTime", false),
        ("clkId", true),
        ("clickAdId", true),
        ("clickTime", true),
    ]
    .map(|(n, b)| (n.to_string(), b))
    .to_vec();
    assert_eq!(nullable, expected);

    // A name both sides have: the right one is qualified, as in a stream–static join.
    let mut query = Query::builder();
    let [l, r] = sides(&mut query, &[]);
    let same = ["id", "ad", "time"];
    let delay = "1 minute";
    DataFrame::new(l.map(|r| to_row(&r)), schema(same))
        .with_watermark("time", delay)
        .unwrap()
        .create_or_replace_temp_view("a");
    DataFrame::new(r.map(|r| to_row(&r)), schema(same))
        .with_watermark("time", delay)
        .unwrap()
        .create_or_replace_temp_view("b");
    let joined = query
        .sql(
            "SELECT a.id, b.id AS other, b.time FROM a JOIN b ON a.ad = b.ad \
             AND b.time >= a.time AND b.time <= a.time + INTERVAL 10 MINUTES",
        )
        .unwrap();
    assert_eq!(joined.columns(), ["id", "other", "time"]);
}

/// What a refused statement says, and that it names where.
fn refused(setup: impl FnOnce(&mut QueryBuilder), text: &str) -> String {
    let mut query = Query::builder();
    setup(&mut query);
    match query.sql(text) {
        Ok(_) => panic!("`{text}` was planned"),
        Err(error) => error.to_string(),
    }
}

fn two_streams(query: &mut QueryBuilder) {
    let (left, right) = frames(query, &[]);
    left.create_or_replace_temp_view("i");
    right.create_or_replace_temp_view("c");
}

#[test]
fn unsupported_stream_joins_are_refused_naming_the_construct_and_position() {
    // No equality between the sides.
    let error = refused(
        two_streams,
        "SELECT * FROM i JOIN c ON c.clickTime BETWEEN i.impTime AND i.impTime + INTERVAL 1 HOUR",
    );
    assert!(error.contains("without an equality"), "{error}");
    assert!(error.contains("line 1, column 27"), "{error}");

    // A left outer join whose condition does not bound how late a right row comes.
    let error = refused(
        two_streams,
        "SELECT * FROM i LEFT JOIN c ON i.adId = c.clickAdId AND c.clickTime >= i.impTime",
    );
    assert!(
        error.contains("LEFT OUTER JOIN of two streams without a time condition"),
        "{error}"
    );
    assert!(error.contains("line 1, column 32"), "{error}");
    // ... and one without any time condition.
    let error = refused(
        two_streams,
        "SELECT * FROM i FULL JOIN c ON i.adId = c.clickAdId",
    );
    assert!(error.contains("FULL OUTER JOIN of two streams"), "{error}");

    // A stream joined with itself (a streaming view is read once).
    let error = refused(
        two_streams,
        "SELECT * FROM i JOIN i AS j ON i.adId = j.adId",
    );
    assert!(error.contains("with itself"), "{error}");
    assert!(error.contains("line 1, column 22"), "{error}");

    // An interval of months, and an interval outside a time condition.
    let error = refused(
        two_streams,
        "SELECT * FROM i JOIN c ON i.adId = c.clickAdId AND c.clickTime <= i.impTime + INTERVAL 1 MONTH",
    );
    assert!(error.contains("INTERVAL 1 MONTH"), "{error}");
    assert!(error.contains("unknown unit `month`"), "{error}");
    let error = refused(two_streams, "SELECT impTime + INTERVAL 1 HOUR FROM i");
    assert!(error.contains("outside the time condition"), "{error}");
    assert!(error.contains("line 1, column 27"), "{error}");

    // A time condition on a column that is not the side's event time.
    let error = refused(
        two_streams,
        "SELECT * FROM i JOIN c ON i.adId = c.clickAdId AND c.clickTime <= CAST(i.impId AS TIMESTAMP) + INTERVAL 1 HOUR",
    );
    assert!(
        error.contains("event-time columns (left `impTime`, right `clickTime`)"),
        "{error}"
    );

    // A time condition within one side.
    let error = refused(
        two_streams,
        "SELECT * FROM i JOIN c ON i.adId = c.clickAdId AND i.impTime < i.impTime + INTERVAL 1 HOUR",
    );
    assert!(error.contains("two times of one side"), "{error}");

    // An outer join of streams without watermarks.
    let error = refused(
        |query| {
            let [l, r] = sides(query, &[]);
            DataFrame::new(l.map(|r| to_row(&r)), schema(LEFT)).create_or_replace_temp_view("i");
            DataFrame::new(r.map(|r| to_row(&r)), schema(RIGHT)).create_or_replace_temp_view("c");
        },
        "SELECT * FROM i LEFT JOIN c ON i.adId = c.clickAdId \
         AND c.clickTime BETWEEN i.impTime AND i.impTime + INTERVAL 1 HOUR",
    );
    assert!(
        error.contains("(left none: no with_watermark, right none"),
        "{error}"
    );

    // RIGHT and FULL joins of a stream with a static view.
    let error = refused(
        |query| {
            two_streams(query);
            StaticFrame::new(schema(["a", "b", "t"]), [])
                .unwrap()
                .create_or_replace_temp_view(query, "s");
        },
        "SELECT * FROM i RIGHT JOIN s ON i.adId = s.b",
    );
    assert!(
        error.contains("RIGHT or FULL OUTER JOIN of a stream with a static view"),
        "{error}"
    );
}

#[test]
fn the_frame_api_refuses_what_it_cannot_plan() {
    let range = TimeRange::from_micros(0, 10).unwrap();
    let check = |on: JoinCondition, how: JoinType, expect: &str| {
        let mut query = Query::builder();
        let (left, right) = frames(&mut query, &[]);
        let error = left.join(right, on, how).unwrap_err().to_string();
        assert!(error.contains(expect), "{error}");
    };
    check(
        JoinCondition::keys([]),
        JoinType::Inner,
        "at least one pair of equal keys",
    );
    check(
        JoinCondition::keys([(col("adId"), col("clickTime"))]),
        JoinType::Inner,
        "cannot be compared",
    );
    check(
        JoinCondition::keys([(col("adId"), col("nope"))]),
        JoinType::Inner,
        "nope",
    );
    check(
        JoinCondition::keys([(col("adId"), col("clickAdId"))]).time_at_most(0),
        JoinType::LeftOuter,
        "left outer stream–stream join needs a time condition",
    );
    check(
        JoinCondition::keys([(col("adId"), col("clickAdId"))]).time_at_least(0),
        JoinType::RightOuter,
        "right outer stream–stream join needs a time condition",
    );
    check(
        JoinCondition::keys([(col("adId"), col("clickAdId"))])
            .within(range)
            .time_at_least(20),
        JoinType::Inner,
        "lower bound",
    );
    check(
        JoinCondition::keys([(col("adId"), col("clickAdId"))])
            .within(range)
            .and(col("adId")),
        JoinType::Inner,
        "must be boolean",
    );

    // An outer join needs watermarks on both frames.
    let mut query = Query::builder();
    let [l, r] = sides(&mut query, &[]);
    let left = DataFrame::new(l.map(|r| to_row(&r)), schema(LEFT))
        .with_watermark("impTime", "1 minute")
        .unwrap();
    let right = DataFrame::new(r.map(|r| to_row(&r)), schema(RIGHT));
    let on = JoinCondition::keys([(col("adId"), col("clickAdId"))]).within(range);
    let error = left
        .join(right, on, JoinType::LeftOuter)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("needs watermarks on both frames") && error.contains("the right has none"),
        "{error}"
    );

    // join_static is inner or left outer.
    let mut query = Query::builder();
    let (left, _) = frames(&mut query, &[]);
    let table = StaticFrame::new(schema(["a", "b", "t"]), []).unwrap();
    let error = left
        .join_static(&table, [(col("adId"), col("b"))], JoinType::FullOuter)
        .unwrap_err()
        .to_string();
    assert!(error.contains("inner or left outer"), "{error}");

    // join_expr: an equality is needed.
    let mut query = Query::builder();
    let (left, right) = frames(&mut query, &[]);
    let error = left
        .join_expr(right, "adId < clickAdId", JoinType::Inner)
        .unwrap_err();
    assert!(matches!(error, SqlError::Unsupported { .. }), "{error}");
}
