//! Ordering on an edge: control events ride in-band with the records, so an epoch marker
//! never overtakes a record sent before it (the property Chandy–Lamport snapshots rest on),
//! and end-of-stream is the last event.
#![cfg(loom)]

use loom::thread;
use rivulet::edge::Event;
use rivulet::Epoch;
use rivulet_loom_tests::{model, recv_chunk, Edge, Parks};

/// The producer sends `Record(1)`, `Record(2)`, `Marker(Epoch(1))`, `Record(3)`, `End` on a
/// ring of capacity 2 (so it may block on a full ring), flushing only at the end: `Record(1)`
/// goes straight into the ring, the rest are staged and published a chunk at a time when
/// the room the sender last saw is used up, and what is left at the flush. The consumer
/// receives until `End`, whole chunks at a time (one store of the read index per chunk,
/// as `InputTask` reads). In every interleaving the consumer sees exactly that sequence:
/// the marker after records 1 and 2 and before record 3, `End` last, nothing lost or
/// repeated. loom also checks the ring's slot accesses (each slot is a loom `UnsafeCell`):
/// producer and consumer never touch the same slot at once.
#[test]
fn marker_never_overtakes_records_and_end_is_last() {
    model("edge_order::capacity_2", || scenario(usize::MAX));
}

/// The same with the consumer reading one event per chunk (a read index store per event),
/// so the producer sees slots freed one at a time.
#[test]
fn marker_never_overtakes_records_read_one_at_a_time() {
    model("edge_order::capacity_2_one_by_one", || scenario(1));
}

fn scenario(chunk: usize) {
    let Edge {
        mut tx,
        mut rx,
        producer: producer_signal,
        consumer,
        ..
    } = Edge::<u32>::new(2);
    consumer.register_current();
    let sent = [
        Event::Record(1),
        Event::Record(2),
        Event::Marker(Epoch(1)),
        Event::Record(3),
        Event::End,
    ];
    let producer = thread::spawn(move || {
        producer_signal.register_current();
        for event in sent {
            tx.send(event).unwrap();
        }
        tx.flush();
        tx
    });
    let parks = Parks::new();
    let mut received = Vec::new();
    while received.last() != Some(&Event::End) {
        assert!(
            recv_chunk(&mut rx, &consumer, &parks, || false, chunk, &mut received),
            "the producer vanished without End"
        );
    }
    let marker = received
        .iter()
        .position(|event| *event == Event::Marker(Epoch(1)))
        .expect("the marker was lost");
    let index_of = |n: u32| {
        received
            .iter()
            .position(|event| *event == Event::Record(n))
            .unwrap_or_else(|| panic!("record {n} was lost"))
    };
    assert!(index_of(1) < marker && index_of(2) < marker, "{received:?}");
    assert!(marker < index_of(3), "{received:?}");
    assert_eq!(received.len(), 5, "{received:?}");
    assert_eq!(received.last(), Some(&Event::End));
    assert_eq!(rx.try_recv(), None, "an event after End");
    drop(producer.join().unwrap());
}
