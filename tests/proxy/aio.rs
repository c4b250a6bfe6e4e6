//! The async proxy client, `AsyncRedisProxyClient`: the whole proxy
//! conformance suite run on it (through `BlockingAsync`) over the
//! in-memory server and, with the feature `hyper`, over loopback HTTP
//! (and https with `hyper-rustls`) through `HyperTransport`; failover on
//! scripted hosts, checked against the blocking client on the same
//! scripts; and a downstream-style test on `MemoryProxy` and a
//! `ManualClock` that neither touches the network nor sleeps.

#[cfg(feature = "hyper")]
use crate::proxy_support;
#[cfg(feature = "hyper-rustls")]
use crate::support;

use std::sync::Arc;

use tokio::runtime::Runtime;

/// A runtime for the blocking adapter: its timer, and its I/O for HTTP.
fn runtime() -> Arc<Runtime> {
    Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime"),
    )
}

/// The harnesses: the in-memory server's, with the async client in place
/// of the blocking one.
mod harness {
    use std::sync::Arc;
    use std::time::Duration;

    use redisutil::Clock;
    use redisutil::conformance::{BlockingAsync, MemoryProxyHarness, ProxyHarness};
    use redisutil::proxy::aio::AsyncRedisProxyClient;
    use redisutil::proxy::{MemoryProxy, ProxyConfig};
    use tokio::runtime::Runtime;

    /// The in-memory server reached directly.
    pub struct AsyncMemory {
        memory: MemoryProxyHarness,
        runtime: Arc<Runtime>,
    }

    impl AsyncMemory {
        pub fn new() -> Self {
            Self {
                memory: MemoryProxyHarness::new(),
                runtime: super::runtime(),
            }
        }
    }

    impl ProxyHarness for AsyncMemory {
        type Client = BlockingAsync<MemoryProxy>;

        fn config(&self) -> ProxyConfig {
            self.memory.config()
        }

        fn client_with(&self, config: ProxyConfig) -> BlockingAsync<MemoryProxy> {
            let client = AsyncRedisProxyClient::new(self.memory.proxy().clone(), config)
                .expect("a valid config")
                .with_clock(self.client_clock());
            BlockingAsync::new(client, Arc::clone(&self.runtime))
        }

        fn client_clock(&self) -> Arc<dyn Clock> {
            self.memory.client_clock()
        }

        fn advance(&self, by: Duration) {
            self.memory.advance(by);
        }
    }
}

/// The in-memory server over loopback HTTP (and https), reached by
/// `HyperTransport`.
#[cfg(feature = "hyper")]
mod over_http {
    use std::sync::Arc;
    use std::time::Duration;

    use redisutil::Clock;
    use redisutil::conformance::{BlockingAsync, MemoryProxyHarness, ProxyHarness};
    use redisutil::proxy::aio::AsyncRedisProxyClient;
    use redisutil::proxy::{HyperConfig, HyperTransport, ProxyConfig, ProxyHost};
    use tokio::runtime::Runtime;

    use super::proxy_support::TestServer;

    pub struct AsyncHttp {
        memory: MemoryProxyHarness,
        server: TestServer,
        host: ProxyHost,
        https: bool,
        transport: HyperTransport,
        runtime: Arc<Runtime>,
    }

    impl AsyncHttp {
        pub fn new() -> Self {
            let memory = MemoryProxyHarness::new();
            let proxy = memory.proxy().clone();
            let server = TestServer::serve(move |request| proxy.handle(request));
            let host = server.host();
            Self {
                memory,
                server,
                host,
                https: false,
                transport: HyperTransport::new(HyperConfig::default()),
                runtime: super::runtime(),
            }
        }

        /// Over https, with a certificate for `localhost` the client
        /// trusts through its CA.
        #[cfg(feature = "hyper-rustls")]
        pub fn https() -> Self {
            use super::support::tls::{Certs, server_config};

            let memory = MemoryProxyHarness::new();
            let proxy = memory.proxy().clone();
            let server = TestServer::serve_tls(
                move |request| proxy.handle(request),
                server_config("server", None),
            );
            let host = ProxyHost::new("localhost", server.host().port());
            let tls = redisutil::TlsOptions {
                ca_pem: Some(Certs::get().pem("ca.pem")),
                client: None,
            };
            Self {
                memory,
                server,
                host,
                https: true,
                transport: HyperTransport::with_tls(HyperConfig::default(), &tls).unwrap(),
                runtime: super::runtime(),
            }
        }

        pub fn requests(&self) -> usize {
            self.server.requests()
        }
    }

    impl ProxyHarness for AsyncHttp {
        type Client = BlockingAsync<HyperTransport>;

        fn config(&self) -> ProxyConfig {
            ProxyConfig {
                https: self.https,
                ..self.memory.config_for([self.host.clone()])
            }
        }

        fn client_with(&self, config: ProxyConfig) -> BlockingAsync<HyperTransport> {
            let client = AsyncRedisProxyClient::new(self.transport.clone(), config)
                .expect("a valid config")
                .with_clock(self.client_clock());
            BlockingAsync::new(client, Arc::clone(&self.runtime))
        }

        fn client_clock(&self) -> Arc<dyn Clock> {
            self.memory.client_clock()
        }

        fn advance(&self, by: Duration) {
            self.memory.advance(by);
        }
    }
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $scenario() {
                redisutil::conformance::scenario::$scenario(&super::harness::AsyncMemory::new());
            } )*
        }

        #[cfg(feature = "hyper")]
        mod http {
            $( #[test] fn $scenario() {
                redisutil::conformance::scenario::$scenario(&super::over_http::AsyncHttp::new());
            } )*
        }
        #[cfg(feature = "hyper-rustls")]
        mod https {
            $( #[test] fn $scenario() {
                redisutil::conformance::scenario::$scenario(&super::over_http::AsyncHttp::https());
            } )*
        }

        /// The list the crate publishes is the list this file runs.
        #[test]
        fn every_published_scenario_runs_here() {
            let here = [$(stringify!($scenario)),*];
            let published: Vec<&str> = redisutil::conformance::proxy_scenarios::<harness::AsyncMemory>()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            assert_eq!(published, here);
        }
    };
}

conformance!(
    proxy_set_get_round_trips_typed_values,
    proxy_hset_hget_round_trips_typed_values,
    proxy_hkeys_hvals_hgetall_list_the_hash,
    proxy_missing_keys_are_key_not_found,
    proxy_delete_and_hdel_remove_only_their_target,
    proxy_large_values_round_trip,
    proxy_awkward_keys_round_trip,
    proxy_dot_keys_round_trip,
    proxy_expire_is_honoured_on_keys,
    proxy_expire_is_honoured_on_hash_fields,
    proxy_signatures_are_accepted_and_a_wrong_secret_refused,
    proxy_integers_beyond_64_bits_are_decode_errors_holding_the_body,
);

#[test]
fn run_all_proxy_passes_on_the_async_client() {
    redisutil::conformance::run_all_proxy(&harness::AsyncMemory::new());
}

/// Over HTTP the whole suite shares the transport's kept-alive
/// connections.
#[cfg(feature = "hyper")]
#[test]
fn run_all_proxy_passes_over_http_on_kept_alive_connections() {
    let harness = over_http::AsyncHttp::new();
    redisutil::conformance::run_all_proxy(&harness);
    assert!(harness.requests() > 50, "{} requests", harness.requests());
}

/// `HyperTransport` on loopback servers that misbehave: each failure is
/// sorted as `UreqTransport` sorts it, and failover goes on.
#[cfg(feature = "hyper")]
mod transport {
    use std::time::{Duration, Instant};

    use redisutil::proxy::aio::{AsyncHttpTransport, AsyncRedisProxyClient};
    use redisutil::proxy::{
        CallOptions, HyperConfig, HyperTransport, ProxyConfig, ProxyHost, TransportErrorKind,
    };

    use super::proxy_support::{
        AfterReply, TestServer, closed_port, first_transport_failure, memory_server,
    };

    fn client(hosts: Vec<ProxyHost>, timeout: Duration) -> AsyncRedisProxyClient<HyperTransport> {
        let config = ProxyConfig {
            proxy_hosts: vec![hosts],
            ..ProxyConfig::default()
        };
        AsyncRedisProxyClient::connect_with(config, HyperConfig::with_timeout(timeout)).unwrap()
    }

    #[tokio::test]
    async fn keep_alive_reuses_one_connection() {
        let (server, _proxy) = memory_server();
        let client = client(vec![server.host()], Duration::from_secs(2));
        for round in 0..20 {
            client.set("k", &round).await.unwrap();
            assert_eq!(client.get::<u32>("k").await.unwrap(), round);
        }
        assert_eq!(server.requests(), 40);
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn a_dead_host_is_unreachable_and_the_next_one_answers() {
        let (server, proxy) = memory_server();
        let dead = closed_port();
        let client = client(vec![dead.clone(), server.host()], Duration::from_secs(2));
        client.set("k", "v").await.unwrap();
        assert_eq!(proxy.requests_handled(), 1);
        let alone = super::transport::client(vec![dead], Duration::from_secs(2));
        let error = alone.get::<String>("k").await.unwrap_err();
        assert_eq!(
            first_transport_failure(&error),
            TransportErrorKind::Unreachable
        );
        assert!(
            error.is_connection() && error.is_no_host_answered(),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_silent_host_costs_one_timeout_then_the_next_answers() {
        let silent = TestServer::silent();
        let (server, _proxy) = memory_server();
        let timeout = Duration::from_millis(300);
        let alone = client(vec![silent.host()], timeout);
        let started = Instant::now();
        let error = alone.get::<String>("k").await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(error.is_timeout(), "{error}");
        assert_eq!(
            first_transport_failure(&error),
            TransportErrorKind::TimedOut
        );
        assert!(elapsed >= timeout && elapsed < timeout * 5, "{elapsed:?}");
        let both = client(vec![silent.host(), server.host()], timeout);
        both.set_with("k", "v", &CallOptions::new()).await.unwrap();
    }

    /// Dropping a call (here by a timeout around it) cancels it: the host
    /// after the silent one is never asked, and the transport goes on
    /// serving other calls.
    #[tokio::test]
    async fn a_dropped_call_is_cancelled_and_the_transport_goes_on() {
        let silent = TestServer::silent();
        let (server, proxy) = memory_server();
        let client = client(vec![silent.host(), server.host()], Duration::from_secs(10));
        let cut = tokio::time::timeout(Duration::from_millis(200), client.set("k", "v")).await;
        assert!(
            cut.is_err(),
            "the call was still waiting on the silent host"
        );
        assert_eq!(proxy.requests_handled(), 0, "the second host never asked");
        let config = ProxyConfig::with_hosts([server.host()]);
        let other = AsyncRedisProxyClient::new(client.transport().clone(), config).unwrap();
        other.set("k", "v").await.unwrap();
        assert_eq!(other.get::<String>("k").await.unwrap(), "v");
        assert_eq!(proxy.requests_handled(), 2);
    }

    #[tokio::test]
    async fn a_503_host_is_skipped() {
        let unavailable = TestServer::serve(|_| {
            let mut response = http::Response::new(b"busy".to_vec());
            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            response
        });
        let (server, _proxy) = memory_server();
        let client = client(
            vec![unavailable.host(), server.host()],
            Duration::from_secs(2),
        );
        let answered = client
            .set_answered_with("k", "v", &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(answered.host, server.host());
        assert_eq!(answered.attempts, 2);
    }

    #[tokio::test]
    async fn hang_ups_garbage_and_long_bodies_are_sorted() {
        let hang_up = TestServer::hang_up();
        let error = client(vec![hang_up.host()], Duration::from_secs(2))
            .get::<String>("k")
            .await
            .unwrap_err();
        assert_eq!(
            first_transport_failure(&error),
            TransportErrorKind::NoResponse
        );

        let garbage = TestServer::raw("NOT HTTP AT ALL\r\n\r\n", AfterReply::Close);
        let error = client(vec![garbage.host()], Duration::from_secs(2))
            .get::<String>("k")
            .await
            .unwrap_err();
        assert_eq!(
            first_transport_failure(&error),
            TransportErrorKind::BadResponse
        );

        let long = TestServer::serve(|_| http::Response::new(vec![b'1'; 4096]));
        let transport = HyperTransport::new(HyperConfig {
            max_response_body: 1024,
            ..HyperConfig::default()
        });
        let request = http::Request::get(format!("http://{}/", long.host()))
            .body(Vec::new())
            .unwrap();
        let error = AsyncHttpTransport::send(&transport, request)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::BadResponse, "{error}");
    }

    #[tokio::test]
    async fn a_redirect_is_a_response_never_followed() {
        let (target, proxy) = memory_server();
        let location = format!(
            "http://{}/redisproxy/v1/GET/k?Signature=secret",
            target.host()
        );
        let redirecting = TestServer::serve(move |_| {
            let mut response = http::Response::new(Vec::new());
            *response.status_mut() = http::StatusCode::TEMPORARY_REDIRECT;
            response
                .headers_mut()
                .insert(http::header::LOCATION, location.parse().unwrap());
            response
        });
        let error = client(vec![redirecting.host()], Duration::from_secs(2))
            .set("k", "v")
            .await
            .unwrap_err();
        assert_eq!(error.status().map(|status| status.as_u16()), Some(307));
        assert!(!error.to_string().contains("secret"), "{error}");
        assert_eq!(proxy.requests_handled(), 0);
    }

    /// An https request without the feature `hyper-rustls` is refused by the
    /// transport, not sent in plain text.
    #[cfg(not(feature = "hyper-rustls"))]
    #[tokio::test]
    async fn https_needs_the_tls_feature() {
        let (server, proxy) = memory_server();
        let request = http::Request::get(format!("https://{}/", server.host()))
            .body(Vec::new())
            .unwrap();
        let error = AsyncHttpTransport::send(&HyperTransport::default(), request)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Other, "{error}");
        assert_eq!(proxy.requests_handled(), 0);
    }
}

/// https through `HyperTransport::with_tls`: an untrusted certificate makes
/// a host unreachable and the next one answers; mutual TLS.
#[cfg(feature = "hyper-rustls")]
mod tls {
    use std::time::Duration;

    use redisutil::proxy::aio::AsyncRedisProxyClient;
    use redisutil::proxy::{
        Credentials, HyperConfig, HyperTransport, MemoryProxy, ProxyConfig, ProxyHost,
        SignatureVersion, Signer, TransportErrorKind,
    };
    use redisutil::{ClientIdentity, TlsOptions};

    use super::proxy_support::{TestServer, first_transport_failure};
    use super::support::tls::{Certs, server_config};

    fn credentials() -> Credentials {
        Credentials::new("access", "proxy-secret-key")
    }

    fn https_server(cert: &str, clients_from: Option<&str>) -> (TestServer, ProxyHost) {
        let proxy = MemoryProxy::builder()
            .signer(Signer::new(credentials(), SignatureVersion::default()))
            .build();
        let server = TestServer::serve_tls(
            move |request| proxy.handle(request),
            server_config(cert, clients_from),
        );
        let host = ProxyHost::new("localhost", server.host().port());
        (server, host)
    }

    fn client(hosts: Vec<ProxyHost>, tls: &TlsOptions) -> AsyncRedisProxyClient<HyperTransport> {
        let config = ProxyConfig {
            proxy_hosts: vec![hosts],
            credentials: Some(credentials()),
            https: true,
            ..ProxyConfig::default()
        };
        let transport =
            HyperTransport::with_tls(HyperConfig::with_timeout(Duration::from_secs(2)), tls)
                .unwrap();
        AsyncRedisProxyClient::new(transport, config).unwrap()
    }

    fn trusting(ca: &str) -> TlsOptions {
        TlsOptions {
            ca_pem: Some(Certs::get().pem(&format!("{ca}.pem"))),
            client: None,
        }
    }

    #[tokio::test]
    async fn an_untrusted_certificate_makes_a_host_unreachable_and_the_next_answers() {
        let (_expired_server, expired) = https_server("expired", None);
        let (_good_server, good) = https_server("server", None);
        // The expired certificate's last second is over.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for (hosts, tls) in [
            (vec![expired.clone()], trusting("ca")),
            (vec![good.clone()], trusting("other-ca")),
            // `HyperTransport::new`'s roots, Mozilla's.
            (vec![good.clone()], TlsOptions::default()),
        ] {
            let error = client(hosts, &tls).get::<String>("k").await.unwrap_err();
            assert_eq!(
                first_transport_failure(&error),
                TransportErrorKind::Unreachable
            );
            assert!(error.is_connection(), "{error}");
        }
        let both = client(vec![expired, good.clone()], &trusting("ca"));
        both.hset("h", "f", &[1, 2, 3]).await.unwrap();
        let answered = both
            .hget_answered_with::<Vec<u32>>("h", "f", &redisutil::proxy::CallOptions::new())
            .await
            .unwrap();
        assert_eq!(answered.value, [1, 2, 3]);
        assert_eq!(answered.host, good);
        assert_eq!(answered.attempts, 2);
    }

    #[tokio::test]
    async fn mutual_tls_needs_the_client_certificate() {
        let (_server, host) = https_server("server", Some("ca.pem"));
        let error = client(vec![host.clone()], &trusting("ca"))
            .set("k", "v")
            .await
            .unwrap_err();
        assert!(error.is_no_host_answered(), "{error}");
        let with_identity = TlsOptions {
            client: Some(Certs::get().client()),
            ..trusting("ca")
        };
        let client = client(vec![host], &with_identity);
        client.set("k", "v").await.unwrap();
        assert_eq!(client.get::<String>("k").await.unwrap(), "v");
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused_when_the_transport_is_built() {
        let tls = TlsOptions {
            client: Some(ClientIdentity {
                cert_pem: Certs::get().pem("client.pem"),
                key_pem: b"not a key".to_vec(),
            }),
            ..trusting("ca")
        };
        let error = HyperTransport::with_tls(HyperConfig::default(), &tls).unwrap_err();
        assert!(
            matches!(error, redisutil::proxy::Error::InvalidArgument(_)),
            "{error}"
        );
    }
}

/// Failover on scripted hosts (`FakeTransport`): the rules, and the
/// blocking client's very requests and results on the same scripts.
mod failover {
    use std::time::Duration;

    use proptest::prelude::*;
    use redisutil::ManualClock;
    use redisutil::proxy::aio::AsyncRedisProxyClient;
    use redisutil::proxy::{
        AttemptFailure, CallOptions, Error, FakeTransport, Outcome, ProxyConfig, ProxyHost,
        RedisProxyClient, TransportErrorKind,
    };

    fn hosts(cluster: u8, count: u8) -> Vec<ProxyHost> {
        (1..=count)
            .map(|host| ProxyHost::new(format!("10.0.{cluster}.{host}"), 80))
            .collect()
    }

    fn client(fake: &FakeTransport, config: ProxyConfig) -> AsyncRedisProxyClient<&FakeTransport> {
        AsyncRedisProxyClient::new(fake, config)
            .unwrap()
            .with_clock(ManualClock::default())
    }

    #[tokio::test]
    async fn hosts_down_and_503_move_on_to_the_next_host() {
        let fake = FakeTransport::new();
        fake.push("10.0.0.1:80", Outcome::Refused);
        fake.push("10.0.0.2:80", Outcome::status(503));
        fake.push("10.0.0.3:80", Outcome::json(200, "v"));
        let config = ProxyConfig {
            proxy_hosts: vec![hosts(0, 3)],
            ..ProxyConfig::default()
        };
        let answered = client(&fake, config)
            .get_answered_with::<String>("k", &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(answered.value, "v");
        assert_eq!(answered.host.to_string(), "10.0.0.3:80");
        assert_eq!(answered.attempts, 3);
        assert_eq!(
            fake.hosts_tried(),
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
        );
    }

    #[tokio::test]
    async fn retries_make_rounds_and_no_host_answering_lists_every_attempt() {
        let fake = FakeTransport::new();
        fake.set_default("10.0.0.1:80", Outcome::TimedOut);
        fake.set_default("10.0.0.2:80", Outcome::status(502));
        let config = ProxyConfig {
            proxy_hosts: vec![hosts(0, 2)],
            retry: 1,
            ..ProxyConfig::default()
        };
        let error = client(&fake, config)
            .get_with::<String>("k", &CallOptions::new().retry(2))
            .await
            .unwrap_err();
        assert!(error.is_no_host_answered() && error.is_timeout(), "{error}");
        let Error::SendRequest { attempts } = &error else {
            panic!("{error:?}")
        };
        let rounds: Vec<u32> = attempts.iter().map(|attempt| attempt.round).collect();
        assert_eq!(rounds, [0, 0, 1, 1, 2, 2]);
        assert!(matches!(
            &attempts[0].failure,
            AttemptFailure::Transport(failure) if failure.kind() == TransportErrorKind::TimedOut
        ));
        assert!(
            matches!(attempts[1].failure, AttemptFailure::Unavailable(status) if status == 502)
        );
        assert_eq!(fake.requests().len(), 6);
    }

    #[tokio::test]
    async fn a_read_falls_back_to_the_backup_cluster() {
        let fake = FakeTransport::new();
        fake.push("10.0.0.1:80", Outcome::status(404));
        fake.push("10.0.1.1:80", Outcome::json(200, &[1, 2]));
        let config = ProxyConfig {
            proxy_hosts: vec![hosts(0, 1), hosts(1, 1)],
            ..ProxyConfig::default()
        };
        let answered = client(&fake, config)
            .hvals_answered_with::<u32>("h", &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(answered.value, [1, 2]);
        assert_eq!(answered.host.to_string(), "10.0.1.1:80");
        assert_eq!(fake.hosts_tried(), ["10.0.0.1:80", "10.0.1.1:80"]);
    }

    #[tokio::test]
    async fn a_write_goes_to_every_cluster_and_a_partial_write_says_which() {
        let fake = FakeTransport::new();
        fake.push("10.0.0.1:80", Outcome::status(200));
        fake.push("10.0.1.1:80", Outcome::Refused);
        fake.push("10.0.2.1:80", Outcome::status(200));
        let config = ProxyConfig {
            proxy_hosts: vec![hosts(0, 1), hosts(1, 1), hosts(2, 1)],
            ..ProxyConfig::default()
        };
        let error = client(&fake, config.clone())
            .set("k", "v")
            .await
            .unwrap_err();
        let Error::PartialWrite { written, failed } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(written, &[0, 2]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].cluster, 1);
        assert!(error.is_partial_write());
        assert_eq!(
            fake.hosts_tried(),
            ["10.0.0.1:80", "10.0.1.1:80", "10.0.2.1:80"]
        );

        fake.clear_requests();
        for cluster in 0..3 {
            fake.push(format!("10.0.{cluster}.1:80"), Outcome::status(200));
        }
        let answered = client(&fake, config)
            .hdel_answered_with("h", "f", &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(answered.host.to_string(), "10.0.0.1:80");
        assert_eq!(answered.attempts, 3);
    }

    #[tokio::test]
    async fn a_write_no_cluster_took_is_the_main_clusters_error_and_a_redirect_is_not_followed() {
        let fake = FakeTransport::new();
        fake.push(
            "10.0.0.1:80",
            Outcome::Respond {
                status: http::StatusCode::FOUND,
                body: Vec::new(),
            },
        );
        fake.push("10.0.1.1:80", Outcome::status(500));
        let config = ProxyConfig {
            proxy_hosts: vec![hosts(0, 2), hosts(1, 1)],
            ..ProxyConfig::default()
        };
        let error = client(&fake, config).delete("k").await.unwrap_err();
        assert_eq!(error.status().map(|status| status.as_u16()), Some(302));
        assert_eq!(fake.hosts_tried(), ["10.0.0.1:80", "10.0.1.1:80"]);
    }

    /// What a host does with one request, for the model below.
    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            3 => Just(Outcome::json(200, "value")),
            1 => Just(Outcome::status(404)),
            1 => prop::sample::select(vec![201u16, 302, 403, 500, 502, 503, 504]).prop_map(Outcome::status),
            2 => Just(Outcome::Refused),
            2 => Just(Outcome::TimedOut),
            1 => Just(Outcome::Reset),
        ]
    }

    /// The requests a fake saw, as comparable text: method, URI (with its
    /// signature, made on the same manual time), headers, body.
    fn seen(fake: &FakeTransport) -> Vec<String> {
        fake.requests()
            .iter()
            .map(|request| {
                format!(
                    "{} {} {:?} {:?}",
                    request.method(),
                    request.uri(),
                    request.headers(),
                    request.body()
                )
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// On the same scripts, with the same clock, the async client
        /// sends the very requests the blocking client sends (signatures
        /// included) and returns the same result or error.
        #[test]
        fn the_async_client_walks_as_the_blocking_one(
            clusters in prop::collection::vec(
                prop::collection::vec(prop::collection::vec(outcome(), 0..5), 1..4),
                1..4,
            ),
            retry in 0u32..3,
            write in any::<bool>(),
            backoff_ms in prop::sample::select(vec![0u64, 250]),
        ) {
            let script = |fake: &FakeTransport| {
                for (cluster, hosts) in clusters.iter().enumerate() {
                    for (host, outcomes) in hosts.iter().enumerate() {
                        for outcome in outcomes {
                            fake.push(format!("10.0.{cluster}.{}:80", host + 1), outcome.clone());
                        }
                    }
                }
            };
            let config = ProxyConfig {
                proxy_hosts: clusters
                    .iter()
                    .enumerate()
                    .map(|(cluster, scripts)| hosts(cluster as u8, scripts.len() as u8))
                    .collect(),
                credentials: Some(redisutil::proxy::Credentials::new("access", "secret")),
                round_backoff: Duration::from_millis(backoff_ms),
                ..ProxyConfig::default()
            };
            let options = CallOptions::new().retry(retry);

            let (blocking_fake, async_fake) = (FakeTransport::new(), FakeTransport::new());
            script(&blocking_fake);
            script(&async_fake);
            let (blocking_clock, async_clock) = (ManualClock::default(), ManualClock::default());
            let blocking = RedisProxyClient::new(&blocking_fake, config.clone())
                .unwrap()
                .with_clock(blocking_clock.clone());
            let nonblocking = AsyncRedisProxyClient::new(&async_fake, config)
                .unwrap()
                .with_clock(async_clock.clone());
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let (expected, got) = if write {
                (
                    format!("{:?}", blocking.set_answered_with("k/ü", &[1, 2], &options)),
                    format!("{:?}", runtime.block_on(nonblocking.set_answered_with("k/ü", &[1, 2], &options))),
                )
            } else {
                (
                    format!("{:?}", blocking.get_answered_with::<String>("k/ü", &options)),
                    format!("{:?}", runtime.block_on(nonblocking.get_answered_with::<String>("k/ü", &options))),
                )
            };
            prop_assert_eq!(got, expected);
            prop_assert_eq!(seen(&async_fake), seen(&blocking_fake));
            prop_assert_eq!(async_clock.now_since_default(), blocking_clock.now_since_default());
        }
    }

    /// The time a manual clock has moved since its default start.
    trait Moved {
        fn now_since_default(&self) -> Duration;
    }

    impl Moved for ManualClock {
        fn now_since_default(&self) -> Duration {
            use redisutil::Clock;
            self.now()
                .duration_since(ManualClock::default().now())
                .expect("a clock moves forward only")
        }
    }
}

/// How a downstream crate tests code that uses the async client: the
/// in-memory server on a manual clock, no network, no sleep.
mod downstream {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use redisutil::proxy::aio::AsyncRedisProxyClient;
    use redisutil::proxy::{
        CallOptions, FakeTransport, MemoryProxy, Outcome, ProxyConfig, RoutingTransport,
    };
    use redisutil::{Clock, ManualClock, SystemClock};

    /// The code under test: counts a page view, by key, in the proxy.
    async fn count_view(
        client: &AsyncRedisProxyClient<RoutingTransport>,
        page: &str,
    ) -> Result<u64, redisutil::proxy::Error> {
        let views = match client.hget::<u64>("views", page).await {
            Ok(views) => views + 1,
            Err(error) if error.is_key_not_found() => 1,
            Err(error) => return Err(error),
        };
        client.hset("views", page, &views).await?;
        Ok(views)
    }

    #[tokio::test]
    async fn backoff_moves_the_manual_clock_instead_of_sleeping() {
        let clock = ManualClock::default();
        let server = MemoryProxy::builder().clock(clock.clone()).build();
        // The first host is down; the second one answers only from the
        // third round on.
        let down = Arc::new(FakeTransport::new());
        down.set_default("10.0.0.1:80", Outcome::Refused);
        let flaky = Arc::new(FakeTransport::new());
        for _ in 0..2 {
            flaky.push("10.0.0.2:80", Outcome::status(503));
        }
        let routes = RoutingTransport::new()
            .route("10.0.0.1:80", Arc::clone(&down))
            .route("10.0.0.2:80", FlakyThen(Arc::clone(&flaky), server.clone()));
        let config = ProxyConfig {
            retry: 2,
            round_backoff: Duration::from_secs(600),
            ..ProxyConfig::with_hosts([("10.0.0.1", 80), ("10.0.0.2", 80)])
        };
        let client = AsyncRedisProxyClient::new(routes, config)
            .unwrap()
            .with_clock(clock.clone());

        let started = clock.now();
        let wall = Instant::now();
        assert_eq!(count_view(&client, "/home").await.unwrap(), 1);
        // Two pauses of ten minutes between the three rounds of the read,
        // none for the write (its first round answered).
        assert_eq!(
            clock.now().duration_since(started).unwrap(),
            Duration::from_secs(1200)
        );
        assert!(
            wall.elapsed() < Duration::from_secs(5),
            "slept {:?}",
            wall.elapsed()
        );
        assert_eq!(down.requests().len(), 4);
        assert_eq!(count_view(&client, "/home").await.unwrap(), 2);
        assert_eq!(server.requests_handled(), 4);
        // The expiry on the server's (manual) clock.
        client
            .hset_with(
                "views",
                "/tmp",
                &1,
                &CallOptions::new().expire(Duration::from_secs(1)),
            )
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));
        assert!(
            client
                .hget::<u64>("views", "/tmp")
                .await
                .unwrap_err()
                .is_key_not_found()
        );
    }

    /// Plays the fake's script while it lasts, then serves the server.
    struct FlakyThen(Arc<FakeTransport>, MemoryProxy);

    impl redisutil::proxy::HttpTransport for FlakyThen {
        fn send(
            &self,
            request: http::Request<Vec<u8>>,
        ) -> Result<http::Response<Vec<u8>>, redisutil::proxy::TransportError> {
            if self.0.requests().len() < 2 {
                redisutil::proxy::HttpTransport::send(&*self.0, request)
            } else {
                redisutil::proxy::HttpTransport::send(&self.1, request)
            }
        }
    }

    /// On the system clock the pause is a timer of the runtime: the call
    /// waits it out, and the thread goes on running other tasks meanwhile
    /// (this runtime has one thread).
    #[tokio::test]
    async fn on_the_system_clock_the_pause_is_awaited_without_blocking_the_thread() {
        let fake = FakeTransport::new();
        fake.set_default("10.0.0.1:80", Outcome::Refused);
        let config = ProxyConfig {
            retry: 2,
            round_backoff: Duration::from_millis(100),
            ..ProxyConfig::with_hosts([("10.0.0.1", 80)])
        };
        let client = AsyncRedisProxyClient::new(fake, config)
            .unwrap()
            .with_clock(SystemClock);
        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let started = Instant::now();
        let error = client.get::<String>("k").await.unwrap_err();
        let elapsed = started.elapsed();
        ticker.abort();
        assert!(error.is_connection(), "{error}");
        assert_eq!(client.transport().requests().len(), 3);
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(
            ticks.load(Ordering::SeqCst) >= 5,
            "the ticker ran {} times during the pauses",
            ticks.load(Ordering::SeqCst)
        );
    }
}
