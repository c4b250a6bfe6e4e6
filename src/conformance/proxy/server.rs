//! The server's side of the contract: expiry on its clock, signatures it
//! verifies, and a value another client stored that no 64-bit number holds.

use std::time::Duration;

use http::header::{CONTENT_LENGTH, HOST};
use serde_json::Value;

use super::{ProxyCalls, ProxyHarness, Unsupported, skipped};
use crate::Clock;
use crate::conformance::unique;
use crate::proxy::{Credentials, Error, Signer};

/// The time to live the expiry scenarios write.
const TTL: Duration = Duration::from_millis(1000);

/// Scenario: a key written with `expire` is there until its time to live
/// has passed on the server's clock, then `KeyNotFound`; a key written
/// without one, and a key whose `expire` was replaced by a plain `set`,
/// stay. Skips when the harness cannot move the server's time.
pub fn proxy_expire_is_honoured_on_keys<H: ProxyHarness>(harness: &H) {
    if skipped("proxy_expire_is_honoured_on_keys", harness.time_control()) {
        return;
    }
    let client = harness.client();
    let expire = crate::proxy::CallOptions::new().expire(TTL);
    let (key, lasting) = (unique("proxy-expire"), unique("proxy-expire-lasting"));
    client.set_with(&key, "brief", &expire).unwrap();
    client.set(&lasting, "lasting").unwrap();
    assert_eq!(client.get::<String>(&key).unwrap(), "brief");
    harness.advance(TTL / 2);
    assert_eq!(
        client.get::<String>(&key).unwrap(),
        "brief",
        "half its time to live"
    );
    harness.advance(TTL / 2 + TTL / 10);
    let error = client.get::<String>(&key).unwrap_err();
    assert!(error.is_key_not_found(), "expired: {error:?}");
    assert_eq!(client.get::<String>(&lasting).unwrap(), "lasting");
    client.set_with(&key, "renewed", &expire).unwrap();
    assert_eq!(client.get::<String>(&key).unwrap(), "renewed");
}

/// Scenario: a hash field written with `expire` is there until its time
/// to live has passed on the server's clock, then `KeyNotFound` (and the
/// hash, now empty, too); a field of another hash written without one
/// stays. Skips when the harness cannot move the server's time.
pub fn proxy_expire_is_honoured_on_hash_fields<H: ProxyHarness>(harness: &H) {
    if skipped(
        "proxy_expire_is_honoured_on_hash_fields",
        harness.time_control(),
    ) {
        return;
    }
    let client = harness.client();
    let expire = crate::proxy::CallOptions::new().expire(TTL);
    let (hash, lasting) = (unique("proxy-hexpire"), unique("proxy-hexpire-lasting"));
    client.hset_with(&hash, "f", &1, &expire).unwrap();
    client.hset(&lasting, "f", &2).unwrap();
    assert_eq!(client.hget::<u32>(&hash, "f").unwrap(), 1);
    harness.advance(TTL / 2);
    assert_eq!(
        client.hget::<u32>(&hash, "f").unwrap(),
        1,
        "half its time to live"
    );
    harness.advance(TTL / 2 + TTL / 10);
    let error = client.hget::<u32>(&hash, "f").unwrap_err();
    assert!(error.is_key_not_found(), "expired: {error:?}");
    let error = client.hkeys(&hash).unwrap_err();
    assert!(error.is_key_not_found(), "no live field: {error:?}");
    assert_eq!(client.hget::<u32>(&lasting, "f").unwrap(), 2);
}

/// Scenario: requests signed with the server's credentials are accepted;
/// an unknown access key is refused with a 403; with the right access key
/// and a wrong secret key every read and write is refused with a 403
/// ([`Error::ServerResponse`]) that does not show the secret, and the
/// refused write changed nothing. Skips when the server checks no
/// signature (the harness's config has no credentials).
pub fn proxy_signatures_are_accepted_and_a_wrong_secret_refused<H: ProxyHarness>(harness: &H) {
    let config = harness.config();
    let Some(credentials) = config.credentials.clone() else {
        skipped(
            "proxy_signatures_are_accepted_and_a_wrong_secret_refused",
            Err(Unsupported::new("the server checks no signature")),
        );
        return;
    };
    let client = harness.client();
    let key = unique("proxy-signed");
    client.set(&key, "signed").unwrap();
    assert_eq!(client.get::<String>(&key).unwrap(), "signed");

    let wrong_secret = "conformance-wrong-secret-key";
    let stranger = harness.client_with(crate::proxy::ProxyConfig {
        credentials: Some(Credentials::new(
            "conformance-unknown-access-key",
            wrong_secret,
        )),
        ..config.clone()
    });
    let error = stranger.get::<String>(&key).unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(403), "{error:?}");
    let forger = harness.client_with(crate::proxy::ProxyConfig {
        credentials: Some(Credentials::new(credentials.access_key(), wrong_secret)),
        ..config
    });
    let refusals = [
        forger.get::<String>(&key).map(drop).unwrap_err(),
        forger.set(&key, "forged").unwrap_err(),
        forger.hset(&key, "f", "forged").unwrap_err(),
        forger.hkeys(&key).map(drop).unwrap_err(),
        forger.delete(&key).unwrap_err(),
    ];
    for error in refusals {
        assert!(
            matches!(error, Error::ServerResponse { status, .. } if status == 403),
            "{error:?}"
        );
        assert!(error.is_server_response() && !error.is_key_not_found());
        assert!(!error.to_string().contains(wrong_secret), "{error}");
        assert!(!format!("{error:?}").contains(wrong_secret), "{error:?}");
    }
    assert_eq!(client.get::<String>(&key).unwrap(), "signed", "unchanged");
}

/// Scenario: a value holding an integer beyond 64 bits, stored by a raw
/// `PUT` (built by hand, signed with the config's credentials, sent
/// through the client's transport to the first host of the config) as
/// another client (Python) may store it, is read back as
/// [`Error::Decode`] holding the exact body, never as a float with other
/// digits; its neighbour within 64 bits reads exactly.
pub fn proxy_integers_beyond_64_bits_are_decode_errors_holding_the_body<H: ProxyHarness>(
    harness: &H,
) {
    let client = harness.client();
    let cases: [(&[u8], Option<Value>); 3] = [
        (b"18446744073709551616", None),
        (b"{\"n\": [1, -99999999999999999999999]}", None),
        (b"18446744073709551615", Some(Value::from(u64::MAX))),
    ];
    for (body, exact) in cases {
        let key = unique("proxy-raw-number");
        let status = raw_set(harness, &key, body);
        assert_eq!(status, 200, "the raw PUT of {key} was refused");
        match (client.get::<Value>(&key), exact) {
            (Ok(value), Some(exact)) => assert_eq!(value, exact),
            (Err(Error::Decode { body: held, .. }), None) => assert_eq!(held, body),
            (other, _) => panic!("{}: unexpected {other:?}", String::from_utf8_lossy(body)),
        }
    }
}

/// Stores `body` at `key` by a `PUT` built by hand and signed with the
/// harness's credentials, through its client's transport; the status.
///
/// `key` holds only characters sent as they are, and `/`.
fn raw_set<H: ProxyHarness>(harness: &H, key: &str, body: &[u8]) -> u16 {
    let config = harness.config();
    let host = &config.proxy_hosts[0][0];
    let nwr = config.nwr;
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b))
    );
    let path = key.replace('/', "%2F");
    let scheme = if config.https { "https" } else { "http" };
    let mut request = http::Request::put(format!(
        "{scheme}://{host}/redisproxy/v1/SET/{path}?n={}&w={}&r={}",
        nwr.n, nwr.w, nwr.r
    ))
    .header(HOST, host.to_string())
    .header(CONTENT_LENGTH, body.len())
    .body(body.to_vec())
    .expect("a valid request");
    if let Some(credentials) = config.credentials {
        Signer::new(credentials, config.signature)
            .presign(&mut request, harness.client_clock().now())
            .expect("signed");
    }
    let response = harness
        .client()
        .send_raw(request)
        .expect("the server answered");
    response.status().as_u16()
}
