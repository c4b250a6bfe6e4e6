//! What only the fake has: fault injection and a manual clock that drives
//! TTLs and blocking timeouts.

use std::thread;
use std::time::Duration;

use redisutil::{
    ChannelError, ListStore, ManualClock, MemoryStore, Peer, RedisChannel, StoreError,
};

#[test]
fn injected_faults_fail_the_next_calls_then_pass() {
    let store = MemoryStore::new();
    let chan = RedisChannel::new(store.clone(), "/f", Peer::Client).unwrap();
    chan.send_msg(&1).unwrap();
    store.fail_next(2);
    for _ in 0..2 {
        match chan.send_msg(&2) {
            Err(ChannelError::Store(StoreError::Connection { addr, .. })) => {
                assert_eq!(addr, "memory")
            }
            other => panic!("expected an injected connection error, got {other:?}"),
        }
    }
    chan.send_msg(&3).unwrap();
    assert_eq!(store.len("/f/client"), 2, "failed calls changed nothing");
}

#[test]
fn blocking_timeout_follows_the_manual_clock() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let receiver = {
        let store = store.clone();
        thread::spawn(move || store.blocking_pop("/b/server", Some(Duration::from_secs(3600))))
    };
    // An hour of manual time passes in a few real milliseconds.
    while !receiver.is_finished() {
        clock.advance(Duration::from_secs(600));
        thread::yield_now();
    }
    assert_eq!(receiver.join().unwrap().unwrap(), None);
}

#[test]
fn blocked_pop_wakes_on_push_from_another_thread() {
    let store = MemoryStore::with_clock(ManualClock::default());
    let receiver = {
        let store = store.clone();
        thread::spawn(move || store.blocking_pop("/w/server", None))
    };
    store.push("/w/server", &[b"hello"], None).unwrap();
    assert_eq!(
        receiver.join().unwrap().unwrap().as_deref(),
        Some(&b"hello"[..])
    );
}

#[test]
fn ttl_follows_the_manual_clock_and_later_pushes_keep_it() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    store
        .push("k", &[b"1"], Some(Duration::from_secs(10)))
        .unwrap();
    store.push("k", &[b"2"], None).unwrap();
    assert_eq!(store.ttl("k"), Some(Duration::from_secs(10)));
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        store.len("k"),
        2,
        "alive through its last millisecond, like Redis"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(store.len("k"), 0);
    assert!(store.is_empty());
    assert_eq!(store.ttl("k"), None);
}

/// Each fault fails the next calls the way a real store would: only a lost
/// reply lets the command take effect.
#[test]
fn every_fault_kind_fails_like_a_real_store() {
    use redisutil::StoreError;
    use redisutil::store::Fault;

    let faults = [
        Fault::Disconnect,
        Fault::Timeout,
        Fault::ReplyLost,
        Fault::Refused("READONLY You can't write against a read only replica.".into()),
    ];
    for fault in faults {
        let store = MemoryStore::new();
        store.push("k", &[b"a", b"b"], None).unwrap();
        store.fail_next_with(2, fault.clone());
        let pushed = store.push("k", &[b"c"], None);
        let popped = store.pop("k");
        let applied = fault == Fault::ReplyLost;
        for outcome in [pushed.map(drop), popped.map(drop)] {
            let err = outcome.unwrap_err();
            match &fault {
                Fault::Disconnect => assert!(matches!(err, StoreError::Connection { .. })),
                Fault::Timeout => assert!(matches!(err, StoreError::Timeout { .. })),
                Fault::ReplyLost => {
                    assert!(matches!(err, StoreError::ReplyLost { .. }));
                    assert!(err.may_have_run());
                }
                Fault::Refused(message) => {
                    assert!(matches!(err, StoreError::Command { .. }));
                    assert!(err.to_string().contains(message.as_str()), "{err}");
                }
                other => panic!("a fault this test does not know: {other:?}"),
            }
        }
        // Two calls spent the faults; what they did shows in the data.
        let expected: Vec<&[u8]> = if applied {
            vec![b"b", b"c"]
        } else {
            vec![b"a", b"b"]
        };
        for (index, element) in expected.iter().enumerate() {
            assert_eq!(
                store.index("k", index as i64).unwrap().as_deref(),
                Some(*element),
                "{fault:?}"
            );
        }
        assert_eq!(store.len("k"), 2, "{fault:?}");
    }
}

/// A receive whose answer is lost has taken its message: the at-most-once
/// loss the README describes, reproduced in a downstream test.
#[test]
fn a_lost_reply_loses_the_received_message() {
    use redisutil::store::Fault;
    use redisutil::{Peer, RedisChannel};

    let store = MemoryStore::new();
    let client = RedisChannel::new(store.clone(), "/jobs", Peer::Client).unwrap();
    let server = RedisChannel::new(store.clone(), "/jobs", Peer::Server).unwrap();
    client.send_msgs([1, 2]).unwrap();
    store.fail_next_with(1, Fault::ReplyLost);
    let err = server.recv_msg::<i32>().unwrap_err();
    assert!(
        err.may_have_run() && err.is_connection() && !err.is_timeout(),
        "{err}"
    );
    assert!(err.to_string().contains("may have been applied"), "{err}");
    store.fail_next_with(1, Fault::Disconnect);
    let err = server.recv_msg::<i32>().unwrap_err();
    assert!(err.is_connection() && !err.is_timeout(), "{err}");
    let err = client.send_msg(&f64::NAN).unwrap_err();
    assert!(err.is_invalid_input() && !err.is_connection(), "{err}");
    assert_eq!(server.recv_msg::<i32>().unwrap(), Some(2));
    store.fail_next_with(1, Fault::Timeout);
    client.send_msg(&3).unwrap_err();
    assert_eq!(
        server.recv_msg::<i32>().unwrap(),
        None,
        "a timed-out send that never ran"
    );
    // A batch whose answer is lost has taken all it popped.
    client.send_msgs([5, 6, 7]).unwrap();
    store.fail_next_with(1, Fault::ReplyLost);
    assert!(server.recv_msgs::<i32>(2).unwrap_err().may_have_run());
    assert_eq!(
        server.recv_msgs::<i32>(5).unwrap().len(),
        1,
        "only 7 is left"
    );
}

/// A single-threaded test never hangs on an auto-advancing clock: a wait
/// with a deadline jumps the clock there; a wait that finds a message does
/// not move it; TTLs see the jumps.
#[test]
fn an_auto_advancing_clock_lets_one_thread_test_timeouts() {
    let start = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
    let clock = ManualClock::auto_advancing(start);
    let store = MemoryStore::with_clock(clock.clone());
    let options = redisutil::ChannelOptions {
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let client = RedisChannel::with_options(store.clone(), "/one", Peer::Client, options).unwrap();
    let server = RedisChannel::new(store.clone(), "/one", Peer::Server).unwrap();

    client.send_msg(&1).unwrap();
    assert_eq!(
        server.brecv_msg::<i32>(Duration::from_secs(5)).unwrap(),
        Some(1)
    );
    assert_eq!(
        redisutil::Clock::now(&clock),
        start,
        "a message was there: no wait"
    );

    assert_eq!(
        server.brecv_msg::<i32>(Duration::from_secs(5)).unwrap(),
        None
    );
    assert_eq!(
        server
            .brecv_last_msg::<i32>(Duration::from_secs(10))
            .unwrap(),
        None
    );
    assert_eq!(
        redisutil::Clock::now(&clock),
        start + Duration::from_secs(15)
    );

    client.send_msg(&2).unwrap();
    // Waiting on the other list moves the clock past the TTL of this one.
    assert_eq!(
        client.brecv_msg::<i32>(Duration::from_secs(61)).unwrap(),
        None
    );
    assert_eq!(
        server.recv_msg::<i32>().unwrap(),
        None,
        "expired while the clock jumped"
    );
}

/// Leased receive on the fake, as a downstream test drives it: a lease
/// whose answer is lost is sent again under its call id and answers what
/// it leased (nothing sits unseen until its lease runs out); an ack whose
/// answer is lost was applied; a refused ack loses nothing, the message
/// comes back when its lease runs out on the manual clock.
#[test]
fn lease_faults_lose_nothing() {
    use redisutil::store::Fault;
    use redisutil::{Peer, RedisChannel};

    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let client = RedisChannel::new(store.clone(), "/jobs", Peer::Client).unwrap();
    let server = RedisChannel::new(store.clone(), "/jobs", Peer::Server).unwrap();
    let lease = Duration::from_secs(30);
    client.send_msgs([1, 2, 3]).unwrap();

    store.fail_next_with(1, Fault::ReplyLost);
    let first = server.lease_msg::<i32>(lease).unwrap().unwrap();
    assert_eq!(
        (*first.msg(), first.attempt()),
        (1, 1),
        "answered after all"
    );
    store.fail_next_with(1, Fault::ReplyLost);
    let batch = server
        .ack_and_lease_msgs::<i32, i32>([&first], 5, lease)
        .unwrap();
    assert_eq!(batch.0, 1, "the ack of the first run");
    let batch: Vec<i32> = batch.1.into_iter().map(|d| *d.unwrap().msg()).collect();
    assert_eq!(batch, [2, 3], "what the first run leased, once");
    let stats = server.lease_stats().unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 2));
    store.fail_next_with(1, Fault::ReplyLost);
    assert!(server.lease_msg::<i32>(lease).unwrap().is_none());
    clock.advance(lease);
    store.fail_next_with(1, Fault::ReplyLost);
    let again = server.lease_msgs::<i32>(5, lease).unwrap();
    assert_eq!(again.len(), 2);
    let delivery = again.into_iter().next().unwrap().unwrap();
    assert_eq!((*delivery.msg(), delivery.attempt()), (2, 2));

    store.fail_next(1);
    assert!(server.ack(&delivery).unwrap_err().is_connection());
    store.fail_next_with(1, Fault::Timeout);
    assert!(server.nack(&delivery, Duration::ZERO).is_err());
    store.fail_next_with(1, Fault::ReplyLost);
    assert!(server.ack(&delivery).unwrap_err().may_have_run());
    assert!(!server.ack(&delivery).unwrap(), "the lost ack was applied");
    assert_eq!(server.lease_stats().unwrap().in_flight, 1);
}

/// A consumer blocked in a leased receive on the fake wakes when another
/// consumer's lease runs out on the manual clock, and gets the message.
#[test]
fn a_blocked_consumer_gets_a_message_whose_lease_ran_out() {
    use redisutil::{Peer, RedisChannel};

    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let client = RedisChannel::new(store.clone(), "/work", Peer::Client).unwrap();
    let crashing = RedisChannel::new(store.clone(), "/work", Peer::Server).unwrap();
    let healthy = crashing.clone();
    client.send_msg("resize").unwrap();
    let lease = Duration::from_secs(10);
    let taken = crashing.lease_msg::<String>(lease).unwrap().unwrap();
    drop(taken); // its consumer dies without an ack
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| healthy.blease_msg::<String>(lease, Duration::ZERO));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiting.is_finished(), "the lease still holds it");
        clock.advance(lease);
        let delivery = waiting.join().unwrap().unwrap().unwrap();
        assert_eq!((delivery.msg().as_str(), delivery.attempt()), ("resize", 2));
        assert!(healthy.ack(&delivery).unwrap());
    });
}
