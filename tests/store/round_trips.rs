//! Round trips per channel operation, counted on the wire by a forwarder
//! between the store and a private redis-server.

use crate::support;

use std::time::Duration;

use redisutil::{ChannelOptions, ListStore, Peer, RedisChannel, RedisStore};
use support::{RedisServer, RoundTripCounter};

#[test]
fn each_operation_costs_the_round_trips_it_promises() {
    let server = RedisServer::start();
    let counter = RoundTripCounter::start(server.port());
    let store = RedisStore::open(counter.port()).unwrap();
    let options = ChannelOptions {
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let client = RedisChannel::with_options(store.clone(), "/rt", Peer::Client, options).unwrap();
    let serving = RedisChannel::new(store.clone(), "/rt", Peer::Server).unwrap();
    store.ping().unwrap(); // opens the connection: its handshake is not counted
    counter.take();

    client.send_msg(&1).unwrap();
    assert_eq!(
        counter.take(),
        2,
        "the first send_msg with a TTL: EVALSHA answered NOSCRIPT, then EVAL"
    );
    client.send_msg(&1).unwrap();
    assert_eq!(counter.take(), 1, "send_msg with a TTL");
    client.send_msgs(0..1000).unwrap();
    assert_eq!(counter.take(), 1, "send_msgs of 1,000 with a TTL");
    for _ in 0..99 {
        client.send_msgs(0..1000).unwrap();
    }
    counter.take();
    assert_eq!(serving.recv_last_msg::<i32>().unwrap(), Some(999));
    assert_eq!(
        counter.take(),
        2,
        "the first recv_last_msg: EVALSHA answered NOSCRIPT, then EVAL"
    );
    client.send_msgs(0..100_000).unwrap();
    counter.take();
    assert_eq!(serving.recv_last_msg::<i32>().unwrap(), Some(99_999));
    assert_eq!(counter.take(), 1, "recv_last_msg over a backlog of 100,000");
    assert_eq!(serving.recv_msg::<i32>().unwrap(), None);
    assert_eq!(counter.take(), 1, "recv_msg");
    client.send_msgs([1, 2]).unwrap();
    counter.take();
    assert_eq!(
        serving
            .brecv_last_msg::<i32>(Duration::from_secs(1))
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        counter.take(),
        2,
        "brecv_last_msg: wait (BLMOVE the tail onto itself), then take the last"
    );
    assert_eq!(serving.peek_msg::<i32>().unwrap(), None);
    assert_eq!(counter.take(), 1, "peek_msg");
    client.send_msgs(0..10).unwrap();
    counter.take();
    assert_eq!(serving.recv_msgs::<i32>(4).unwrap().len(), 4);
    assert_eq!(counter.take(), 1, "recv_msgs: one LPOP with a count");
    assert_eq!(
        serving
            .brecv_msgs::<i32>(10, Duration::from_secs(1))
            .unwrap()
            .len(),
        6
    );
    assert_eq!(counter.take(), 1, "brecv_msgs: one BLMPOP");

    // Leased receive: each transition is one script, one round trip, once
    // the server knows the script (its first use adds the NOSCRIPT answer).
    let lease = Duration::from_secs(60);
    client.send_msgs(0..300).unwrap();
    let warm = serving.lease_msg::<i32>(lease).unwrap().unwrap();
    serving.ack(&warm).unwrap();
    let warm = serving.lease_msg::<i32>(lease).unwrap().unwrap();
    serving.nack(&warm, Duration::ZERO).unwrap();
    let mut warm = serving.lease_msg::<i32>(lease).unwrap().unwrap();
    serving.extend(&mut warm, lease).unwrap();
    serving.reclaim().unwrap();
    serving.requeue_dead(1).unwrap();
    serving.purge_dead().unwrap();
    serving.lease_snapshot().unwrap();
    counter.take();
    let delivery = serving.lease_msg::<i32>(lease).unwrap().unwrap();
    assert_eq!(counter.take(), 1, "lease_msg");
    serving.ack(&delivery).unwrap();
    assert_eq!(counter.take(), 1, "ack");
    let batch: Vec<_> = serving
        .lease_msgs::<i32>(100, lease)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!((batch.len(), counter.take()), (100, 1), "lease_msgs of 100");
    assert_eq!(serving.ack_all(&batch).unwrap(), 100);
    assert_eq!(counter.take(), 1, "ack_all of 100");
    let mut delivery = serving.lease_msg::<i32>(lease).unwrap().unwrap();
    counter.take();
    serving.extend(&mut delivery, lease).unwrap();
    assert_eq!(counter.take(), 1, "extend");
    serving.nack(&delivery, Duration::ZERO).unwrap();
    assert_eq!(counter.take(), 1, "nack");
    serving.reclaim().unwrap();
    assert_eq!(counter.take(), 1, "reclaim");
    serving.dead_letters(10).unwrap();
    assert_eq!(counter.take(), 1, "dead_letters");
    serving.requeue_dead(10).unwrap();
    assert_eq!(counter.take(), 1, "requeue_dead");
    serving.purge_dead().unwrap();
    assert_eq!(counter.take(), 1, "purge_dead");
    let delivery = serving
        .blease_msg::<i32>(lease, Duration::from_secs(1))
        .unwrap()
        .unwrap();
    assert_eq!(counter.take(), 1, "blease_msg with a message due");
    serving.ack(&delivery).unwrap();
    serving.recv_msgs::<i32>(1000).unwrap();
    counter.take();
    assert!(
        serving
            .blease_msg::<i32>(lease, Duration::from_millis(50))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        counter.take(),
        3,
        "blease_msg that waits: the script, BLMOVE the head onto itself, the script"
    );
    for (expected, what) in [
        (
            3,
            "the first lease that does not decode: the lease, then the dead-letter script (NOSCRIPT, EVAL)",
        ),
        (
            2,
            "a lease that does not decode: the lease, then to the dead letters",
        ),
    ] {
        store
            .push(serving.recv_key(), &[b"not json"], None)
            .unwrap();
        counter.take();
        assert!(serving.lease_msg::<i32>(lease).unwrap_err().is_decode());
        assert_eq!(counter.take(), expected, "{what}");
    }
    // A batch is a transaction (the script, then LRANGE of its bodies):
    // a server that lost the script (a restart, a failover) answers
    // NOSCRIPT inside EXEC, and the whole transaction goes again with EVAL.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut server.raw())
        .unwrap();
    client.send_msgs(1..=3).unwrap();
    counter.take();
    let batch: Vec<i32> = serving
        .lease_msgs::<i32>(3, lease)
        .unwrap()
        .into_iter()
        .map(|delivery| delivery.unwrap().into_msg())
        .collect();
    assert_eq!(
        (batch, counter.take()),
        (vec![1, 2, 3], 2),
        "a batch after SCRIPT FLUSH: NOSCRIPT, then EVAL"
    );
}
