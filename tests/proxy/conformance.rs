//! The proxy conformance suite, `redisutil::conformance::proxy_scenarios`:
//! every scenario runs on the in-memory server reached directly
//! (`memory::*`) and, with the `ureq` feature, on the same server served
//! over loopback HTTP and reached by the real transport (`http::*`).

#[cfg(feature = "ureq")]
use crate::proxy_support;

/// `UreqTransport` against `MemoryProxy` served over loopback HTTP, on
/// the in-memory harness's clock and credentials.
#[cfg(feature = "ureq")]
mod over_http {
    use std::sync::Arc;
    use std::time::Duration;

    use redisutil::Clock;
    use redisutil::conformance::{MemoryProxyHarness, ProxyHarness};
    use redisutil::proxy::{ProxyConfig, RedisProxyClient, UreqConfig, UreqTransport};

    use super::proxy_support::TestServer;

    pub struct HttpHarness {
        memory: MemoryProxyHarness,
        server: TestServer,
    }

    impl HttpHarness {
        pub fn new() -> Self {
            let memory = MemoryProxyHarness::new();
            let proxy = memory.proxy().clone();
            let server = TestServer::serve(move |request| proxy.handle(request));
            Self { memory, server }
        }
    }

    impl ProxyHarness for HttpHarness {
        type Client = RedisProxyClient<UreqTransport>;

        fn client_with(&self, config: ProxyConfig) -> RedisProxyClient<UreqTransport> {
            RedisProxyClient::new(UreqTransport::new(UreqConfig::default()), config)
                .expect("a valid config")
                .with_clock(self.client_clock())
        }

        fn config(&self) -> ProxyConfig {
            self.memory.config_for([self.server.host()])
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
                redisutil::conformance::scenario::$scenario(&redisutil::conformance::MemoryProxyHarness::new());
            } )*
        }
        #[cfg(feature = "ureq")]
        mod http {
            $( #[test] fn $scenario() {
                redisutil::conformance::scenario::$scenario(&super::over_http::HttpHarness::new());
            } )*
        }

        /// The list the crate publishes is the list this file runs.
        #[test]
        fn every_published_scenario_runs_here() {
            let here = [$(stringify!($scenario)),*];
            let published: Vec<&str> = redisutil::conformance::proxy_scenarios::<redisutil::conformance::MemoryProxyHarness>()
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

/// The suite passes whole through `run_all_proxy`, and fails backends
/// that break the contract.
mod the_suite_itself {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;
    use std::time::Duration;

    use redisutil::conformance::{self, MemoryProxyHarness, ProxyHarness, Unsupported};
    use redisutil::proxy::{
        HttpTransport, MemoryProxy, ProxyConfig, RedisProxyClient, TransportError, http::Request,
        http::Response,
    };
    use redisutil::{Clock, ManualClock};

    /// A server that may be broken in one way, behind a transport that may
    /// be broken in another.
    struct Broken {
        proxy: MemoryProxy,
        clock: ManualClock,
        config: ProxyConfig,
        /// `advance` moves no clock.
        frozen: bool,
        /// The transport decodes `%2F` before sending.
        decodes_slashes: bool,
        /// `time_control` says no.
        no_time: bool,
    }

    impl Broken {
        /// A server checking no signature, for a harness saying so.
        fn unsigned() -> Self {
            let clock = ManualClock::default();
            Self {
                proxy: MemoryProxy::builder().clock(clock.clone()).build(),
                clock,
                config: ProxyConfig::with_hosts([("127.0.0.1", 2222)]),
                frozen: false,
                decodes_slashes: false,
                no_time: false,
            }
        }
    }

    struct BrokenTransport {
        proxy: MemoryProxy,
        decodes_slashes: bool,
    }

    impl HttpTransport for BrokenTransport {
        fn send(&self, mut request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
            if self.decodes_slashes {
                let uri = request.uri().to_string().replace("%2F", "/");
                *request.uri_mut() = uri.parse().expect("a URI");
            }
            Ok(self.proxy.handle(&request))
        }
    }

    impl ProxyHarness for Broken {
        type Client = RedisProxyClient<BrokenTransport>;

        fn client_with(&self, config: ProxyConfig) -> RedisProxyClient<BrokenTransport> {
            let transport = BrokenTransport {
                proxy: self.proxy.clone(),
                decodes_slashes: self.decodes_slashes,
            };
            RedisProxyClient::new(transport, config)
                .expect("a valid config")
                .with_clock(self.client_clock())
        }

        fn config(&self) -> ProxyConfig {
            self.config.clone()
        }

        fn client_clock(&self) -> Arc<dyn Clock> {
            Arc::new(self.clock.clone())
        }

        fn time_control(&self) -> Result<(), Unsupported> {
            if self.no_time {
                Err(Unsupported::new("the server runs on real time"))
            } else {
                Ok(())
            }
        }

        fn advance(&self, by: Duration) {
            assert!(!self.no_time, "advance called without time control");
            if !self.frozen {
                self.clock.advance(by);
            }
        }
    }

    fn fails(scenario: impl FnOnce()) -> bool {
        catch_unwind(AssertUnwindSafe(scenario)).is_err()
    }

    #[test]
    fn run_all_proxy_passes_on_the_memory_harness() {
        conformance::run_all_proxy(&MemoryProxyHarness::new());
    }

    #[test]
    fn an_unsigned_server_without_time_control_passes_what_it_can() {
        let harness = Broken {
            no_time: true,
            ..Broken::unsigned()
        };
        conformance::run_all_proxy(&harness);
    }

    #[test]
    fn a_server_that_never_expires_fails_the_expiry_scenarios() {
        let harness = Broken {
            frozen: true,
            ..Broken::unsigned()
        };
        assert!(fails(|| {
            conformance::scenario::proxy_expire_is_honoured_on_keys(&harness)
        }));
        assert!(fails(|| {
            conformance::scenario::proxy_expire_is_honoured_on_hash_fields(&harness)
        }));
        assert!(fails(|| conformance::run_all_proxy(&harness)));
    }

    #[test]
    fn a_server_that_checks_no_signature_fails_the_signature_scenario() {
        let mut harness = Broken::unsigned();
        harness.config = MemoryProxyHarness::new().config();
        assert!(fails(|| {
            conformance::scenario::proxy_signatures_are_accepted_and_a_wrong_secret_refused(
                &harness,
            )
        }));
    }

    #[test]
    fn a_transport_that_decodes_slashes_fails_the_key_scenario() {
        let harness = Broken {
            decodes_slashes: true,
            ..Broken::unsigned()
        };
        assert!(fails(|| {
            conformance::scenario::proxy_awkward_keys_round_trip(&harness)
        }));
    }
}
