//! [`Stream::to_socket`]: the socket sink as a stream method.

use super::{Chain, Stream};
use crate::sink::socket::{SocketSink, SocketSinkConfig};
use std::fmt::Display;

impl<S: Chain> Stream<S> {
    /// Writes every record's [`Display`] text as a line to TCP (see
    /// [`sink::socket`](crate::sink::socket)): to `host:port` in client mode, to every
    /// connected client in server mode. The sink is named `socket`; its counters
    /// (`lines_sent`, `bytes_sent`, `lines_without_clients`, `clients_accepted`,
    /// `clients_dropped_slow`, `clients_dropped_gone`) appear in the query's progress.
    ///
    /// ```
    /// use rivulet::sink::SocketSinkConfig;
    /// use std::io::Read;
    ///
    /// let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut query = rivulet::Query::builder();
    /// query
    ///     .from_iter("words", ["to", "be"])
    ///     .to_socket(SocketSinkConfig::client(peer.local_addr()?.to_string()));
    /// let running = query.start()?;
    /// let (mut connection, _) = peer.accept()?;
    /// running.await_termination()?;
    /// let mut text = String::new();
    /// connection.read_to_string(&mut text)?;
    /// assert_eq!(text, "to\nbe\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_socket(self, config: SocketSinkConfig)
    where
        S::Out: Display,
    {
        self.sink("socket", SocketSink::new(config));
    }

    /// Like [`to_socket`](Self::to_socket), with `line(record)` as each record's line
    /// (without the `\n`).
    ///
    /// ```
    /// use rivulet::sink::SocketSinkConfig;
    /// use std::io::Read;
    ///
    /// let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut query = rivulet::Query::builder();
    /// query
    ///     .from_iter("pairs", [("a", 1), ("b", 2)])
    ///     .to_socket_with(
    ///         SocketSinkConfig::client(peer.local_addr()?.to_string()),
    ///         |(word, n): (&str, i32)| format!("{word}={n}"),
    ///     );
    /// let running = query.start()?;
    /// let (mut connection, _) = peer.accept()?;
    /// running.await_termination()?;
    /// let mut text = String::new();
    /// connection.read_to_string(&mut text)?;
    /// assert_eq!(text, "a=1\nb=2\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_socket_with<F>(self, config: SocketSinkConfig, line: F)
    where
        F: FnMut(S::Out) -> String + Clone + Send + 'static,
    {
        self.sink("socket", SocketSink::with_format(config, line));
    }
}
