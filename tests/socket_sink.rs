//! The socket sink against references: test peers (plain `std::net` sockets) read
//! exactly the lines the query wrote, in order, in client and server mode; a slow or
//! vanished peer gives back-pressure and a clear error (client mode) or a counted
//! disconnect (server mode), never a silent drop or a hang on `stop()`.
//!
//! Every wait is a hang guard (`common::HANG_GUARD`); nothing asserts on timing.

mod common;

use common::{finish, wait_until, HANG_GUARD};
use rivulet::sink::SocketSinkConfig;
use rivulet::Query;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs `f` on another thread and waits for it at most [`HANG_GUARD`].
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(HANG_GUARD)
        .unwrap_or_else(|_| panic!("{what}: did not return within {HANG_GUARD:?} (hang)"))
}

/// Reads lines from `stream` until the peer closes, on a thread of its own.
fn read_all(stream: TcpStream) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        BufReader::new(stream)
            .lines()
            .map(|line| line.expect("a line (or the hang guard)"))
            .collect()
    })
}

/// `got == expected`, reported by length and first difference (not by printing both).
fn assert_same_lines(got: &[String], expected: &[String], what: &str) {
    if let Some(at) = got.iter().zip(expected).position(|(g, e)| g != e) {
        panic!(
            "{what}: line {at} is {:?}, expected {:?}",
            got[at], expected[at]
        );
    }
    assert_eq!(got.len(), expected.len(), "{what}: number of lines");
}

fn numbers(n: u64) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

/// Client mode: every record's `Display` text arrives as a line, once, in order.
#[test]
fn client_mode_writes_every_line_in_order() {
    const RECORDS: u64 = 100_000;
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = SocketSinkConfig::client(peer.local_addr().unwrap().to_string());
    let stats = config.stats();
    let mut builder = Query::builder();
    builder.from_iter("numbers", 0..RECORDS).to_socket(config);
    let query = builder.start().unwrap();
    let (stream, _) = peer.accept().unwrap();
    let reader = read_all(stream);
    finish(&query, "the query").unwrap();
    assert_same_lines(&reader.join().unwrap(), &numbers(RECORDS), "the reader");
    assert_eq!(stats.lines_sent(), RECORDS);
    let progress = query.progress();
    assert_eq!(
        progress.operator("socket").unwrap().counters["lines_sent"],
        RECORDS
    );
}

/// A closure makes the lines; a keyed aggregate with two instances feeds two sink
/// instances, each with its own connection.
#[test]
fn client_mode_with_a_closure_and_two_instances() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = SocketSinkConfig::client(peer.local_addr().unwrap().to_string());
    let mut builder = Query::builder();
    builder
        .from_iter("words", ["a", "b", "a", "c", "a", "b"])
        .key_by(|word| word.to_string())
        .with_parallelism(2)
        .count()
        .to_socket_with(config, |(word, count): (String, u64)| {
            format!("{word}:{count}")
        });
    let query = builder.start().unwrap();
    let readers: Vec<_> = (0..2).map(|_| read_all(peer.accept().unwrap().0)).collect();
    finish(&query, "the query").unwrap();
    let mut lines: Vec<String> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    lines.sort();
    assert_eq!(lines, ["a:1", "a:2", "a:3", "b:1", "b:2", "c:1"]);
}

/// A refused connection makes `start()` fail, naming the address.
#[test]
fn client_mode_refused_connection_fails_the_start() {
    let address = {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        taken.local_addr().unwrap()
    };
    let mut builder = Query::builder();
    builder
        .from_iter("numbers", 0..10u64)
        .to_socket(SocketSinkConfig::client(address.to_string()));
    let message = builder.start().expect_err("nobody listens").to_string();
    assert!(message.contains(&address.to_string()), "{message}");
    assert!(message.contains("socket"), "{message}");
}

/// A peer that accepts but never reads: the sink blocks (back-pressure) for the write
/// timeout, then the query fails with an error naming the peer. A `stop()` meanwhile
/// returns.
#[test]
fn client_mode_slow_peer_gives_back_pressure_then_a_clear_error() {
    for stop_meanwhile in [false, true] {
        let peer = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = peer.local_addr().unwrap();
        let config =
            SocketSinkConfig::client(address.to_string()).write_timeout(Duration::from_millis(300));
        let mut builder = Query::builder();
        let line = "x".repeat(200);
        builder
            .rate("rows", 1_000_000)
            .to_socket_with(config, move |row: rivulet::RateRow| {
                format!("{} {line}", row.value)
            });
        let query = builder.start().unwrap();
        let (_silent, _) = peer.accept().unwrap();
        if stop_meanwhile {
            // Wait until the sink is held back, then stop: it returns (with the
            // timeout's error, or cleanly if the stop came first).
            wait_until("the sink blocking", || {
                let progress = query.progress();
                progress.operator("socket").unwrap().counters["bytes_sent"] > 1_000_000
            });
            let _ = within("stop() with a blocked sink", move || query.stop());
            continue;
        }
        let error = finish(&query, "the blocked query").expect_err("the peer never reads");
        let message = error.to_string();
        assert!(message.contains(&address.to_string()), "{message}");
        assert!(message.contains("took no data"), "{message}");
    }
}

/// A peer that closes: the query fails at a following write, naming the peer.
#[test]
fn client_mode_vanished_peer_fails_the_query() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = peer.local_addr().unwrap();
    let mut builder = Query::builder();
    builder.rate("rows", 100_000).to_socket_with(
        SocketSinkConfig::client(address.to_string()),
        |row: rivulet::RateRow| row.value.to_string(),
    );
    let query = builder.start().unwrap();
    let (gone, _) = peer.accept().unwrap();
    drop(gone);
    let error = finish(&query, "the query").expect_err("the peer is gone");
    let message = error.to_string();
    assert!(message.contains(&address.to_string()), "{message}");
}

fn server(config: SocketSinkConfig, records: u64) -> (Query, SocketAddr) {
    let stats = config.stats();
    let mut builder = Query::builder();
    builder.from_iter("numbers", 0..records).to_socket(config);
    let query = builder.start().unwrap();
    (query, stats.local_addr().expect("listening once started"))
}

/// Server mode: three clients, connected before the first line (`wait_for_clients`),
/// each get every line once and in order; the end of stream closes their connections.
#[test]
fn server_mode_broadcasts_every_line_to_every_client() {
    const RECORDS: u64 = 50_000;
    let config = SocketSinkConfig::server("127.0.0.1:0").wait_for_clients(3, HANG_GUARD);
    let stats = config.stats();
    let (query, address) = server(config, RECORDS);
    let readers: Vec<_> = (0..3)
        .map(|_| read_all(TcpStream::connect(address).unwrap()))
        .collect();
    finish(&query, "the query").unwrap();
    for reader in readers {
        assert_same_lines(&reader.join().unwrap(), &numbers(RECORDS), "the reader");
    }
    assert_eq!(stats.clients_accepted(), 3);
    assert_eq!(stats.lines_without_clients(), 0);
    assert_eq!(
        stats.clients_dropped_slow() + stats.clients_dropped_gone(),
        0
    );
}

/// Server mode: a client that never reads is disconnected once it falls behind by more
/// than its buffer, and counted; a client that vanishes is counted too; the reading
/// client gets every line in order, and the query goes on. The test feeds the query
/// through a push source and never lets the reading client fall more than a window of
/// lines behind, so only the silent client can overflow.
#[test]
fn server_mode_drops_slow_and_vanished_clients_and_counts_them() {
    const RECORDS: u64 = 200_000;
    const WINDOW: u64 = 1_000;
    let config = SocketSinkConfig::server("127.0.0.1:0")
        .client_buffer_bytes(1024 * 1024)
        .wait_for_clients(3, HANG_GUARD);
    let stats = config.stats();
    let mut builder = Query::builder();
    let (numbers, stream) = builder.push_source::<u64>("numbers");
    stream.to_socket_with(config, |n: u64| line(n));
    let query = builder.start().unwrap();
    let address = stats.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let stream = TcpStream::connect(address).unwrap();
        let received = received.clone();
        std::thread::spawn(move || {
            stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
            let mut lines = Vec::new();
            for line in BufReader::new(stream).lines() {
                lines.push(line.expect("a line (or the hang guard)"));
                received.fetch_add(1, Ordering::Release);
            }
            lines
        })
    };
    let silent = TcpStream::connect(address).unwrap();
    let mut gone = Some(TcpStream::connect(address).unwrap());
    for n in 0..RECORDS {
        if n == 10 * WINDOW {
            wait_until("three clients", || stats.clients_accepted() == 3);
            drop(gone.take()); // vanishes
        }
        if n % WINDOW == 0 {
            wait_until("the reader keeping up", || {
                received.load(Ordering::Acquire) + WINDOW >= n
            });
        }
        numbers.push(n).unwrap();
    }
    drop(numbers);
    finish(&query, "the query").unwrap();
    let expected: Vec<String> = (0..RECORDS).map(line).collect();
    assert_same_lines(&reader.join().unwrap(), &expected, "the reading client");
    assert_eq!(stats.clients_dropped_slow(), 1, "{stats:?}");
    assert_eq!(stats.clients_dropped_gone(), 1, "{stats:?}");
    // The slow client saw its connection end: it got a prefix of the lines, then EOF.
    silent.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut bytes = Vec::new();
    let _ = (&silent).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let got: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(
        got.len() < RECORDS as usize,
        "the slow client got everything"
    );
    // Every complete line it got is the right one (the last may be cut short).
    let complete = got.len().saturating_sub(1);
    assert_same_lines(&got[..complete], &expected[..complete], "the slow client");
}

fn line(n: u64) -> String {
    format!("{n} {}", "y".repeat(100))
}

/// Server mode without clients: the lines are counted as written to nobody.
#[test]
fn server_mode_counts_lines_without_clients() {
    let config = SocketSinkConfig::server("127.0.0.1:0");
    let stats = config.stats();
    let (query, _) = server(config, 1_000);
    finish(&query, "the query").unwrap();
    assert_eq!(stats.lines_without_clients(), 1_000);
    assert_eq!(stats.lines_sent(), 0);
}

/// Server mode: a port in use fails the start; too few clients within the wait fail the
/// query, naming the address.
#[test]
fn server_mode_port_in_use_and_missing_clients_are_errors() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut builder = Query::builder();
    builder
        .from_iter("numbers", 0..10u64)
        .to_socket(SocketSinkConfig::server(address.clone()));
    let message = builder.start().expect_err("the port is taken").to_string();
    assert!(message.contains(&address), "{message}");
    assert!(message.to_lowercase().contains("in use"), "{message}");

    let config =
        SocketSinkConfig::server("127.0.0.1:0").wait_for_clients(1, Duration::from_millis(50));
    let (query, address) = server(config, 10);
    let error = finish(&query, "the query").expect_err("no client came");
    let message = error.to_string();
    assert!(message.contains("0 of 1 clients"), "{message}");
    assert!(message.contains(&address.to_string()), "{message}");
}

/// Server mode: `stop()` of an endless query returns although a client never reads.
#[test]
fn server_mode_stop_returns_with_a_client_that_never_reads() {
    let config = SocketSinkConfig::server("127.0.0.1:0")
        .write_timeout(Duration::from_millis(200))
        .wait_for_clients(1, HANG_GUARD);
    let stats = config.stats();
    let mut builder = Query::builder();
    builder
        .rate("rows", 1_000_000)
        .to_socket_with(config, |row: rivulet::RateRow| row.value.to_string());
    let query = builder.start().unwrap();
    let _silent = TcpStream::connect(stats.local_addr().unwrap()).unwrap();
    wait_until("lines sent", || stats.lines_sent() > 10_000);
    within("stop()", move || query.stop()).unwrap();
}
