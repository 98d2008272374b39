//! The life of a query: start, stop, natural end, abort, drop, failure, and the
//! configurations `start()` refuses.
//!
//! * `stop()` on an endless source drains: the sink gets exactly the records the source
//!   emitted, with no gap; a push source hands over every record it accepted first.
//! * `is_active`, `await_termination` (also repeated, also after the end), `abort()`
//!   and dropping a running `Query` behave and never hang.
//! * A panic in user code (map, sink, keyed aggregate at parallelism 2) ends the query
//!   with `Error::OperatorPanicked` naming the operator; a sink error with `Error::Sink`.
//! * Misconfigured queries are refused with `Error::Config`.
//! * `progress()` counters match what a sequential computation says each operator saw.

mod common;

use common::{counts, finish, finish_ok, wait_until};
use rivulet::error::BoxError;
use rivulet::query::OperatorKind;
use rivulet::sink::{ForEachSink, Sink};
use rivulet::source::PushError;
use rivulet::{Error, Query};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Runs `f` on another thread and fails the test if it does not return in time (a hang
/// guard for calls that block, like dropping a running query).
fn within_guard<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(common::HANG_GUARD).unwrap_or_else(|_| {
        panic!(
            "{what}: did not return within {:?} (hang)",
            common::HANG_GUARD
        )
    })
}

fn expect_config_error(result: rivulet::Result<Query>, what: &str) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("{what}: expected Error::Config, got {other}"),
        Ok(query) => {
            query.abort().ok();
            panic!("{what}: start() accepted a misconfigured query")
        }
    }
}

fn expect_panic_of(result: rivulet::Result<()>, operator: &str, text: &str) {
    match result {
        Err(Error::OperatorPanicked {
            operator: name,
            message,
        }) => {
            assert_eq!(
                name, operator,
                "panic reported for the wrong operator ({message})"
            );
            assert!(
                message.contains(text),
                "panic message {message:?} lacks {text:?}"
            );
        }
        Err(other) => panic!("expected a panic of `{operator}`, got: {other}"),
        Ok(()) => panic!("expected a panic of `{operator}`, the query ended fine"),
    }
}

// ---------------------------------------------------------------- stop and natural end

#[test]
fn stop_on_an_endless_rate_source_drains_and_ends() {
    let mut query = Query::builder();
    query.ring_capacity(8);
    let rows = query
        .rate("rate", 100_000)
        .map(|row| row.value)
        .new_thread()
        .filter(|_| true)
        .new_thread()
        .to_memory("out");
    let running = query.start().expect("start");
    assert!(running.is_active());
    wait_until("rate rows reaching the sink", || rows.len() >= 2_000);
    assert!(running.is_active(), "an endless source ended by itself");
    let running = within_guard("stop()", move || {
        running.stop().expect("stop");
        running
    });
    assert!(!running.is_active());
    let rows = rows.rows();
    let n = rows.len() as u64;
    assert!(n >= 2_000);
    assert_eq!(
        rows,
        (0..n).collect::<Vec<_>>(),
        "gap or duplicate after stop()"
    );
}

#[test]
fn stop_delivers_exactly_what_the_source_emitted() {
    let mut query = Query::builder();
    query.ring_capacity(4);
    let rows = query
        .rate("rate", 200_000)
        .map(|row| row.value)
        .new_thread()
        .to_memory("out");
    let running = query.start().expect("start");
    wait_until("rate rows reaching the sink", || rows.len() >= 1_000);
    running.stop().expect("stop");
    assert!(!running.is_active());
    let progress = running.progress();
    assert!(!progress.is_active);
    let (_, emitted) = counts(&progress, "rate");
    let (received, _) = counts(&progress, "out");
    assert_eq!(received, emitted, "sink count differs from source count");
    assert_eq!(rows.rows(), (0..emitted).collect::<Vec<_>>());
}

#[test]
fn stop_hands_over_every_accepted_push() {
    let mut query = Query::builder();
    query.ring_capacity(4);
    let (handle, numbers) = query.push_source::<u64>("pushed");
    // A little slow, so the pusher is often blocked when stop() comes.
    let rows = numbers
        .map(|x| x)
        .new_thread()
        .inspect(|x| {
            if x.is_multiple_of(16) {
                std::thread::sleep(Duration::from_micros(50));
            }
        })
        .to_memory("out");
    let running = query.start().expect("start");
    let pusher = std::thread::spawn(move || {
        let mut accepted = 0u64;
        loop {
            match handle.push(accepted) {
                Ok(()) => accepted += 1,
                Err(PushError::Closed(back)) => {
                    assert_eq!(back, accepted, "Closed handed back another record");
                    assert!(handle.is_closed());
                    return accepted;
                }
                Err(PushError::Full(_)) => unreachable!("push() waits instead of Full"),
            }
        }
    });
    wait_until("pushed rows reaching the sink", || rows.len() >= 500);
    running.stop().expect("stop");
    let accepted = within_guard("pusher after stop()", move || {
        pusher.join().expect("pusher")
    });
    assert_eq!(
        rows.rows(),
        (0..accepted).collect::<Vec<_>>(),
        "records accepted by push() before stop() were lost"
    );
}

#[test]
fn is_active_follows_the_threads() {
    let mut query = Query::builder();
    let (handle, numbers) = query.push_source::<u64>("pushed");
    let rows = numbers.new_thread().to_memory("out");
    let running = query.start().expect("start");
    assert!(running.is_active());
    for i in 0..100 {
        handle.push(i).expect("push");
    }
    wait_until("rows reaching the sink", || rows.len() == 100);
    // The source waits for more: still active.
    assert!(running.is_active());
    assert!(running.progress().is_active);
    drop(handle);
    finish_ok(&running, "push source after the last handle");
    assert!(!running.is_active());
    assert!(!running.progress().is_active);
    assert_eq!(rows.len(), 100);
}

#[test]
fn await_termination_after_the_natural_end_is_ok_and_repeatable() {
    let mut query = Query::builder();
    query.name("natural");
    let rows = query.from_iter("numbers", 0..1_000u64).to_memory("out");
    let running = query.start().expect("start");
    assert_eq!(running.name(), "natural");
    finish_ok(&running, "natural end");
    running.await_termination().expect("second await");
    assert_eq!(running.failure().map(|e| e.to_string()), None);
    // Stopping or aborting an ended query changes nothing.
    running.stop().expect("stop after the end");
    running.abort().expect("abort after the end");
    assert_eq!(rows.len(), 1_000);
    // The table is reachable through the handle too.
    let table = running
        .memory_table::<u64>("out")
        .expect("memory table by name");
    assert_eq!(table.rows(), (0..1_000).collect::<Vec<_>>());
    assert!(running.memory_table::<String>("out").is_none());
}

/// `stop()` must return only once every thread ended, even while another thread waits
/// in `await_termination` (the usual shape: a service thread waits, a control thread
/// stops).
#[test]
fn stop_waits_for_the_end_while_another_thread_awaits_termination() {
    let mut query = Query::builder();
    query.ring_capacity(4);
    let (handle, numbers) = query.push_source::<u64>("pushed");
    let delivered = Arc::new(AtomicU64::new(0));
    {
        let delivered = delivered.clone();
        numbers.new_thread().for_each(move |_x| {
            std::thread::sleep(Duration::from_micros(500));
            delivered.fetch_add(1, Ordering::SeqCst);
        });
    }
    let running = query.start().expect("start");
    // A pusher keeps the pipeline full until stop() closes the source.
    let pusher = std::thread::spawn(move || {
        let mut accepted = 0u64;
        while handle.push(accepted).is_ok() {
            accepted += 1;
        }
        accepted
    });
    wait_until("records reaching the sink", || {
        delivered.load(Ordering::SeqCst) >= 10
    });
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| running.await_termination());
        // Let the waiter enter await_termination first (if it has not yet, the test
        // merely checks the single-caller case).
        std::thread::sleep(Duration::from_millis(20));
        running.stop().expect("stop");
        let delivered_at_return = delivered.load(Ordering::SeqCst);
        let active_at_return = running.is_active();
        waiter.join().expect("waiter").expect("await_termination");
        let accepted = within_guard("pusher after stop()", move || {
            pusher.join().expect("pusher")
        });
        // Graceful stop: every thread ended and every accepted record was delivered
        // before stop() returned.
        assert!(
            !active_at_return && delivered_at_return == accepted,
            "stop() returned early: threads still running: {active_at_return}, \
             delivered {delivered_at_return} of {accepted} accepted records"
        );
    });
}

#[test]
fn abort_ends_an_endless_query_without_error() {
    let mut query = Query::builder();
    query.ring_capacity(2);
    let rows = query
        .rate("rate", 1_000_000)
        .new_thread()
        .map(|row| row.value)
        .to_memory("out");
    let running = query.start().expect("start");
    wait_until("rows reaching the sink", || rows.len() >= 100);
    let result = within_guard("abort()", move || {
        let result = running.abort();
        (result, running.is_active())
    });
    assert!(result.0.is_ok(), "abort reported {:?}", result.0);
    assert!(!result.1, "threads still running after abort()");
    // Whatever arrived is a prefix: abort drops in-flight records, never reorders.
    let rows = rows.rows();
    assert_eq!(rows, (0..rows.len() as u64).collect::<Vec<_>>());
}

#[test]
fn await_termination_timeout_gives_up_on_a_running_query() {
    let mut query = Query::builder();
    query.rate("rate", 1_000).for_each(|_| {});
    let running = query.start().expect("start");
    // An endless source: the timed wait must give up, and the query keeps running.
    assert!(running
        .await_termination_timeout(Duration::from_millis(10))
        .is_none());
    assert!(running.is_active());
    running.stop().expect("stop");
    assert!(matches!(
        running.await_termination_timeout(Duration::from_millis(10)),
        Some(Ok(()))
    ));
}

/// stop() drains a whole graph: fan-out, keyed exchange, union. Every record the source
/// emitted comes out once per branch.
#[test]
fn stop_drains_a_graph_with_fan_out_exchange_and_union() {
    let mut query = Query::builder();
    query.ring_capacity(2);
    let mut branches = query.rate("rate", 200_000).map(|row| row.value).fan_out(2);
    let counted = branches
        .pop()
        .expect("two branches")
        .key_by(|x| x % 3)
        .with_parallelism(2)
        .count()
        .map(|(key, count)| (1u8, key * 1_000_000 + count));
    let plain = branches.pop().expect("two branches").map(|x| (0u8, x));
    let rows = plain.union(counted).to_memory("out");
    let running = query.start().expect("start");
    wait_until("rows reaching the sink", || rows.len() >= 2_000);
    running.stop().expect("stop");
    let (_, emitted) = counts(&running.progress(), "rate");
    let by_branch = common::per_key(&rows.rows());
    // The plain branch: every value, in order.
    assert_eq!(by_branch[&0], (0..emitted).collect::<Vec<_>>());
    // The counted branch: the running counts of every value's key, as a multiset.
    let mut expected = Vec::new();
    let mut running_counts = [0u64; 3];
    for value in 0..emitted {
        let key = value % 3;
        running_counts[key as usize] += 1;
        expected.push(key * 1_000_000 + running_counts[key as usize]);
    }
    assert_eq!(
        common::sorted(by_branch[&1].clone()),
        common::sorted(expected)
    );
}

// ---------------------------------------------------------------------- drop

#[test]
fn dropping_a_running_query_does_not_hang() {
    // An endless rate source behind a tiny ring and a slow stage.
    let mut query = Query::builder();
    query.ring_capacity(1);
    let rows = query
        .rate("rate", 1_000_000)
        .new_thread()
        .inspect(|_| std::thread::sleep(Duration::from_micros(20)))
        .to_memory("out");
    let running = query.start().expect("start");
    wait_until("rows reaching the sink", || rows.len() >= 10);
    within_guard("dropping a query with an endless rate source", move || {
        drop(running)
    });

    // A push source with a live handle and a pusher blocked on a full pipeline.
    let mut query = Query::builder();
    query.ring_capacity(1);
    let (handle, numbers) = query.push_source::<u64>("pushed");
    let gate = Arc::new(AtomicBool::new(false));
    {
        let gate = gate.clone();
        numbers.new_thread().for_each(move |_x| {
            // Stalls until the test has dropped the query (hang guard: 60 s).
            let deadline = std::time::Instant::now() + common::HANG_GUARD;
            while !gate.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
        });
    }
    let running = query.start().expect("start");
    let pusher = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            let mut accepted = 0u64;
            while handle.push(accepted).is_ok() {
                accepted += 1;
            }
            accepted
        })
    };
    wait_until("pipeline full", || handle.queued() == 1);
    // The sink thread is stuck in user code; release it as the drop starts (a drop
    // cannot interrupt user code), then the drop must complete.
    let release = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            gate.store(true, Ordering::SeqCst);
        })
    };
    within_guard("dropping a query with a blocked pusher", move || {
        drop(running)
    });
    release.join().expect("release thread");
    let accepted = within_guard("pusher after the drop", move || {
        pusher.join().expect("pusher")
    });
    assert!(accepted >= 1);
    assert!(
        handle.is_closed(),
        "push handle still open after the query was dropped"
    );
    assert!(matches!(handle.push(0), Err(PushError::Closed(0))));
}

// ---------------------------------------------------------------------- failures

#[test]
fn panic_in_a_map_is_reported_with_the_operators_name() {
    let mut query = Query::builder();
    query.ring_capacity(2);
    let rows = query
        .rate("rate", 1_000_000)
        .map(|row| row.value)
        .new_thread()
        .map(|x| {
            if x == 500 {
                panic!("boom at {x}");
            }
            x
        })
        .named("boom")
        .to_memory("out");
    let running = query.start().expect("start");
    expect_panic_of(finish(&running, "panicking map"), "boom", "boom at 500");
    assert!(!running.is_active());
    // Nothing at or after the panicking record got through.
    assert!(rows.rows().iter().all(|x| *x < 500));
    // The failure is sticky.
    expect_panic_of(running.await_termination(), "boom", "boom at 500");
    expect_panic_of(running.stop(), "boom", "boom at 500");
}

#[test]
fn panic_in_a_map_on_the_source_thread_closes_the_push_source() {
    let mut query = Query::builder();
    query.ring_capacity(4);
    let (handle, numbers) = query.push_source::<u64>("pushed");
    numbers
        .map(|x| {
            assert!(x != 100, "boom at {x}");
            x
        })
        .named("boom")
        .for_each(|_| {});
    let running = query.start().expect("start");
    let pusher = std::thread::spawn(move || {
        let mut i = 0u64;
        while handle.push(i).is_ok() {
            i += 1;
        }
        i
    });
    expect_panic_of(
        finish(&running, "panic with a pusher"),
        "boom",
        "boom at 100",
    );
    let accepted = within_guard("pusher after the panic", move || {
        pusher.join().expect("pusher")
    });
    assert!(accepted > 100);
}

#[test]
fn panic_in_a_sink_is_reported_with_the_sinks_name() {
    let mut query = Query::builder();
    query.ring_capacity(2);
    query
        .rate("rate", 1_000_000)
        .new_thread()
        .map(|row| row.value)
        .sink(
            "boom_sink",
            ForEachSink(|x: u64| {
                if x == 300 {
                    panic!("sink boom at {x}");
                }
            }),
        );
    let running = query.start().expect("start");
    expect_panic_of(
        finish(&running, "panicking sink"),
        "boom_sink",
        "sink boom at 300",
    );
}

#[test]
fn panic_in_a_for_each_sink_names_the_for_each_operator() {
    let mut query = Query::builder();
    query
        .from_iter("numbers", 0..1_000u64)
        .new_thread()
        .for_each(|x| assert!(x < 10, "for_each boom at {x}"));
    let running = query.start().expect("start");
    expect_panic_of(
        finish(&running, "panicking for_each"),
        "for_each",
        "for_each boom at 10",
    );
}

#[test]
fn panic_in_a_keyed_aggregate_instance_at_parallelism_2() {
    let mut query = Query::builder();
    query.ring_capacity(2);
    query
        .rate("rate", 1_000_000)
        .map(|row| row.value)
        .key_by(|x| x % 10)
        .with_parallelism(2)
        .fold(0u64, |sum, x| {
            if x == 2_000 {
                panic!("aggregate boom at {x}");
            }
            *sum += x;
        })
        .named("boom")
        .for_each(|_| {});
    let running = query.start().expect("start");
    expect_panic_of(
        finish(&running, "panicking aggregate"),
        "boom",
        "aggregate boom at 2000",
    );
    assert!(!running.is_active());
}

/// A query whose `key_by` key function panics on record 123.
fn panicking_key_function(parallelism: usize) -> rivulet::Result<()> {
    let mut query = Query::builder();
    query
        .from_iter("numbers", 0..1_000u64)
        .map(|x| x)
        .key_by(|x| {
            assert!(*x != 123, "key boom at {x}");
            x % 4
        })
        .with_parallelism(parallelism)
        .count()
        .for_each(|_| {});
    let running = query.start().expect("start");
    finish(&running, "panicking key function")
}

/// A panic in the key function of `key_by` names `key_by` when the aggregate is chained
/// on the same thread (parallelism 1)…
#[test]
fn panic_in_a_key_function_names_key_by() {
    expect_panic_of(panicking_key_function(1), "key_by", "key boom at 123");
}

/// …and also behind a keyed exchange (parallelism 2), where the key function runs in the
/// exchange's sending end.
#[test]
fn panic_in_a_key_function_behind_an_exchange_names_key_by() {
    expect_panic_of(panicking_key_function(2), "key_by", "key boom at 123");
}

/// A sink that fails (without panicking) after some records.
#[derive(Debug, Clone)]
struct FailingSink {
    seen: u64,
}

impl Sink<u64> for FailingSink {
    fn write(&mut self, _record: u64) -> Result<(), BoxError> {
        self.seen += 1;
        if self.seen == 50 {
            return Err("disk full".into());
        }
        Ok(())
    }
}

#[test]
fn sink_error_stops_the_query_with_error_sink() {
    let mut query = Query::builder();
    query
        .rate("rate", 1_000_000)
        .new_thread()
        .map(|row| row.value)
        .sink("failing", FailingSink { seen: 0 });
    let running = query.start().expect("start");
    match finish(&running, "failing sink") {
        Err(Error::Sink { operator, source }) => {
            assert_eq!(operator, "failing");
            assert_eq!(source.to_string(), "disk full");
        }
        other => panic!("expected Error::Sink, got {other:?}"),
    }
}

// ---------------------------------------------------------------------- refused configs

#[test]
fn start_refuses_a_query_without_a_sink() {
    expect_config_error(Query::builder().start(), "empty query");

    let mut query = Query::builder();
    let _ = query.from_iter("numbers", 0..10u64).map(|x| x + 1);
    expect_config_error(query.start(), "source without a sink");
}

#[test]
fn start_refuses_a_zero_ring_capacity() {
    let mut query = Query::builder();
    query.ring_capacity(0);
    query
        .from_iter("numbers", 0..10u64)
        .new_thread()
        .for_each(|_| {});
    let message = expect_config_error(query.start(), "ring_capacity(0)");
    assert!(message.contains("capacity"), "{message}");
}

#[test]
fn start_refuses_zero_parallelism() {
    let mut query = Query::builder();
    query
        .from_iter("numbers", 0..10u64)
        .key_by(|x| *x)
        .with_parallelism(0)
        .count()
        .for_each(|_| {});
    let message = expect_config_error(query.start(), "with_parallelism(0)");
    assert!(message.contains("parallelism"), "{message}");

    let mut query = Query::builder();
    query.parallelism(0);
    query.from_iter("numbers", 0..10u64).for_each(|_| {});
    expect_config_error(query.start(), "parallelism(0)");
}

#[test]
fn start_refuses_a_dangling_stream() {
    let mut query = Query::builder();
    query.from_iter("used", 0..10u64).for_each(|_| {});
    // Created, neither sunk nor dropped: held alive across start().
    let dangling = query.from_iter("dangling", 0..10u64).map(|x| x * 2);
    expect_config_error(query.start(), "dangling stream");
    drop(dangling);

    // A dangling fan-out branch too.
    let mut query = Query::builder();
    let mut branches = query.from_iter("numbers", 0..10u64).fan_out(2);
    branches.pop().expect("two branches").for_each(|_| {});
    let kept = branches.pop().expect("two branches");
    expect_config_error(query.start(), "dangling fan-out branch");
    drop(kept);
}

#[test]
fn start_refuses_a_fan_out_of_zero() {
    let mut query = Query::builder();
    let branches = query.from_iter("numbers", 0..10u64).fan_out(0);
    assert!(branches.is_empty());
    query.from_iter("other", 0..10u64).for_each(|_| {});
    let message = expect_config_error(query.start(), "fan_out(0)");
    assert!(message.contains("fan_out"), "{message}");
}

#[test]
fn start_refuses_a_zero_rate() {
    let mut query = Query::builder();
    query.rate("rate", 0).for_each(|_| {});
    expect_config_error(query.start(), "rate 0");
}

// ---------------------------------------------------------------------- progress

#[test]
fn progress_counters_match_the_known_counts() {
    const N: u64 = 3_000;
    let mut query = Query::builder();
    query.name("counted").ring_capacity(8);
    let keyed = query
        .from_iter("numbers", 0..N)
        .filter(|x| x.is_multiple_of(3))
        .named("thirds")
        .map(|x| x + 1)
        .new_thread()
        .flat_map(|x| [x, x])
        .map(|x| x * 2)
        .key_by(|x| x % 7)
        .with_parallelism(2)
        .count();
    let rows = keyed.to_memory("out");
    let running = query.start().expect("start");
    finish_ok(&running, "counted query");

    // Sequential reference.
    let thirds = (0..N).filter(|x| x.is_multiple_of(3)).count() as u64;
    let doubled = 2 * thirds;
    assert_eq!(rows.len() as u64, doubled);

    let progress = running.progress();
    assert_eq!(progress.name, "counted");
    assert!(!progress.is_active);
    assert_eq!(progress.input_rows, N);
    assert_eq!(progress.output_rows, doubled);
    assert_eq!(counts(&progress, "numbers"), (0, N));
    assert_eq!(counts(&progress, "thirds"), (N, thirds));
    assert_eq!(counts(&progress, "map"), (thirds, thirds));
    assert_eq!(counts(&progress, "flat_map"), (thirds, doubled));
    // A second `map` gets a unique name.
    assert_eq!(counts(&progress, "map#2"), (doubled, doubled));
    assert_eq!(counts(&progress, "count"), (doubled, doubled));
    assert_eq!(counts(&progress, "out"), (doubled, 0));

    let count = progress.operator("count").expect("count");
    assert_eq!(count.kind, OperatorKind::Aggregate);
    assert_eq!(count.parallelism, 2);
    assert_eq!(count.instances.len(), 2);
    assert_eq!(count.instances.iter().map(|i| i.0).sum::<u64>(), doubled);
    assert_eq!(
        progress.operator("numbers").expect("source").kind,
        OperatorKind::Source
    );
    assert_eq!(
        progress.operator("thirds").expect("filter").kind,
        OperatorKind::Transform
    );
    let sink = progress.operator("out").expect("sink");
    assert_eq!(sink.kind, OperatorKind::Sink);
    assert_eq!(sink.parallelism, 2);
    // source thread, new_thread, 2 aggregate instances (the sink is chained onto them).
    assert_eq!(progress.threads, 4);
    // The report renders every operator.
    let text = progress.to_string();
    for name in ["numbers", "thirds", "map#2", "flat_map", "count", "out"] {
        assert!(text.contains(name), "report lacks {name}:\n{text}");
    }
}

/// A sink whose `Drop` panics on an operator thread: the query still ends (the thread
/// counts out) and the panic is reported.
#[derive(Clone)]
struct PanicOnDrop;
impl rivulet::sink::Sink<u64> for PanicOnDrop {
    fn write(&mut self, _: u64) -> Result<(), rivulet::error::BoxError> {
        Ok(())
    }
}
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("rivulet:"))
        {
            panic!("drop");
        }
    }
}

#[test]
fn a_panic_in_a_drop_still_ends_the_query() {
    let mut query = Query::builder();
    query.from_iter("n", 0..10u64).sink("bad", PanicOnDrop);
    let running = query.start().unwrap();
    let result = running.await_termination_timeout(Duration::from_secs(2));
    assert!(
        result.is_some(),
        "await_termination_timeout timed out although every thread ended"
    );
    assert!(!running.is_active());
    assert!(matches!(
        result,
        Some(Err(rivulet::Error::OperatorPanicked { .. }))
    ));
}
