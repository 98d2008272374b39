//! Helpers shared by the integration tests: hang guards and small reference utilities.
//!
//! Every wait in the tests is a hang guard only: a generous timeout after which the test
//! fails with a message saying what hung. No test passes or fails on how fast it ran.

#![allow(dead_code)]

#[cfg(feature = "kafka")]
pub(crate) mod kafka;
pub(crate) mod kmeans_reference;

use rivulet::{Query, QueryProgress};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How long any query may take before a test calls it hung.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(60);

/// Waits for `query` to end (hang guard: [`HANG_GUARD`]) and returns its result.
///
/// # Panics
///
/// If the query is still running after the guard; `what` names it in the message. The
/// `Query` is then dropped by the unwinding test, which aborts it.
pub(crate) fn finish(query: &Query, what: &str) -> rivulet::Result<()> {
    query
        .await_termination_timeout(HANG_GUARD)
        .unwrap_or_else(|| panic!("{what}: query still running after {HANG_GUARD:?} (hang)"))
}

/// Like [`finish`], and the query must have ended without error.
pub(crate) fn finish_ok(query: &Query, what: &str) {
    if let Err(error) = finish(query, what) {
        panic!("{what}: query failed: {error}");
    }
}

/// Polls `condition` every 100 µs until it holds; panics after [`HANG_GUARD`].
pub(crate) fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what}: condition not reached after {HANG_GUARD:?} (hang)"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// `records_in` and `records_out` of the operator named `name`.
pub(crate) fn counts(progress: &QueryProgress, name: &str) -> (u64, u64) {
    let op = progress.operator(name).unwrap_or_else(|| {
        let names: Vec<&str> = progress
            .operators
            .iter()
            .map(|op| op.name.as_str())
            .collect();
        panic!("no operator named `{name}` in {names:?}")
    });
    (op.records_in, op.records_out)
}

/// The values of each key, in the order they appear in `rows`.
pub(crate) fn per_key<K: Hash + Eq + Clone, V: Clone>(rows: &[(K, V)]) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = HashMap::new();
    for (key, value) in rows {
        map.entry(key.clone()).or_default().push(value.clone());
    }
    map
}

/// `values` sorted: a multiset to compare with `assert_eq!`.
pub(crate) fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values
}

/// A small deterministic pseudo-random sequence (xorshift64*), for test inputs.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value; 0 is remapped).
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..bound`.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// `GET path` from an HTTP server at `addr` (HTTP/1.0, so the server closes the
/// connection after the response): the status code and the body.
pub(crate) fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path)
}

/// A request with `method` and no body; the status code and the body of the response.
pub(crate) fn http_request(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the endpoint");
    stream
        .set_read_timeout(Some(HANG_GUARD))
        .expect("set a read timeout");
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_string())
}

/// The child side of a crash test: appends the epoch this run of the query recovered
/// (`-1` for a fresh start) to `dir/runs.txt`, for the parent to check that runs resumed.
pub(crate) fn note_run(running: &Query, dir: impl AsRef<std::path::Path>) {
    use std::io::Write;
    let recovered = running
        .progress()
        .checkpoint
        .and_then(|checkpoint| checkpoint.recovered_epoch);
    let mut runs = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.as_ref().join("runs.txt"))
        .unwrap();
    writeln!(runs, "{}", recovered.map_or(-1, |epoch| epoch as i64)).unwrap();
}

/// The parent side of a crash test: this test binary, set to run only the ignored test
/// `worker` (the child that runs the query until it is killed), its standard output
/// discarded and its errors shown.
pub(crate) fn worker_command(worker: &str) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            worker,
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    command
}

/// The parent side of a crash test: lets `child` run for `delay`, then kills it with
/// SIGKILL if it is still running, and reaps it.
pub(crate) fn kill_after(mut child: std::process::Child, delay: Duration) {
    std::thread::sleep(delay);
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap(); // SIGKILL
    }
    child.wait().unwrap();
}

/// The parent side of a crash test: waits (at most 120 s) for `child` to end, and
/// asserts that it succeeded; a child that hangs is killed and fails the test.
pub(crate) fn expect_success(mut child: std::process::Child, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish (hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{what} failed: {status}");
}
