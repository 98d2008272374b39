//! [`QueryBuilder::read_dir`]: the file directory source.

use super::QueryBuilder;
use crate::format::RecordSeed;
use crate::row::{Row, RowSeed, Schema};
use crate::source::{FileSource, FileSourceConfig};
use crate::stream::{SourceChain, Stream};
use serde::de::DeserializeOwned;
use std::sync::Arc;

impl QueryBuilder {
    /// Reads the files that appear in a directory as records of `T`: Spark's
    /// `readStream.schema(s).csv(dir)` (with [`FileSourceConfig::csv`]), `.json(dir)`
    /// ([`FileSourceConfig::json`]) and `.text(dir)` ([`FileSourceConfig::text`], with
    /// `T = String`). The record type is the schema: CSV columns fill its fields by
    /// position, JSON objects by name. Files are read in modification-time order as
    /// they appear, exactly once across restarts of a checkpointed query; see
    /// [`source::files`](crate::source::files) for the rules and
    /// [`format`](crate::format) for malformed records.
    ///
    /// The stream runs until the query stops. A record type the format cannot fill or
    /// a bad glob is refused by `start()` (as [`Error::Config`](crate::Error::Config));
    /// a missing or unreadable directory fails `start()` naming it.
    ///
    /// ```
    /// use rivulet::source::FileSourceConfig;
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("a.txt"), "to be\nor not\n")?;
    /// let mut query = rivulet::Query::builder();
    /// let words = query
    ///     .read_dir::<String>("lines", FileSourceConfig::text(dir.path()))
    ///     .flat_map(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
    ///     .to_memory("words");
    /// let running = query.start()?;
    /// while words.rows().len() < 4 {
    ///     std::thread::sleep(std::time::Duration::from_millis(5));
    /// }
    /// running.stop()?;
    /// assert_eq!(words.rows(), ["to", "be", "or", "not"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_dir<T>(
        &mut self,
        name: &str,
        config: FileSourceConfig,
    ) -> Stream<SourceChain<FileSource<T>>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.file_source(name, FileSource::new(config))
    }

    /// Reads the files that appear in a directory as [`Row`]s of `schema`, a schema known
    /// only at run time (Spark's `readStream.schema(userSchema).csv(dir)` with a
    /// `StructType`): CSV columns fill the schema's columns by position, JSON objects by
    /// name (ignoring case); see [`RowSeed`]. Everything else is as
    /// [`read_dir`](Self::read_dir).
    ///
    /// ```
    /// use rivulet::row::{DataType, Field, Schema, Value};
    /// use rivulet::source::FileSourceConfig;
    /// use std::sync::Arc;
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("a.csv"), "COHUTTA,0.4\nNANTAHALA,\n")?;
    /// let schema = Arc::new(Schema::new([
    ///     Field::new("resid", DataType::String),
    ///     Field::new("psi", DataType::Double),
    /// ])?);
    /// let mut query = rivulet::Query::builder();
    /// let rows = query
    ///     .read_dir_rows("sensor", FileSourceConfig::csv(dir.path()), schema)
    ///     .to_memory("rows");
    /// let running = query.start()?;
    /// while rows.rows().len() < 2 {
    ///     std::thread::sleep(std::time::Duration::from_millis(5));
    /// }
    /// running.stop()?;
    /// assert_eq!(rows.rows()[1].values(), &[Value::string("NANTAHALA"), Value::Null]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_dir_rows(
        &mut self,
        name: &str,
        config: FileSourceConfig,
        schema: Arc<Schema>,
    ) -> Stream<SourceChain<FileSource<Row, RowSeed>>> {
        self.file_source(name, FileSource::with_schema(schema, config))
    }

    fn file_source<T, S>(
        &mut self,
        name: &str,
        source: FileSource<T, S>,
    ) -> Stream<SourceChain<FileSource<T, S>>>
    where
        T: Send + 'static,
        S: RecordSeed<Value = T>,
    {
        if let Err(message) = source.check() {
            self.graph
                .borrow_mut()
                .errors
                .push(format!("file source `{name}`: {message}"));
        }
        self.source(name, source)
    }
}
