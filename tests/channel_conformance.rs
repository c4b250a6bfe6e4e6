//! The channel conformance suite: every scenario runs on the in-memory fake
//! (`memory::*`), on a private redis-server (`redis::*`) and, with the
//! `cluster` feature, on a private 3-master Redis Cluster (`cluster::*`).

mod support;

use std::time::Duration;

use redisutil::{
    ChannelError, ChannelOptions, ListStore, Peer, RedisChannel, StoreError, list_channels,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::{Backend, unique};

type Chan<B> = RedisChannel<<B as Backend>::Store>;

fn pair<B: Backend>(backend: &B, name: &str) -> (Chan<B>, Chan<B>) {
    let client = RedisChannel::new(backend.store(), name, Peer::Client).unwrap();
    let server = RedisChannel::new(backend.store(), name, Peer::Server).unwrap();
    (client, server)
}

// ---- the store contract ------------------------------------------------

fn store_list_semantics<B: Backend>(backend: &B) {
    let store = backend.store();
    let key = unique("/store");
    assert_eq!(store.push(&key, &[b"a", b"b"], None).unwrap(), 2);
    assert_eq!(store.push(&key, &[b"c"], None).unwrap(), 3);
    assert_eq!(store.index(&key, 0).unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(store.index(&key, -1).unwrap().as_deref(), Some(&b"c"[..]));
    assert_eq!(store.index(&key, 1).unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(store.index(&key, -3).unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(store.index(&key, 3).unwrap(), None);
    assert_eq!(store.index(&key, -4).unwrap(), None);
    assert_eq!(store.pop(&key).unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(store.take_last(&key).unwrap().as_deref(), Some(&b"c"[..]));
    assert_eq!(store.pop(&key).unwrap(), None, "take_last deletes the list");
    assert_eq!(store.take_last(&key).unwrap(), None);
    assert_eq!(store.index(&key, 0).unwrap(), None);
    assert!(
        store.scan(&key).unwrap().is_empty(),
        "an emptied list is gone"
    );
    store.ping().unwrap();
}

fn store_binary_values_round_trip<B: Backend>(backend: &B) {
    let store = backend.store();
    let key = unique("/bin");
    let values: [&[u8]; 4] = [b"", b"\x00\xff\xfe", "ünï".as_bytes(), &[b'x'; 70_000]];
    store.push(&key, &values, None).unwrap();
    for value in values {
        assert_eq!(store.pop(&key).unwrap().as_deref(), Some(value));
    }
}

fn store_push_nothing_is_refused<B: Backend>(backend: &B) {
    let err = backend
        .store()
        .push(&unique("/none"), &[], None)
        .unwrap_err();
    assert!(matches!(err, StoreError::Command { .. }), "{err:?}");
}

fn store_ttl_zero_deletes<B: Backend>(backend: &B) {
    let store = backend.store();
    let key = unique("/ttl0");
    store.push(&key, &[b"x"], None).unwrap();
    store.push(&key, &[b"y"], Some(Duration::ZERO)).unwrap();
    assert_eq!(store.pop(&key).unwrap(), None);
}

fn store_scan_matches_globs_like_redis<B: Backend>(backend: &B) {
    let store = backend.store();
    let base = unique("/scan");
    for suffix in ["a1", "a2", "b1", "[x]", "*", "a?"] {
        store
            .push(&format!("{base}/{suffix}"), &[b"v"], None)
            .unwrap();
    }
    let scan = |pattern: &str| {
        let mut keys = store.scan(&format!("{base}/{pattern}")).unwrap();
        keys.sort();
        keys.into_iter()
            .map(|k| k[base.len() + 1..].to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(scan("a*"), ["a1", "a2", "a?"]);
    assert_eq!(scan("?1"), ["a1", "b1"]);
    assert_eq!(scan("[ab]2"), ["a2"]);
    assert_eq!(scan("[^a]1"), ["b1"]);
    assert_eq!(scan("\\[x\\]"), ["[x]"]);
    assert_eq!(scan("\\*"), ["*"]);
    assert_eq!(scan("a\\?"), ["a?"]);
    assert_eq!(scan("*").len(), 6);
}

fn store_blocking_pop_returns_queued_element<B: Backend>(backend: &B) {
    let store = backend.store();
    let key = unique("/bq");
    store.push(&key, &[b"1"], None).unwrap();
    let got = backend.blocking(|| store.blocking_pop(&key, Some(Duration::from_secs(5))));
    assert_eq!(got.unwrap().as_deref(), Some(&b"1"[..]));
    let got = backend.blocking(|| store.blocking_pop(&key, Some(Duration::from_millis(50))));
    assert_eq!(got.unwrap(), None);
}

// ---- channel operations ------------------------------------------------

fn send_and_receive_both_ways<B: Backend>(backend: &B) {
    let name = unique("/foo");
    let (client, server) = pair(backend, &name);
    client.send_msg("c2s").unwrap();
    server.send_msg("s2c").unwrap();
    assert_eq!(server.recv_msg::<String>().unwrap().as_deref(), Some("c2s"));
    assert_eq!(client.recv_msg::<String>().unwrap().as_deref(), Some("s2c"));
    assert_eq!(server.recv_msg::<String>().unwrap(), None);
    assert_eq!(client.recv_msg::<String>().unwrap(), None);
}

fn lists_are_named_like_the_python_original<B: Backend>(backend: &B) {
    let name = unique("/wire");
    let (client, server) = pair(backend, &name);
    client.send_msg(&1).unwrap();
    server.send_msg(&2).unwrap();
    let store = backend.store();
    assert_eq!(
        store
            .index(&format!("{name}/client"), 0)
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        store
            .index(&format!("{name}/server"), 0)
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(client.send_key(), format!("{name}/client"));
    assert_eq!(client.recv_key(), format!("{name}/server"));
}

fn messages_keep_fifo_order<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/fifo"));
    for i in 0..100 {
        client.send_msg(&i).unwrap();
    }
    for i in 0..100 {
        assert_eq!(server.recv_msg::<i32>().unwrap(), Some(i));
    }
}

fn null_zero_and_empty_messages_are_not_absence<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/falsy"));
    client.send_msg(&Value::Null).unwrap();
    client.send_msg(&0).unwrap();
    client.send_msg("").unwrap();
    client.send_msg(&false).unwrap();
    client.send_msg(&json!([])).unwrap();
    assert_eq!(server.recv_msg::<Value>().unwrap(), Some(Value::Null));
    assert_eq!(server.recv_msg::<Value>().unwrap(), Some(json!(0)));
    assert_eq!(server.recv_msg::<Value>().unwrap(), Some(json!("")));
    assert_eq!(server.recv_msg::<Value>().unwrap(), Some(json!(false)));
    assert_eq!(server.recv_msg::<Value>().unwrap(), Some(json!([])));
    assert_eq!(server.recv_msg::<Value>().unwrap(), None);
}

fn non_ascii_is_written_unescaped<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/utf8"));
    client.send_msg("中文 ünï 🚀").unwrap();
    let raw = backend
        .store()
        .index(client.send_key(), 0)
        .unwrap()
        .unwrap();
    assert_eq!(raw, "\"中文 ünï 🚀\"".as_bytes());
    assert_eq!(
        server.recv_msg::<String>().unwrap().as_deref(),
        Some("中文 ünï 🚀")
    );
}

fn python_formatted_json_is_accepted<B: Backend>(backend: &B) {
    let (_client, server) = pair(backend, &unique("/py"));
    // What Python's json.dumps writes: ", " and ": " separators, \u escapes.
    let python = br#"{"a": 1, "b": [1, 2.5, null], "c": "\u4e2d", "d": true}"#;
    backend
        .store()
        .push(server.recv_key(), &[python], None)
        .unwrap();
    let value: Value = server.recv_msg().unwrap().unwrap();
    assert_eq!(
        value,
        json!({"a": 1, "b": [1, 2.5, null], "c": "中", "d": true})
    );
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u64,
    path: String,
    tags: Vec<String>,
}

fn typed_messages_round_trip<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/typed"));
    let job = Job {
        id: 7,
        path: "/img/ä.png".into(),
        tags: vec!["a".into(), "b".into()],
    };
    client.send_msg(&job).unwrap();
    assert_eq!(server.recv_msg::<Job>().unwrap(), Some(job));
}

fn decode_error_keeps_raw_bytes_and_channel_goes_on<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/bad"));
    let store = backend.store();
    store
        .push(client.send_key(), &[b"\xff\xfe not json"], None)
        .unwrap();
    client.send_msg(&json!({"id": 1})).unwrap();
    client
        .send_msg(&json!({"id": "not a number", "path": 3}))
        .unwrap();
    match server.recv_msg::<Value>() {
        Err(ChannelError::Decode(err)) => {
            assert_eq!(err.raw(), b"\xff\xfe not json");
            assert_eq!(err.key(), client.send_key());
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(server.recv_msg::<Value>().unwrap(), Some(json!({"id": 1})));
    match server.recv_msg::<Job>() {
        Err(ChannelError::Decode(err)) => {
            let back: Value = serde_json::from_slice(&err.into_raw()).unwrap();
            assert_eq!(back, json!({"id": "not a number", "path": 3}));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    client.send_msg(&2).unwrap();
    assert_eq!(server.recv_msg::<i32>().unwrap(), Some(2));
}

fn send_msgs_is_one_ordered_batch<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/batch"));
    assert_eq!(client.send_msgs(Vec::<i32>::new()).unwrap(), 0);
    assert_eq!(
        server.peek_msg::<i32>().unwrap(),
        None,
        "an empty batch writes nothing"
    );
    assert_eq!(
        client
            .send_msgs((0..1000).map(|i| json!({ "i": i })))
            .unwrap(),
        1000
    );
    for i in 0..1000 {
        assert_eq!(server.recv_msg::<Value>().unwrap(), Some(json!({ "i": i })));
    }
    assert_eq!(server.recv_msg::<Value>().unwrap(), None);
}

fn recv_last_takes_newest_and_clears<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/last"));
    assert_eq!(server.recv_last_msg::<i32>().unwrap(), None);
    client.send_msgs(0..10_000).unwrap();
    assert_eq!(server.recv_last_msg::<i32>().unwrap(), Some(9_999));
    assert_eq!(server.recv_msg::<i32>().unwrap(), None);
    assert_eq!(server.recv_last_msg::<i32>().unwrap(), None);
    client.send_msg(&json!(null)).unwrap();
    assert_eq!(server.recv_last_msg::<Value>().unwrap(), Some(Value::Null));
}

fn brecv_last_waits_then_takes_newest<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/blast"));
    let got = backend.blocking(|| server.brecv_last_msg::<i32>(Duration::from_millis(50)));
    assert_eq!(got.unwrap(), None);
    client.send_msgs([1, 2, 3]).unwrap();
    let got = backend.blocking(|| server.brecv_last_msg::<i32>(Duration::from_secs(5)));
    assert_eq!(got.unwrap(), Some(3));
    assert_eq!(server.recv_msg::<i32>().unwrap(), None);
    client.send_msg(&4).unwrap();
    let got = backend.blocking(|| server.brecv_last_msg::<i32>(Duration::ZERO));
    assert_eq!(
        got.unwrap(),
        Some(4),
        "a zero timeout blocks until a message"
    );
}

fn peek_and_rpeek_leave_messages<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/peek"));
    assert_eq!(server.peek_msg::<i32>().unwrap(), None);
    assert_eq!(server.rpeek_msg::<i32>().unwrap(), None);
    client.send_msgs([1, 2, 3]).unwrap();
    assert_eq!(server.peek_msg::<i32>().unwrap(), Some(1));
    assert_eq!(server.rpeek_msg::<i32>().unwrap(), Some(3));
    assert_eq!(server.peek_msg::<i32>().unwrap(), Some(1));
    assert_eq!(
        client.peek_msg::<i32>().unwrap(),
        None,
        "peek reads the peer's list"
    );
    assert_eq!(server.recv_msg::<i32>().unwrap(), Some(1));
}

fn brecv_wakes_when_another_thread_sends<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/wake"));
    let got = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| server.brecv_msg::<String>(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(50));
        client.send_msg("ping").unwrap();
        receiver.join().unwrap()
    });
    assert_eq!(got.unwrap().as_deref(), Some("ping"));
}

fn brecv_times_out_with_none<B: Backend>(backend: &B) {
    let (_client, server) = pair(backend, &unique("/tmo"));
    let got = backend.blocking(|| server.brecv_msg::<i32>(Duration::from_millis(100)));
    assert_eq!(got.unwrap(), None);
    // Shorter than Redis's millisecond resolution: still a timeout, not forever.
    let got = backend.blocking(|| server.brecv_msg::<i32>(Duration::from_micros(1)));
    assert_eq!(got.unwrap(), None);
}

/// Gives a receiver started on another thread time to block in Redis.
fn let_it_block() {
    std::thread::sleep(Duration::from_millis(100));
}

fn blocked_receivers_are_served_longest_waiting_first<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/order"));
    // Bounded waits, so that a store that breaks the rule fails, not hangs.
    let receive = || backend.blocking(|| server.brecv_msg::<i32>(Duration::from_secs(30)));
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(receive);
        let_it_block();
        let second = scope.spawn(receive);
        let_it_block();
        client.send_msgs([1, 2]).unwrap();
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!((first.unwrap(), second.unwrap()), (Some(1), Some(2)));
}

fn a_push_goes_to_the_blocked_receiver_before_any_later_pop<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/handoff"));
    let (stolen, got) = std::thread::scope(|scope| {
        let blocked =
            scope.spawn(|| backend.blocking(|| server.brecv_msg::<i32>(Duration::from_secs(30))));
        let_it_block();
        client.send_msg(&7).unwrap();
        let stolen = server.recv_msg::<i32>().unwrap();
        if stolen.is_some() {
            client.send_msg(&0).unwrap(); // release the receiver
        }
        (stolen, blocked.join().unwrap())
    });
    assert_eq!(stolen, None, "the blocked receiver had it");
    assert_eq!(got.unwrap(), Some(7));
}

fn blocked_receive_does_not_stall_other_calls<B: Backend>(backend: &B) {
    let (client, server) = pair(backend, &unique("/stall"));
    let (other_client, other_server) = pair(backend, &unique("/other"));
    std::thread::scope(|scope| {
        let blocked = scope.spawn(|| server.brecv_msg::<i32>(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(50));
        for i in 0..20 {
            other_client.send_msg(&i).unwrap();
            assert_eq!(other_server.recv_msg::<i32>().unwrap(), Some(i));
        }
        assert!(!blocked.is_finished());
        client.send_msg(&42).unwrap();
        assert_eq!(blocked.join().unwrap().unwrap(), Some(42));
    });
}

fn list_channel_finds_both_peers_sorted_once<B: Backend>(backend: &B) {
    let root = unique("/list");
    let (a_client, a_server) = pair(backend, &format!("{root}/b"));
    let (b_client, _) = pair(backend, &format!("{root}/a"));
    let (_, c_server) = pair(backend, &format!("{root}/c/d"));
    a_client.send_msg(&1).unwrap();
    a_server.send_msg(&1).unwrap();
    b_client.send_msg(&1).unwrap();
    c_server.send_msg(&1).unwrap();
    let store = backend.store();
    store
        .push(&format!("{root}/x"), &[b"not a channel"], None)
        .unwrap();
    store
        .push(&format!("{root}/x/clients"), &[b"not a channel"], None)
        .unwrap();
    let listed = list_channels(&store, &format!("{root}/")).unwrap();
    assert_eq!(
        listed,
        [
            format!("{root}/a"),
            format!("{root}/b"),
            format!("{root}/c/d")
        ]
    );
    assert_eq!(
        a_client.list_channel(&format!("{root}/c/")).unwrap(),
        [format!("{root}/c/d")]
    );
    assert!(
        a_client
            .list_channel(&format!("{root}/zzz/"))
            .unwrap()
            .is_empty()
    );
    assert!(
        a_client
            .list_channel("/")
            .unwrap()
            .contains(&format!("{root}/c/d"))
    );
    // A channel disappears once both its lists are drained.
    a_server.recv_msg::<i32>().unwrap();
    a_client.recv_msg::<i32>().unwrap();
    let listed = list_channels(&store, &format!("{root}/")).unwrap();
    assert_eq!(listed, [format!("{root}/a"), format!("{root}/c/d")]);
}

fn list_channel_matches_glob_characters_literally<B: Backend>(backend: &B) {
    let root = unique("/glob");
    let names = ["/a*", "/a?", "/[ab]", "/a b", "/ä中", "/back\\slash", "/aa"];
    for name in names {
        let (client, _) = pair(backend, &format!("{root}{name}"));
        client.send_msg(&1).unwrap();
    }
    for name in names {
        let prefix = format!("{root}{name}/");
        let (client, _) = pair(backend, &format!("{root}{name}/inner"));
        client.send_msg(&1).unwrap();
        assert_eq!(
            list_channels(&backend.store(), &prefix).unwrap(),
            [format!("{root}{name}/inner")],
            "prefix {prefix:?}"
        );
    }
    assert_eq!(
        list_channels(&backend.store(), &format!("{root}/"))
            .unwrap()
            .len(),
        14
    );
}

fn invalid_names_and_prefixes_are_refused_before_sending<B: Backend>(backend: &B) {
    let store = backend.store();
    for bad in ["", "/", "foo", "/foo/", "/a//b", "//a"] {
        let err = RedisChannel::new(store.clone(), bad, Peer::Client).unwrap_err();
        assert!(
            matches!(err, ChannelError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
    }
    let err = RedisChannel::new(store.clone(), ["a", ""], Peer::Client).unwrap_err();
    assert!(matches!(err, ChannelError::InvalidName { .. }));
    let segments = RedisChannel::new(
        store.clone(),
        vec!["a".to_string(), "b".into()],
        Peer::Client,
    );
    assert_eq!(segments.unwrap().name().as_str(), "/a/b");
    for bad in ["", "a/", "/a", "/a*", "/a/*", "/a//", "//"] {
        let err = list_channels(&store, bad).unwrap_err();
        assert!(
            matches!(err, ChannelError::InvalidPrefix { .. }),
            "{bad:?}: {err}"
        );
    }
    let options = ChannelOptions {
        timeout: Some(Duration::ZERO),
    };
    let err = RedisChannel::with_options(store.clone(), "/ok", Peer::Client, options).unwrap_err();
    assert!(matches!(err, ChannelError::InvalidOption(_)), "{err}");
}

fn channel_ttl_expires_and_is_refreshed_by_sends<B: Backend>(backend: &B) {
    let ttl = Duration::from_millis(1000);
    let name = unique("/ttl");
    let options = ChannelOptions { timeout: Some(ttl) };
    let client = RedisChannel::with_options(backend.store(), &name, Peer::Client, options).unwrap();
    let server = RedisChannel::new(backend.store(), &name, Peer::Server).unwrap();
    client.send_msg(&1).unwrap();
    server.send_msg(&"no ttl here").unwrap();
    backend.advance(Duration::from_millis(600));
    client.send_msg(&2).unwrap(); // refreshes the TTL
    backend.advance(Duration::from_millis(600));
    assert_eq!(
        server.peek_msg::<i32>().unwrap(),
        Some(1),
        "the second send refreshed the TTL"
    );
    assert!(
        backend.eventually(Duration::from_secs(3), || server
            .peek_msg::<i32>()
            .unwrap()
            .is_none()),
        "the channel's sending list expires"
    );
    assert_eq!(
        client.recv_msg::<String>().unwrap().as_deref(),
        Some("no ttl here")
    );
    // A batch send sets the TTL too.
    client.send_msgs([3, 4]).unwrap();
    assert!(backend.eventually(Duration::from_secs(3), || {
        server.peek_msg::<i32>().unwrap().is_none()
    }));
}

// ---- promises under hostile conditions ---------------------------------

fn is_wrong_type(err: &ChannelError) -> bool {
    matches!(err, ChannelError::Store(StoreError::Command { message, .. }) if message.contains("WRONGTYPE"))
}

/// A key of another type is refused by every operation, and left as it was:
/// not deleted by a take, no TTL from a send.
fn wrong_type_keys_are_refused_and_left_untouched<B: Backend>(backend: &B) {
    let name = unique("/wrongtype");
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(60)),
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

/// A TTL Redis refuses writes nothing, on the store; a channel refuses it
/// when it is built.
fn out_of_range_ttls_are_refused_and_nothing_is_written<B: Backend>(backend: &B) {
    let store = backend.store();
    let key = unique("/ttl-range");
    let fresh = unique("/ttl-range");
    store.push(&key, &[b"kept"], None).unwrap();
    for ttl in [
        Duration::from_millis(i64::MAX as u64),
        Duration::from_millis(u64::MAX),
        Duration::MAX,
    ] {
        for target in [&key, &fresh] {
            let err = store.push(target, &[b"x"], Some(ttl)).unwrap_err();
            assert!(matches!(err, StoreError::Command { .. }), "{ttl:?}: {err}");
        }
    }
    assert_eq!(store.index(&key, -1).unwrap(), Some(b"kept".to_vec()));
    assert_eq!(backend.ttl(&key), None);
    assert_eq!(store.index(&fresh, 0).unwrap(), None);

    for ttl in [
        Duration::ZERO,
        Duration::from_micros(999),
        Duration::from_secs(101 * 365 * 24 * 60 * 60),
        Duration::MAX,
    ] {
        let options = ChannelOptions { timeout: Some(ttl) };
        let err =
            RedisChannel::with_options(store.clone(), "/ttl", Peer::Client, options).unwrap_err();
        assert!(
            matches!(err, ChannelError::InvalidOption(_)),
            "{ttl:?}: {err}"
        );
    }
    let longest = ChannelOptions {
        timeout: Some(Duration::from_secs(100 * 365 * 24 * 60 * 60)),
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

fn brecv_last_never_drops_what_it_waited_for<B: Backend>(backend: &B) {
    let name = unique("/last-kept");
    let client = RedisChannel::new(backend.store(), &name, Peer::Client).unwrap();
    let server = RedisChannel::new(FailingTake(backend.store()), &name, Peer::Server).unwrap();
    client.send_msgs(["old", "new"]).unwrap();
    match backend.blocking(|| server.brecv_last_msg::<String>(Duration::from_secs(1))) {
        Ok(last) => assert_eq!(last.as_deref(), Some("new")),
        Err(_) => assert_eq!(
            server.rpeek_msg::<String>().unwrap().as_deref(),
            Some("new"),
            "a failed brecv_last_msg lost the newest message"
        ),
    }
}

/// Any `Duration` works: a huge timeout waits without limit, never panics.
fn huge_timeouts_wait_without_limit<B: Backend>(backend: &B) {
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
fn numbers_arrive_exactly_or_not_at_all<B: Backend>(backend: &B) {
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

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $scenario() { super::$scenario(&super::support::MemoryBackend::new()); } )*
        }
        mod redis {
            $( #[test] fn $scenario() { super::$scenario(&super::support::RedisBackend::new()); } )*
        }
        #[cfg(feature = "cluster")]
        mod cluster {
            $( #[test] fn $scenario() { super::$scenario(&super::support::ClusterBackend::new()); } )*
        }
    };
}

conformance!(
    store_list_semantics,
    store_binary_values_round_trip,
    store_push_nothing_is_refused,
    store_ttl_zero_deletes,
    store_scan_matches_globs_like_redis,
    store_blocking_pop_returns_queued_element,
    send_and_receive_both_ways,
    lists_are_named_like_the_python_original,
    messages_keep_fifo_order,
    null_zero_and_empty_messages_are_not_absence,
    non_ascii_is_written_unescaped,
    python_formatted_json_is_accepted,
    typed_messages_round_trip,
    decode_error_keeps_raw_bytes_and_channel_goes_on,
    send_msgs_is_one_ordered_batch,
    recv_last_takes_newest_and_clears,
    brecv_last_waits_then_takes_newest,
    peek_and_rpeek_leave_messages,
    brecv_wakes_when_another_thread_sends,
    brecv_times_out_with_none,
    blocked_receive_does_not_stall_other_calls,
    blocked_receivers_are_served_longest_waiting_first,
    a_push_goes_to_the_blocked_receiver_before_any_later_pop,
    list_channel_finds_both_peers_sorted_once,
    list_channel_matches_glob_characters_literally,
    invalid_names_and_prefixes_are_refused_before_sending,
    channel_ttl_expires_and_is_refreshed_by_sends,
    wrong_type_keys_are_refused_and_left_untouched,
    out_of_range_ttls_are_refused_and_nothing_is_written,
    brecv_last_never_drops_what_it_waited_for,
    huge_timeouts_wait_without_limit,
    numbers_arrive_exactly_or_not_at_all,
);
