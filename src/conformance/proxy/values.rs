//! Values: every operation's round trip with typed values, the listings of
//! a hash, missing keys, deletes, and a large value.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ProxyCalls, ProxyHarness};
use crate::conformance::unique;

/// A typed value, as an application stores one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    count: u64,
    ratio: f64,
    tags: Vec<String>,
    parent: Option<Box<Record>>,
}

fn record() -> Record {
    Record {
        name: "ünï 𝄞".into(),
        count: u64::MAX,
        ratio: 0.1,
        tags: vec![String::new(), "a/b?c#d".into()],
        parent: Some(Box::new(Record {
            name: "root".into(),
            count: 0,
            ratio: -2.5e-300,
            tags: Vec::new(),
            parent: None,
        })),
    }
}

/// JSON values of every kind, with what each one is.
fn samples() -> Vec<(&'static str, Value)> {
    vec![
        ("a string", json!("v1")),
        ("the empty string", json!("")),
        ("unicode", json!("ünïcödé ✓ 𝄞 中文")),
        ("escapes", json!("\"q\" \\ \n\t\u{0}\u{7f}")),
        ("zero", json!(0)),
        ("i64::MIN", json!(i64::MIN)),
        ("u64::MAX", json!(u64::MAX)),
        ("a fraction", json!(0.1)),
        ("a large float", json!(1e300)),
        ("true", json!(true)),
        ("false", json!(false)),
        ("null", Value::Null),
        ("an empty array", json!([])),
        ("an empty object", json!({})),
        (
            "nested JSON",
            json!({"a": [1, {"b": null, "c": [[], {}]}], "é": {"d": "x", "n": -1.5}}),
        ),
    ]
}

/// Scenario: `set` then `get` returns each kind of JSON value as it was
/// stored (strings, the empty string, unicode, numbers at the 64-bit
/// limits, floats, booleans, `null`, nested arrays and objects) and a
/// typed struct; a second `set` replaces the value; `null` is a value,
/// not an absence.
pub fn proxy_set_get_round_trips_typed_values<H: ProxyHarness>(harness: &H) {
    let client = harness.client();
    for (what, value) in samples() {
        let key = unique("proxy-set");
        client.set(&key, &value).unwrap();
        assert_eq!(client.get::<Value>(&key).unwrap(), value, "{what}");
    }
    let key = unique("proxy-set-typed");
    client.set(&key, &record()).unwrap();
    assert_eq!(client.get::<Record>(&key).unwrap(), record());
    client.set(&key, "replaced").unwrap();
    assert_eq!(client.get::<String>(&key).unwrap(), "replaced");
    let key = unique("proxy-set-null");
    client.set(&key, &()).unwrap();
    assert_eq!(client.get::<Option<u32>>(&key).unwrap(), None);
    let key = unique("proxy-set-numbers");
    client.set(&key, &(u64::MAX, i64::MIN, -0.0_f64)).unwrap();
    let (max, min, zero) = client.get::<(u64, i64, f64)>(&key).unwrap();
    assert_eq!((max, min), (u64::MAX, i64::MIN));
    assert!(zero == 0.0 && zero.is_sign_negative(), "-0.0 kept its sign");
}

/// Scenario: `hset` then `hget` returns each kind of JSON value as it
/// was stored, in one hash; fields of one hash and fields of the same
/// name in another hash are independent; a second `hset` replaces.
pub fn proxy_hset_hget_round_trips_typed_values<H: ProxyHarness>(harness: &H) {
    let client = harness.client();
    let hash = unique("proxy-hset");
    let other = unique("proxy-hset-other");
    let samples = samples();
    for (field, (_, value)) in samples.iter().enumerate() {
        client.hset(&hash, &field.to_string(), value).unwrap();
    }
    client.hset(&other, "0", "other hash").unwrap();
    for (field, (what, value)) in samples.iter().enumerate() {
        assert_eq!(
            client.hget::<Value>(&hash, &field.to_string()).unwrap(),
            *value,
            "{what}"
        );
    }
    assert_eq!(client.hget::<String>(&other, "0").unwrap(), "other hash");
    client.hset(&hash, "typed", &record()).unwrap();
    assert_eq!(client.hget::<Record>(&hash, "typed").unwrap(), record());
    client.hset(&hash, "typed", &7).unwrap();
    assert_eq!(client.hget::<u8>(&hash, "typed").unwrap(), 7);
}

/// Scenario: `hkeys`, `hvals` and `hgetall` list exactly the fields of a
/// hash and their values (compared in any order), unicode and spaced
/// names and a `null` value included, and see a field added later.
pub fn proxy_hkeys_hvals_hgetall_list_the_hash<H: ProxyHarness>(harness: &H) {
    let client = harness.client();
    let hash = unique("proxy-hlist");
    let fields: [(&str, Value); 5] = [
        ("a", json!(1)),
        ("ünï", json!("é")),
        ("sp ace", json!(null)),
        ("x/y z", json!({"n": [1, 2]})),
        ("b", json!("")),
    ];
    for (field, value) in &fields {
        client.hset(&hash, field, value).unwrap();
    }
    let mut names = client.hkeys(&hash).unwrap();
    names.sort();
    let mut expected: Vec<String> = fields.iter().map(|(f, _)| (*f).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected);

    let mut values: Vec<String> = client
        .hvals::<Value>(&hash)
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
    values.sort();
    let mut expected: Vec<String> = fields.iter().map(|(_, v)| v.to_string()).collect();
    expected.sort();
    assert_eq!(values, expected);

    let all: HashMap<String, Value> = client.hgetall(&hash).unwrap();
    let expected: HashMap<String, Value> = fields
        .iter()
        .map(|(f, v)| ((*f).to_owned(), v.clone()))
        .collect();
    assert_eq!(all, expected);

    client.hset(&hash, "late", &true).unwrap();
    assert_eq!(client.hkeys(&hash).unwrap().len(), fields.len() + 1);
    assert_eq!(client.hgetall::<Value>(&hash).unwrap()["late"], json!(true));
}

/// Scenario: a key, hash or field never written is
/// [`KeyNotFound`](crate::proxy::Error::KeyNotFound) for every read
/// (`get`, `hget`, `hkeys`, `hvals`, `hgetall`), and a missing field of an
/// existing hash too.
pub fn proxy_missing_keys_are_key_not_found<H: ProxyHarness>(harness: &H) {
    let client = harness.client();
    let key = unique("proxy-missing");
    let error = client.get::<Value>(&key).unwrap_err();
    assert!(error.is_key_not_found(), "{error:?}");
    assert!(!error.is_server_response(), "{error:?}");
    for error in [
        client.hget::<Value>(&key, "f").unwrap_err(),
        client.hkeys(&key).unwrap_err(),
        client.hvals::<Value>(&key).map(drop).unwrap_err(),
        client.hgetall::<Value>(&key).map(drop).unwrap_err(),
    ] {
        assert!(error.is_key_not_found(), "{error:?}");
    }
    let hash = unique("proxy-missing-field");
    client.hset(&hash, "present", &1).unwrap();
    let error = client.hget::<Value>(&hash, "absent").unwrap_err();
    assert!(error.is_key_not_found(), "{error:?}");
}

/// Scenario: `delete` removes a key and `hdel` one field, each leaving
/// everything else; afterwards the reads are `KeyNotFound`; deleting what
/// is absent succeeds; a key can be written again after its delete.
pub fn proxy_delete_and_hdel_remove_only_their_target<H: ProxyHarness>(harness: &H) {
    let client = harness.client();
    let (key, kept) = (unique("proxy-del"), unique("proxy-del-kept"));
    client.set(&key, "doomed").unwrap();
    client.set(&kept, "kept").unwrap();
    client.delete(&key).unwrap();
    assert!(client.get::<Value>(&key).unwrap_err().is_key_not_found());
    assert_eq!(client.get::<String>(&kept).unwrap(), "kept");
    client.delete(&key).unwrap();
    client.set(&key, "again").unwrap();
    assert_eq!(client.get::<String>(&key).unwrap(), "again");

    let hash = unique("proxy-hdel");
    client.hset(&hash, "doomed", &1).unwrap();
    client.hset(&hash, "kept", &2).unwrap();
    client.hdel(&hash, "doomed").unwrap();
    assert!(
        client
            .hget::<Value>(&hash, "doomed")
            .unwrap_err()
            .is_key_not_found()
    );
    assert_eq!(client.hget::<u32>(&hash, "kept").unwrap(), 2);
    assert_eq!(client.hkeys(&hash).unwrap(), ["kept"]);
    client.hdel(&hash, "doomed").unwrap();
    client.hdel(&unique("proxy-hdel-absent"), "f").unwrap();
    client.hdel(&hash, "kept").unwrap();
    assert!(client.hkeys(&hash).unwrap_err().is_key_not_found());
}

/// Scenario: a value of 1 MiB round-trips by `set`/`get` and by
/// `hset`/`hget`, byte for byte.
pub fn proxy_large_values_round_trip<H: ProxyHarness>(harness: &H) {
    let client = harness.client();
    let large: String = (0..1 << 20)
        .map(|index| char::from(b'a' + (index % 26) as u8))
        .collect();
    let key = unique("proxy-large");
    client.set(&key, &large).unwrap();
    assert!(
        client.get::<String>(&key).unwrap() == large,
        "1 MiB set/get"
    );
    let hash = unique("proxy-large-hash");
    client.hset(&hash, "f", &large).unwrap();
    assert!(
        client.hget::<String>(&hash, "f").unwrap() == large,
        "1 MiB hset/hget"
    );
}
