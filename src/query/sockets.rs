//! Builder conveniences for the socket source.

use super::QueryBuilder;
#[cfg(feature = "sql")]
use crate::frame::DataFrame;
use crate::row::{DataType, Field, Schema};
use crate::source::socket::{
    DecodeLines, LineDecoding, SocketSourceConfig, SocketTextSource, SocketTextStream,
};
use std::sync::Arc;

impl QueryBuilder {
    /// Lines of text from TCP (Spark's `socketTextStream`): a [`SocketTextSource`] in
    /// client mode ([`SocketSourceConfig::client`]: connect to `host:port`, reconnect
    /// with backoff) or server mode ([`SocketSourceConfig::server`]: listen and accept
    /// any number of clients into this one source), one `String` per line. See
    /// [`source::socket`](crate::source::socket) for lines, limits, back-pressure and
    /// what is lost when a connection ends.
    ///
    /// The source is wrapped in the ingest write-ahead log
    /// ([`IngestLogged`](crate::source::IngestLogged)), so a checkpointed query logs
    /// every line it accepted in `<checkpoint dir>/ingest-<name>` and replays it after a
    /// crash. Its counters (`bytes_read`, `connections`, `disconnects`,
    /// `connect_failures`, `lines_too_long`, `invalid_utf8_lines`, `truncated_lines`)
    /// appear in the query's progress under the source's name.
    ///
    /// Nothing is bound or connected before [`start`](Self::start); a server port in use
    /// makes `start` fail.
    ///
    /// ```
    /// use rivulet::source::SocketSourceConfig;
    /// use std::io::{BufRead, Write};
    ///
    /// // A peer to connect to, as `nc -lk` would be.
    /// let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let config = SocketSourceConfig::client(peer.local_addr()?.to_string());
    /// let mut query = rivulet::Query::builder();
    /// let words = query
    ///     .socket_text("lines", config)
    ///     .flat_map(|line: String| line.split(' ').map(str::to_string).collect::<Vec<_>>())
    ///     .to_memory("words");
    /// let running = query.start()?;
    /// let (mut connection, _) = peer.accept()?;
    /// connection.write_all(b"to be or\nnot to be\n")?;
    /// while words.len() < 6 {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// running.stop()?;
    /// assert_eq!(words.rows(), ["to", "be", "or", "not", "to", "be"]);
    /// let progress = running.progress();
    /// assert_eq!(progress.operator("lines").unwrap().counters["connections"], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn socket_text(&mut self, name: &str, config: SocketSourceConfig) -> SocketTextStream {
        self.source_with_ingest_log(name, SocketTextSource::new(config))
    }

    /// Spark's `readStream.format("socket")`: a [`DataFrame`] of one string column,
    /// `value`, a row per line read from TCP, as [`socket_text`](Self::socket_text)
    /// reads them (same modes, limits, counters and ingest log). SQL reads it once
    /// registered as a view.
    ///
    /// ```
    /// use rivulet::expr::col;
    /// use rivulet::row::Value;
    /// use rivulet::source::SocketSourceConfig;
    /// use std::io::Write;
    ///
    /// let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let config = SocketSourceConfig::client(peer.local_addr()?.to_string());
    /// let mut query = rivulet::Query::builder();
    /// let lines = query.socket_rows("lines", config);
    /// assert_eq!(lines.columns(), ["value"]);
    /// let rows = lines.filter(col("value").not_eq(rivulet::expr::lit("")))?.to_memory("rows");
    /// let running = query.start()?;
    /// let (mut connection, _) = peer.accept()?;
    /// connection.write_all(b"to be\n\nor not\n")?;
    /// while rows.len() < 2 {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// running.stop()?;
    /// assert_eq!(rows.rows()[1].values(), [Value::string("or not")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "sql")]
    pub fn socket_rows(&mut self, name: &str, config: SocketSourceConfig) -> DataFrame {
        let schema = Schema::new([Field::new("value", DataType::String)])
            .expect("one column has no duplicate name");
        self.socket_rows_with_schema(name, config, LineDecoding::text(), Arc::new(schema))
    }

    /// Rows of `schema` from socket lines, a schema known only at run time: each line a
    /// CSV record ([`LineDecoding::csv`], columns by position) or a JSON object
    /// ([`LineDecoding::json`], fields by name), decoded on the source's thread by
    /// [`DecodeLines`]. Malformed lines get the file source's verdicts
    /// ([`format`](crate::format)): permissive (nulls; the default), dropped (counted,
    /// quarantined with [`LineDecoding::quarantine_dir`]) or fail-fast (the query fails
    /// naming the line), counted under the operator `decode_rows` as `malformed_rows`
    /// and `dropped_rows`. The lines are ingest-logged before decoding, as
    /// [`socket_text`](Self::socket_text)'s, so a replay decodes the same lines again.
    ///
    /// A schema the format cannot fill (text lines need one column) is refused by
    /// `start()`.
    ///
    /// ```
    /// use rivulet::format::{DecodeOptions, ParseMode};
    /// use rivulet::row::{DataType, Field, Schema, Value};
    /// use rivulet::source::socket::LineDecoding;
    /// use rivulet::source::SocketSourceConfig;
    /// use std::io::Write;
    /// use std::sync::Arc;
    ///
    /// let schema = Arc::new(Schema::new([
    ///     Field::new("resid", DataType::String),
    ///     Field::new("psi", DataType::Double),
    /// ])?);
    /// let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let config = SocketSourceConfig::client(peer.local_addr()?.to_string());
    /// let decoding =
    ///     LineDecoding::csv().options(DecodeOptions::default().mode(ParseMode::DropMalformed));
    /// let mut query = rivulet::Query::builder();
    /// let rows = query
    ///     .socket_rows_with_schema("sensor", config, decoding, schema)
    ///     .to_memory("rows");
    /// let running = query.start()?;
    /// let (mut connection, _) = peer.accept()?;
    /// connection.write_all(b"COHUTTA,0.4\nBUTTE,high\nNANTAHALA,\n")?;
    /// while rows.len() < 2 {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// running.stop()?;
    /// assert_eq!(rows.rows()[1].values(), [Value::string("NANTAHALA"), Value::Null]);
    /// let progress = running.progress();
    /// assert_eq!(progress.operator("decode_rows").unwrap().counters["dropped_rows"], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "sql")]
    pub fn socket_rows_with_schema(
        &mut self,
        name: &str,
        config: SocketSourceConfig,
        decoding: LineDecoding,
        schema: Arc<Schema>,
    ) -> DataFrame {
        let decode = DecodeLines::new(name, schema.clone(), decoding);
        if let Err(message) = decode.check() {
            self.graph
                .borrow_mut()
                .errors
                .push(format!("socket rows `{name}`: {message}"));
        }
        let lines = self.socket_text(name, config);
        DataFrame::new(lines.operator("decode_rows", decode), schema)
    }
}
