//! Sources, version 2: a source that blocks in a `mio` poll of its own (and still wakes
//! for epochs, stops and aborts), the ingest write-ahead log as a wrapper around any
//! source that cannot replay, and a source run as several instances, each with its own
//! offset.
//!
//! Every wait is a hang guard (`common::HANG_GUARD`); nothing asserts on timing.

mod common;

use common::{finish_ok, wait_until, HANG_GUARD};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::sink::MemoryTable;
use rivulet::source::{IngestLogged, Source, SourceContext, SourcePoll, WakeHandle};
use rivulet::{Query, WaitPolicy};
use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `f` on another thread and waits for it at most [`HANG_GUARD`]: the way to check
/// that `stop()`, `abort()` or a drop returns (a hang fails the test instead of hanging it).
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(HANG_GUARD)
        .unwrap_or_else(|_| panic!("{what}: did not return within {HANG_GUARD:?} (hang)"))
}

fn checkpointing(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::new(dir)
        .interval(Duration::from_millis(5))
        .durability(Durability::OsBuffered)
        .segment_bytes(4096)
}

fn last_complete(query: &Query) -> u64 {
    query
        .progress()
        .checkpoint
        .and_then(|stats| stats.last_complete_epoch)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// A source that blocks in mio
// ---------------------------------------------------------------------------------------

const WAKE: Token = Token(0);
const LISTENER: Token = Token(1);

/// Lines of text from TCP clients: it owns a `mio` listener on 127.0.0.1 (bound in
/// `open`, its address published through `address`), accepts every client, and blocks in
/// its poll when idle (`Source::park`), with the thread's waker registered in the same
/// poll so epochs, stops and aborts end the poll.
struct Lines {
    address: Arc<Mutex<Option<SocketAddr>>>,
    /// Blocking polls so far (the test checks the source really waited in its poll).
    blocks: Arc<AtomicUsize>,
    poll: Option<Poll>,
    events: Events,
    listener: Option<TcpListener>,
    clients: Vec<(TcpStream, Vec<u8>)>,
    lines: VecDeque<String>,
    /// A socket reported readiness since the last drain.
    readable: bool,
}

impl Lines {
    fn new(address: Arc<Mutex<Option<SocketAddr>>>, blocks: Arc<AtomicUsize>) -> Self {
        Lines {
            address,
            blocks,
            poll: None,
            events: Events::with_capacity(16),
            listener: None,
            clients: Vec::new(),
            lines: VecDeque::new(),
            readable: false,
        }
    }

    /// Accepts every waiting client and reads every client until it would block (the
    /// poll is edge-triggered), splitting complete lines off. Each loop ends at
    /// `WouldBlock`, end of file, or an error.
    fn drain(&mut self) {
        let (Some(poll), Some(listener)) = (&self.poll, &self.listener) else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let token = Token(2 + self.clients.len());
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .unwrap();
                    self.clients.push((stream, Vec::new()));
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) => panic!("accept: {error}"),
            }
        }
        let mut buffer = [0u8; 4096];
        for (stream, partial) in &mut self.clients {
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => partial.extend_from_slice(&buffer[..n]),
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            while let Some(end) = partial.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                self.lines
                    .push_back(String::from_utf8_lossy(&line[..end]).into_owned());
            }
        }
    }
}

impl Source for Lines {
    type Item = String;

    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        let poll = Poll::new()?;
        context.wake.register_mio(poll.registry(), WAKE)?;
        let mut listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        *self.address.lock().unwrap() = Some(listener.local_addr()?);
        self.poll = Some(poll);
        self.listener = Some(listener);
        Ok(())
    }

    fn poll_next(&mut self) -> SourcePoll<String> {
        if self.lines.is_empty() && self.readable {
            self.readable = false;
            self.drain();
        }
        match self.lines.pop_front() {
            Some(line) => SourcePoll::Ready(line),
            None => SourcePoll::Pending { until: None },
        }
    }

    fn has_data(&self) -> bool {
        !self.lines.is_empty() || self.readable
    }

    fn park(&mut self, timeout: Option<Duration>) -> bool {
        let Some(poll) = &mut self.poll else {
            return false;
        };
        if timeout != Some(Duration::ZERO) {
            self.blocks.fetch_add(1, Ordering::Relaxed);
        }
        match poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => panic!("poll: {error}"),
        }
        // The waker's events only mean "re-check"; a socket's mean data.
        if self.events.iter().any(|event| event.token() != WAKE) {
            self.readable = true;
        }
        true
    }
}

struct LineQuery {
    query: Query,
    out: MemoryTable<String>,
    address: SocketAddr,
    blocks: Arc<AtomicUsize>,
}

/// A checkpointed query reading lines (through the ingest log, since sockets cannot
/// replay) into a memory table.
fn line_query(dir: &Path, policy: WaitPolicy) -> LineQuery {
    let address = Arc::new(Mutex::new(None));
    let blocks = Arc::new(AtomicUsize::new(0));
    let mut builder = Query::builder();
    builder.checkpoint(checkpointing(dir)).wait_policy(policy);
    let out = builder
        .source_with_ingest_log("lines", Lines::new(address.clone(), blocks.clone()))
        .to_memory("out");
    assert!(
        address.lock().unwrap().is_none(),
        "building opened the socket"
    );
    let query = builder.start().expect("the query starts");
    let address = address.lock().unwrap().expect("open() bound the listener");
    LineQuery {
        query,
        out,
        address,
        blocks,
    }
}

fn send_line(client: &mut std::net::TcpStream, line: &str) {
    client.write_all(format!("{line}\n").as_bytes()).unwrap();
    client.flush().unwrap();
}

/// The source blocks in its `mio` poll: lines sent while it sleeps there wake it (socket
/// readiness), epochs keep completing while no data flows (the coordinator's wake-ups
/// reach the poll through the waker), and `stop()` returns (the stop's unpark does).
#[test]
fn a_source_blocked_in_mio_wakes_for_data_epochs_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let LineQuery {
        query,
        out,
        address,
        blocks,
    } = line_query(dir.path(), WaitPolicy::default());
    let mut client = std::net::TcpStream::connect(address).unwrap();
    send_line(&mut client, "one");
    send_line(&mut client, "two");
    wait_until("the first lines", || out.len() >= 2);
    // Let the source go to sleep in its poll, then wake it with data.
    wait_until("the source blocking in its poll", || {
        blocks.load(Ordering::Relaxed) > 0
    });
    std::thread::sleep(Duration::from_millis(20));
    send_line(&mut client, "three");
    wait_until("a line sent while the source slept", || out.len() >= 3);

    // No data: epochs go on completing, each one waking the source in its poll.
    let before = (last_complete(&query), blocks.load(Ordering::Relaxed));
    wait_until("epochs completing while idle", || {
        last_complete(&query) >= before.0 + 5
    });
    assert!(
        blocks.load(Ordering::Relaxed) > before.1,
        "the source never blocked in its poll while idle"
    );
    let query = Arc::new(query);
    let stopping = query.clone();
    within("stop() of a source blocked in mio", move || stopping.stop()).unwrap();
    assert_eq!(out.rows(), vec!["one", "two", "three"]);
    drop(client);
}

/// `abort()` and dropping the handle return while the source blocks in its poll.
#[test]
fn abort_and_drop_end_a_source_blocked_in_mio() {
    for drop_it in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let LineQuery {
            query,
            out,
            address,
            blocks,
        } = line_query(dir.path(), WaitPolicy::default());
        let mut client = std::net::TcpStream::connect(address).unwrap();
        send_line(&mut client, "only");
        wait_until("the line", || out.len() == 1);
        wait_until("the source blocking in its poll", || {
            blocks.load(Ordering::Relaxed) > 0
        });
        let epochs = last_complete(&query);
        wait_until("an epoch while idle", || last_complete(&query) > epochs);
        if drop_it {
            within("dropping a query whose source blocks in mio", move || {
                drop(query)
            });
        } else {
            within("abort() of a source blocked in mio", move || query.abort()).unwrap();
        }
        drop(client);
    }
}

/// Under policies that never park, the source is never asked to block: it looks at its
/// poll without blocking between spin rounds, and still sees the socket's data, the
/// epochs and the stop.
#[test]
fn a_mio_source_under_a_spinning_policy_sees_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let LineQuery {
        query,
        out,
        address,
        ..
    } = line_query(dir.path(), WaitPolicy::SpinThenYield { spins: 4 });
    let mut client = std::net::TcpStream::connect(address).unwrap();
    for i in 0..20 {
        send_line(&mut client, &format!("line {i}"));
    }
    wait_until("every line", || out.len() == 20);
    let epochs = last_complete(&query);
    wait_until("epochs while idle", || last_complete(&query) >= epochs + 2);
    within("stop() under SpinThenYield", move || query.stop()).unwrap();
    let expected: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
    assert_eq!(out.rows(), expected);
}

// ---------------------------------------------------------------------------------------
// The ingest-log wrapper around a custom source
// ---------------------------------------------------------------------------------------

/// Numbers handed over by the test through a channel: read once, gone, so the source
/// cannot replay. `None` ends the stream. The feeder wakes the source's thread through the
/// wake handle `open` publishes.
struct Fed {
    records: crossbeam_channel::Receiver<Option<u64>>,
    wake: Arc<Mutex<Option<WakeHandle>>>,
}

impl Source for Fed {
    type Item = u64;

    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        *self.wake.lock().unwrap() = Some(context.wake.clone());
        Ok(())
    }

    fn poll_next(&mut self) -> SourcePoll<u64> {
        match self.records.try_recv() {
            Ok(Some(record)) => SourcePoll::Ready(record),
            Ok(None) | Err(crossbeam_channel::TryRecvError::Disconnected) => SourcePoll::Exhausted,
            Err(crossbeam_channel::TryRecvError::Empty) => SourcePoll::Pending { until: None },
        }
    }

    fn has_data(&self) -> bool {
        !self.records.is_empty()
    }
}

struct Feeder {
    records: crossbeam_channel::Sender<Option<u64>>,
    wake: Arc<Mutex<Option<WakeHandle>>>,
}

impl Feeder {
    fn send(&self, record: Option<u64>) {
        self.records.send(record).unwrap();
        // The channel's send is the release the source's `has_data` pairs with.
        if let Some(wake) = &*self.wake.lock().unwrap() {
            wake.notify();
        }
    }

    fn feed(&self, records: std::ops::Range<u64>) {
        for record in records {
            self.send(Some(record));
        }
    }

    fn end(&self) {
        self.send(None);
    }
}

const KEYS: u64 = 5;

/// `(key, (count, last record))` after every record.
type Counts = MemoryTable<(u64, (u64, u64))>;

fn fed_query(dir: &Path, interval: Duration) -> (Query, Feeder, Counts) {
    let (records, receiver) = crossbeam_channel::unbounded();
    let wake = Arc::new(Mutex::new(None));
    let source = Fed {
        records: receiver,
        wake: wake.clone(),
    };
    let mut builder = Query::builder();
    builder.checkpoint(
        CheckpointConfig::new(dir)
            .interval(interval)
            .durability(Durability::OsBuffered)
            .segment_bytes(4096),
    );
    // One instance on each side: the fold is chained on the source's thread, so its
    // snapshot and the source's offset are one consistent cut.
    let out = builder
        .source_with_ingest_log("fed", source)
        .key_by(|record| record % KEYS)
        .fold((0u64, 0u64), |(count, last), record| {
            *count += 1;
            *last = record;
        })
        .to_memory("out");
    let query = builder.start().expect("the query starts");
    assert!(wake.lock().unwrap().is_some(), "open() got no wake handle");
    (query, Feeder { records, wake }, out)
}

fn records_of(out: &Counts) -> Vec<u64> {
    out.rows().into_iter().map(|(_, (_, last))| last).collect()
}

/// The wrapper logs what the custom source hands out and replays it after a restart:
///
/// 1. a run with no complete epoch (the interval is an hour) takes 0..300 and crashes
///    (`abort`): the restart must replay all of it from the log, in order, and nothing
///    more;
/// 2. that run takes 300..600 with epochs every 5 ms and crashes after some epochs
///    completed: the next restart replays the log from its restored offset (a suffix of
///    what was logged, in order, without gaps or repeats), then takes 600..700 and ends;
/// 3. the restored keyed counts plus the replay equal the counts over 0..700 exactly:
///    nothing logged was lost or counted twice.
#[test]
fn ingest_logged_custom_source_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();

    let (query, feeder, out) = fed_query(dir.path(), Duration::from_secs(3600));
    feeder.feed(0..300);
    wait_until("run 1's records", || out.len() == 300);
    assert_eq!(last_complete(&query), 0, "an epoch completed in run 1");
    within("abort of run 1", move || query.abort()).unwrap();
    assert_eq!(records_of(&out), (0..300).collect::<Vec<_>>());
    assert!(dir.path().join("ingest-fed").is_dir(), "no ingest log");

    let (query, feeder, out) = fed_query(dir.path(), Duration::from_millis(5));
    wait_until("run 1's records replayed", || out.len() >= 300);
    feeder.feed(300..600);
    wait_until("run 2's records", || out.len() == 600);
    assert_eq!(
        records_of(&out),
        (0..600).collect::<Vec<_>>(),
        "run 2 must replay exactly what run 1 logged, then take its own"
    );
    let epochs = last_complete(&query);
    wait_until("epochs in run 2", || last_complete(&query) >= epochs + 2);
    within("abort of run 2", move || query.abort()).unwrap();

    let (query, feeder, out) = fed_query(dir.path(), Duration::from_millis(5));
    let recovered = query.progress().checkpoint.unwrap().recovered_epoch;
    assert!(
        recovered.is_some_and(|epoch| epoch > 0),
        "nothing recovered"
    );
    feeder.feed(600..700);
    feeder.end();
    finish_ok(&query, "run 3");
    let records = records_of(&out);
    let resumed_at = records.first().copied().unwrap();
    assert!(resumed_at <= 600, "run 3 began with {resumed_at}");
    assert_eq!(
        records,
        (resumed_at..700).collect::<Vec<_>>(),
        "run 3 must replay a suffix of the log, in order, then take its own"
    );
    let mut reference = BTreeMap::new();
    for record in 0..700u64 {
        let entry = reference.entry(record % KEYS).or_insert((0u64, 0u64));
        entry.0 += 1;
        entry.1 = record;
    }
    let mut last = BTreeMap::new();
    for (key, value) in out.rows() {
        last.insert(key, value);
    }
    assert_eq!(
        last, reference,
        "restored counts + replay differ from the input"
    );
}

/// A graceful stop checkpoints the wrapper's final offset: a restart replays nothing.
#[test]
fn ingest_logged_source_stopped_gracefully_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (query, feeder, out) = fed_query(dir.path(), Duration::from_millis(5));
    feeder.feed(0..200);
    wait_until("the records", || out.len() == 200);
    within("stop", move || query.stop()).unwrap();

    let (query, feeder, out) = fed_query(dir.path(), Duration::from_millis(5));
    feeder.feed(200..250);
    feeder.end();
    finish_ok(&query, "the restart");
    assert_eq!(records_of(&out), (200..250).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// Several instances of one source
// ---------------------------------------------------------------------------------------

/// Records per source instance (instance `i` holds `i, i + 3, i + 6, ...` below
/// `3 * PER_INSTANCE`, as a file split three ways would).
const PER_INSTANCE: u64 = 1_000;
const INSTANCES: usize = 3;

/// Instance `instance`'s share of the numbers. Its offset is how many it emitted; it
/// emits at most `cap` of them in this run (then idles until the query stops), and
/// reports the offset it was restored to in `restored[instance]`.
struct Split {
    instance: usize,
    emitted: u64,
    cap: u64,
    restored: Arc<Mutex<Vec<Option<u64>>>>,
}

impl Split {
    fn value(&self) -> u64 {
        self.instance as u64 + self.emitted * INSTANCES as u64
    }
}

impl Source for Split {
    type Item = u64;

    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        if context.instance != self.instance || context.instances != INSTANCES {
            return Err(format!(
                "opened as instance {} of {}, built as {} of {INSTANCES}",
                context.instance, context.instances, self.instance
            )
            .into());
        }
        Ok(())
    }

    fn poll_next(&mut self) -> SourcePoll<u64> {
        if self.emitted >= PER_INSTANCE {
            return SourcePoll::Exhausted;
        }
        if self.emitted >= self.cap {
            return SourcePoll::Pending { until: None };
        }
        let value = self.value();
        self.emitted += 1;
        SourcePoll::Ready(value)
    }

    fn has_data(&self) -> bool {
        self.emitted < self.cap || self.emitted >= PER_INSTANCE
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: rivulet::Epoch) -> Result<Vec<u8>, BoxError> {
        Ok(self.emitted.to_le_bytes().to_vec())
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        self.emitted = u64::from_le_bytes(offset.try_into()?);
        self.restored.lock().unwrap()[self.instance] = Some(self.emitted);
        Ok(())
    }
}

/// `(key, (count, record))` for every record, from a keyed fold with 2 instances.
fn split_query(
    dir: &Path,
    caps: [u64; INSTANCES],
) -> (Query, Counts, Arc<Mutex<Vec<Option<u64>>>>) {
    let restored = Arc::new(Mutex::new(vec![None; INSTANCES]));
    let mut builder = Query::builder();
    builder.checkpoint(checkpointing(dir));
    let numbers = builder.source_instances("split", INSTANCES, |instance| Split {
        instance,
        emitted: 0,
        cap: caps[instance],
        restored: restored.clone(),
    });
    assert_eq!(numbers.parallelism(), INSTANCES);
    let out = numbers
        .map(|n| n)
        .key_by(|n| n % KEYS)
        .with_parallelism(2)
        .fold((0u64, 0u64), |(count, last), n| {
            *count += 1;
            *last = n;
        })
        .to_memory("out");
    let query = builder.start().expect("the query starts");
    (query, out, restored)
}

/// A source with 3 instances in a checkpointed query, a keyed exchange from the 3 to 2
/// aggregate instances: a run that stops with each instance at a different offset, then
/// a restart. Each instance gets its own offset back; the two runs together emit every
/// record exactly once (what one sequential source would have), and the restored keyed
/// counts end at the reference.
#[test]
fn source_instances_resume_from_their_own_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let caps = [100, 250, 400];
    let (query, first, restored) = split_query(dir.path(), caps);
    assert_eq!(restored.lock().unwrap().clone(), vec![None; INSTANCES]);
    let in_first_run: u64 = caps.iter().sum();
    wait_until("the first run's records", || {
        first.len() as u64 == in_first_run
    });
    let progress = query.progress();
    let source = progress.operator("split").unwrap();
    assert_eq!(source.parallelism, INSTANCES);
    let per_instance: Vec<u64> = source.instances.iter().map(|(_, out)| *out).collect();
    assert_eq!(per_instance, caps.to_vec());
    within("stop of the first run", move || query.stop()).unwrap();

    let (query, second, restored) = split_query(dir.path(), [u64::MAX; INSTANCES]);
    assert_eq!(
        restored.lock().unwrap().clone(),
        caps.iter().map(|cap| Some(*cap)).collect::<Vec<_>>(),
        "each instance resumes from its own offset"
    );
    finish_ok(&query, "the second run");

    let mut all = records_of(&first);
    all.extend(records_of(&second));
    all.sort_unstable();
    let reference: Vec<u64> = (0..PER_INSTANCE * INSTANCES as u64).collect();
    assert_eq!(
        all, reference,
        "the two runs differ from one sequential source"
    );
    // Each instance's records of the second run begin at its restored offset.
    for (instance, cap) in caps.iter().enumerate() {
        let first_of_instance = records_of(&second)
            .into_iter()
            .filter(|n| n % INSTANCES as u64 == instance as u64)
            .min();
        assert_eq!(
            first_of_instance,
            Some(instance as u64 + cap * INSTANCES as u64),
            "instance {instance}"
        );
    }
    let mut counts = BTreeMap::new();
    for (key, (count, _)) in second.rows() {
        let latest = counts.entry(key).or_insert(0);
        *latest = count.max(*latest);
    }
    let mut expected = BTreeMap::new();
    for n in reference {
        *expected.entry(n % KEYS).or_insert(0) += 1;
    }
    assert_eq!(counts, expected, "the keyed counts across the restart");
}

/// Instances of a source wrapped in the ingest log keep a log each, and each replays
/// its own after a crash.
#[test]
fn ingest_logged_instances_keep_a_log_each() {
    let dir = tempfile::tempdir().unwrap();
    let run = |feeds: &[std::ops::Range<u64>], end: bool| {
        let mut feeders = Vec::new();
        let mut builder = Query::builder();
        builder.checkpoint(
            CheckpointConfig::new(dir.path())
                .interval(Duration::from_secs(3600))
                .durability(Durability::OsBuffered),
        );
        let out = builder
            .source_instances("fed", 2, |_| {
                let (records, receiver) = crossbeam_channel::unbounded();
                let wake = Arc::new(Mutex::new(None));
                feeders.push(Feeder {
                    records,
                    wake: wake.clone(),
                });
                IngestLogged::new(Fed {
                    records: receiver,
                    wake,
                })
            })
            .to_memory("out");
        let query = builder.start().expect("the query starts");
        for (feeder, records) in feeders.iter().zip(feeds) {
            feeder.feed(records.clone());
            if end {
                feeder.end();
            }
        }
        // The feeders live as long as the caller keeps them: a source whose feeder is
        // dropped ends, and a query whose sources all ended records a final epoch.
        (query, out, feeders)
    };
    // No epoch completes (an hour's interval, and the feeders stay alive until the
    // abort): the crash leaves everything to replay.
    let (query, out, feeders) = run(&[0..50, 1_000..1_030], false);
    wait_until("the first run's records", || out.len() == 80);
    within("abort", move || query.abort()).unwrap();
    drop(feeders);
    assert!(dir.path().join("ingest-fed").is_dir());
    assert!(dir.path().join("ingest-fed-1").is_dir());

    let (query, out, _feeders) = run(&[50..60, 1_030..1_040], true);
    finish_ok(&query, "the restart");
    let rows = out.rows();
    let of = |instance_range: std::ops::Range<u64>| -> Vec<u64> {
        rows.iter()
            .copied()
            .filter(|n| instance_range.contains(n))
            .collect()
    };
    assert_eq!(of(0..1_000), (0..60).collect::<Vec<_>>(), "instance 0");
    assert_eq!(
        of(1_000..2_000),
        (1_000..1_040).collect::<Vec<_>>(),
        "instance 1"
    );
}
