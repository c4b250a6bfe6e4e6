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
);
