//! The built-in aggregate functions: [`count`], [`sum`], [`min`], [`max`], [`avg`],
//! [`fold`] and [`aggregate`] (see the [module docs](super) for what they compute and
//! where they differ from Spark).

use super::Aggregate;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;

// -------------------------------------------------------------------------- numbers

mod sealed {
    pub trait Sealed {}
}

/// A number [`sum`] and [`avg`] accept: the primitive integers and floats.
///
/// Sealed: rivulet alone implements it. Sums are kept in a wider type, as Spark keeps
/// them ([`Number::Sum`]):
///
/// | input | sum | Spark |
/// |---|---|---|
/// | `i8`, `i16`, `i32`, `i64`, `isize` | `i64` | `sum` of byte, short, int, long is long |
/// | `u8`, `u16`, `u32`, `u64`, `usize` | `u64` | (Spark has no unsigned types) |
/// | `f32`, `f64` | `f64` | `sum` of float, double is double |
///
/// Integer sums wrap on overflow (two's complement), as Spark's long sum does with
/// `spark.sql.ansi.enabled=false`; Spark's ANSI mode fails the query instead. Wrapping
/// keeps every integer sum exact modulo 2^64, so merging partial sums gives exactly the
/// sequential sum whatever the split, and a running aggregate never panics on its hot
/// path. Widening `i32` to `i64` makes overflow a matter of more than 2^32 records of
/// extreme values.
pub trait Number: Copy + Send + 'static + sealed::Sealed {
    /// The type a sum of these numbers is kept in.
    type Sum: Copy + PartialEq + fmt::Debug + Send + Serialize + DeserializeOwned + 'static;

    /// The sum of no numbers.
    fn zero() -> Self::Sum;

    /// This number as a sum (exact).
    fn widen(self) -> Self::Sum;

    /// `a + b`: wrapping for integers, IEEE 754 addition for floats.
    fn add(a: Self::Sum, b: Self::Sum) -> Self::Sum;

    /// This number as a double (what [`avg`] adds; Spark casts to double too): exact for
    /// `f32`, `f64` and integers of magnitude up to 2^53, rounded to nearest beyond.
    fn to_f64(self) -> f64;
}

macro_rules! integer {
    ($sum:ty: $($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t {
            type Sum = $sum;
            #[inline]
            fn zero() -> $sum {
                0
            }
            #[inline]
            fn widen(self) -> $sum {
                self as $sum
            }
            #[inline]
            fn add(a: $sum, b: $sum) -> $sum {
                a.wrapping_add(b)
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

integer!(i64: i8, i16, i32, i64, isize);
integer!(u64: u8, u16, u32, u64, usize);

macro_rules! float {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t {
            type Sum = f64;
            #[inline]
            fn zero() -> f64 {
                0.0
            }
            #[inline]
            fn widen(self) -> f64 {
                f64::from(self)
            }
            #[inline]
            fn add(a: f64, b: f64) -> f64 {
                a + b
            }
            #[inline]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}

float!(f32, f64);

// -------------------------------------------------------------------------- count

/// The number of records (Spark's `count(*)`). Created by [`count`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count;

/// The number of records, as a `u64` (Spark's `count(*)`, a long).
///
/// ```
/// use rivulet::aggregate::{count, Aggregate};
///
/// let c = count();
/// let mut acc = Aggregate::<&str>::init(&c);
/// for word in ["a", "b", "c"] {
///     c.add(&mut acc, &word);
/// }
/// assert_eq!(Aggregate::<&str>::result(&c, &acc), 3);
/// ```
pub fn count() -> Count {
    Count
}

impl<T> Aggregate<T> for Count {
    type Acc = u64;
    type Out = u64;

    #[inline]
    fn init(&self) -> u64 {
        0
    }

    #[inline]
    fn add(&self, acc: &mut u64, _record: &T) {
        *acc += 1;
    }

    #[inline]
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += *other;
    }

    #[inline]
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

// -------------------------------------------------------------------------- sum

/// The sum of a numeric field. Created by [`sum`].
#[derive(Clone, Copy)]
pub struct Sum<F> {
    field: F,
}

impl<F> fmt::Debug for Sum<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sum")
    }
}

/// The sum of `field` over the records, in the wider type [`Number::Sum`] (`i64` for
/// signed integers, `u64` for unsigned ones, `f64` for floats, as Spark widens).
///
/// Integer sums wrap on overflow and are exact under any split and merge. Float sums add
/// in arrival order; a merge adds two partial sums, which may round differently from
/// adding the records one by one (as Spark's partial aggregation does). The sum of no
/// records is zero (Spark's is null; a key or window never has zero records).
///
/// ```
/// use rivulet::aggregate::{sum, Aggregate};
///
/// let total = sum(|x: &i32| *x);
/// let mut acc = total.init();
/// for x in [i32::MAX, i32::MAX, -5] {
///     total.add(&mut acc, &x);
/// }
/// let result: i64 = total.result(&acc); // widened: no overflow
/// assert_eq!(result, 2 * i64::from(i32::MAX) - 5);
/// ```
pub fn sum<T, V, F>(field: F) -> Sum<F>
where
    V: Number,
    F: Fn(&T) -> V + Clone + Send + 'static,
{
    Sum { field }
}

impl<T, V, F> Aggregate<T> for Sum<F>
where
    V: Number,
    F: Fn(&T) -> V + Clone + Send + 'static,
{
    type Acc = V::Sum;
    type Out = V::Sum;

    #[inline]
    fn init(&self) -> V::Sum {
        V::zero()
    }

    #[inline]
    fn add(&self, acc: &mut V::Sum, record: &T) {
        *acc = V::add(*acc, (self.field)(record).widen());
    }

    #[inline]
    fn merge(&self, acc: &mut V::Sum, other: &V::Sum) {
        *acc = V::add(*acc, *other);
    }

    #[inline]
    fn result(&self, acc: &V::Sum) -> V::Sum {
        *acc
    }
}

// -------------------------------------------------------------------------- min / max

/// Whether `v` is not comparable with itself: a NaN, or a value holding one.
#[inline]
fn is_nan<V: PartialOrd>(v: &V) -> bool {
    v.partial_cmp(v).is_none()
}

/// Whether `a > b` in Spark's order: `PartialOrd`, where a value not comparable with
/// itself (NaN) is greater than every other value and equal to another such value.
/// Other incomparable pairs count as not greater.
#[inline]
fn greater<V: PartialOrd>(a: &V, b: &V) -> bool {
    match a.partial_cmp(b) {
        Some(order) => order == Ordering::Greater,
        None => is_nan(a) && !is_nan(b),
    }
}

/// `Aggregate` for [`Min`] and [`Max`], which differ only in their name and in which of
/// two values wins: `wins(new, current)` says whether `new` replaces `current`, so on
/// ties (and for incomparable non-NaN values) the earlier value stays, in `add` and
/// `merge` alike, and merging partial results gives exactly the sequential result.
macro_rules! extreme_aggregate {
    ($ty:ident, $name:literal, $wins:expr) => {
        impl<T, V, F> Aggregate<T> for $ty<F>
        where
            V: PartialOrd + Clone + Send + Serialize + DeserializeOwned + 'static,
            F: Fn(&T) -> V + Clone + Send + 'static,
        {
            type Acc = Option<V>;
            type Out = V;

            #[inline]
            fn init(&self) -> Option<V> {
                None
            }

            #[inline]
            fn add(&self, acc: &mut Option<V>, record: &T) {
                let value = (self.field)(record);
                match acc {
                    Some(current) if !$wins(&value, current) => {}
                    _ => *acc = Some(value),
                }
            }

            #[inline]
            fn merge(&self, acc: &mut Option<V>, other: &Option<V>) {
                if let Some(value) = other {
                    if acc.as_ref().is_none_or(|current| $wins(value, current)) {
                        *acc = Some(value.clone());
                    }
                }
            }

            #[inline]
            fn result(&self, acc: &Option<V>) -> V {
                match acc {
                    Some(value) => value.clone(),
                    None => no_records($name),
                }
            }
        }
    };
}

#[cold]
#[inline(never)]
fn no_records(what: &str) -> ! {
    panic!(
        "the {what} of no records: a key or window always has records, so whoever asked \
         for this result called `result` on an accumulator no record was added to"
    )
}

/// The largest value of a field. Created by [`max`].
#[derive(Clone, Copy)]
pub struct Max<F> {
    field: F,
}

impl<F> fmt::Debug for Max<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Max")
    }
}

/// The largest value of `field` over the records (Spark's `max`).
///
/// Values are compared with `PartialOrd` in Spark's order for floats: NaN is greater
/// than every other value (so one NaN makes the maximum NaN), and NaNs are equal to one
/// another. More generally a value not comparable with itself counts as a NaN; two other
/// values that do not compare (a partial order) leave the maximum as it was, and only
/// for total orders (plus NaN) does merging give the sequential result. Of values that
/// compare equal (`0.0` and `-0.0`) the first one seen is kept, by `add` and by `merge`
/// alike, so merging partial results always gives exactly the sequential result.
///
/// The accumulator is `Option<V>`, `None` until the first record; the result is `V`.
///
/// # Panics
///
/// [`result`](Aggregate::result) panics on an accumulator of no records. Keys and
/// windows never ask for one: a key or window exists once it has a record.
///
/// ```
/// use rivulet::aggregate::{max, Aggregate};
///
/// let highest = max(|x: &f64| *x);
/// let mut acc = highest.init();
/// for x in [1.0, -3.0, 2.5] {
///     highest.add(&mut acc, &x);
/// }
/// assert_eq!(highest.result(&acc), 2.5);
/// highest.add(&mut acc, &f64::NAN);
/// assert!(highest.result(&acc).is_nan()); // NaN is greater than every number
/// ```
pub fn max<T, V, F>(field: F) -> Max<F>
where
    V: PartialOrd + Clone + Send + Serialize + DeserializeOwned + 'static,
    F: Fn(&T) -> V + Clone + Send + 'static,
{
    Max { field }
}

extreme_aggregate!(Max, "max", |new: &V, current: &V| greater(new, current));

/// The smallest value of a field. Created by [`min`].
#[derive(Clone, Copy)]
pub struct Min<F> {
    field: F,
}

impl<F> fmt::Debug for Min<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Min")
    }
}

/// The smallest value of `field` over the records (Spark's `min`), in the order
/// [`max`] describes: NaN is greater than every other value, so it is the minimum only
/// of records that are all NaN.
///
/// The accumulator is `Option<V>`, `None` until the first record; the result is `V`.
///
/// # Panics
///
/// [`result`](Aggregate::result) panics on an accumulator of no records (see [`max`]).
///
/// ```
/// use rivulet::aggregate::{min, Aggregate};
///
/// let lowest = min(|x: &f64| *x);
/// let mut acc = lowest.init();
/// for x in [1.0, f64::NAN, -3.0] {
///     lowest.add(&mut acc, &x);
/// }
/// assert_eq!(lowest.result(&acc), -3.0);
/// ```
pub fn min<T, V, F>(field: F) -> Min<F>
where
    V: PartialOrd + Clone + Send + Serialize + DeserializeOwned + 'static,
    F: Fn(&T) -> V + Clone + Send + 'static,
{
    Min { field }
}

extreme_aggregate!(Min, "min", |new: &V, current: &V| greater(current, new));

// -------------------------------------------------------------------------- avg

/// The mean of a numeric field. Created by [`avg`].
#[derive(Clone, Copy)]
pub struct Avg<F> {
    field: F,
}

impl<F> fmt::Debug for Avg<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Avg")
    }
}

/// The mean of `field` over the records, as an `f64` (Spark's `avg` / `Average`).
///
/// As Spark's `Average` does for integer and float inputs, the accumulator is a double
/// sum, to which each value is added as a double in arrival order, and a count; the
/// result is `sum / count`. A merge adds the two sums and the counts: exact for integer
/// inputs while the sum's magnitude stays below 2^53, otherwise equal to the sequential
/// mean within rounding. The mean of no records is NaN (`0 / 0`; Spark's is null; a key
/// or window never has zero records).
///
/// ```
/// use rivulet::aggregate::{avg, Aggregate};
///
/// let mean = avg(|x: &u32| *x);
/// let mut acc = mean.init();
/// for x in [1, 2, 4] {
///     mean.add(&mut acc, &x);
/// }
/// assert_eq!(mean.result(&acc), 7.0 / 3.0);
/// ```
pub fn avg<T, V, F>(field: F) -> Avg<F>
where
    V: Number,
    F: Fn(&T) -> V + Clone + Send + 'static,
{
    Avg { field }
}

impl<T, V, F> Aggregate<T> for Avg<F>
where
    V: Number,
    F: Fn(&T) -> V + Clone + Send + 'static,
{
    /// `(sum, count)`.
    type Acc = (f64, u64);
    type Out = f64;

    #[inline]
    fn init(&self) -> (f64, u64) {
        (0.0, 0)
    }

    #[inline]
    fn add(&self, acc: &mut (f64, u64), record: &T) {
        acc.0 += (self.field)(record).to_f64();
        acc.1 += 1;
    }

    #[inline]
    fn merge(&self, acc: &mut (f64, u64), other: &(f64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }

    #[inline]
    fn result(&self, acc: &(f64, u64)) -> f64 {
        acc.0 / acc.1 as f64
    }
}

// -------------------------------------------------------------------------- fold

/// A user fold. Created by [`fold`].
#[derive(Clone, Copy)]
pub struct Fold<A, F> {
    init: A,
    add: F,
}

impl<A: fmt::Debug, F> fmt::Debug for Fold<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fold")
            .field("init", &self.init)
            .finish_non_exhaustive()
    }
}

/// Folds the records into an accumulator that starts as a clone of `init`, with
/// `add(&mut acc, record)`; the result is the accumulator.
///
/// A fold cannot be merged ([`mergeable`](Aggregate::mergeable) is `false`), so windows
/// that combine partial accumulators (sliding, session) refuse it; use [`aggregate`] to
/// give a merge.
///
/// # Panics
///
/// [`merge`](Aggregate::merge) panics: callers ask [`mergeable`](Aggregate::mergeable)
/// first.
///
/// ```
/// use rivulet::aggregate::{fold, Aggregate};
///
/// // The distinct words, in order of first appearance.
/// let distinct = fold(Vec::new(), |seen: &mut Vec<String>, word: &&str| {
///     if !seen.iter().any(|s| s == word) {
///         seen.push(word.to_string());
///     }
/// });
/// let mut acc = distinct.init();
/// for word in ["b", "a", "b"] {
///     distinct.add(&mut acc, &word);
/// }
/// assert_eq!(distinct.result(&acc), ["b", "a"]);
/// assert!(!distinct.mergeable());
/// ```
pub fn fold<T, A, F>(init: A, add: F) -> Fold<A, F>
where
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    F: Fn(&mut A, &T) + Clone + Send + 'static,
{
    Fold { init, add }
}

impl<T, A, F> Aggregate<T> for Fold<A, F>
where
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    F: Fn(&mut A, &T) + Clone + Send + 'static,
{
    type Acc = A;
    type Out = A;

    #[inline]
    fn init(&self) -> A {
        self.init.clone()
    }

    #[inline]
    fn add(&self, acc: &mut A, record: &T) {
        (self.add)(acc, record);
    }

    fn mergeable(&self) -> bool {
        false
    }

    fn merge(&self, _acc: &mut A, _other: &A) {
        panic!("a fold cannot be merged (`mergeable()` is false); use `aggregate` to give a merge")
    }

    #[inline]
    fn result(&self, acc: &A) -> A {
        acc.clone()
    }
}

// -------------------------------------------------------------------------- aggregate

/// A user-defined mergeable aggregate. Created by [`aggregate`].
#[derive(Clone, Copy)]
pub struct Custom<A, F, M, R> {
    init: A,
    add: F,
    merge: M,
    result: R,
}

impl<A: fmt::Debug, F, M, R> fmt::Debug for Custom<A, F, M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custom")
            .field("init", &self.init)
            .finish_non_exhaustive()
    }
}

/// A user-defined aggregate (Spark's `Aggregator`: `zero`, `reduce`, `merge`, `finish`):
/// the accumulator starts as a clone of `init`, `add(&mut acc, record)` adds a record,
/// `merge(&mut acc, &other)` adds what another accumulator holds, `result(&acc)` is the
/// result.
///
/// `merge` must agree with `add`: merging the accumulators of two runs of records must
/// give what adding the second run's records one by one would (windows rely on it).
///
/// ```
/// use rivulet::aggregate::{aggregate, Aggregate};
///
/// // The range of a field: (min, max) in one accumulator.
/// let range = aggregate(
///     (i64::MAX, i64::MIN),
///     |acc: &mut (i64, i64), x: &i64| *acc = (acc.0.min(*x), acc.1.max(*x)),
///     |acc, other| *acc = (acc.0.min(other.0), acc.1.max(other.1)),
///     |acc| acc.1 - acc.0,
/// );
/// let (mut left, mut right) = (range.init(), range.init());
/// for x in [3, -2] {
///     range.add(&mut left, &x);
/// }
/// range.add(&mut right, &10);
/// range.merge(&mut left, &right);
/// assert_eq!(range.result(&left), 12);
/// ```
pub fn aggregate<T, A, O, F, M, R>(init: A, add: F, merge: M, result: R) -> Custom<A, F, M, R>
where
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    O: Clone + Send + 'static,
    F: Fn(&mut A, &T) + Clone + Send + 'static,
    M: Fn(&mut A, &A) + Clone + Send + 'static,
    R: Fn(&A) -> O + Clone + Send + 'static,
{
    Custom {
        init,
        add,
        merge,
        result,
    }
}

impl<T, A, O, F, M, R> Aggregate<T> for Custom<A, F, M, R>
where
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    O: Clone + Send + 'static,
    F: Fn(&mut A, &T) + Clone + Send + 'static,
    M: Fn(&mut A, &A) + Clone + Send + 'static,
    R: Fn(&A) -> O + Clone + Send + 'static,
{
    type Acc = A;
    type Out = O;

    #[inline]
    fn init(&self) -> A {
        self.init.clone()
    }

    #[inline]
    fn add(&self, acc: &mut A, record: &T) {
        (self.add)(acc, record);
    }

    #[inline]
    fn merge(&self, acc: &mut A, other: &A) {
        (self.merge)(acc, other);
    }

    #[inline]
    fn result(&self, acc: &A) -> O {
        (self.result)(acc)
    }
}

// -------------------------------------------------------------------------- over

/// The built-in aggregate functions with the record type fixed to `T`, so their closures
/// need no annotation: `over.max(|r| r.hz)` instead of `max(|r: &Reading| r.hz)`.
/// Each method returns what the free function of the same name returns.
///
/// [`KeyedStream::agg_with`](crate::KeyedStream::agg_with) hands one to its closure;
/// elsewhere `Over::<Reading>::new()` makes one.
///
/// ```
/// use rivulet::aggregate::{Aggregate, Over};
///
/// struct Reading {
///     hz: f64,
/// }
///
/// let over = Over::<Reading>::new();
/// let stats = (over.count(), over.max(|r| r.hz), over.avg(|r| r.hz));
/// let mut acc = stats.init();
/// for hz in [50.0, 48.0] {
///     stats.add(&mut acc, &Reading { hz });
/// }
/// assert_eq!(stats.result(&acc), (2, 50.0, 49.0));
/// ```
pub struct Over<T>(PhantomData<fn(&T)>);

impl<T> Over<T> {
    /// The built-ins over records of type `T`.
    pub fn new() -> Self {
        Over(PhantomData)
    }

    /// [`count()`](count()).
    pub fn count(&self) -> Count {
        Count
    }

    /// [`sum(field)`](sum()).
    pub fn sum<V, F>(&self, field: F) -> Sum<F>
    where
        V: Number,
        F: Fn(&T) -> V + Clone + Send + 'static,
    {
        sum(field)
    }

    /// [`min(field)`](min()).
    pub fn min<V, F>(&self, field: F) -> Min<F>
    where
        V: PartialOrd + Clone + Send + Serialize + DeserializeOwned + 'static,
        F: Fn(&T) -> V + Clone + Send + 'static,
    {
        min(field)
    }

    /// [`max(field)`](max()).
    pub fn max<V, F>(&self, field: F) -> Max<F>
    where
        V: PartialOrd + Clone + Send + Serialize + DeserializeOwned + 'static,
        F: Fn(&T) -> V + Clone + Send + 'static,
    {
        max(field)
    }

    /// [`avg(field)`](avg()).
    pub fn avg<V, F>(&self, field: F) -> Avg<F>
    where
        V: Number,
        F: Fn(&T) -> V + Clone + Send + 'static,
    {
        avg(field)
    }

    /// [`fold(init, add)`](fold()).
    pub fn fold<A, F>(&self, init: A, add: F) -> Fold<A, F>
    where
        A: Clone + Send + Serialize + DeserializeOwned + 'static,
        F: Fn(&mut A, &T) + Clone + Send + 'static,
    {
        fold(init, add)
    }

    /// [`aggregate(init, add, merge, result)`](aggregate()).
    pub fn aggregate<A, O, F, M, R>(
        &self,
        init: A,
        add: F,
        merge: M,
        result: R,
    ) -> Custom<A, F, M, R>
    where
        A: Clone + Send + Serialize + DeserializeOwned + 'static,
        O: Clone + Send + 'static,
        F: Fn(&mut A, &T) + Clone + Send + 'static,
        M: Fn(&mut A, &A) + Clone + Send + 'static,
        R: Fn(&A) -> O + Clone + Send + 'static,
    {
        aggregate(init, add, merge, result)
    }
}

impl<T> Default for Over<T> {
    fn default() -> Self {
        Over::new()
    }
}

impl<T> Clone for Over<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Over<T> {}

impl<T> fmt::Debug for Over<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Over<{}>", std::any::type_name::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The accumulator of `records`, added one by one.
    fn fold_all<T, A: Aggregate<T>>(agg: &A, records: &[T]) -> A::Acc {
        let mut acc = agg.init();
        for record in records {
            agg.add(&mut acc, record);
        }
        acc
    }

    /// The result of `records`, added one by one.
    fn result_of<T, A: Aggregate<T>>(agg: &A, records: &[T]) -> A::Out {
        agg.result(&fold_all(agg, records))
    }

    /// The accumulator of `records` cut at `cuts` (positions, any order, repeats make
    /// empty parts), each part added one by one, the parts then merged in the order
    /// `picks` gives: each pick merges one part into its left neighbour (so the merge
    /// tree is arbitrary, but a part is always merged after those before it).
    fn merged<T, A: Aggregate<T>>(
        agg: &A,
        records: &[T],
        cuts: &[usize],
        picks: &[usize],
    ) -> A::Acc {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (records.len() + 1)).collect();
        cuts.push(0);
        cuts.push(records.len());
        cuts.sort_unstable();
        let mut parts: Vec<A::Acc> = cuts
            .windows(2)
            .map(|w| fold_all(agg, &records[w[0]..w[1]]))
            .collect();
        let mut picks = picks.iter().cycle();
        while parts.len() > 1 {
            let i = 1 + picks.next().map_or(0, |p| p % (parts.len() - 1));
            let right = parts.remove(i);
            agg.merge(&mut parts[i - 1], &right);
        }
        parts.pop().expect("one part")
    }

    fn floats() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1e6f64..1e6,
            1 => Just(f64::NAN),
            1 => Just(-0.0),
            1 => Just(0.0),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => any::<f64>(),
        ]
    }

    /// Few distinct values, many of them equal but with different bits (`0.0` and
    /// `-0.0`, NaNs with different payloads and signs), so ties cross the splits.
    fn tied_floats() -> impl Strategy<Value = f64> {
        prop::sample::select(vec![
            0.0,
            -0.0,
            -1.0,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff8_0000_0000_0001),
        ])
    }

    /// Spark's max of doubles, written independently: NaN if there is one, else the
    /// largest number (`0.0` and `-0.0` compare equal).
    fn spark_max(values: &[f64]) -> f64 {
        if values.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else {
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }
    }

    /// Spark's min of doubles: the smallest number, NaN only if all are NaN.
    fn spark_min(values: &[f64]) -> f64 {
        let numbers: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if numbers.is_empty() {
            f64::NAN
        } else {
            numbers.into_iter().fold(f64::INFINITY, f64::min)
        }
    }

    fn same_float(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b
    }

    // ------------------------------------------------------------------ examples

    #[test]
    fn count_counts_and_merges() {
        let c = count();
        let records = ["x"; 5];
        assert_eq!(result_of(&c, &records), 5);
        assert_eq!(result_of(&c, &records[..0]), 0);
        let mut acc = fold_all(&c, &records[..2]);
        Aggregate::<&str>::merge(&c, &mut acc, &fold_all(&c, &records[2..]));
        assert_eq!(acc, 5);
        Aggregate::<&str>::merge(&c, &mut acc, &0);
        assert_eq!(acc, 5);
    }

    #[test]
    fn integer_sums_widen_and_wrap() {
        // i32 widens to i64: no overflow at 3 * i32::MAX.
        let s = sum(|x: &i32| *x);
        assert_eq!(
            result_of(&s, &[i32::MAX, i32::MAX, i32::MAX, -4]),
            3 * i64::from(i32::MAX) - 4
        );
        assert_eq!(
            result_of(&s, &[i32::MIN, i32::MIN]),
            2 * i64::from(i32::MIN)
        );
        assert_eq!(result_of(&s, &[]), 0);
        // i64 wraps like a Java long.
        let s = sum(|x: &i64| *x);
        assert_eq!(result_of(&s, &[i64::MAX, 1]), i64::MIN);
        assert_eq!(result_of(&s, &[i64::MIN, -1, 5]), i64::MAX.wrapping_add(5));
        // Unsigned widens to u64.
        let s = sum(|x: &u8| *x);
        assert_eq!(result_of(&s, &[255, 255, 1]), 511u64);
        let s = sum(|x: &usize| *x);
        assert_eq!(result_of(&s, &[usize::MAX, 2]), 1u64);
        let s = sum(|x: &i8| *x);
        assert_eq!(result_of(&s, &[-128, -128, 127]), -129i64);
    }

    #[test]
    fn float_sums_are_doubles_in_arrival_order() {
        let s = sum(|x: &f32| *x);
        // In f32, 16777216 + 1 + 1 stays 16777216; in f64 it does not.
        let result: f64 = result_of(&s, &[16_777_216.0, 1.0, 1.0]);
        assert_eq!(result, 16_777_218.0);
        let s = sum(|x: &f64| *x);
        let values = [0.1, 0.2, -0.3, 1e16, 1.0, -1e16];
        let sequential = values.iter().fold(0.0, |acc, x| acc + x);
        assert_eq!(result_of(&s, &values).to_bits(), sequential.to_bits());
        assert!(result_of(&s, &[1.0, f64::NAN]).is_nan());
        assert_eq!(result_of(&s, &[f64::INFINITY, 1.0]), f64::INFINITY);
    }

    #[test]
    fn max_and_min_follow_sparks_order() {
        let hi = max(|x: &f64| *x);
        let lo = min(|x: &f64| *x);
        let cases: [&[f64]; 7] = [
            &[-3.0, -1.5, -7.0],
            &[1.0, f64::NAN, 3.0],
            &[f64::NAN, f64::NAN],
            &[f64::NEG_INFINITY, f64::NAN, f64::INFINITY],
            &[f64::NAN, -2.0],
            &[4.0],
            &[-0.0, 0.0, -0.0],
        ];
        for values in cases {
            assert!(
                same_float(result_of(&hi, values), spark_max(values)),
                "max {values:?}"
            );
            assert!(
                same_float(result_of(&lo, values), spark_min(values)),
                "min {values:?}"
            );
        }
        // Of equal values the first is kept.
        assert!(result_of(&hi, &[-0.0, 0.0]).is_sign_negative());
        assert!(result_of(&lo, &[0.0, -0.0]).is_sign_positive());
        // Integers, negatives.
        assert_eq!(result_of(&max(|x: &i64| *x), &[-5, -2, -9]), -2);
        assert_eq!(result_of(&min(|x: &i64| *x), &[-5, -2, -9]), -9);
        assert_eq!(
            result_of(&min(|x: &i32| *x), &[i32::MIN, i32::MAX]),
            i32::MIN
        );
    }

    #[test]
    fn max_and_min_take_clone_values() {
        let words = ["pear", "apple", "quince", "fig"];
        let hi = max(|w: &&str| w.to_string());
        let lo = min(|w: &&str| w.to_string());
        assert_eq!(result_of(&hi, &words), "quince");
        assert_eq!(result_of(&lo, &words), "apple");
        // Option<V> is PartialOrd too: None is the smallest.
        let hi = max(|x: &Option<u8>| *x);
        assert_eq!(result_of(&hi, &[None, Some(3), Some(1)]), Some(3));
    }

    #[test]
    fn max_and_min_merge_with_empty() {
        let hi = max(|x: &i32| *x);
        let mut acc = hi.init();
        hi.merge(&mut acc, &hi.init());
        assert_eq!(acc, None);
        hi.merge(&mut acc, &Some(-4));
        assert_eq!(acc, Some(-4));
        hi.merge(&mut acc, &None);
        assert_eq!(acc, Some(-4));
        let lo = min(|x: &i32| *x);
        let mut acc = Some(3);
        lo.merge(&mut acc, &None);
        lo.merge(&mut acc, &Some(7));
        assert_eq!(acc, Some(3));
        lo.merge(&mut acc, &Some(-7));
        assert_eq!(acc, Some(-7));
    }

    #[test]
    #[should_panic(expected = "the max of no records")]
    fn max_of_no_records_panics() {
        let hi = max(|x: &i32| *x);
        hi.result(&hi.init());
    }

    #[test]
    #[should_panic(expected = "the min of no records")]
    fn min_of_no_records_panics() {
        let lo = min(|x: &f64| *x);
        lo.result(&lo.init());
    }

    #[test]
    fn avg_is_a_double_sum_over_a_count() {
        let mean = avg(|x: &i32| *x);
        assert_eq!(result_of(&mean, &[-1, -2, -4]), -7.0 / 3.0);
        assert_eq!(result_of(&mean, &[i32::MAX, i32::MAX]), f64::from(i32::MAX));
        assert!(result_of(&mean, &[]).is_nan());
        let mean = avg(|x: &u64| *x);
        assert_eq!(result_of(&mean, &[u64::MAX, u64::MAX]), u64::MAX as f64);
        let mean = avg(|x: &f32| *x);
        assert_eq!(result_of(&mean, &[0.5, 1.5, 2.5]), 1.5);
        let mean = avg(|x: &f64| *x);
        assert!(result_of(&mean, &[1.0, f64::NAN]).is_nan());
        let mut acc = fold_all(&mean, &[1.0, 2.0]);
        mean.merge(&mut acc, &mean.init());
        assert_eq!(acc, (3.0, 2));
        mean.merge(&mut acc, &fold_all(&mean, &[6.0]));
        assert_eq!(mean.result(&acc), 3.0);
    }

    #[test]
    fn fold_is_not_mergeable_and_results_in_its_accumulator() {
        let f = fold(Vec::new(), |acc: &mut Vec<i32>, x: &i32| acc.push(*x * 2));
        assert!(!f.mergeable());
        assert_eq!(result_of(&f, &[1, -2, 3]), [2, -4, 6]);
        assert_eq!(result_of(&f, &[]), Vec::<i32>::new());
    }

    #[test]
    #[should_panic(expected = "a fold cannot be merged")]
    fn fold_merge_panics() {
        let f = fold(0u32, |acc: &mut u32, _x: &u8| *acc += 1);
        f.merge(&mut 1, &2);
    }

    #[test]
    fn custom_aggregate_uses_the_users_functions() {
        // Sum of squares and count, result the root mean square.
        let rms = aggregate(
            (0.0f64, 0u64),
            |acc: &mut (f64, u64), x: &f64| *acc = (acc.0 + x * x, acc.1 + 1),
            |acc, other| *acc = (acc.0 + other.0, acc.1 + other.1),
            |acc| (acc.0 / acc.1 as f64).sqrt(),
        );
        assert!(rms.mergeable());
        assert_eq!(result_of(&rms, &[3.0, -3.0, 3.0, -3.0]), 3.0);
        let mut acc = fold_all(&rms, &[3.0, 4.0]);
        rms.merge(&mut acc, &fold_all(&rms, &[0.0, 0.0]));
        assert_eq!(rms.result(&acc), 2.5);
    }

    #[test]
    fn tuples_combine_their_elements() {
        let stats = (
            count(),
            sum(|x: &i32| *x),
            min(|x: &i32| *x),
            max(|x: &i32| *x),
            avg(|x: &i32| *x),
        );
        assert!(stats.mergeable());
        assert_eq!(result_of(&stats, &[4, -2, 7, 3]), (4, 12, -2, 7, 3.0));
        // mergeable is the AND of the elements'.
        let with_fold = (count(), fold(0, |acc: &mut i32, x: &i32| *acc += x));
        assert!(!with_fold.mergeable());
        assert_eq!(result_of(&with_fold, &[1, 2]), (2, 3));
        // Eight elements, and a nested tuple.
        let eight = (
            count(),
            count(),
            sum(|x: &u8| *x),
            sum(|x: &u8| *x),
            min(|x: &u8| *x),
            max(|x: &u8| *x),
            avg(|x: &u8| *x),
            (count(), max(|x: &u8| *x)),
        );
        assert_eq!(
            result_of(&eight, &[3, 9, 6]),
            (3, 3, 18, 18, 3, 9, 6.0, (3, 9))
        );
    }

    #[test]
    fn over_fixes_the_record_type() {
        struct Reading {
            pump: &'static str,
            hz: f64,
        }
        let over = Over::<Reading>::new();
        let stats = (
            over.count(),
            over.max(|r| r.hz),
            over.min(|r| r.pump.to_string()),
            over.sum(|r| r.hz),
            over.avg(|r| r.hz),
            over.fold(0usize, |len, r| *len += r.pump.len()),
            over.aggregate(0u32, |n, r| *n += r.hz as u32, |n, m| *n += m, |n| *n),
        );
        let readings = [
            Reading {
                pump: "p2",
                hz: 2.0,
            },
            Reading {
                pump: "p10",
                hz: 4.0,
            },
        ];
        assert_eq!(
            result_of(&stats, &readings),
            (2, 4.0, "p10".to_string(), 6.0, 3.0, 5, 6)
        );
    }

    // ------------------------------------------------------------------ merge = sequential

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn integer_merges_equal_sequential(
            records in prop::collection::vec(any::<i32>(), 0..200),
            wide in prop::collection::vec(any::<i64>(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            picks in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let stats = (
                count(),
                sum(|x: &i32| *x),
                sum(|x: &i32| *x as u32),
                min(|x: &i32| *x),
                max(|x: &i32| *x),
                avg(|x: &i32| *x),
            );
            let sequential = fold_all(&stats, &records);
            prop_assert_eq!(merged(&stats, &records, &cuts, &picks), sequential);
            // Against plain computations (on non-empty input: min and max have a result).
            if !records.is_empty() {
                let result = stats.result(&sequential);
                prop_assert_eq!(result.0, records.len() as u64);
                prop_assert_eq!(result.1, records.iter().map(|&x| i64::from(x)).sum::<i64>());
                prop_assert_eq!(
                    result.2,
                    records.iter().fold(0u64, |s, &x| s.wrapping_add(u64::from(x as u32)))
                );
                prop_assert_eq!(result.3, *records.iter().min().unwrap());
                prop_assert_eq!(result.4, *records.iter().max().unwrap());
                // |sum| < 200 * 2^31 < 2^53: the double sum is exact.
                let exact = records.iter().map(|&x| i64::from(x)).sum::<i64>() as f64;
                prop_assert_eq!(result.5, exact / records.len() as f64);
            }
            // i64 sums overflow and wrap; merging is still exact.
            let total = sum(|x: &i64| *x);
            let wrapped = wide.iter().fold(0i64, |s, &x| s.wrapping_add(x));
            prop_assert_eq!(fold_all(&total, &wide), wrapped);
            prop_assert_eq!(merged(&total, &wide, &cuts, &picks), wrapped);
        }

        #[test]
        fn float_min_max_merges_equal_sequential_bit_for_bit(
            records in prop_oneof![
                prop::collection::vec(floats(), 1..100),
                prop::collection::vec(tied_floats(), 1..30),
            ],
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            picks in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let extremes = (min(|x: &f64| *x), max(|x: &f64| *x));
            let sequential = extremes.result(&fold_all(&extremes, &records));
            let parts = extremes.result(&merged(&extremes, &records, &cuts, &picks));
            prop_assert_eq!(parts.0.to_bits(), sequential.0.to_bits());
            prop_assert_eq!(parts.1.to_bits(), sequential.1.to_bits());
            prop_assert!(same_float(sequential.0, spark_min(&records)));
            prop_assert!(same_float(sequential.1, spark_max(&records)));
        }

        #[test]
        fn float_sum_and_avg_merges_equal_sequential_within_rounding(
            records in prop::collection::vec(-1e6f64..1e6, 1..200),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            picks in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let stats = (sum(|x: &f64| *x), avg(|x: &f64| *x));
            let sequential = stats.result(&fold_all(&stats, &records));
            let parts = stats.result(&merged(&stats, &records, &cuts, &picks));
            // Summation error bound: n * eps * sum |x|, for either order.
            let n = records.len() as f64;
            let bound = 2.0 * n * f64::EPSILON * records.iter().map(|x| x.abs()).sum::<f64>();
            prop_assert!((parts.0 - sequential.0).abs() <= bound);
            prop_assert!((parts.1 - sequential.1).abs() <= bound / n);
            let plain = records.iter().sum::<f64>();
            prop_assert_eq!(sequential.0.to_bits(), plain.to_bits());
            prop_assert_eq!(sequential.1.to_bits(), (plain / n).to_bits());
        }
    }
}
