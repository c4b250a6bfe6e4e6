//! Channel operations: naming, encoding, order, blocking, listing, TTLs.
#![allow(unused_imports)] // each scenario file uses some of the shared imports

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Chan, Harness, pair, ttl_pair, unique, with_a_ttl_long_enough};
use crate::{
    ChannelError, ChannelOptions, ListStore, Peer, RedisChannel, StoreError, list_channels,
};

/// Scenario: send and receive both ways.
pub fn send_and_receive_both_ways<B: Harness>(backend: &B) {
    let name = unique("/foo");
    let (client, server) = pair(backend, &name);
    client.send_msg("c2s").unwrap();
    server.send_msg("s2c").unwrap();
    assert_eq!(server.recv_msg::<String>().unwrap().as_deref(), Some("c2s"));
    assert_eq!(client.recv_msg::<String>().unwrap().as_deref(), Some("s2c"));
    assert_eq!(server.recv_msg::<String>().unwrap(), None);
    assert_eq!(client.recv_msg::<String>().unwrap(), None);
}

/// Scenario: lists are named like the python original.
pub fn lists_are_named_like_the_python_original<B: Harness>(backend: &B) {
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

/// Scenario: messages keep fifo order.
pub fn messages_keep_fifo_order<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/fifo"));
    for i in 0..100 {
        client.send_msg(&i).unwrap();
    }
    for i in 0..100 {
        assert_eq!(server.recv_msg::<i32>().unwrap(), Some(i));
    }
}

/// Scenario: null zero and empty messages are not absence.
pub fn null_zero_and_empty_messages_are_not_absence<B: Harness>(backend: &B) {
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

/// Scenario: non ascii is written unescaped.
pub fn non_ascii_is_written_unescaped<B: Harness>(backend: &B) {
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

/// Scenario: python formatted json is accepted.
pub fn python_formatted_json_is_accepted<B: Harness>(backend: &B) {
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

/// Scenario: typed messages round trip.
pub fn typed_messages_round_trip<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/typed"));
    let job = Job {
        id: 7,
        path: "/img/ä.png".into(),
        tags: vec!["a".into(), "b".into()],
    };
    client.send_msg(&job).unwrap();
    assert_eq!(server.recv_msg::<Job>().unwrap(), Some(job));
}

/// Scenario: decode error keeps raw bytes and channel goes on.
pub fn decode_error_keeps_raw_bytes_and_channel_goes_on<B: Harness>(backend: &B) {
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

/// Scenario: send msgs is one ordered batch.
pub fn send_msgs_is_one_ordered_batch<B: Harness>(backend: &B) {
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

/// Scenario: recv last takes newest and clears.
pub fn recv_last_takes_newest_and_clears<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/last"));
    assert_eq!(server.recv_last_msg::<i32>().unwrap(), None);
    client.send_msgs(0..10_000).unwrap();
    assert_eq!(server.recv_last_msg::<i32>().unwrap(), Some(9_999));
    assert_eq!(server.recv_msg::<i32>().unwrap(), None);
    assert_eq!(server.recv_last_msg::<i32>().unwrap(), None);
    client.send_msg(&json!(null)).unwrap();
    assert_eq!(server.recv_last_msg::<Value>().unwrap(), Some(Value::Null));
}

/// Scenario: brecv last waits then takes newest.
pub fn brecv_last_waits_then_takes_newest<B: Harness>(backend: &B) {
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

/// Scenario: peek and rpeek leave messages.
pub fn peek_and_rpeek_leave_messages<B: Harness>(backend: &B) {
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

/// Scenario: brecv wakes when another thread sends.
pub fn brecv_wakes_when_another_thread_sends<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/wake"));
    let got = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| server.brecv_msg::<String>(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(50));
        client.send_msg("ping").unwrap();
        receiver.join().unwrap()
    });
    assert_eq!(got.unwrap().as_deref(), Some("ping"));
}

/// Scenario: brecv times out with none.
pub fn brecv_times_out_with_none<B: Harness>(backend: &B) {
    let (_client, server) = pair(backend, &unique("/tmo"));
    let got = backend.blocking(|| server.brecv_msg::<i32>(Duration::from_millis(100)));
    assert_eq!(got.unwrap(), None);
    // Shorter than Redis's millisecond resolution: still a timeout, not forever.
    let got = backend.blocking(|| server.brecv_msg::<i32>(Duration::from_micros(1)));
    assert_eq!(got.unwrap(), None);
}

/// How long a receiver started on another thread is given to block in
/// Redis: a short wait, then, when the scenario saw the receiver late, a
/// longer one (a busy machine may stall a thread a few hundred ms before
/// its call reaches the server). A store that breaks the rule fails both.
const LET_IT_BLOCK: [Duration; 2] = [Duration::from_millis(100), Duration::from_secs(1)];

/// Bounds the receives of the scenarios below, so that a store that
/// breaks the rule fails, not hangs (on a fake's clock, which runs ten
/// times faster than real time in each blocked call, well past the longest
/// [`LET_IT_BLOCK`]s).
const BOUNDED: Duration = Duration::from_secs(60);

/// Scenario: blocked receivers are served longest waiting first.
pub fn blocked_receivers_are_served_longest_waiting_first<B: Harness>(backend: &B) {
    for (attempt, wait) in LET_IT_BLOCK.into_iter().enumerate() {
        let (client, server) = pair(backend, &unique("/order"));
        let receive = || backend.blocking(|| server.brecv_msg::<i32>(BOUNDED));
        let (first, second) = std::thread::scope(|scope| {
            let first = scope.spawn(receive);
            std::thread::sleep(wait);
            let second = scope.spawn(receive);
            std::thread::sleep(wait);
            client.send_msgs([1, 2]).unwrap();
            (first.join().unwrap(), second.join().unwrap())
        });
        let served = (first.unwrap(), second.unwrap());
        if served == (Some(1), Some(2)) {
            return;
        }
        assert!(
            attempt + 1 < LET_IT_BLOCK.len() && served == (Some(2), Some(1)),
            "served {served:?}, each receiver given {wait:?} to block"
        );
    }
}

/// Scenario: a push goes to the blocked receiver before any later pop.
pub fn a_push_goes_to_the_blocked_receiver_before_any_later_pop<B: Harness>(backend: &B) {
    for (attempt, wait) in LET_IT_BLOCK.into_iter().enumerate() {
        let (client, server) = pair(backend, &unique("/handoff"));
        let (stolen, got) = std::thread::scope(|scope| {
            let blocked = scope.spawn(|| backend.blocking(|| server.brecv_msg::<i32>(BOUNDED)));
            std::thread::sleep(wait);
            client.send_msg(&7).unwrap();
            let stolen = server.recv_msg::<i32>().unwrap();
            if stolen.is_some() {
                client.send_msg(&0).unwrap(); // release the receiver
            }
            (stolen, blocked.join().unwrap())
        });
        if stolen.is_none() {
            assert_eq!(got.unwrap(), Some(7));
            return;
        }
        assert!(
            attempt + 1 < LET_IT_BLOCK.len(),
            "the blocked receiver had it, given {wait:?} to block: stolen {stolen:?}, it got {got:?}"
        );
    }
}

/// Scenario: blocked receive does not stall other calls.
pub fn blocked_receive_does_not_stall_other_calls<B: Harness>(backend: &B) {
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

/// Scenario: list channel finds both peers sorted once.
pub fn list_channel_finds_both_peers_sorted_once<B: Harness>(backend: &B) {
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

/// Scenario: list channel matches glob characters literally.
pub fn list_channel_matches_glob_characters_literally<B: Harness>(backend: &B) {
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

/// Scenario: invalid names and prefixes are refused before sending.
pub fn invalid_names_and_prefixes_are_refused_before_sending<B: Harness>(backend: &B) {
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
        ttl: Some(Duration::ZERO),
        ..Default::default()
    };
    let err = RedisChannel::with_options(store.clone(), "/ok", Peer::Client, options).unwrap_err();
    assert!(matches!(err, ChannelError::InvalidOption(_)), "{err}");
}

/// Scenario: channel ttl expires and is refreshed by sends.
pub fn channel_ttl_expires_and_is_refreshed_by_sends<B: Harness>(backend: &B) {
    // A real store's steps take real time: a peek a TTL or more after the
    // refreshing send began says nothing (a machine too busy to tell). A
    // send that does not refresh fails the first time (its peek comes 0.6
    // TTL after it).
    let ((client, server), ttl) =
        with_a_ttl_long_enough(Duration::from_millis(1000), Duration::from_secs(8), |ttl| {
            let (client, server) = ttl_pair(backend, "/ttl", ttl);
            client.send_msg(&1).unwrap();
            server.send_msg(&"no ttl here").unwrap();
            backend.advance(ttl * 6 / 10);
            let refreshing = Instant::now();
            client.send_msg(&2).unwrap(); // refreshes the TTL
            backend.advance(ttl * 6 / 10);
            match server.peek_msg::<i32>().unwrap() {
                Some(1) => Ok((client, server)),
                head => Err((
                    refreshing.elapsed(),
                    format!("the second send refreshed the TTL: {head:?}"),
                )),
            }
        });
    let within = ttl * 3;
    assert!(
        backend.eventually(within, || server.peek_msg::<i32>().unwrap().is_none()),
        "the channel's sending list expires"
    );
    assert_eq!(
        client.recv_msg::<String>().unwrap().as_deref(),
        Some("no ttl here")
    );
    // A batch send sets the TTL too.
    client.send_msgs([3, 4]).unwrap();
    assert!(backend.eventually(within, || server.peek_msg::<i32>().unwrap().is_none()));
}
