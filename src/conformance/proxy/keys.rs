//! Keys: names with reserved, encoded and non-ASCII characters, and the
//! dot names `.` and `..`, as keys, hash names and fields.

use super::{ProxyCalls, ProxyHarness};
use crate::conformance::unique;

/// Suffixes a URL, a path or a percent-decoder could mistake for syntax.
const AWKWARD: &[&str] = &[
    "a/b",
    "/lead",
    "trail/",
    "a//b",
    "q?x=1&y=2",
    "frag#ment",
    "100%",
    "%2F",
    "%2E",
    "%",
    "%zz",
    "sp ace",
    "plus+sign",
    "tab\tnew\nline",
    "ünïcödé",
    "中文/キー",
    "emoji 𝄞",
    "./x",
    "../x",
    "x/..",
    "x/.",
    "semi;colon,comma",
    "back\\slash",
    "\"quote'",
    "<>[]{}|^`",
    "~-._",
];

/// Scenario: keys, hash names and fields holding `/`, `?`, `#`, `%`,
/// already percent-encoded text, spaces, control characters, non-ASCII
/// and dot segments inside them round-trip through every operation, each
/// as its own key: `a/b` and `a%2Fb` never meet. A key holding a value
/// refuses a hash write (any error) and keeps its value.
pub fn proxy_awkward_keys_round_trip<H: ProxyHarness>(harness: &H) {
    let client = harness.client();
    let base = unique("proxy-keys");
    let hash = format!("{base}/hash?#% ü");
    for (index, suffix) in AWKWARD.iter().enumerate() {
        let key = format!("{base}/{suffix}");
        client.set(&key, &index).unwrap();
        client.hset(&key, suffix, &index).unwrap_err(); // a string is no hash
        client.hset(&hash, suffix, &index).unwrap();
    }
    for (index, suffix) in AWKWARD.iter().enumerate() {
        let key = format!("{base}/{suffix}");
        assert_eq!(client.get::<usize>(&key).unwrap(), index, "key {key:?}");
        assert_eq!(
            client.hget::<usize>(&hash, suffix).unwrap(),
            index,
            "field {suffix:?}"
        );
    }
    let mut fields = client.hkeys(&hash).unwrap();
    fields.sort();
    let mut expected: Vec<&str> = AWKWARD.to_vec();
    expected.sort_unstable();
    assert_eq!(fields, expected, "hkeys gives the fields as written");
    let all = client.hgetall::<usize>(&hash).unwrap();
    for (index, suffix) in AWKWARD.iter().enumerate() {
        assert_eq!(all.get(*suffix), Some(&index), "hgetall {suffix:?}");
    }
    // As hash names too, and deleted one by one.
    for (index, suffix) in AWKWARD.iter().enumerate() {
        let name = format!("{base}/h/{suffix}");
        client.hset(&name, "f", &index).unwrap();
        assert_eq!(client.hkeys(&name).unwrap(), ["f"], "hash {name:?}");
        client.hdel(&name, "f").unwrap();
        assert!(client.hkeys(&name).unwrap_err().is_key_not_found());
        let key = format!("{base}/{suffix}");
        client.delete(&key).unwrap();
        assert!(client.get::<usize>(&key).unwrap_err().is_key_not_found());
    }
}

/// Scenario: the names `.` and `..` (and `...`) are keys, hash names and
/// fields like any other: written and read back distinct from each other
/// and from `%2E`, never resolved as dot segments into another path, and
/// deleted one by one.
///
/// The keys `.`, `..` and `...` themselves cannot be made unique: the
/// scenario writes a unique value to them and removes them afterwards, and
/// runs of it in one process take turns (a lock), so that two harnesses
/// on one server do not meet there. Runs in two processes on one server
/// at once can still meet.
pub fn proxy_dot_keys_round_trip<H: ProxyHarness>(harness: &H) {
    static FIXED_KEYS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = FIXED_KEYS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let client = harness.client();
    let token = unique("proxy-dots");
    let dots = [".", "..", "...", "%2E", "%2E%2E"];
    for name in dots {
        client.set(name, &format!("{token} {name}")).unwrap();
    }
    for name in dots {
        assert_eq!(
            client.get::<String>(name).unwrap(),
            format!("{token} {name}"),
            "key {name:?}"
        );
    }
    let hash = unique("proxy-dots-hash");
    for name in dots {
        client.hset(&hash, name, name).unwrap();
        client.hset(name, &token, name).unwrap_err(); // a string is no hash
    }
    for name in dots {
        assert_eq!(client.hget::<String>(&hash, name).unwrap(), name);
    }
    let mut fields = client.hkeys(&hash).unwrap();
    fields.sort();
    let mut expected = dots.to_vec();
    expected.sort_unstable();
    assert_eq!(fields, expected);
    for name in dots {
        client.delete(name).unwrap();
        client.hset(name, &token, name).unwrap();
        assert_eq!(client.hkeys(name).unwrap(), [token.as_str()], "{name:?}");
        client.hdel(name, &token).unwrap();
        assert!(client.get::<String>(name).unwrap_err().is_key_not_found());
    }
}
