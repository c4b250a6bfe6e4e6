//! Keys and hash names `.` and `..` are sent with their dots escaped, so no
//! path segment the client sends is a dot segment that a server (or a proxy
//! in between) would resolve into another operation; the in-memory proxy
//! reads them back as the same keys, signed or not, in memory and over
//! real HTTP.

use redisutil::proxy::{
    Credentials, FakeTransport, MemoryProxy, Outcome, ProxyConfig, RedisProxyClient,
    SignatureVersion, Signer,
};

const DOTS: &[&str] = &[".", "..", "...", "./..", "../SET"];

fn has_dot_segment(path: &str) -> bool {
    path.split('/')
        .any(|segment| segment == "." || segment == "..")
}

#[test]
fn no_dot_segment_is_ever_sent() {
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:2222", Outcome::json(200, &["x"]));
    let client = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([("127.0.0.1", 2222)]))
        .expect("client");
    for &name in DOTS {
        for &field in DOTS {
            let _ = client.get::<serde_json::Value>(name);
            let _ = client.set(name, "v");
            let _ = client.delete(name);
            let _ = client.hget::<serde_json::Value>(name, field);
            let _ = client.hset(name, field, "v");
            let _ = client.hdel(name, field);
            let _ = client.hkeys(name);
        }
    }
    let sent = fake.requests();
    assert_eq!(sent.len(), DOTS.len() * DOTS.len() * 7);
    for request in sent {
        let path = request.uri().path();
        assert!(!has_dot_segment(path), "dot segment sent: {path}");
    }
}

fn round_trip<T: redisutil::proxy::HttpTransport>(client: &RedisProxyClient<T>) {
    for (index, &name) in DOTS.iter().enumerate() {
        client.set(name, &index).expect("set");
    }
    for (index, &name) in DOTS.iter().enumerate() {
        assert_eq!(client.get::<usize>(name).expect("get"), index, "{name:?}");
    }
    assert!(client.get::<usize>("SET").unwrap_err().is_key_not_found());
    client.delete(".").expect("delete");
    assert!(client.get::<usize>(".").unwrap_err().is_key_not_found());
    assert_eq!(client.get::<usize>("..").expect("untouched"), 1);
    for &name in DOTS {
        client.delete(name).expect("delete");
    }
    // Hash names and fields.
    for (index, &name) in DOTS.iter().enumerate() {
        client.hset(name, "..", &index).expect("hset");
    }
    for (index, &name) in DOTS.iter().enumerate() {
        assert_eq!(client.hget::<usize>(name, "..").expect("hget"), index);
        assert_eq!(client.hkeys(name).expect("hkeys"), [".."]);
    }
    client.hdel("..", "..").expect("hdel");
    assert!(
        client
            .hget::<usize>("..", "..")
            .unwrap_err()
            .is_key_not_found()
    );
    assert_eq!(client.hget::<usize>(".", "..").expect("untouched"), 0);
}

fn signed_config(hosts: ProxyConfig) -> ProxyConfig {
    ProxyConfig {
        credentials: Some(Credentials::new("ak", "sk")),
        ..hosts
    }
}

#[test]
fn dot_keys_round_trip_through_the_memory_proxy() {
    let credentials = Credentials::new("ak", "sk");
    let server = MemoryProxy::builder()
        .signer(Signer::new(credentials, SignatureVersion::default()))
        .build();
    let config = signed_config(ProxyConfig::with_hosts([("127.0.0.1", 2222)]));
    round_trip(&RedisProxyClient::new(server, config).expect("client"));
}

#[cfg(feature = "ureq")]
#[test]
fn dot_keys_round_trip_over_http() {
    let (server, _proxy) = crate::proxy_support::memory_server();
    let client = RedisProxyClient::connect(ProxyConfig {
        proxy_hosts: vec![vec![server.host()]],
        ..ProxyConfig::default()
    })
    .expect("client");
    round_trip(&client);
}
