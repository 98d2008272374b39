//! The wake-up protocol on an empty edge: a consumer waiting for an event is always woken
//! by the producer's push + flush.
#![cfg(loom)]

use loom::thread;
use rivulet::edge::Event;
use rivulet_loom_tests::{model, recv, Edge, Parks, Tally};

/// No lost wake-up on an empty ring: the consumer (which parks at its first empty check)
/// receives the record the producer pushes and flushes, in every interleaving, whether it
/// parks before the push (the flush must unpark it) or the push lands first (its re-check
/// after `sleeping = true` must see it). Both orders are counted, so the model is shown to
/// reach `park()` and to skip it.
///
/// The producer hands its sender back instead of dropping it: `EdgeSender`'s `Drop`
/// unparks the consumer unconditionally, which would hide a lost wake-up.
#[test]
fn push_and_flush_wake_a_waiting_consumer() {
    let parked = Tally::new();
    let not_parked = Tally::new();
    let (p, n) = (parked.clone(), not_parked.clone());
    model("wakeup_empty::one_record", move || {
        let Edge {
            mut tx,
            mut rx,
            consumer,
            ..
        } = Edge::<u32>::new(1);
        consumer.register_current();
        let producer = thread::spawn(move || {
            tx.send(Event::Record(1)).unwrap();
            tx.flush();
            tx
        });
        let parks = Parks::new();
        assert_eq!(
            recv(&mut rx, &consumer, &parks, || false),
            Some(Event::Record(1))
        );
        if parks.count() > 0 {
            p.hit();
        } else {
            n.hit();
        }
        // Only now may the sender drop (and unpark unconditionally).
        drop(producer.join().unwrap());
    });
    println!(
        "consumer parked in {} executions, found the record without parking in {}",
        parked.get(),
        not_parked.get()
    );
    assert!(parked.get() > 0, "the model never reached park()");
    assert!(not_parked.get() > 0, "the model never saw the push first");
}

/// The signal re-arms: the consumer waits twice in a row on a ring of capacity 2 (the
/// producer pushes and flushes two records, one at a time) and is woken both times. The
/// first wake-up's leftovers (a cleared `sleeping` flag, a pending unpark token) never make
/// the second wait miss its notification.
#[test]
fn consecutive_waits_are_each_woken() {
    let parked_twice = Tally::new();
    let seen = parked_twice.clone();
    model("wakeup_empty::two_records", move || {
        let Edge {
            mut tx,
            mut rx,
            consumer,
            ..
        } = Edge::<u32>::new(2);
        consumer.register_current();
        let producer = thread::spawn(move || {
            for i in 1..=2 {
                tx.send(Event::Record(i)).unwrap();
                tx.flush();
            }
            tx
        });
        let parks = Parks::new();
        for i in 1..=2 {
            assert_eq!(
                recv(&mut rx, &consumer, &parks, || false),
                Some(Event::Record(i))
            );
        }
        if parks.count() == 2 {
            seen.hit();
        }
        drop(producer.join().unwrap());
    });
    assert!(
        parked_twice.get() > 0,
        "the model never parked for both records"
    );
}
