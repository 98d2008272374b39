//! Stop and abort (`RunControl`) racing with a producer loop and a waiting consumer.
//!
//! The threads are set up as `query::handle::start` and `Worker::run` set them up: each
//! registers its own wake signal, both signals are added to the `RunControl` (so stop and
//! abort unpark them), the edge's sender watches `RunControl::abort_flag()`, and a consumer
//! waits with `has_work` including `control.is_aborted()`.
#![cfg(loom)]

use loom::thread;
use rivulet::edge::wait::{wait_until, Backoff};
use rivulet::edge::{Event, SendError};
use rivulet::runtime::RunControl;
use rivulet::sync::Arc;
use rivulet_loom_tests::{model, model_capped, recv, Edge, Parks, Tally, PARK_AT_ONCE};

/// A control and an edge of `capacity` wired to it, as the query builder wires them.
fn wired(capacity: usize) -> (Arc<RunControl>, Edge<u32>) {
    let control = Arc::new(RunControl::new());
    let edge = Edge::with_abort(capacity, control.abort_flag());
    control.add_signal(edge.producer.clone());
    control.add_signal(edge.consumer.clone());
    (control, edge)
}

/// Graceful stop loses nothing and cannot hang: a source-like producer checks
/// `is_stop_requested` before each of up to two records, then sends `End`; the consumer
/// receives until `End` while `request_stop` (which unparks both threads, so the consumer
/// also sees spurious wake-ups) races with both. In every interleaving both threads finish
/// and the consumer receives exactly the records sent before `End`, in order. The tallies
/// show the stop landing before the first record and after the last.
///
/// Capped at 2 preemptions (2,779 executions): at 3, loom 0.7.2 reports a deadlock that
/// the C++/Rust memory model forbids. The spurious wake-ups from `request_stop` let a
/// notifier's `sleeping.swap(false)` read a flag the waiter has already cleared, and loom
/// does not order that swap's write before the waiter's later `sleeping = true`
/// (RMW atomicity, tokio-rs/loom#254), so a later notifier may read the swap's stale
/// `false` past both SeqCst fences. With loom patched to enforce RMW atomicity this model
/// passes at 3 (53,158 executions) and 4 (617,232); see `README.md`.
#[test]
fn stop_drains_everything_sent_before_end() {
    let stopped_early = Tally::new();
    let stopped_late = Tally::new();
    let (early, late) = (stopped_early.clone(), stopped_late.clone());
    model_capped("shutdown::stop", 2, move || {
        let (control, edge) = wired(1);
        let Edge {
            mut tx,
            mut rx,
            producer: producer_signal,
            consumer: consumer_signal,
            ..
        } = edge;
        let producer = {
            let control = control.clone();
            thread::spawn(move || {
                producer_signal.register_current();
                let mut sent = 0;
                for i in 1..=2 {
                    if control.is_stop_requested() {
                        break;
                    }
                    tx.send(Event::Record(i)).unwrap();
                    sent += 1;
                }
                tx.send(Event::End).unwrap();
                tx.flush();
                (tx, sent)
            })
        };
        let consumer = {
            let control = control.clone();
            thread::spawn(move || {
                consumer_signal.register_current();
                let parks = Parks::new();
                let mut received = Vec::new();
                loop {
                    match recv(&mut rx, &consumer_signal, &parks, || control.is_aborted()) {
                        Some(Event::End) => break,
                        Some(Event::Record(i)) => received.push(i),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                (rx, received)
            })
        };
        control.request_stop();
        let (tx, sent) = producer.join().unwrap();
        let (rx, received) = consumer.join().unwrap();
        assert_eq!(received, (1..=sent).collect::<Vec<_>>());
        match sent {
            0 => early.hit(),
            2 => late.hit(),
            _ => {}
        }
        drop((tx, rx));
    });
    println!(
        "stop seen before any record in {} executions, after both in {}",
        stopped_early.get(),
        stopped_late.get()
    );
    assert!(stopped_early.get() > 0 && stopped_late.get() > 0);
}

/// Abort frees a sender blocked on a full ring and a parked consumer: the producer fills a
/// ring of capacity 1 and sends again, while the consumer never reads (it waits on work
/// that never comes, `has_work` = `control.is_aborted()`). After `abort()`, in every
/// interleaving the blocked `send` returns `SendError::Aborted` with the event handed back,
/// and the consumer's wait returns.
#[test]
fn abort_unblocks_a_full_sender_and_a_parked_consumer() {
    model("shutdown::abort_blocked", || {
        let (control, edge) = wired(1);
        let Edge {
            mut tx,
            rx,
            producer: producer_signal,
            consumer: consumer_signal,
            ..
        } = edge;
        let producer = thread::spawn(move || {
            producer_signal.register_current();
            tx.send(Event::Record(1)).unwrap();
            let blocked = tx.send(Event::Record(2));
            (tx, blocked)
        });
        let consumer = {
            let control = control.clone();
            thread::spawn(move || {
                consumer_signal.register_current();
                let mut backoff = Backoff::new(PARK_AT_ONCE);
                let woke = wait_until(
                    &consumer_signal,
                    &mut backoff,
                    None,
                    || control.is_aborted(),
                    || {},
                );
                assert!(woke);
                rx
            })
        };
        control.abort();
        let (tx, blocked) = producer.join().unwrap();
        assert_eq!(blocked, Err(SendError::Aborted(Event::Record(2))));
        let rx = consumer.join().unwrap();
        drop((tx, rx));
    });
}

/// Abort racing with a live transfer cannot hang either side and never reorders: the
/// producer sends `Record(1)`, `Record(2)`, `End` on a ring of capacity 1 and stops at the
/// first `SendError::Aborted`; the consumer receives until `End` or until it sees the abort.
/// In every interleaving both threads finish, the consumer's events are a prefix of what
/// the producer sent, and an aborted `send` hands back exactly the first unsent event.
#[test]
fn abort_racing_with_a_transfer_ends_both_threads() {
    let aborted_sends = Tally::new();
    let aborted = aborted_sends.clone();
    model("shutdown::abort_transfer", move || {
        let (control, edge) = wired(1);
        let Edge {
            mut tx,
            mut rx,
            producer: producer_signal,
            consumer: consumer_signal,
            ..
        } = edge;
        let events = [Event::Record(1), Event::Record(2), Event::End];
        let producer = thread::spawn(move || {
            producer_signal.register_current();
            let mut sent = 0;
            let mut handed_back = None;
            for event in events {
                match tx.send(event) {
                    Ok(()) => sent += 1,
                    Err(SendError::Aborted(event)) => {
                        handed_back = Some(event);
                        break;
                    }
                    Err(error) => panic!("unexpected {error:?}"),
                }
            }
            tx.flush();
            (tx, sent, handed_back)
        });
        let consumer = {
            let control = control.clone();
            thread::spawn(move || {
                consumer_signal.register_current();
                let parks = Parks::new();
                let mut received = Vec::new();
                while let Some(event) =
                    recv(&mut rx, &consumer_signal, &parks, || control.is_aborted())
                {
                    let end = event == Event::End;
                    received.push(event);
                    if end {
                        break;
                    }
                }
                (rx, received)
            })
        };
        control.abort();
        let (tx, sent, handed_back) = producer.join().unwrap();
        let (rx, received) = consumer.join().unwrap();
        let events = [Event::Record(1), Event::Record(2), Event::End];
        assert!(received.len() <= sent, "{received:?} but sent {sent}");
        assert_eq!(received[..], events[..received.len()]);
        if let Some(event) = handed_back {
            assert_eq!(event, events[sent]);
            aborted.hit();
        } else {
            assert_eq!(sent, 3);
        }
        drop((tx, rx));
    });
    println!("a send was aborted in {} executions", aborted_sends.get());
    assert!(aborted_sends.get() > 0);
}
