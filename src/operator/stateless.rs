//! One-to-one and one-to-many operators without state: `map`, `filter`, `flat_map`,
//! `inspect`. They chain onto the thread of their upstream.

use super::{Context, Operator};

/// Applies a closure to every record. See [`Stream::map`](crate::Stream::map).
#[derive(Debug, Clone)]
pub struct Map<F>(pub F);

impl<In, Out, F> Operator<In> for Map<F>
where
    F: FnMut(In) -> Out + Send + 'static,
{
    type Out = Out;
    type Key = ();
    type Side = ();
    #[inline(always)]
    fn on_record<C: Context<Out>>(&mut self, record: In, out: &mut C) {
        out.push((self.0)(record));
    }
}

/// Keeps the records a predicate accepts. See [`Stream::filter`](crate::Stream::filter).
#[derive(Debug, Clone)]
pub struct Filter<F>(pub F);

impl<T, F> Operator<T> for Filter<F>
where
    F: FnMut(&T) -> bool + Send + 'static,
{
    type Out = T;
    type Key = ();
    type Side = ();
    #[inline(always)]
    fn on_record<C: Context<T>>(&mut self, record: T, out: &mut C) {
        if (self.0)(&record) {
            out.push(record);
        }
    }
}

/// Emits every item of the iterator a closure returns. See
/// [`Stream::flat_map`](crate::Stream::flat_map).
#[derive(Debug, Clone)]
pub struct FlatMap<F>(pub F);

impl<In, I, F> Operator<In> for FlatMap<F>
where
    F: FnMut(In) -> I + Send + 'static,
    I: IntoIterator,
{
    type Out = I::Item;
    type Key = ();
    type Side = ();
    #[inline(always)]
    fn on_record<C: Context<I::Item>>(&mut self, record: In, out: &mut C) {
        for item in (self.0)(record) {
            out.push(item);
        }
    }
}

/// Calls a closure on every record and passes the record on. See
/// [`Stream::inspect`](crate::Stream::inspect).
#[derive(Debug, Clone)]
pub struct Inspect<F>(pub F);

impl<T, F> Operator<T> for Inspect<F>
where
    F: FnMut(&T) + Send + 'static,
{
    type Out = T;
    type Key = ();
    type Side = ();
    #[inline(always)]
    fn on_record<C: Context<T>>(&mut self, record: T, out: &mut C) {
        (self.0)(&record);
        out.push(record);
    }
}

/// Pairs every record with its key: the local half of
/// [`Stream::key_by`](crate::Stream::key_by) when no exchange is needed.
#[derive(Debug, Clone)]
pub struct KeyBy<F>(pub F);

impl<T, K, F> Operator<T> for KeyBy<F>
where
    F: FnMut(&T) -> K + Send + 'static,
{
    type Out = (K, T);
    type Key = ();
    type Side = ();
    #[inline(always)]
    fn on_record<C: Context<(K, T)>>(&mut self, record: T, out: &mut C) {
        let key = (self.0)(&record);
        out.push((key, record));
    }
}
