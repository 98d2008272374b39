//! The socket text source against references: lines written by test peers (plain
//! `std::net` sockets) arrive exactly once and in order per connection, in server and
//! client mode, however the bytes are cut; faults (a port in use, refused connections,
//! a peer closing mid-line, a 100 MB line, binary garbage, stops at awkward moments)
//! give a counted row or a clear error, never a hang or a silent loss; a checkpointed
//! query neither loses nor duplicates accepted lines across restarts and crashes; and
//! the network word count (the `network_word_count` example's pipeline) matches a batch
//! computation over the same lines.
//!
//! Every wait is a hang guard (`common::HANG_GUARD`); nothing asserts on timing.

mod common;

use common::{finish, wait_until, Rng, HANG_GUARD};
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::source::SocketSourceConfig;
use rivulet::{OutputMode, Query, Trigger};
use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs `f` on another thread and waits for it at most [`HANG_GUARD`]: the way to check
/// that `stop()` or `abort()` returns (a hang fails the test instead of hanging it).
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(HANG_GUARD)
        .unwrap_or_else(|_| panic!("{what}: did not return within {HANG_GUARD:?} (hang)"))
}

fn stop(query: Query, what: &str) {
    within(what, move || query.stop()).unwrap_or_else(|error| panic!("{what}: {error}"));
}

/// The text of line `i` of connection `client`: multi-byte characters of every width,
/// and a length that varies.
fn line_text(client: usize, i: usize, rng: &mut Rng) -> String {
    let mut text = format!("c{client} {i} ");
    for _ in 0..rng.below(6) {
        text.push_str(["é", "€", "😀", "ab", " "][rng.below(5) as usize]);
    }
    text
}

/// Writes `lines` to `stream`, each ended by `\n` or `\r\n`, cut into writes of random
/// sizes (so lines, `\r\n` pairs and UTF-8 characters are split across reads), with a
/// short pause now and then so the reader sees the cuts.
fn write_chopped(stream: &mut TcpStream, lines: &[String], rng: &mut Rng) {
    stream.set_nodelay(true).unwrap();
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(if rng.below(2) == 0 { b"\n" } else { b"\r\n" });
    }
    let mut at = 0;
    while at < bytes.len() {
        let next = (at + 1 + rng.below(40) as usize).min(bytes.len());
        stream.write_all(&bytes[at..next]).unwrap();
        at = next;
        if rng.below(64) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    stream.flush().unwrap();
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

fn server_query(
    config: SocketSourceConfig,
) -> (Query, rivulet::sink::MemoryTable<String>, SocketAddr) {
    let stats = config.stats();
    let mut builder = Query::builder();
    let out = builder.socket_text("lines", config).to_memory("out");
    let query = builder.start().expect("the query starts");
    let address = stats.local_addr().expect("the server listens once started");
    (query, out, address)
}

/// The rows of `out` that begin with `c{client} `, in order.
fn of_client(rows: &[String], client: usize) -> Vec<String> {
    let prefix = format!("c{client} ");
    rows.iter()
        .filter(|row| row.starts_with(&prefix))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// Exactly once, in order per connection
// ---------------------------------------------------------------------------------------

/// Server mode: four clients write concurrently, each its own lines cut at random; every
/// line arrives once, and each client's lines in its order. A client that closes is
/// normal: the source goes on serving the others and new ones.
#[test]
fn server_mode_delivers_every_line_once_in_order_per_connection() {
    const CLIENTS: usize = 4;
    const LINES: usize = 1_500;
    let (query, out, address) = server_query(SocketSourceConfig::server("127.0.0.1:0"));
    let mut expected = Vec::new();
    let writers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let mut rng = Rng::new(client as u64 + 1);
            let lines: Vec<String> = (0..LINES).map(|i| line_text(client, i, &mut rng)).collect();
            expected.push(lines.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(address).unwrap();
                write_chopped(&mut stream, &lines, &mut rng);
                // Closing is normal; the source keeps running.
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    wait_until("every line", || out.len() >= CLIENTS * LINES);
    // A client after the others left.
    let mut late = TcpStream::connect(address).unwrap();
    late.write_all("c9 late\n".as_bytes()).unwrap();
    wait_until("the late client's line", || out.len() > CLIENTS * LINES);
    stop(query, "stop");
    let rows = out.rows();
    assert_eq!(rows.len(), CLIENTS * LINES + 1, "lines lost or duplicated");
    for (client, lines) in expected.iter().enumerate() {
        assert_same_lines(
            &of_client(&rows, client),
            lines,
            &format!("client {client}"),
        );
    }
    assert_eq!(of_client(&rows, 9), ["c9 late"]);
}

/// Client mode: the source connects to a test server, which writes many lines cut at
/// random; they arrive once and in order.
#[test]
fn client_mode_delivers_every_line_once_in_order() {
    const LINES: usize = 5_000;
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = SocketSourceConfig::client(peer.local_addr().unwrap().to_string());
    let stats = config.stats();
    let mut builder = Query::builder();
    let out = builder.socket_text("lines", config).to_memory("out");
    let query = builder.start().unwrap();
    let (mut stream, _) = peer.accept().unwrap();
    let mut rng = Rng::new(7);
    let lines: Vec<String> = (0..LINES).map(|i| line_text(0, i, &mut rng)).collect();
    write_chopped(&mut stream, &lines, &mut rng);
    wait_until("every line", || out.len() >= LINES);
    assert_eq!(stats.peer_addr(), Some(peer.local_addr().unwrap()));
    stop(query, "stop");
    assert_same_lines(&out.rows(), &lines, "the lines");
    assert_eq!(stats.connections(), 1);
    assert_eq!(stats.connect_failures(), 0);
}

// ---------------------------------------------------------------------------------------
// Client mode: disconnects, refusals, backoff
// ---------------------------------------------------------------------------------------

/// The peer closes three times, each time in the middle of a line: the source
/// reconnects each time; every complete line arrives once and in order, each begun line
/// is dropped and counted as truncated.
#[test]
fn client_mode_reconnects_after_the_peer_closes_mid_line() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = SocketSourceConfig::client(peer.local_addr().unwrap().to_string())
        .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(20));
    let stats = config.stats();
    let mut builder = Query::builder();
    let out = builder.socket_text("lines", config).to_memory("out");
    let query = builder.start().unwrap();
    let mut expected = Vec::new();
    let mut rng = Rng::new(3);
    for connection in 0..3 {
        let (mut stream, _) = peer.accept().unwrap();
        let lines: Vec<String> = (0..200)
            .map(|i| line_text(connection, i, &mut rng))
            .collect();
        write_chopped(&mut stream, &lines, &mut rng);
        // A line that never ends: the peer closes in its middle.
        stream.write_all("c9 never ended é".as_bytes()).unwrap();
        expected.extend(lines);
        let wanted = expected.len();
        wait_until("the connection's lines", || out.len() >= wanted);
        drop(stream);
    }
    wait_until("the third disconnect", || stats.disconnects() >= 3);
    stop(query, "stop");
    assert_same_lines(&out.rows(), &expected, "the lines");
    assert_eq!(stats.truncated_lines(), 3);
    assert!(stats.connections() >= 3);
}

/// A refused connection is retried with backoff until a server appears; then lines
/// flow. Stopping afterwards returns.
#[test]
fn client_mode_retries_a_refused_connection_until_the_server_appears() {
    let address = {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        taken.local_addr().unwrap()
    }; // closed again: connections are refused
    let config = SocketSourceConfig::client(address.to_string())
        .reconnect_backoff(Duration::from_millis(2), Duration::from_millis(20));
    let stats = config.stats();
    let mut builder = Query::builder();
    let out = builder.socket_text("lines", config).to_memory("out");
    let query = builder
        .start()
        .expect("a refused connection does not fail the start");
    wait_until("several refused attempts", || stats.connect_failures() >= 4);
    assert!(query.is_active(), "the source gave up");
    let Ok(peer) = TcpListener::bind(address) else {
        // Another process took the port meanwhile: nothing more to check here.
        return stop(query, "stop");
    };
    let (mut stream, _) = peer.accept().unwrap();
    stream.write_all(b"finally\n").unwrap();
    wait_until("the line", || out.len() == 1);
    stop(query, "stop");
    assert_eq!(out.rows(), ["finally"]);
    let progress = stats.connect_failures();
    assert!(progress >= 4);
}

/// With `max_connect_attempts`, refused connections fail the query with an error naming
/// the address and the number of attempts.
#[test]
fn client_mode_fails_after_max_connect_attempts() {
    let address = {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        taken.local_addr().unwrap()
    };
    let config = SocketSourceConfig::client(address.to_string())
        .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(4))
        .max_connect_attempts(3);
    let stats = config.stats();
    let mut builder = Query::builder();
    builder.socket_text("lines", config).for_each(|_| {});
    let query = builder.start().unwrap();
    let error = finish(&query, "the failing query").expect_err("the query must fail");
    let message = error.to_string();
    assert!(message.contains(&address.to_string()), "{message}");
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(stats.connect_failures(), 3);
}

/// `stop()` returns while the source is connected and idle, while it waits to
/// reconnect (with a backoff of an hour), and while a connect is in progress.
#[test]
fn stop_returns_while_connected_and_while_reconnecting() {
    // Connected, nothing flowing.
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = SocketSourceConfig::client(peer.local_addr().unwrap().to_string());
    let stats = config.stats();
    let mut builder = Query::builder();
    builder.socket_text("lines", config).for_each(|_| {});
    let query = builder.start().unwrap();
    let (_stream, _) = peer.accept().unwrap();
    wait_until("connected", || stats.connections() == 1);
    stop(query, "stop while connected");

    // Waiting an hour to reconnect.
    let address = {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        taken.local_addr().unwrap()
    };
    let config = SocketSourceConfig::client(address.to_string())
        .reconnect_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
    let stats = config.stats();
    let mut builder = Query::builder();
    builder.socket_text("lines", config).for_each(|_| {});
    let query = builder.start().unwrap();
    wait_until("the first refusal", || stats.connect_failures() == 1);
    stop(query, "stop while waiting to reconnect");

    // A connect that never completes (a non-routable address), until the stop.
    let config =
        SocketSourceConfig::client("10.255.255.1:9").connect_timeout(Duration::from_secs(3600));
    let mut builder = Query::builder();
    builder.socket_text("lines", config).for_each(|_| {});
    let query = builder.start().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    stop(query, "stop while connecting");
}

// ---------------------------------------------------------------------------------------
// Server mode faults
// ---------------------------------------------------------------------------------------

/// A port in use makes `start()` fail with an error naming the source and the address.
#[test]
fn server_mode_port_in_use_fails_the_start() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut builder = Query::builder();
    builder
        .socket_text("lines", SocketSourceConfig::server(address.clone()))
        .for_each(|_| {});
    let error = builder.start().expect_err("the port is taken");
    let message = error.to_string();
    assert!(message.contains("lines"), "{message}");
    assert!(message.contains(&address), "{message}");
    assert!(message.to_lowercase().contains("in use"), "{message}");
}

/// A 100 MB line (and a second one cut off by the peer's close) is counted and skipped;
/// the lines around it arrive; the partial-line buffer never grows past the maximum.
#[test]
fn a_100_mb_line_is_counted_and_skipped_in_bounded_memory() {
    const MAX: usize = 64 * 1024;
    let config = SocketSourceConfig::server("127.0.0.1:0")
        .max_line_bytes(MAX)
        .end_when_clients_leave(true);
    let stats = config.stats();
    let (query, out, address) = server_query(config);
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"before\n").unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..100 {
        stream.write_all(&chunk).unwrap();
    }
    stream.write_all(b"\nafter\r\n").unwrap();
    // A second long line, never ended: counted as too long, not as truncated.
    stream.write_all(&chunk).unwrap();
    drop(stream);
    finish(&query, "the query").unwrap();
    assert_eq!(out.rows(), ["before", "after"]);
    assert_eq!(stats.lines_too_long(), 2);
    assert_eq!(stats.truncated_lines(), 0);
    assert!(stats.bytes_read() > 101 * 1024 * 1024);
    let peak = stats.peak_line_buffer();
    assert!(
        peak > 0 && peak <= MAX as u64,
        "the line buffer grew to {peak} bytes"
    );
    let progress = query.progress();
    let counters = &progress.operator("lines").unwrap().counters;
    assert_eq!(counters["lines_too_long"], 2);
}

/// The garbage of a binary file, and lines that are not UTF-8 (a lone continuation byte,
/// a character cut short), in both decoding modes.
#[test]
fn binary_garbage_and_invalid_utf8_are_counted() {
    let mut garbage = Vec::new();
    let mut rng = Rng::new(11);
    for _ in 0..20_000 {
        garbage.push(rng.below(256) as u8);
    }
    let mut bytes = b"ok 1\n".to_vec();
    bytes.extend_from_slice(b"\xff\xfe\x00a\n");
    bytes.extend_from_slice("caf\u{e9}\n".as_bytes());
    bytes.extend_from_slice(b"caf\xc3\n");
    bytes.extend_from_slice(b"nul\x00byte\n");
    bytes.extend_from_slice(&garbage);
    bytes.extend_from_slice(b"\nok 2\n");
    // The reference: split on `\n`, strip `\r`, decode each piece on its own.
    let mut pieces: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    pieces.pop();
    let pieces: Vec<&[u8]> = pieces
        .into_iter()
        .map(|piece| piece.strip_suffix(b"\r").unwrap_or(piece))
        .collect();
    let strict: Vec<String> = pieces
        .iter()
        .filter_map(|piece| std::str::from_utf8(piece).ok().map(str::to_string))
        .collect();
    let invalid = pieces
        .iter()
        .filter(|piece| std::str::from_utf8(piece).is_err())
        .count() as u64;
    assert!(invalid >= 3, "the input must hold invalid lines");
    let lossy: Vec<String> = pieces
        .iter()
        .map(|piece| String::from_utf8_lossy(piece).into_owned())
        .collect();

    for (decode_lossily, expected) in [(false, strict), (true, lossy)] {
        let config = SocketSourceConfig::server("127.0.0.1:0")
            .lossy_utf8(decode_lossily)
            .end_when_clients_leave(true);
        let stats = config.stats();
        let (query, out, address) = server_query(config);
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(&bytes).unwrap();
        drop(stream);
        finish(&query, "the query").unwrap();
        assert_same_lines(&out.rows(), &expected, &format!("lossy: {decode_lossily}"));
        assert_eq!(
            stats.invalid_utf8_lines(),
            invalid,
            "lossy: {decode_lossily}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Back-pressure
// ---------------------------------------------------------------------------------------

/// A sink that does not take records: the source stops reading once the ring and its
/// read buffer are full, so the writer's socket blocks (TCP flow control) instead of the
/// source buffering. Once the sink goes on, every line arrives once and in order.
#[test]
fn a_blocked_sink_stops_the_source_reading_and_the_writer_blocks() {
    const READ_BUFFER: usize = 16 * 1024;
    const LINE: usize = 100;
    let gate = Arc::new(AtomicBool::new(false));
    let config = SocketSourceConfig::server("127.0.0.1:0").read_buffer_bytes(READ_BUFFER);
    let stats = config.stats();
    let mut builder = Query::builder();
    builder.ring_capacity(4);
    let sink_gate = gate.clone();
    let out = builder
        .socket_text("lines", config)
        .new_thread()
        .inspect(move |_| {
            while !sink_gate.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_micros(200));
            }
        })
        .to_memory("out");
    let query = builder.start().unwrap();
    let address = stats.local_addr().unwrap();

    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut bytes = Vec::new();
    let mut lines = 0usize;
    let mut written = 0usize;
    let mut blocked_for = 0;
    // Write until the socket has refused more for a while (or far more than any kernel
    // buffers hold: then the source is buffering, and the bound below fails).
    while blocked_for < 200 && written < 64 * 1024 * 1024 {
        if written == bytes.len() {
            bytes.extend(format!("{lines:0width$}\n", width = LINE - 1).bytes());
            lines += 1;
            continue;
        }
        match stream.write(&bytes[written..]) {
            Ok(n) => {
                written += n;
                blocked_for = 0;
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                blocked_for += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) => panic!("write: {error}"),
        }
    }
    // The source holds at most its read buffer and a few lines (in hand and in the ring
    // of 4), however much was written.
    let read = stats.bytes_read();
    let bound = (READ_BUFFER + 16 * LINE) as u64;
    assert!(
        read <= bound,
        "the source read {read} bytes while blocked (bound {bound})"
    );
    assert!(written as u64 > bound, "the writer was never held back");

    gate.store(true, Ordering::Release);
    stream.set_nonblocking(false).unwrap();
    stream.write_all(&bytes[written..]).unwrap();
    drop(stream);
    wait_until("every line", || out.len() >= lines);
    stop(query, "stop");
    let expected: Vec<String> = (0..lines)
        .map(|i| format!("{i:0width$}", width = LINE - 1))
        .collect();
    assert_same_lines(&out.rows(), &expected, "the lines");
}

// ---------------------------------------------------------------------------------------
// Checkpoints: the ingest log replays accepted lines
// ---------------------------------------------------------------------------------------

fn checkpointing(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::new(dir)
        .interval(Duration::from_millis(10))
        .durability(Durability::OsBuffered)
        .segment_bytes(64 * 1024)
}

/// Micro-batches with a checkpoint directory: two runs, each stopped gracefully after
/// its lines arrived. The restart replays nothing of the first run and loses nothing of
/// the second: together they hold every line once, in order.
#[test]
fn restart_after_a_graceful_stop_neither_loses_nor_duplicates_lines() {
    let dir = tempfile::tempdir().unwrap();
    let run = |lines: std::ops::Range<usize>| -> Vec<String> {
        let config = SocketSourceConfig::server("127.0.0.1:0");
        let stats = config.stats();
        let mut builder = Query::builder();
        builder
            .checkpoint(checkpointing(dir.path()))
            .trigger(Trigger::MicroBatch {
                interval: Duration::from_millis(10),
            });
        let out = builder.socket_text("lines", config).to_memory("out");
        let query = builder.start().unwrap();
        let mut stream = TcpStream::connect(stats.local_addr().unwrap()).unwrap();
        let text: Vec<String> = lines.clone().map(|i| format!("line {i}")).collect();
        write_chopped(&mut stream, &text, &mut Rng::new(lines.start as u64));
        wait_until("the run's lines", || out.len() >= lines.len());
        stop(query, "stop");
        out.rows()
    };
    let mut all = run(0..400);
    assert!(dir.path().join("ingest-lines").is_dir(), "no ingest log");
    all.extend(run(400..700));
    let expected: Vec<String> = (0..700).map(|i| format!("line {i}")).collect();
    assert_same_lines(&all, &expected, "both runs");
}

const KEYS: u64 = 5;

/// A crash (`abort`) after lines were accepted: the restart restores the keyed counts of
/// the last complete epoch and replays the logged lines after it, so the counts over
/// both runs equal the reference exactly.
#[test]
fn a_crash_replays_accepted_lines_from_the_ingest_log() {
    let dir = tempfile::tempdir().unwrap();
    // `(key, (count, last))` rows of a keyed fold over the numbers on the lines.
    let run = |numbers: std::ops::Range<u64>, crash: bool| {
        let config = SocketSourceConfig::server("127.0.0.1:0");
        let stats = config.stats();
        let mut builder = Query::builder();
        builder
            .checkpoint(checkpointing(dir.path()))
            .trigger(Trigger::MicroBatch {
                interval: Duration::from_millis(5),
            });
        let out = builder
            .socket_text("lines", config)
            .map(|line: String| line.parse::<u64>().expect("a number"))
            .key_by(|n| n % KEYS)
            .fold((0u64, 0u64), |(count, last), n| {
                *count += 1;
                *last = n;
            })
            .to_memory("out");
        let query = builder.start().unwrap();
        let mut stream = TcpStream::connect(stats.local_addr().unwrap()).unwrap();
        let text: Vec<String> = numbers.clone().map(|n| n.to_string()).collect();
        write_chopped(&mut stream, &text, &mut Rng::new(numbers.start));
        // Every line was handed out (and so logged) by the source.
        let emitted = numbers.end - numbers.start;
        wait_until("the lines emitted", || {
            common::counts(&query.progress(), "lines").1 >= emitted
        });
        if crash {
            within("abort", move || query.abort()).unwrap();
        } else {
            wait_until("the counts", || {
                latest(&out.rows())
                    .values()
                    .map(|(count, _)| count)
                    .sum::<u64>()
                    >= numbers.end
            });
            stop(query, "stop");
        }
        out.rows()
    };
    run(0..300, true);
    let rows = run(300..500, false);
    let mut reference = BTreeMap::new();
    for n in 0..500u64 {
        let entry = reference.entry(n % KEYS).or_insert((0u64, 0u64));
        entry.0 += 1;
        entry.1 = n;
    }
    assert_eq!(
        latest(&rows),
        reference,
        "counts after the crash differ from the input"
    );
}

/// The last row of each key.
fn latest(rows: &[(u64, (u64, u64))]) -> BTreeMap<u64, (u64, u64)> {
    rows.iter().copied().collect()
}

// ---------------------------------------------------------------------------------------
// The network word count
// ---------------------------------------------------------------------------------------

const VOCABULARY: [&str; 8] = [
    "spark", "stream", "rivulet", "ring", "batch", "epoch", "word", "é€",
];

/// The `network_word_count` example's pipeline (client mode, split on spaces, running
/// counts, complete output mode, micro-batches) over lines from a test server: the final
/// result table equals a `HashMap` count over the same lines.
#[test]
fn network_word_count_matches_a_batch_count() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = SocketSourceConfig::client(peer.local_addr().unwrap().to_string());
    let mut builder = Query::builder();
    builder
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(20),
        })
        .output_mode(OutputMode::Complete);
    let counts = builder
        .socket_text("lines", config)
        .flat_map(|line: String| {
            line.split(' ')
                .filter(|word| !word.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .key_by(|word: &String| word.clone())
        .count()
        .to_memory("counts");
    let query = builder.start().unwrap();
    let (mut stream, _) = peer.accept().unwrap();
    let mut rng = Rng::new(42);
    let lines: Vec<String> = (0..2_000)
        .map(|_| {
            let words = rng.below(8);
            let mut line = String::new();
            for _ in 0..words {
                line.push_str(VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize]);
                // Single and double spaces: empty words are not words.
                line.push_str(if rng.below(5) == 0 { "  " } else { " " });
            }
            line
        })
        .collect();
    write_chopped(&mut stream, &lines, &mut rng);
    let mut reference: HashMap<String, u64> = HashMap::new();
    for line in &lines {
        for word in line.split(' ').filter(|word| !word.is_empty()) {
            *reference.entry(word.to_string()).or_default() += 1;
        }
    }
    let total: u64 = reference.values().sum();
    wait_until("the counts of every line", || {
        counts.rows().iter().map(|(_, count)| count).sum::<u64>() >= total
    });
    stop(query, "stop");
    let table: HashMap<String, u64> = counts.rows().into_iter().collect();
    assert_eq!(
        table.len(),
        counts.len(),
        "a word appears twice in the result table"
    );
    assert_eq!(table, reference);
}

/// Progress shows the source's counters under its name.
#[test]
fn progress_shows_the_source_counters() {
    let config = SocketSourceConfig::server("127.0.0.1:0").max_line_bytes(4);
    let (query, out, address) = server_query(config);
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"ok\ntoo long\n\xff\nend\nhalf").unwrap();
    drop(stream);
    let lines_seen = |query: &Query| {
        let progress = query.progress();
        progress.operator("lines").unwrap().counters["truncated_lines"]
    };
    wait_until("the disconnect", || lines_seen(&query) == 1);
    let progress = query.progress();
    let counters = &progress.operator("lines").unwrap().counters;
    assert_eq!(counters["connections"], 1);
    assert_eq!(counters["disconnects"], 1);
    assert_eq!(counters["lines_too_long"], 1);
    assert_eq!(counters["invalid_utf8_lines"], 1);
    assert_eq!(counters["bytes_read"], 22);
    assert_eq!(counters["connect_failures"], 0);
    stop(query, "stop");
    assert_eq!(out.rows(), ["ok", "end"]);
}
