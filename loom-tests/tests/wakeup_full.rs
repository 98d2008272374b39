//! The wake-up protocol on a full edge: back-pressure. A producer waiting for space is
//! always woken when the consumer pops and flushes.
#![cfg(loom)]

use loom::thread;
use rivulet::edge::Event;
use rivulet_loom_tests::{model, recv, Edge, Parks, Tally};

/// No lost wake-up on a full ring, and no deadlock between the two waits: on a ring of
/// capacity 1 the producer sends `Record(1)`, `Record(2)`, `End` (flushing only at the end,
/// as an operator batches its notifications; `send` flushes by itself before it waits) while
/// the consumer pops, flushing after each pop. In every interleaving all records arrive, in
/// order, `End` last, and both threads finish. The producer finds the ring full (and so
/// waits on its own signal) in some executions, and both threads park in some, which the
/// tallies check.
#[test]
fn pop_and_flush_wake_a_blocked_producer() {
    let producer_blocked = Tally::new();
    let both_parked = Tally::new();
    let (blocked, parked) = (producer_blocked.clone(), both_parked.clone());
    model("wakeup_full::capacity_1", move || {
        let Edge {
            mut tx,
            mut rx,
            producer: producer_signal,
            consumer,
            ..
        } = Edge::<u32>::new(1);
        consumer.register_current();
        let blocked = blocked.clone();
        let producer = thread::spawn(move || {
            producer_signal.register_current();
            let mut waited = false;
            for event in [Event::Record(1), Event::Record(2), Event::End] {
                // A full ring sends `send` into its slow path: flush, then wait.
                waited |= tx.queued() == 1;
                tx.send(event).unwrap();
            }
            tx.flush();
            if waited {
                blocked.hit();
            }
            (tx, waited)
        });
        let parks = Parks::new();
        let mut received = Vec::new();
        loop {
            match recv(&mut rx, &consumer, &parks, || false) {
                Some(Event::End) => break,
                Some(event) => received.push(event),
                None => panic!("the producer vanished without End"),
            }
        }
        assert_eq!(received, [Event::Record(1), Event::Record(2)]);
        let (tx, waited) = producer.join().unwrap();
        if waited && parks.count() > 0 {
            parked.hit();
        }
        drop(tx);
    });
    println!(
        "producer found the ring full in {} executions; it did and the consumer parked in {}",
        producer_blocked.get(),
        both_parked.get()
    );
    assert!(
        producer_blocked.get() > 0,
        "the producer never met a full ring"
    );
    assert!(both_parked.get() > 0, "the threads never both waited");
}
