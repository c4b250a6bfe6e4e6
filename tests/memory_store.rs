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
