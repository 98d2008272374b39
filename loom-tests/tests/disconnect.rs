//! Disconnection on an edge: when one half is dropped without an `End` (its thread failed
//! or was torn down), the peer waiting on the other half must wake and see it.
//!
//! `EdgeSender`/`EdgeReceiver` wake their peer when they drop; the peer's wait condition
//! includes `is_abandoned()`, which becomes true when the ring half inside drops. For the
//! wake-up to count, the ring half must be abandoned *before* the peer is woken, as in
//! every other use of the protocol (publish, then notify).
//!
//! The threads that drop a half are never joined: the drop unparks the peer
//! unconditionally, and loom (unlike `std`) turns an unpark that reaches a thread blocked in
//! `JoinHandle::join` into a failed internal assertion (`state.notified`). loom waits for
//! every spawned thread to finish before it ends an execution anyway.
#![cfg(loom)]

use loom::thread;
use rivulet::edge::{Event, SendError};
use rivulet_loom_tests::{model, recv, Edge, Parks};

/// A consumer waiting on an empty edge whose sender is dropped without sending anything
/// wakes and reports the disconnection (`recv` returns `None`), in every interleaving.
#[test]
fn dropping_the_sender_wakes_a_waiting_consumer() {
    model("disconnect::sender_dropped", || {
        let Edge {
            tx,
            mut rx,
            consumer,
            ..
        } = Edge::<u32>::new(1);
        consumer.register_current();
        thread::spawn(move || drop(tx));
        assert_eq!(recv(&mut rx, &consumer, &Parks::new(), || false), None);
        assert!(rx.is_disconnected());
    });
}

/// A producer blocked on a full ring (capacity 1) whose receiver is dropped wakes and gets
/// its event back as `SendError::Disconnected`, in every interleaving.
#[test]
fn dropping_the_receiver_wakes_a_blocked_sender() {
    model("disconnect::receiver_dropped", || {
        let Edge {
            mut tx,
            rx,
            producer: producer_signal,
            ..
        } = Edge::<u32>::new(1);
        producer_signal.register_current();
        tx.send(Event::Record(1)).unwrap();
        thread::spawn(move || drop(rx));
        assert_eq!(
            tx.send(Event::Record(2)),
            Err(SendError::Disconnected(Event::Record(2)))
        );
    });
}
