//! The async proxy client, `AsyncRedisProxyClient`: the whole proxy
//! conformance suite run on it (through `BlockingAsync`) over the
//! in-memory server and, with the feature `hyper`, over loopback HTTP
//! (and https with `tls-rustls`) through `HyperTransport`; failover on
//! scripted hosts, checked against the blocking client on the same
//! scripts; and a downstream-style test on `MemoryProxy` and a
//! `ManualClock` that neither touches the network nor sleeps.

#[cfg(feature = "hyper")]
mod proxy_support;
#[cfg(all(feature = "hyper", feature = "tls-rustls"))]
mod support;

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
    use redisutil::proxy::{AsyncRedisProxyClient, MemoryProxy, ProxyConfig};
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

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $scenario() {
                redisutil::conformance::$scenario(&super::harness::AsyncMemory::new());
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

/// Failover on scripted hosts (`FakeTransport`): the rules, and the
/// blocking client's very requests and results on the same scripts.
mod failover {
    use std::time::Duration;

    use proptest::prelude::*;
    use redisutil::ManualClock;
    use redisutil::proxy::{
        AsyncRedisProxyClient, AttemptFailure, CallOptions, Error, FakeTransport, Outcome,
        ProxyConfig, ProxyHost, RedisProxyClient, TransportErrorKind,
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
            .get_answered::<String>("k", &CallOptions::new())
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
            .hvals_answered::<u32>("h", &CallOptions::new())
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
            .hdel_answered("h", "f", &CallOptions::new())
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
                    format!("{:?}", blocking.set_answered("k/ü", &[1, 2], &options)),
                    format!("{:?}", runtime.block_on(nonblocking.set_answered("k/ü", &[1, 2], &options))),
                )
            } else {
                (
                    format!("{:?}", blocking.get_answered::<String>("k/ü", &options)),
                    format!("{:?}", runtime.block_on(nonblocking.get_answered::<String>("k/ü", &options))),
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

    use redisutil::proxy::{
        AsyncRedisProxyClient, CallOptions, FakeTransport, MemoryProxy, Outcome, ProxyConfig,
        RoutingTransport,
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
