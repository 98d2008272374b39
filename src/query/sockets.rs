//! Builder conveniences for the socket source.

use super::QueryBuilder;
use crate::source::socket::{SocketSourceConfig, SocketTextSource, SocketTextStream};

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
}
