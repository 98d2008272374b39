//! Back-pressure: a slow consumer slows the producer down instead of losing records or
//! letting queues grow.
//!
//! With ring capacity `C`, every edge holds at most `C` events, and every operator thread
//! holds at most one record in hand (a source or input task moves one record at a time
//! through its chain and waits, holding it, while the next ring is full). So the records
//! a source has emitted but the sink has not yet received are bounded by
//! `edges × C + threads`, however fast the source and however slow the sink. For a push
//! source the application's queue (capacity `C` too) comes on top, and `push()` must
//! wait (not drop, not grow) when everything is full.
//!
//! The bounds are checked at every record (from inside the sink, with the test's own
//! counters) and by sampling `Query::progress()` from another thread while the query runs.
//! Nothing here depends on timing: the sink's slowness only makes the full-ring states
//! frequent.

mod common;

use common::{counts, finish_ok};
use rivulet::source::PushError;
use rivulet::Query;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CAPACITY: usize = 4;

/// Busy-waits for `micros` microseconds: a sink slower than any source.
fn spin_for(micros: u64) {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// source → map → | → map → | → slow sink: 2 edges, 3 threads.
#[test]
fn slow_sink_bounds_records_in_flight_and_loses_nothing() {
    const RECORDS: u64 = 100_000;
    const EDGES: u64 = 2;
    const THREADS: u64 = 3;

    // Records that passed the first map (on the source thread), and records that reached
    // the sink: the test's own view, checked at every record.
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let in_sink_violation = Arc::new(Mutex::new(None::<(u64, u64)>));
    let max_in_sink = Arc::new(AtomicU64::new(0));
    let received_in_order = Arc::new(AtomicBool::new(true));

    let mut query = Query::builder();
    query.ring_capacity(CAPACITY);
    {
        let produced_in_map = produced.clone();
        let produced = produced.clone();
        let consumed = consumed.clone();
        let violation = in_sink_violation.clone();
        let max_in_sink = max_in_sink.clone();
        let in_order = received_in_order.clone();
        query
            .from_iter("fast", 0..RECORDS)
            .map(move |x| {
                produced_in_map.fetch_add(1, Ordering::SeqCst);
                x
            })
            .named("count_produced")
            .new_thread()
            .map(|x| x)
            .new_thread()
            .sink(
                "slow",
                rivulet::sink::ForEachSink(move |x: u64| {
                    let done = consumed.fetch_add(1, Ordering::SeqCst) + 1;
                    if x + 1 != done {
                        in_order.store(false, Ordering::SeqCst);
                    }
                    // In flight between the first map and this record (included): at
                    // most one in the source thread's hand, one in the middle thread's
                    // hand, and a full ring on each edge.
                    let in_flight = produced.load(Ordering::SeqCst) - done;
                    max_in_sink.fetch_max(in_flight, Ordering::SeqCst);
                    if in_flight > EDGES * CAPACITY as u64 + 2 {
                        violation.lock().unwrap().get_or_insert((x, in_flight));
                    }
                    if x.is_multiple_of(8) {
                        spin_for(20);
                    }
                }),
            );
    }
    let running = query.start().expect("start");

    // Sample progress() while the query runs. Operators are read in the order they were
    // added, so the source's records_out is read before the sink's records_in; records in
    // flight then are in rings (EDGES × CAPACITY) or in a thread's hand (one each,
    // counting the sink's popped but not yet counted record).
    let bound = EDGES * CAPACITY as u64 + THREADS;
    let mut samples = 0u64;
    let mut max_sampled = 0u64;
    while running.is_active() {
        let progress = running.progress();
        let (_, source_out) = counts(&progress, "fast");
        let (sink_in, _) = counts(&progress, "slow");
        let in_flight = source_out.saturating_sub(sink_in);
        assert!(
            in_flight <= bound,
            "progress(): source emitted {source_out}, sink received {sink_in}: \
             {in_flight} in flight > bound {bound}"
        );
        max_sampled = max_sampled.max(in_flight);
        samples += 1;
        std::thread::sleep(Duration::from_micros(200));
    }
    finish_ok(&running, "slow sink");

    assert_eq!(
        *in_sink_violation.lock().unwrap(),
        None,
        "in-sink bound broken at (record, in flight)"
    );
    assert!(
        received_in_order.load(Ordering::SeqCst),
        "records arrived out of order"
    );
    assert_eq!(consumed.load(Ordering::SeqCst), RECORDS, "records lost");
    let progress = running.progress();
    assert_eq!(counts(&progress, "fast").1, RECORDS);
    assert_eq!(counts(&progress, "slow").0, RECORDS);
    eprintln!(
        "slow sink: {samples} progress samples, max sampled in flight {max_sampled} (bound {bound}), \
         max in flight seen by the sink {} (bound {})",
        max_in_sink.load(Ordering::SeqCst),
        EDGES * CAPACITY as u64 + 2
    );
}

/// A fan-out with one slow branch: the broadcast waits for the slow branch, so the fast
/// branch cannot run ahead by more than the rings between them, and neither loses
/// anything.
#[test]
fn slow_fan_out_branch_holds_back_the_fast_one() {
    const RECORDS: u64 = 20_000;
    let fast_seen = Arc::new(AtomicU64::new(0));
    let slow_seen = Arc::new(AtomicU64::new(0));
    let max_lead = Arc::new(AtomicU64::new(0));

    let mut query = Query::builder();
    query.ring_capacity(CAPACITY);
    let mut branches = query.from_iter("numbers", 0..RECORDS).fan_out(2);
    {
        let slow_seen = slow_seen.clone();
        branches
            .pop()
            .expect("two branches")
            .for_each(move |_x: u64| {
                if slow_seen.fetch_add(1, Ordering::SeqCst).is_multiple_of(4) {
                    spin_for(20);
                }
            });
    }
    {
        let fast_seen = fast_seen.clone();
        let slow_seen = slow_seen.clone();
        let max_lead = max_lead.clone();
        branches
            .pop()
            .expect("two branches")
            .for_each(move |_x: u64| {
                let fast = fast_seen.fetch_add(1, Ordering::SeqCst) + 1;
                let lead = fast.saturating_sub(slow_seen.load(Ordering::SeqCst));
                max_lead.fetch_max(lead, Ordering::SeqCst);
            });
    }
    let running = query.start().expect("start");
    finish_ok(&running, "fan-out with a slow branch");
    assert_eq!(fast_seen.load(Ordering::SeqCst), RECORDS);
    assert_eq!(slow_seen.load(Ordering::SeqCst), RECORDS);
    // The fast branch's record was sent after the slow branch's copy of every earlier
    // record was in the slow ring: the fast sink leads by at most the slow ring, plus the
    // slow thread's record in hand, plus its own current record.
    let bound = CAPACITY as u64 + 2;
    assert!(
        max_lead.load(Ordering::SeqCst) <= bound,
        "fast branch ran {} records ahead of the slow one (bound {bound})",
        max_lead.load(Ordering::SeqCst)
    );
}

/// push → | → slow sink. `push()` must wait while the queue and the rings are full.
#[test]
fn push_blocks_when_full_and_nothing_is_lost() {
    const RECORDS: u64 = 20_000;
    let consumed = Arc::new(AtomicU64::new(0));
    let in_order = Arc::new(AtomicBool::new(true));

    let mut query = Query::builder();
    query.ring_capacity(CAPACITY);
    let (handle, numbers) = query.push_source::<u64>("pushed");
    {
        let consumed = consumed.clone();
        let in_order = in_order.clone();
        numbers.map(|x| x).new_thread().for_each(move |x: u64| {
            let done = consumed.fetch_add(1, Ordering::SeqCst) + 1;
            if x + 1 != done {
                in_order.store(false, Ordering::SeqCst);
            }
            if x.is_multiple_of(4) {
                spin_for(20);
            }
        });
    }
    let running = query.start().expect("start");

    // Accepted but not yet received: the queue (CAPACITY), the source thread's record in
    // hand, the edge (CAPACITY), and the sink thread's popped record.
    let bound = 2 * CAPACITY as u64 + 2;
    let mut max_ahead = 0;
    for i in 0..RECORDS {
        handle.push(i).expect("push to a running query");
        let ahead = (i + 1) - consumed.load(Ordering::SeqCst);
        max_ahead = max_ahead.max(ahead);
        assert!(
            ahead <= bound,
            "push() accepted {} records but only {} arrived: {ahead} queued > bound {bound}",
            i + 1,
            consumed.load(Ordering::SeqCst)
        );
        assert!(handle.queued() <= CAPACITY, "push queue over its capacity");
    }
    drop(handle);
    finish_ok(&running, "push with a slow sink");
    assert_eq!(consumed.load(Ordering::SeqCst), RECORDS, "records lost");
    assert!(
        in_order.load(Ordering::SeqCst),
        "records arrived out of order"
    );
    eprintln!("push: max accepted ahead of the sink {max_ahead} (bound {bound})");
}

/// A sink that stops until released: the whole pipeline fills up, after which
/// `try_push` reports `Full` and `push` waits; once released, every accepted record
/// arrives.
#[test]
fn stalled_pipeline_refuses_try_push_and_blocks_push_until_released() {
    const PUSHER_RECORDS: u64 = 200;
    let gate = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Mutex::new(Vec::new()));

    let mut query = Query::builder();
    query.ring_capacity(CAPACITY);
    let (handle, numbers) = query.push_source::<u64>("pushed");
    {
        let gate = gate.clone();
        let received = received.clone();
        numbers.new_thread().for_each(move |x: u64| {
            // Hang guard: never wait for the gate longer than a minute.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !gate.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            received.lock().unwrap().push(x);
        });
    }
    let running = query.start().expect("start");

    // Capacity of the stalled pipeline: the queue, the source's record in hand, the edge,
    // and the sink's record (held in the stalled closure).
    let bound = 2 * CAPACITY as u64 + 2;
    let mut accepted = 0u64;
    let mut fulls_in_a_row = 0;
    // Keep trying until `Full` has been the answer for a while (the pipeline is then
    // saturated). Only the upper bound below is asserted; the loop length does not matter.
    while fulls_in_a_row < 200 {
        match handle.try_push(accepted) {
            Ok(()) => {
                accepted += 1;
                fulls_in_a_row = 0;
                assert!(
                    accepted <= bound,
                    "a stalled pipeline accepted {accepted} records (bound {bound})"
                );
            }
            Err(PushError::Full(back)) => {
                assert_eq!(back, accepted, "try_push handed back another record");
                fulls_in_a_row += 1;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err(PushError::Closed(_)) => panic!("push source closed while running"),
        }
    }
    assert!(
        accepted >= CAPACITY as u64,
        "Full reported with only {accepted} records accepted (queue capacity {CAPACITY})"
    );
    assert!(handle.queued() <= CAPACITY);

    // A blocking pusher on another thread must not get past the full pipeline.
    let pushed = Arc::new(AtomicU64::new(0));
    let pusher = {
        let handle = handle.clone();
        let pushed = pushed.clone();
        let first = accepted;
        std::thread::spawn(move || {
            for i in first..first + PUSHER_RECORDS {
                handle.push(i).expect("push to a running query");
                pushed.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Give the pusher time to try; whatever it managed must still fit the bound (with a
    // blocking push it stays at 0 here unless the pipeline still had a free slot).
    std::thread::sleep(Duration::from_millis(50));
    let early = pushed.load(Ordering::SeqCst);
    assert!(
        accepted + early <= bound,
        "push() returned {early} times on top of {accepted} accepted records although \
         the stalled pipeline holds at most {bound}"
    );
    assert!(received.lock().unwrap().is_empty());

    gate.store(true, Ordering::SeqCst);
    pusher.join().expect("pusher thread");
    drop(handle);
    finish_ok(&running, "stalled pipeline");
    let total = accepted + PUSHER_RECORDS;
    assert_eq!(*received.lock().unwrap(), (0..total).collect::<Vec<_>>());
    let progress = running.progress();
    assert_eq!(progress.input_rows, total);
    assert_eq!(progress.output_rows, total);
}
