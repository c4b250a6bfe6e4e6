//! The proxy half of the suite: [`ProxyHarness`], [`MemoryProxyHarness`],
//! the calls the scenarios make ([`ProxyCalls`], `calls.rs`), the
//! scenarios (`values.rs`, `keys.rs`, `server.rs`), their list and their
//! runner.

mod calls;
pub(super) mod keys;
pub(super) mod server;
pub(super) mod values;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "tokio")]
pub use calls::BlockingAsync;
pub use calls::ProxyCalls;

use super::Scenario;
use crate::proxy::{
    Credentials, MemoryProxy, ProxyConfig, ProxyHost, RedisProxyClient, SignatureVersion, Signer,
};
use crate::{Clock, ManualClock};

/// A redis proxy server under test, the client that reaches it, and
/// control of its time.
///
/// The server implements the protocol of
/// [`MemoryProxy`](crate::proxy::MemoryProxy) at the hosts of
/// [`config`](Self::config), reached by the clients
/// [`client_with`](Self::client_with) makes: a [`RedisProxyClient`] over
/// some [`HttpTransport`](crate::proxy::HttpTransport), or an
/// [`AsyncRedisProxyClient`](crate::proxy::aio::AsyncRedisProxyClient) run by
/// [`BlockingAsync`] (feature `tokio`). A new transport (another HTTP
/// client) is tested by reaching a known server with it; a new server, by
/// reaching it with a known transport.
pub trait ProxyHarness {
    /// The client the scenarios call.
    type Client: ProxyCalls;

    /// How to reach the server: its hosts (one cluster of one host is
    /// enough), and the credentials and signature version it verifies.
    /// `credentials: None` says that it checks no signature: the scenario
    /// that needs one then skips, saying so.
    fn config(&self) -> ProxyConfig;

    /// A client of the server with `config`, signing on
    /// [`client_clock`](Self::client_clock); for a [`RedisProxyClient`]:
    /// `RedisProxyClient::new(transport, config)?.with_clock(self.client_clock())`.
    ///
    /// # Panics
    ///
    /// When `config` is refused ([`ProxyConfig::validate`]).
    fn client_with(&self, config: ProxyConfig) -> Self::Client;

    /// A client of the server with [`config`](Self::config).
    fn client(&self) -> Self::Client {
        self.client_with(self.config())
    }

    /// The clock the client signs with: the server's, so that the
    /// signatures it makes are current for the server. Default: the system
    /// clock.
    fn client_clock(&self) -> Arc<dyn Clock> {
        Arc::new(crate::SystemClock)
    }

    /// Whether [`advance`](Self::advance) can move the server's time
    /// quickly: `Ok`, or why not, and the expiry scenarios then skip,
    /// printing the reason. Default `Ok`.
    fn time_control(&self) -> Result<(), Unsupported> {
        Ok(())
    }

    /// Lets `by` pass, as the server's expiry sees it, and on
    /// [`client_clock`](Self::client_clock) (a server on real time:
    /// sleep). Called only when [`time_control`](Self::time_control) is
    /// `Ok`.
    fn advance(&self, by: Duration);
}

/// Why a harness cannot do what some scenarios need; those scenarios skip
/// and print it.
///
/// # Example
///
/// ```
/// use redisutil::conformance::Unsupported;
///
/// let why = Unsupported::new("the server runs on real time");
/// assert_eq!(why.to_string(), "the server runs on real time");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(Cow<'static, str>);

impl Unsupported {
    /// The reason, a short lower-case phrase.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self(reason.into())
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The harness of [`MemoryProxy`] on a [`ManualClock`], checking SigV4
/// signatures: everything a test needs to run the suite, and the server a
/// transport of your own can be pointed at
/// ([`proxy`](Self::proxy) serves requests through
/// [`MemoryProxy::handle`]). Clones share the server and the clock.
///
/// # Example
///
/// ```
/// use redisutil::conformance::{self, MemoryProxyHarness, ProxyHarness};
///
/// let harness = MemoryProxyHarness::new();
/// harness.client().set("k", "v")?;
/// assert_eq!(harness.client().get::<String>("k")?, "v");
/// conformance::scenario::proxy_signatures_are_accepted_and_a_wrong_secret_refused(&harness);
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemoryProxyHarness {
    proxy: MemoryProxy,
    clock: ManualClock,
    credentials: Credentials,
}

impl MemoryProxyHarness {
    /// The host the in-memory server answers as (any host reaches it).
    const HOST: (&'static str, u16) = ("127.0.0.1", 2222);

    /// An empty server on a manual clock, verifying SigV4 signatures made
    /// with its own credentials.
    pub fn new() -> Self {
        let clock = ManualClock::default();
        let credentials = Credentials::new("conformance-access-key", "conformance-secret-key");
        let proxy = MemoryProxy::builder()
            .clock(clock.clone())
            .signer(Signer::new(credentials.clone(), SignatureVersion::v4()))
            .build();
        Self {
            proxy,
            clock,
            credentials,
        }
    }

    /// The server (clones share its data).
    pub fn proxy(&self) -> &MemoryProxy {
        &self.proxy
    }

    /// The clock the server and its clients run on.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The credentials the server verifies.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A config reaching the server at `hosts`, signing with its
    /// credentials: for a harness that serves [`proxy`](Self::proxy)
    /// elsewhere (over HTTP, say).
    pub fn config_for(&self, hosts: impl IntoIterator<Item = ProxyHost>) -> ProxyConfig {
        ProxyConfig {
            credentials: Some(self.credentials.clone()),
            signature: SignatureVersion::v4(),
            ..ProxyConfig::with_hosts(hosts)
        }
    }
}

impl Default for MemoryProxyHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyHarness for MemoryProxyHarness {
    type Client = RedisProxyClient<MemoryProxy>;

    fn config(&self) -> ProxyConfig {
        self.config_for([ProxyHost::from(Self::HOST)])
    }

    fn client_with(&self, config: ProxyConfig) -> RedisProxyClient<MemoryProxy> {
        RedisProxyClient::new(self.proxy.clone(), config)
            .expect("the harness's config is valid")
            .with_clock(self.client_clock())
    }

    fn client_clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// Every proxy scenario, by name, in a stable order.
pub fn proxy_scenarios<H: ProxyHarness>() -> Vec<Scenario<H>> {
    vec![
        (
            "proxy_set_get_round_trips_typed_values",
            values::proxy_set_get_round_trips_typed_values::<H>,
        ),
        (
            "proxy_hset_hget_round_trips_typed_values",
            values::proxy_hset_hget_round_trips_typed_values::<H>,
        ),
        (
            "proxy_hkeys_hvals_hgetall_list_the_hash",
            values::proxy_hkeys_hvals_hgetall_list_the_hash::<H>,
        ),
        (
            "proxy_missing_keys_are_key_not_found",
            values::proxy_missing_keys_are_key_not_found::<H>,
        ),
        (
            "proxy_delete_and_hdel_remove_only_their_target",
            values::proxy_delete_and_hdel_remove_only_their_target::<H>,
        ),
        (
            "proxy_large_values_round_trip",
            values::proxy_large_values_round_trip::<H>,
        ),
        (
            "proxy_awkward_keys_round_trip",
            keys::proxy_awkward_keys_round_trip::<H>,
        ),
        (
            "proxy_dot_keys_round_trip",
            keys::proxy_dot_keys_round_trip::<H>,
        ),
        (
            "proxy_expire_is_honoured_on_keys",
            server::proxy_expire_is_honoured_on_keys::<H>,
        ),
        (
            "proxy_expire_is_honoured_on_hash_fields",
            server::proxy_expire_is_honoured_on_hash_fields::<H>,
        ),
        (
            "proxy_signatures_are_accepted_and_a_wrong_secret_refused",
            server::proxy_signatures_are_accepted_and_a_wrong_secret_refused::<H>,
        ),
        (
            "proxy_integers_beyond_64_bits_are_decode_errors_holding_the_body",
            server::proxy_integers_beyond_64_bits_are_decode_errors_holding_the_body::<H>,
        ),
    ]
}

/// Runs every proxy scenario on `harness`, then panics naming those that
/// failed. Scenarios the harness cannot run skip, printing why.
pub fn run_all_proxy<H: ProxyHarness>(harness: &H) {
    super::run_each("proxy conformance", harness, proxy_scenarios::<H>());
}

/// `true`, after printing why, when `scenario` cannot run for want of
/// `capability`.
fn skipped(scenario: &str, capability: Result<(), Unsupported>) -> bool {
    match capability {
        Ok(()) => false,
        Err(why) => {
            eprintln!("conformance scenario {scenario} skipped: {why}");
            true
        }
    }
}
