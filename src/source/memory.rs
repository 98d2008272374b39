//! A finite source over an in-memory iterator (Spark's `MemoryStream`, for tests and demos).

use super::{Source, SourcePoll};
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::Epoch;

/// Emits the items of an iterator, then ends. Created by
/// [`QueryBuilder::from_iter`](crate::QueryBuilder::from_iter).
///
/// Its offset is the number of items emitted; it replays by skipping that many items of a
/// fresh iterator, so a restarted query must be given the same items in the same order.
#[derive(Debug)]
pub struct IterSource<I> {
    items: I,
    emitted: u64,
}

impl<I> IterSource<I> {
    /// A source over `items`.
    pub fn new(items: I) -> Self {
        IterSource { items, emitted: 0 }
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
            Some(item) => {
                self.emitted += 1;
                SourcePoll::Ready(item)
            }
            None => SourcePoll::Exhausted,
        }
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        Ok(codec::encode(&self.emitted)?)
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let offset: u64 = codec::decode(offset)?;
        for skipped in self.emitted..offset {
            if self.items.next().is_none() {
                return Err(format!(
                    "the checkpoint is at item {offset}, but the source has only {skipped} items"
                )
                .into());
            }
        }
        self.emitted = self.emitted.max(offset);
        Ok(())
    }
}
