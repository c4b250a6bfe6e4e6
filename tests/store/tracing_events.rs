//! The `tracing` events (feature `tracing`), captured by a subscriber of
//! the test's own: connects, reconnects, proxy attempts, backup-cluster
//! writes and decode failures are reported, and no password, secret key,
//! signature, presigned URL or message contents ever appear in them.

use crate::proxy_support;
use crate::support;

use std::fmt;
use std::sync::{Arc, Mutex};

use proxy_support::{closed_port, memory_server};
use redisutil::proxy::{
    Credentials, MemoryProxy, ProxyConfig, ProxyHost, RedisProxyClient, SignatureVersion, Signer,
    UreqConfig,
};
use redisutil::{ListStore, Peer, RedisChannel, RedisStore};
use support::RedisServer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Every event, as `target level message field=value…`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Runs `body` with this subscriber on the thread; the lines it caught.
    fn during(&self, body: impl FnOnce()) -> Vec<String> {
        self.0.lock().unwrap().clear();
        tracing::subscriber::with_default(self.clone(), body);
        self.lines()
    }
}

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut line = format!("{} {}", metadata.target(), metadata.level());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// No line holds any of `secrets`.
fn assert_clean(lines: &[String], secrets: &[&str]) {
    for line in lines {
        for secret in secrets {
            assert!(!line.contains(secret), "{secret:?} shows in {line}");
        }
    }
}

fn find<'a>(lines: &'a [String], words: &str) -> &'a String {
    lines
        .iter()
        .find(|line| line.contains(words))
        .unwrap_or_else(|| panic!("no event with {words:?} in {lines:#?}"))
}

#[test]
fn store_events_show_addresses_without_passwords_and_no_message_contents() {
    let password = "s3cret-pass-123";
    let server = RedisServer::start();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(password)
        .exec(&mut server.raw())
        .unwrap();
    let captured = Captured::default();
    let url = format!("redis://:{password}@127.0.0.1:{}", server.port());
    let lines = captured.during(|| {
        let store = RedisStore::open(url.as_str()).unwrap();
        let server_end = RedisChannel::new(store.clone(), "/traced", Peer::Server).unwrap();
        store
            .push("/traced/client", &[b"{\"card\": \"4111-1111\""], None)
            .unwrap();
        assert!(
            server_end
                .recv_msg::<serde_json::Value>()
                .unwrap_err()
                .is_decode()
        );
        // Every connection killed: the next call reconnects.
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .exec(&mut authed(&server, password))
            .unwrap();
        store.ping().unwrap();
        let wrong = RedisStore::open(format!(
            "redis://:wrong-{password}@127.0.0.1:{}",
            server.port()
        ))
        .unwrap();
        assert!(wrong.ping().is_err());
    });
    let opened = find(&lines, "connection opened");
    assert!(
        opened.starts_with("redisutil DEBUG") && opened.contains("***"),
        "{opened}"
    );
    let decode = find(&lines, "did not decode");
    assert!(
        decode.contains("bytes=20") && decode.contains("/traced/client"),
        "{decode}"
    );
    find(&lines, "an idle connection was found closed");
    let failed = find(&lines, "connection failed");
    assert!(
        failed.contains("WRONGPASS") || failed.contains("invalid"),
        "{failed}"
    );
    assert_clean(&lines, &[password, "4111", "card"]);
}

fn authed(server: &RedisServer, password: &str) -> redis::Connection {
    let mut raw = redis::Client::open(format!("redis://:{password}@{}/", server.addr()))
        .and_then(|client| client.get_connection())
        .unwrap();
    redis::cmd("PING").exec(&mut raw).unwrap();
    raw
}

#[test]
fn proxy_events_show_hosts_and_statuses_never_keys_or_signatures() {
    let secret = "SECRET-KEY-0123456789";
    let credentials = Credentials::new("access-id", secret);
    let (main, main_data) = memory_server_signed(&credentials);
    let (backup, _backup_data) = memory_server_signed(&credentials);
    let dead = closed_port();
    let config = ProxyConfig {
        proxy_hosts: vec![vec![dead.clone(), main.host()], vec![backup.host()]],
        credentials: Some(credentials),
        ..ProxyConfig::default()
    };
    let client = RedisProxyClient::connect_with(config, UreqConfig::default()).unwrap();
    let captured = Captured::default();
    let lines = captured.during(|| {
        client.set("k", &"private value").unwrap();
        let err = client.get::<u32>("k").unwrap_err();
        assert!(
            matches!(err, redisutil::proxy::Error::Decode { .. }),
            "{err}"
        );
    });
    let _ = main_data;
    let failed = find(&lines, "proxy attempt failed");
    assert!(
        failed.contains(&dead.to_string()) && failed.contains("Unreachable"),
        "{failed}"
    );
    let answered = find(&lines, "proxy attempt answered");
    assert!(answered.contains("status=200"), "{answered}");
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.contains("proxy write on a cluster"))
            .count(),
        2,
        "one event per cluster: {lines:#?}"
    );
    find(&lines, "did not decode");
    assert_clean(
        &lines,
        &[
            secret,
            "Signature",
            "signature=",
            "X-Amz",
            "private value",
            "/k?",
        ],
    );
}

/// A [`MemoryProxy`] that checks signatures of `credentials`, over HTTP.
fn memory_server_signed(credentials: &Credentials) -> (proxy_support::TestServer, MemoryProxy) {
    let proxy = MemoryProxy::builder()
        .signer(Signer::new(
            credentials.clone(),
            SignatureVersion::default(),
        ))
        .build();
    let served = proxy.clone();
    let _ = memory_server;
    (
        proxy_support::TestServer::serve(move |request| served.handle(request)),
        proxy,
    )
}

/// The async client emits the blocking client's events, field for field
/// (but the times), on the same scripted hosts: both come from the same
/// walk.
#[cfg(feature = "tokio")]
#[test]
fn the_async_client_emits_the_same_proxy_events() {
    use redisutil::proxy::aio::AsyncRedisProxyClient;
    use redisutil::proxy::{FakeTransport, Outcome};

    let script = |fake: &FakeTransport| {
        fake.push("10.0.0.1:80", Outcome::Refused);
        fake.push("10.0.0.2:80", Outcome::status(200));
        fake.push("10.0.1.1:80", Outcome::status(503));
        fake.push("10.0.0.1:80", Outcome::TimedOut);
        fake.push("10.0.0.2:80", Outcome::json(200, &"not a number"));
    };
    let config = ProxyConfig {
        proxy_hosts: vec![
            vec![
                ProxyHost::new("10.0.0.1", 80),
                ProxyHost::new("10.0.0.2", 80),
            ],
            vec![ProxyHost::new("10.0.1.1", 80)],
        ],
        ..ProxyConfig::default()
    };
    let without_times = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .map(|line| {
                line.split(' ')
                    .filter(|field| !field.starts_with("elapsed_ms="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let captured = Captured::default();
    let (blocking_fake, async_fake) = (FakeTransport::new(), FakeTransport::new());
    script(&blocking_fake);
    script(&async_fake);
    let blocking = RedisProxyClient::new(&blocking_fake, config.clone()).unwrap();
    let expected = without_times(captured.during(|| {
        assert!(blocking.set("k", "v").unwrap_err().is_partial_write());
        assert!(blocking.get::<u32>("k").is_err());
    }));
    let nonblocking = AsyncRedisProxyClient::new(&async_fake, config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = without_times(captured.during(|| {
        runtime.block_on(async {
            assert!(
                nonblocking
                    .set("k", "v")
                    .await
                    .unwrap_err()
                    .is_partial_write()
            );
            assert!(nonblocking.get::<u32>("k").await.is_err());
        });
    }));
    assert!(expected.len() >= 8, "{expected:#?}");
    assert_eq!(got, expected);
}
