//! A sink that prints one line per record (Spark's `console` sink in continuous mode).

use super::Sink;
use crate::error::BoxError;
use std::fmt::Debug;
use std::io::{BufWriter, Stdout, Write};

/// Prints each record's `Debug` form on its own line on standard output, prefixed with
/// the sink's label. Lines are buffered and written at the end of each step of work, so
/// a record appears within microseconds without a system call per record. A closed
/// standard output (e.g. a broken pipe) stops the query with an error.
#[derive(Debug)]
pub struct ConsoleSink {
    prefix: String,
    out: BufWriter<Stdout>,
}

impl Clone for ConsoleSink {
    fn clone(&self) -> Self {
        ConsoleSink::new(self.prefix.clone())
    }
}

impl ConsoleSink {
    /// Prints lines starting with `prefix` (may be empty).
    pub fn new(prefix: impl Into<String>) -> Self {
        ConsoleSink {
            prefix: prefix.into(),
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        }
    }
}

impl<T: Debug> Sink<T> for ConsoleSink {
    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        writeln!(self.out, "{}{:?}", self.prefix, record)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        if !self.out.buffer().is_empty() {
            self.out.flush()?;
        }
        Ok(())
    }
}
