//! A sink that calls a closure for every record (Spark's `foreach`).

use super::Sink;
use crate::error::BoxError;

/// Calls `f(record)` for every record. Created by
/// [`Stream::for_each`](crate::Stream::for_each). A panic in `f` stops the query with an
/// error naming the sink.
#[derive(Debug, Clone)]
pub struct ForEachSink<F>(pub F);

impl<T, F> Sink<T> for ForEachSink<F>
where
    F: FnMut(T) + Send + 'static,
{
    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        (self.0)(record);
        Ok(())
    }
}
