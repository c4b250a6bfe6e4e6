//! The Python original's test cases for `RedisProxyClient`, on the fakes:
//! status handling, every host down, and the exact number of attempts.

use std::time::Duration;

use redisutil::ManualClock;
use redisutil::proxy::{
    CallOptions, Error, FakeTransport, MemoryProxy, Outcome, ProxyConfig, RedisProxyClient,
};

const HOSTS: [(&str, u16); 2] = [("127.0.0.1", 2222), ("192.168.0.100", 222)];

fn client(fake: &FakeTransport) -> RedisProxyClient<&FakeTransport> {
    RedisProxyClient::new(fake, ProxyConfig::with_hosts(HOSTS)).expect("client")
}

#[test]
fn not_found_is_key_not_found_for_every_read() {
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:2222", Outcome::status(404));
    let cli = client(&fake);
    let results = [
        cli.get::<String>("k").map(drop),
        cli.hget::<String>("h", "k").map(drop),
        cli.hkeys("h").map(drop),
        cli.hvals::<String>("h").map(drop),
        cli.hgetall::<String>("h").map(drop),
    ];
    for result in results {
        match result {
            Err(Error::KeyNotFound { host, .. }) => assert_eq!(host.to_string(), "127.0.0.1:2222"),
            other => panic!("expected KeyNotFound, got {other:?}"),
        }
    }
    // A 404 is an answer: the second host is never asked.
    assert!(fake.hosts_tried().iter().all(|h| h == "127.0.0.1:2222"));
}

#[test]
fn other_statuses_are_server_response_errors() {
    for status in [201u16, 302, 403, 500] {
        let fake = FakeTransport::new();
        fake.set_default("127.0.0.1:2222", Outcome::status(status));
        let cli = client(&fake);
        let results = [
            cli.get::<String>("k").map(drop),
            cli.set("k", "v"),
            cli.hget::<String>("h", "k").map(drop),
            cli.hset("h", "k", "v"),
            cli.delete("k"),
        ];
        for result in results {
            match result {
                Err(Error::ServerResponse {
                    status: got, host, ..
                }) => {
                    assert_eq!(got.as_u16(), status);
                    assert_eq!(host.to_string(), "127.0.0.1:2222");
                }
                other => panic!("expected ServerResponse for {status}, got {other:?}"),
            }
        }
    }
}

#[test]
fn every_host_down_is_send_request() {
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:2222", Outcome::Refused);
    fake.set_default("192.168.0.100:222", Outcome::TimedOut);
    let cli = client(&fake);
    let error = cli.get::<String>("k").expect_err("nobody answers");
    let Error::SendRequest { attempts } = &error else {
        panic!("expected SendRequest, got {error:?}");
    };
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        error.to_string(),
        "failed to send request to any proxy host: \
         127.0.0.1:2222 (round 0): host unreachable, nothing sent: connection to 127.0.0.1:2222 refused; \
         192.168.0.100:222 (round 0): timed out: no answer from 192.168.0.100:222"
    );
    assert!(matches!(cli.set("k", "v"), Err(Error::SendRequest { .. })));
}

#[test]
fn two_dead_hosts_get_exactly_retry_plus_one_rounds() {
    for retry in 0..6u32 {
        // Per-call override.
        let fake = FakeTransport::new();
        let cli = client(&fake);
        let result = cli.get_with::<String>("k", &CallOptions::new().retry(retry));
        assert!(matches!(result, Err(Error::SendRequest { .. })));
        assert_eq!(fake.requests().len(), (retry as usize + 1) * 2);

        // Client default.
        let fake = FakeTransport::new();
        let config = ProxyConfig {
            retry,
            ..ProxyConfig::with_hosts(HOSTS)
        };
        let cli = RedisProxyClient::new(&fake, config).expect("client");
        assert!(cli.set("k", "v").is_err());
        assert_eq!(
            fake.hosts_tried(),
            (0..=retry)
                .flat_map(|_| ["127.0.0.1:2222", "192.168.0.100:222"])
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn unavailable_hosts_are_skipped_and_retried() {
    let fake = FakeTransport::new();
    fake.push("127.0.0.1:2222", Outcome::status(503));
    fake.push("192.168.0.100:222", Outcome::Reset);
    fake.push("127.0.0.1:2222", Outcome::json(200, "v1"));
    let cli = client(&fake);
    let value: String = cli
        .get_with("k1", &CallOptions::new().retry(1))
        .expect("second round answers");
    assert_eq!(value, "v1");
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn backoff_between_rounds_sleeps_on_the_client_clock() {
    let clock = ManualClock::default();
    let start = redisutil::Clock::now(&clock);
    let fake = FakeTransport::new();
    let config = ProxyConfig {
        round_backoff: Duration::from_millis(250),
        ..ProxyConfig::with_hosts(HOSTS)
    };
    let cli = RedisProxyClient::new(&fake, config)
        .expect("client")
        .with_clock(clock.clone());
    assert!(
        cli.get_with::<String>("k", &CallOptions::new().retry(3))
            .is_err()
    );
    let slept = redisutil::Clock::now(&clock)
        .duration_since(start)
        .expect("clock moved forward");
    assert_eq!(slept, Duration::from_millis(750));
}

#[test]
fn requests_follow_the_wire_protocol() {
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:2222", Outcome::json(200, &serde_json::json!({})));
    let cli = client(&fake);
    cli.set_with(
        "a b/ç",
        "é",
        &CallOptions::new().expire(Duration::from_millis(1500)),
    )
    .expect("set");
    let _ = cli.hget::<serde_json::Value>("h#1", "k?2");
    let _ = cli.hkeys("h");
    let _ = cli.hvals::<serde_json::Value>("h");
    let _ = cli.hgetall::<serde_json::Value>("h");
    cli.delete("k+").expect("delete");
    cli.hdel("h", "f%").expect("hdel");
    cli.hset("h", "f", &[1, 2]).expect("hset");
    let sent: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method(), r.uri()))
        .collect();
    assert_eq!(
        sent,
        [
            "PUT http://127.0.0.1:2222/redisproxy/v1/SET/a%20b%2F%C3%A7?n=3&w=2&r=2&expire=1500",
            "GET http://127.0.0.1:2222/redisproxy/v1/HGET/h%231/k%3F2?n=3&w=2&r=2",
            "GET http://127.0.0.1:2222/redisproxy/v1/HKEYS/h?n=3&w=2&r=2",
            "GET http://127.0.0.1:2222/redisproxy/v1/HVALS/h?n=3&w=2&r=2",
            "GET http://127.0.0.1:2222/redisproxy/v1/HGETALL/h?n=3&w=2&r=2",
            "DELETE http://127.0.0.1:2222/redisproxy/v1/DEL/k%2B?n=3&w=2&r=2",
            "DELETE http://127.0.0.1:2222/redisproxy/v1/HDEL/h/f%25?n=3&w=2&r=2",
            "PUT http://127.0.0.1:2222/redisproxy/v1/HSET/h/f?n=3&w=2&r=2",
        ]
    );
    let requests = fake.requests();
    let put = &requests[0];
    assert_eq!(put.headers()["host"], "127.0.0.1:2222");
    // Content-Length counts bytes: "é" in quotes is 4 bytes.
    assert_eq!(put.headers()["content-length"], "4");
    assert_eq!(put.body(), "\"é\"".as_bytes());
    assert!(requests[1].headers().get("content-length").is_none());
}

#[test]
fn invalid_arguments_are_refused_before_sending() {
    let fake = FakeTransport::new();
    let cli = client(&fake);
    assert!(matches!(
        cli.get::<String>(""),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        cli.hset("h", "", "v"),
        Err(Error::InvalidArgument(_))
    ));
    let zero = CallOptions::new().expire(Duration::from_micros(10));
    assert!(matches!(
        cli.set_with("k", "v", &zero),
        Err(Error::InvalidArgument(_))
    ));
    let on_read = CallOptions::new().expire(Duration::from_secs(1));
    assert!(matches!(
        cli.get_with::<String>("k", &on_read),
        Err(Error::InvalidArgument(_))
    ));
    assert!(fake.requests().is_empty());
}

#[test]
fn an_undecodable_body_keeps_its_bytes() {
    let fake = FakeTransport::new();
    fake.set_default(
        "127.0.0.1:2222",
        Outcome::Respond {
            status: http::StatusCode::OK,
            body: b"not json".to_vec(),
        },
    );
    match client(&fake).get::<String>("k") {
        Err(Error::Decode { body, host, .. }) => {
            assert_eq!(body, b"not json");
            assert_eq!(host.to_string(), "127.0.0.1:2222");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[test]
fn memory_proxy_serves_hashes_and_deletes() {
    let cli =
        RedisProxyClient::new(MemoryProxy::new(), ProxyConfig::with_hosts(HOSTS)).expect("client");
    cli.hset("h", "b", &2).expect("hset");
    cli.hset("h", "a", &1).expect("hset");
    assert_eq!(cli.hkeys("h").expect("hkeys"), ["a", "b"]);
    assert_eq!(cli.hvals::<u32>("h").expect("hvals"), [1, 2]);
    let all = cli.hgetall::<u32>("h").expect("hgetall");
    assert_eq!((all["a"], all["b"], all.len()), (1, 2, 2));
    cli.hdel("h", "a").expect("hdel");
    assert!(cli.hget::<u32>("h", "a").unwrap_err().is_key_not_found());
    assert!(
        matches!(cli.get::<u32>("h"), Err(Error::ServerResponse { status, .. }) if status == 409)
    );
    cli.delete("h").expect("delete");
    assert!(cli.hkeys("h").unwrap_err().is_key_not_found());
    cli.set("n", &serde_json::Value::Null).expect("set null");
    assert_eq!(cli.get::<Option<u32>>("n").expect("null is a value"), None);
}
