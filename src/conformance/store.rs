//! The [`ListStore`] contract itself, below the channel.
#![allow(unused_imports)] // each scenario file uses some of the shared imports

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Chan, Harness, pair, unique};
use crate::{
    ChannelError, ChannelOptions, ListStore, Peer, RedisChannel, StoreError, list_channels,
};

/// Scenario: store list semantics.
pub fn store_list_semantics<B: Harness>(backend: &B) {
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

/// Scenario: store binary values round trip.
pub fn store_binary_values_round_trip<B: Harness>(backend: &B) {
    let store = backend.store();
    let key = unique("/bin");
    let values: [&[u8]; 4] = [b"", b"\x00\xff\xfe", "ünï".as_bytes(), &[b'x'; 70_000]];
    store.push(&key, &values, None).unwrap();
    for value in values {
        assert_eq!(store.pop(&key).unwrap().as_deref(), Some(value));
    }
}

/// Scenario: store push nothing is refused.
pub fn store_push_nothing_is_refused<B: Harness>(backend: &B) {
    let err = backend
        .store()
        .push(&unique("/none"), &[], None)
        .unwrap_err();
    assert!(matches!(err, StoreError::Command { .. }), "{err:?}");
}

/// Scenario: store ttl zero deletes.
pub fn store_ttl_zero_deletes<B: Harness>(backend: &B) {
    let store = backend.store();
    let key = unique("/ttl0");
    store.push(&key, &[b"x"], None).unwrap();
    store.push(&key, &[b"y"], Some(Duration::ZERO)).unwrap();
    assert_eq!(store.pop(&key).unwrap(), None);
}

/// Scenario: store scan matches globs like redis.
pub fn store_scan_matches_globs_like_redis<B: Harness>(backend: &B) {
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

/// Scenario: store blocking pop returns queued element.
pub fn store_blocking_pop_returns_queued_element<B: Harness>(backend: &B) {
    let store = backend.store();
    let key = unique("/bq");
    store.push(&key, &[b"1"], None).unwrap();
    let got = backend.blocking(|| store.blocking_pop(&key, Some(Duration::from_secs(5))));
    assert_eq!(got.unwrap().as_deref(), Some(&b"1"[..]));
    let got = backend.blocking(|| store.blocking_pop(&key, Some(Duration::from_millis(50))));
    assert_eq!(got.unwrap(), None);
}
