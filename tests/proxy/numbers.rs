//! Values arrive as they were stored: an integer beyond 64 bits (another
//! client may store any) is a decode error holding the body, never a float
//! with other digits; NaN and infinity are refused before anything is sent.

use http::StatusCode;
use redisutil::proxy::{Error, FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
use serde_json::{Value, json};

const HOST: (&str, u16) = ("127.0.0.1", 2222);

fn answering(body: &str) -> FakeTransport {
    let fake = FakeTransport::new();
    fake.set_default(
        "127.0.0.1:2222",
        Outcome::Respond {
            status: StatusCode::OK,
            body: body.as_bytes().to_vec(),
        },
    );
    fake
}

#[test]
fn integers_beyond_64_bits_are_decode_errors_holding_the_body() {
    for body in [
        "18446744073709551616",
        "18446744073709551617",
        "1180591620717411303424",
        "-9223372036854775809",
        "{\"a\": [1, 99999999999999999999999]}",
    ] {
        let fake = answering(body);
        let cli = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([HOST])).unwrap();
        let outcomes = [
            cli.get::<Value>("k").map(drop),
            cli.hget::<f64>("h", "k").map(drop),
        ];
        for outcome in outcomes {
            match outcome {
                Err(Error::Decode {
                    body: held,
                    message,
                    ..
                }) => {
                    assert_eq!(held, body.as_bytes());
                    // An f64 asked of an object fails on its type first.
                    assert!(
                        message.contains("64-bit range") || message.contains("invalid type"),
                        "{message}"
                    );
                }
                other => panic!("{body}: expected a decode error, got {other:?}"),
            }
        }
    }
}

/// A 128-bit integer type holds them exactly.
#[test]
fn integers_beyond_64_bits_arrive_exactly_as_128_bit_integers() {
    let fake = answering("18446744073709551616");
    let cli = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([HOST])).unwrap();
    assert_eq!(cli.get::<u128>("k").unwrap(), 1u128 << 64);
    let fake = answering("-9223372036854775809");
    let cli = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([HOST])).unwrap();
    assert_eq!(cli.get::<i128>("k").unwrap(), -(1i128 << 63) - 1);
}

#[test]
fn integers_within_64_bits_arrive_exactly() {
    for (body, value) in [
        ("18446744073709551615", json!(u64::MAX)),
        ("-9223372036854775808", json!(i64::MIN)),
        ("\"18446744073709551616\"", json!("18446744073709551616")),
        ("[0.1, 1e300]", json!([0.1, 1e300])),
    ] {
        let fake = answering(body);
        let cli = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([HOST])).unwrap();
        assert_eq!(cli.get::<Value>("k").unwrap(), value, "{body}");
    }
}

#[test]
fn nan_and_infinity_are_refused_before_sending() {
    let fake = answering("null");
    let cli = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([HOST])).unwrap();
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for outcome in [cli.set("k", &[1.0, value]), cli.hset("h", "k", &(value,))] {
            let err = outcome.unwrap_err();
            assert!(matches!(err, Error::Encode(..)), "{err}");
            assert!(err.to_string().contains("no NaN or infinity"), "{err}");
        }
    }
    assert!(fake.requests().is_empty(), "nothing was sent");
}
