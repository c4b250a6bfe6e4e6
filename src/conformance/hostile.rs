//! Promises under hostile conditions: foreign keys, refused TTLs, failed
//! steps, huge timeouts, numbers JSON cannot carry.
#![allow(unused_imports)] // each scenario file uses some of the shared imports

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Chan, Harness, pair, unique};
use crate::{
    ChannelError, ChannelOptions, ListStore, Peer, RedisChannel, StoreError, list_channels,
};

fn is_wrong_type(err: &ChannelError) -> bool {
    matches!(err, ChannelError::Store(StoreError::Command { message, .. }) if message.contains("WRONGTYPE"))
}

/// A key of another type is refused by every operation, and left as it was:
/// not deleted by a take, no TTL from a send.
pub fn wrong_type_keys_are_refused_and_left_untouched<B: Harness>(backend: &B) {
    let name = unique("/wrongtype");
    let options = ChannelOptions {
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let client = RedisChannel::with_options(backend.store(), &name, Peer::Client, options).unwrap();
    let server = RedisChannel::new(backend.store(), &name, Peer::Server).unwrap();
    backend.set_string(client.send_key(), "theirs");
    backend.set_string(server.send_key(), "theirs too");

    let refused: Vec<(&str, Result<(), ChannelError>)> = vec![
        ("send_msg", client.send_msg(&1)),
        ("send_msgs", client.send_msgs([1, 2]).map(drop)),
        ("recv_msg", client.recv_msg::<Value>().map(drop)),
        ("recv_last_msg", client.recv_last_msg::<Value>().map(drop)),
        ("peek_msg", client.peek_msg::<Value>().map(drop)),
        ("rpeek_msg", client.rpeek_msg::<Value>().map(drop)),
        (
            "brecv_msg",
            backend.blocking(|| {
                client
                    .brecv_msg::<Value>(Duration::from_millis(100))
                    .map(drop)
            }),
        ),
        (
            "brecv_last_msg",
            backend.blocking(|| {
                client
                    .brecv_last_msg::<Value>(Duration::from_millis(100))
                    .map(drop)
            }),
        ),
        ("recv_msgs", client.recv_msgs::<Value>(2).map(drop)),
        (
            "brecv_msgs",
            backend.blocking(|| {
                client
                    .brecv_msgs::<Value>(2, Duration::from_millis(100))
                    .map(drop)
            }),
        ),
        ("server send_msg", server.send_msg(&1)),
    ];
    for (operation, outcome) in refused {
        let err = outcome.expect_err(operation);
        assert!(is_wrong_type(&err), "{operation}: {err}");
    }
    assert_eq!(
        backend.get_string(client.send_key()).as_deref(),
        Some("theirs")
    );
    assert_eq!(
        backend.ttl(client.send_key()),
        None,
        "a refused send set a TTL"
    );
    assert_eq!(
        backend.get_string(server.send_key()).as_deref(),
        Some("theirs too")
    );
    assert_eq!(
        list_channels(&backend.store(), "/")
            .unwrap()
            .iter()
            .filter(|n| **n == name)
            .count(),
        1
    );
}

/// A TTL Redis refuses writes nothing, on the store (a list keeps its
/// values and its TTL, a new one is not made); a channel refuses it when
/// it is built.
pub fn out_of_range_ttls_are_refused_and_nothing_is_written<B: Harness>(backend: &B) {
    let store = backend.store();
    let key = unique("/ttl-range");
    let fresh = unique("/ttl-range");
    let timed = unique("/ttl-range");
    let hour = Duration::from_secs(3600);
    store.push(&key, &[b"kept"], None).unwrap();
    store.push(&timed, &[b"kept"], Some(hour)).unwrap();
    for ttl in [
        Duration::from_millis(i64::MAX as u64),
        Duration::from_millis(u64::MAX),
        Duration::MAX,
    ] {
        for target in [&key, &fresh, &timed] {
            let err = store
                .push(target, &[b"x", b"y", b"z"], Some(ttl))
                .unwrap_err();
            assert!(matches!(err, StoreError::Command { .. }), "{ttl:?}: {err}");
        }
    }
    for kept in [&key, &timed] {
        assert_eq!(store.index(kept, 0).unwrap(), Some(b"kept".to_vec()));
        assert_eq!(store.index(kept, -1).unwrap(), Some(b"kept".to_vec()));
    }
    assert_eq!(backend.ttl(&key), None);
    let left = backend.ttl(&timed).expect("the list's own TTL, kept");
    assert!(left > hour / 2 && left <= hour, "{left:?}");
    assert_eq!(store.index(&fresh, 0).unwrap(), None);

    for ttl in [
        Duration::ZERO,
        Duration::from_micros(999),
        Duration::from_secs(101 * 365 * 24 * 60 * 60),
        Duration::MAX,
    ] {
        let options = ChannelOptions {
            ttl: Some(ttl),
            ..Default::default()
        };
        let err =
            RedisChannel::with_options(store.clone(), "/ttl", Peer::Client, options).unwrap_err();
        assert!(
            matches!(err, ChannelError::InvalidOption(_)),
            "{ttl:?}: {err}"
        );
    }
    let longest = ChannelOptions {
        ttl: Some(Duration::from_secs(100 * 365 * 24 * 60 * 60)),
        ..Default::default()
    };
    let name = unique("/ttl-longest");
    let client = RedisChannel::with_options(store.clone(), &name, Peer::Client, longest).unwrap();
    client.send_msg(&1).unwrap();
    assert!(backend.ttl(client.send_key()).unwrap() > Duration::from_secs(99 * 365 * 24 * 60 * 60));
}

/// A store whose take-last step fails, as a connection lost at that moment
/// would: a blocking receive of the newest message must not lose what it
/// waited for.
#[derive(Debug, Clone)]
struct FailingTake<S>(S);

impl<S: ListStore> ListStore for FailingTake<S> {
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        self.0.push(key, values, ttl)
    }
    fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.pop(key)
    }
    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.blocking_pop(key, timeout)
    }
    fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.index(key, index)
    }
    fn take_last(&self, _key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::Connection {
            addr: "test".into(),
            message: "lost before the take".into(),
            source: None,
        })
    }
    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.blocking_take_last(key, timeout)
    }
    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.0.scan(pattern)
    }
    fn ping(&self) -> Result<(), StoreError> {
        self.0.ping()
    }
}

/// Scenario: brecv last never drops what it waited for.
pub fn brecv_last_never_drops_what_it_waited_for<B: Harness>(backend: &B) {
    let name = unique("/last-kept");
    let client = RedisChannel::new(backend.store(), &name, Peer::Client).unwrap();
    let server = RedisChannel::new(FailingTake(backend.store()), &name, Peer::Server).unwrap();
    // One message, and then two: whatever the wait took first must not be
    // gone when the take fails.
    for sent in [&["only"][..], &["old", "new"]] {
        client.send_msgs(sent).unwrap();
        let newest = sent.last().copied();
        match backend.blocking(|| server.brecv_last_msg::<String>(Duration::from_secs(1))) {
            Ok(last) => assert_eq!(last.as_deref(), newest),
            Err(_) => assert_eq!(
                server.rpeek_msg::<String>().unwrap().as_deref(),
                newest,
                "a failed brecv_last_msg lost the newest message"
            ),
        }
        assert_eq!(
            server.recv_last_msg::<String>().ok(),
            None,
            "the take still fails"
        );
        while backend.store().pop(server.recv_key()).unwrap().is_some() {}
    }
}

/// Any `Duration` works: a huge timeout waits without limit, never panics.
pub fn huge_timeouts_wait_without_limit<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/huge"));
    let store = backend.store();
    for timeout in [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(1 << 40),
    ] {
        client.send_msgs([1, 2]).unwrap();
        assert_eq!(server.brecv_msg::<i32>(timeout).unwrap(), Some(1));
        assert_eq!(server.brecv_last_msg::<i32>(timeout).unwrap(), Some(2));
        client.send_msg(&3).unwrap();
        assert_eq!(
            store
                .blocking_pop(server.recv_key(), Some(timeout))
                .unwrap(),
            Some(b"3".to_vec())
        );
    }
    // Blocked without limit, woken by a send.
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| backend.blocking(|| server.brecv_msg::<i32>(Duration::MAX)));
        std::thread::sleep(Duration::from_millis(100));
        client.send_msg(&4).unwrap();
        assert_eq!(waiting.join().unwrap().unwrap(), Some(4));
    });
}

/// A number is received as it was sent, or refused with its bytes; NaN and
/// infinity are refused before sending.
pub fn numbers_arrive_exactly_or_not_at_all<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/numbers"));
    let store = backend.store();
    for raw in [
        "18446744073709551616",
        "18446744073709551617",
        "1180591620717411303424",
        "-9223372036854775809",
        "[1, 2, {\"id\": 18446744073709551616}]",
    ] {
        store
            .push(client.send_key(), &[raw.as_bytes()], None)
            .unwrap();
        match server.recv_msg::<Value>() {
            Err(ChannelError::Decode(err)) => assert_eq!(err.raw(), raw.as_bytes()),
            other => panic!("{raw}: expected a decode error, got {other:?}"),
        }
    }
    for exact in [
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5e300),
        json!("18446744073709551616"),
    ] {
        client.send_msg(&exact).unwrap();
        assert_eq!(server.recv_msg::<Value>().unwrap(), Some(exact));
    }
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = client.send_msg(&("v", [value])).unwrap_err();
        assert!(matches!(err, ChannelError::Encode(_)), "{err}");
        assert!(client.send_msgs([1.0, value]).is_err());
    }
    assert_eq!(
        server.recv_msg::<Value>().unwrap(),
        None,
        "nothing was sent"
    );
}
