//! TLS to Redis (`rediss://`): private TLS redis-servers
//! (`--tls-port`), certificates made by `openssl` when the tests start.
//! The conformance suites pass over TLS; wrong certificates, the wrong
//! kind of port and a missing client certificate each fail clearly
//! within the connect timeout, which bounds the TLS handshake too.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use redisutil::conformance::{self, Harness};
use redisutil::{
    ListStore, Peer, RedisChannel, RedisStore, RedisStoreOptions, StoreError, TlsOptions,
};
use support::RedisServer;
use support::tls::{Certs, TlsRedis, options};

/// The conformance harness of a TLS server, reached by `store`.
struct TlsBackend<S = RedisStore> {
    server: TlsRedis,
    store: S,
}

impl<S> Harness for TlsBackend<S>
where
    S: ListStore + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    type Store = S;

    fn store(&self) -> S {
        self.store.clone()
    }

    fn advance(&self, by: Duration) {
        std::thread::sleep(by);
    }

    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        call()
    }

    fn set_string(&self, key: &str, value: &str) {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .exec(&mut self.server.raw())
            .unwrap();
    }

    fn get_string(&self, key: &str) -> Option<String> {
        let raw = &mut self.server.raw();
        let kind: String = redis::cmd("TYPE").arg(key).query(raw).unwrap();
        (kind == "string").then(|| redis::cmd("GET").arg(key).query(raw).unwrap())
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        let millis: i64 = redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.server.raw())
            .unwrap();
        u64::try_from(millis).ok().map(Duration::from_millis)
    }

    fn delete(&self, key: &str) {
        redis::cmd("DEL")
            .arg(key)
            .exec(&mut self.server.raw())
            .unwrap();
    }
}

#[test]
fn the_conformance_suites_pass_over_tls() {
    let server = TlsRedis::start("server", false);
    let store = server.store(None);
    let backend = TlsBackend { server, store };
    conformance::run_all(&backend);
    conformance::run_all_leases(&backend);
}

#[test]
fn mutual_tls_works_with_a_client_certificate_and_fails_clearly_without() {
    let server = TlsRedis::start("server", true);
    let store = server.store(Some(Certs::get().client()));
    let client = RedisChannel::new(store.clone(), "/mtls", Peer::Client).unwrap();
    let worker = RedisChannel::new(store, "/mtls", Peer::Server).unwrap();
    client.send_msg("over mutual TLS").unwrap();
    assert_eq!(
        worker.recv_msg::<String>().unwrap().as_deref(),
        Some("over mutual TLS")
    );
    let err = refused(&server.store(None));
    assert!(err.is_connection(), "{err}");
}

/// Pings `store`, which must fail within the connect timeout (1 s, with a
/// margin for a loaded machine); the error.
fn refused(store: &RedisStore) -> StoreError {
    let start = Instant::now();
    let err = store.ping().expect_err("the connection must be refused");
    let elapsed = start.elapsed();
    let bound = store.options().connect_timeout.mul_f32(2.5);
    assert!(elapsed < bound, "{err} took {elapsed:?}, over {bound:?}");
    err
}

#[test]
fn bad_certificates_fail_clearly_within_the_connect_timeout() {
    let server = TlsRedis::start("server", false);
    let expired = TlsRedis::start("expired", false);
    std::thread::sleep(Duration::from_millis(1100)); // past its last second
    let cases = [
        (
            "a CA that did not sign it",
            RedisStore::open_with(server.url("localhost"), options(Some("other-ca.pem"), None)),
            "UnknownIssuer",
        ),
        (
            "the system's roots",
            RedisStore::open_with(server.url("localhost"), options(None, None)),
            "UnknownIssuer",
        ),
        (
            "a name the certificate does not hold",
            RedisStore::open_with(server.url("127.0.0.1"), options(Some("ca.pem"), None)),
            "not valid for name",
        ),
        (
            "an expired certificate",
            RedisStore::open_with(expired.url("localhost"), options(Some("ca.pem"), None)),
            "certificate expired",
        ),
    ];
    for (case, store, words) in cases {
        let err = refused(&store.unwrap());
        let shown = err.to_string();
        assert!(err.is_connection(), "{case}: {shown}");
        assert!(
            shown.contains("certificate") && shown.contains(words),
            "{case}: {shown}"
        );
    }
}

#[test]
fn the_wrong_kind_of_port_fails_within_the_connect_timeout() {
    let tls = TlsRedis::start("server", false);
    let plain = RedisServer::start();
    let plain_on_tls = RedisStore::open(format!("redis://localhost:{}", tls.port)).unwrap();
    let err = refused(&plain_on_tls);
    assert!(err.is_connection(), "a plain client on a TLS port: {err}");
    let tls_on_plain = RedisStore::open_with(
        format!("rediss://localhost:{}", plain.port()),
        options(Some("ca.pem"), None),
    )
    .unwrap();
    let err = refused(&tls_on_plain);
    assert!(
        err.is_connection() && err.to_string().contains("TLS port"),
        "a TLS client on a plain port: {err}"
    );
}

#[test]
fn get_client_and_wait_serve_take_rediss_addresses() {
    let server = TlsRedis::start("server", false);
    // Verification skipped by the address itself (feature tls-rustls-insecure).
    let addr = format!("rediss://localhost:{}/#insecure", server.port);
    redisutil::wait_serve(addr.as_str(), Duration::from_secs(5)).unwrap();
    let store = redisutil::get_client(addr.as_str()).unwrap();
    store.push("/insecure/client", &[b"1"], None).unwrap();
    assert_eq!(store.pop("/insecure/client").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn tls_options_need_a_rediss_address_and_readable_certificates() {
    // Refused when the store is opened: nothing connects to the server.
    let server = TlsRedis::start("server", false);
    let err = RedisStore::open_with(
        format!("redis://localhost:{}", server.port),
        options(Some("ca.pem"), None),
    )
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidAddress { message, .. } if message.contains("rediss://")),
        "{err}"
    );
    let bad = RedisStoreOptions {
        tls: Some(TlsOptions {
            ca_pem: Some(b"not a certificate".to_vec()),
            client: None,
        }),
        ..RedisStoreOptions::default()
    };
    let err = RedisStore::open_with(server.url("localhost"), bad).unwrap_err();
    assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err}");
    // A password in a rediss:// address is hidden like in any other.
    let store = RedisStore::open_with(
        "rediss://user:s3cret@localhost:1",
        options(Some("ca.pem"), None),
    )
    .unwrap();
    let err = store.ping().unwrap_err();
    for shown in [
        format!("{store:?}"),
        store.addr().to_string(),
        err.to_string(),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    let shown = format!("{:?}", options(None, Some(Certs::get().client())));
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let _ = Path::new(&Certs::get().dir);
}

#[cfg(feature = "cluster")]
#[test]
fn the_conformance_suites_pass_on_a_tls_cluster() {
    use support::{ClusterBackend, RedisCluster};

    let cluster = RedisCluster::shared_tls();
    let options = redisutil::RedisClusterStoreOptions {
        tls: Some(TlsOptions {
            ca_pem: Some(Certs::get().pem("ca.pem")),
            client: None,
        }),
        ..redisutil::RedisClusterStoreOptions::default()
    };
    let store = redisutil::RedisClusterStore::open_with(cluster.tls_seeds(), options).unwrap();
    store.ping().unwrap();
    let backend = ClusterBackend { cluster, store };
    conformance::run_all(&backend);
    conformance::run_all_leases(&backend);

    // The system's roots do not hold the test CA.
    let untrusted = redisutil::RedisClusterStore::open(cluster.tls_seeds()).unwrap();
    let err = untrusted.ping().unwrap_err();
    assert!(
        err.is_connection() && err.to_string().contains("certificate"),
        "{err}"
    );
}

/// The async store over TLS (feature `tokio`): the same suites, mutual
/// TLS, and an untrusted certificate refused within the connect timeout.
#[cfg(feature = "tokio")]
mod async_store {
    use std::time::{Duration, Instant};

    use redisutil::aio::{AsyncListStore, AsyncRedisStore};
    use redisutil::conformance::{self, AsyncHarness};

    use super::TlsBackend;
    use super::support::tls::{Certs, TlsRedis, options};

    fn open(server: &TlsRedis, ca: &str, client: bool) -> AsyncRedisStore {
        let client = client.then(|| Certs::get().client());
        AsyncRedisStore::open_with(server.url("localhost"), options(Some(ca), client)).unwrap()
    }

    #[test]
    fn the_conformance_suites_pass_over_tls() {
        let server = TlsRedis::start("server", false);
        let store = open(&server, "ca.pem", false);
        let backend = TlsBackend {
            store: server.store(None),
            server,
        };
        let harness = AsyncHarness::new(backend, store);
        conformance::run_all(&harness);
        conformance::run_all_leases(&harness);
    }

    #[tokio::test]
    async fn mutual_tls_works_with_a_client_certificate_and_fails_clearly_without() {
        let server = TlsRedis::start("server", true);
        let store = open(&server, "ca.pem", true);
        store.push("/mtls/client", &[b"1"], None).await.unwrap();
        assert_eq!(
            store.pop("/mtls/client").await.unwrap().as_deref(),
            Some(&b"1"[..])
        );
        let err = open(&server, "ca.pem", false).ping().await.unwrap_err();
        assert!(err.is_connection(), "{err}");
    }

    #[tokio::test]
    async fn an_untrusted_certificate_fails_within_the_connect_timeout() {
        let server = TlsRedis::start("server", false);
        // A CA that did not sign the server's certificate.
        let store = open(&server, "other-ca.pem", false);
        let start = Instant::now();
        let err = store.ping().await.unwrap_err();
        assert!(err.is_connection(), "{err}");
        assert!(
            start.elapsed() < Duration::from_millis(2500),
            "took {:?}",
            start.elapsed()
        );
    }
}

/// Sentinels over TLS (feature `sentinel`): a TLS master and a sentinel
/// that serves TLS and watches the master over TLS; `rediss://` sentinel
/// addresses reach both over TLS, with the store's certificates.
#[cfg(feature = "sentinel")]
mod sentinel_over_tls {
    use std::time::{Duration, Instant};

    use redisutil::conformance;
    use redisutil::{ListStore, RedisSentinelStore, RedisSentinelStoreOptions, TlsOptions};

    use super::TlsBackend;
    use super::support::free_port;
    use super::support::process::Guarded;
    use super::support::tls::{Certs, TlsRedis};

    const SERVICE: &str = "tls-svc";

    /// The master, and a sentinel on `port`.
    struct TlsSentinel {
        master: TlsRedis,
        _sentinel: Guarded,
        port: u16,
    }

    fn start() -> TlsSentinel {
        let master = TlsRedis::start("node", false);
        let certs = Certs::get();
        let file = |name: &str| certs.path(name).display().to_string();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "redisutil-tls-sentinel-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = format!(
            "port 0\ntls-port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile \"\"\n\
             tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {ca}\n\
             tls-auth-clients no\ntls-replication yes\n\
             sentinel monitor {SERVICE} 127.0.0.1 {master} 1\n",
            dir = dir.display(),
            cert = file("node.pem"),
            key = file("node.key"),
            ca = file("ca.pem"),
            master = master.port,
        );
        let path = dir.join("sentinel.conf");
        std::fs::write(&path, conf).unwrap();
        let sentinel = Guarded::spawn(
            &[path.display().to_string(), "--sentinel".to_string()],
            Some(&dir),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the TLS sentinel did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsSentinel {
            master,
            _sentinel: sentinel,
            port,
        }
    }

    fn options(ca: &str) -> RedisSentinelStoreOptions {
        RedisSentinelStoreOptions {
            tls: Some(TlsOptions {
                ca_pem: Some(Certs::get().pem(ca)),
                client: None,
            }),
            ..RedisSentinelStoreOptions::default()
        }
    }

    fn sentinel(port: u16) -> String {
        format!("rediss://127.0.0.1:{port}")
    }

    #[test]
    fn the_conformance_suites_pass_through_tls_sentinels() {
        let set = start();
        let store = RedisSentinelStore::open_with([sentinel(set.port)], SERVICE, options("ca.pem"))
            .unwrap();
        assert_eq!(
            store.master_addr().unwrap(),
            ("127.0.0.1".to_owned(), set.master.port)
        );
        let backend = TlsBackend {
            server: set.master,
            store,
        };
        conformance::run_all(&backend);
        conformance::run_all_leases(&backend);
    }

    #[test]
    fn untrusted_sentinels_and_mixed_addresses_are_refused_clearly() {
        let set = start();
        // A CA that signed neither the sentinel's certificate nor the master's.
        let store =
            RedisSentinelStore::open_with([sentinel(set.port)], SERVICE, options("other-ca.pem"))
                .unwrap();
        let err = store.ping().unwrap_err();
        assert!(err.is_connection(), "{err}");
        // TLS to some sentinels and not to others is refused before
        // anything connects, as are TLS options with plain sentinels.
        let mixed = RedisSentinelStore::open_with(
            [
                sentinel(set.port),
                format!("redis://127.0.0.1:{}", set.port),
            ],
            SERVICE,
            options("ca.pem"),
        )
        .unwrap_err();
        assert!(mixed.to_string().contains("all rediss://"), "{mixed}");
        let plain = RedisSentinelStore::open_with(
            [format!("127.0.0.1:{}", set.port)],
            SERVICE,
            options("ca.pem"),
        )
        .unwrap_err();
        assert!(plain.to_string().contains("rediss://"), "{plain}");
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn the_async_store_works_through_tls_sentinels() {
        use redisutil::aio::{AsyncListStore, AsyncRedisSentinelStore};
        let set = start();
        let store =
            AsyncRedisSentinelStore::open_with([sentinel(set.port)], SERVICE, options("ca.pem"))
                .unwrap();
        let backend = TlsBackend {
            store: redisutil::RedisSentinelStore::open_with(
                [sentinel(set.port)],
                SERVICE,
                options("ca.pem"),
            )
            .unwrap(),
            server: set.master,
        };
        let harness = conformance::AsyncHarness::new(backend, store.clone());
        conformance::run_all(&harness);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(store.ping()).unwrap();
    }
}
