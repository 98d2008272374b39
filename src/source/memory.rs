//! A finite source over an in-memory iterator (Spark's `MemoryStream`, for tests and demos).

use super::{Source, SourcePoll};

/// Emits the items of an iterator, then ends. Created by
/// [`QueryBuilder::from_iter`](crate::QueryBuilder::from_iter).
#[derive(Debug)]
pub struct IterSource<I> {
    items: I,
}

impl<I> IterSource<I> {
    /// A source over `items`.
    pub fn new(items: I) -> Self {
        IterSource { items }
    }
}

impl<I> Source for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    type Item = I::Item;

    #[inline]
    fn poll_next(&mut self) -> SourcePoll<I::Item> {
        match self.items.next() {
            Some(item) => SourcePoll::Ready(item),
            None => SourcePoll::Exhausted,
        }
    }
}
