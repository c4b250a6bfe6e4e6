//! The conformance suites of [`ListStore`] and of the proxy client's
//! [`HttpTransport`](crate::proxy::HttpTransport) and server, public so
//! that a store, a transport or a proxy server of your own runs the very
//! scenarios this crate runs on its own (feature `conformance`): the
//! channel suite on [`MemoryStore`], on Redis and on a Redis Cluster, the
//! proxy suite on [`MemoryProxy`](crate::proxy::MemoryProxy) in memory and
//! over HTTP.
//!
//! A scenario is a function that takes a [`Harness`]: your store, and
//! control of its time and of keys of other types. [`scenarios`] lists
//! them all by name, [`run_all`] runs every one and names those that fail.
//! Scenarios use unique key names, so they may share one store.
//!
//! # Examples
//!
//! A store of your own, here one that wraps the in-memory fake, passes the
//! suite:
//!
//! ```
//! use std::time::Duration;
//! use redisutil::conformance::{self, Harness, MemoryHarness};
//! use redisutil::{ListStore, MemoryStore, StoreError};
//!
//! #[derive(Debug, Clone)]
//! struct MyStore(MemoryStore);
//!
//! impl ListStore for MyStore {
//!     fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
//!         self.0.push(key, values, ttl)
//!     }
//!     fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
//!         self.0.pop(key)
//!     }
//!     fn blocking_pop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
//!         self.0.blocking_pop(key, timeout)
//!     }
//!     fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
//!         self.0.index(key, index)
//!     }
//!     fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
//!         self.0.take_last(key)
//!     }
//!     fn blocking_take_last(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
//!         self.0.blocking_take_last(key, timeout)
//!     }
//!     fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
//!         self.0.scan(pattern)
//!     }
//!     fn ping(&self) -> Result<(), StoreError> {
//!         self.0.ping()
//!     }
//! }
//!
//! /// The harness: the store, and the fake's clock and keys underneath.
//! struct MyHarness(MemoryHarness);
//!
//! impl Harness for MyHarness {
//!     type Store = MyStore;
//!     fn store(&self) -> MyStore {
//!         MyStore(self.0.store())
//!     }
//!     fn advance(&self, by: Duration) {
//!         self.0.advance(by)
//!     }
//!     fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
//!         self.0.blocking(call)
//!     }
//!     fn set_string(&self, key: &str, value: &str) {
//!         self.0.set_string(key, value)
//!     }
//!     fn get_string(&self, key: &str) -> Option<String> {
//!         self.0.get_string(key)
//!     }
//!     fn ttl(&self, key: &str) -> Option<Duration> {
//!         self.0.ttl(key)
//!     }
//!     fn delete(&self, key: &str) {
//!         self.0.delete(key)
//!     }
//! }
//!
//! conformance::run_all(&MyHarness(MemoryHarness::new()));
//! ```
//!
//! # The proxy suite
//!
//! The same for the proxy half: a [`ProxyHarness`] gives clients (a
//! [`RedisProxyClient`](crate::proxy::RedisProxyClient) over a transport,
//! or the async client through [`BlockingAsync`], feature `tokio`: both
//! are [`ProxyCalls`]), the hosts and credentials of a redis proxy server
//! they reach, and control of the server's clock. [`proxy_scenarios`] lists the scenarios (each
//! named `proxy_…`), [`run_all_proxy`] runs them. A transport of your own
//! (another HTTP client) runs them against a known server
//! ([`MemoryProxyHarness::proxy`], served over HTTP if it must be);
//! a server of your own, reached by a known transport
//! ([`UreqTransport`](crate::proxy::UreqTransport)), runs them too. A
//! scenario the harness cannot support (expiry, when the server's time
//! cannot be moved quickly: [`ProxyHarness::time_control`]; signatures,
//! when the server checks none) skips and prints why.
//!
//! A transport that wraps the in-memory server passes the suite:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use redisutil::Clock;
//! use redisutil::conformance::{self, MemoryProxyHarness, ProxyHarness};
//! use redisutil::proxy::{HttpTransport, MemoryProxy, ProxyConfig, RedisProxyClient, TransportError};
//!
//! /// A transport of one's own, here handing requests to the in-memory server.
//! struct MyTransport(MemoryProxy);
//!
//! impl HttpTransport for MyTransport {
//!     fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, TransportError> {
//!         Ok(self.0.handle(&request))
//!     }
//! }
//!
//! /// The harness: clients over the transport, and the server's hosts,
//! /// credentials and clock.
//! struct MyHarness(MemoryProxyHarness);
//!
//! impl ProxyHarness for MyHarness {
//!     type Client = RedisProxyClient<MyTransport>;
//!     fn client_with(&self, config: ProxyConfig) -> RedisProxyClient<MyTransport> {
//!         let transport = MyTransport(self.0.proxy().clone());
//!         RedisProxyClient::new(transport, config).unwrap().with_clock(self.client_clock())
//!     }
//!     fn config(&self) -> ProxyConfig {
//!         self.0.config()
//!     }
//!     fn client_clock(&self) -> Arc<dyn Clock> {
//!         self.0.client_clock()
//!     }
//!     fn advance(&self, by: Duration) {
//!         self.0.advance(by)
//!     }
//! }
//!
//! conformance::run_all_proxy(&MyHarness(MemoryProxyHarness::new()));
//! ```

#[cfg(feature = "tokio")]
mod aio;
mod batch;
mod channel;
mod hostile;
mod lease;
mod list;
#[cfg(feature = "proxy")]
mod proxy;
mod settle;
mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use crate::store::block_on::BlockOn;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use aio::AsyncHarness;
pub use list::{lease_scenarios, scenarios};
#[cfg(all(feature = "proxy", feature = "tokio"))]
pub use proxy::BlockingAsync;
#[cfg(feature = "proxy")]
pub use proxy::{
    MemoryProxyHarness, ProxyCalls, ProxyHarness, Unsupported, proxy_scenarios, run_all_proxy,
};

/// Every scenario, one function each, to run one alone (the `run_*`
/// functions run them all; [`scenarios`], [`lease_scenarios`] and
/// [`proxy_scenarios`] list them by name).
pub mod scenario {
    pub use super::batch::*;
    pub use super::channel::*;
    pub use super::hostile::*;
    pub use super::lease::*;
    #[cfg(feature = "proxy")]
    pub use super::proxy::keys::*;
    #[cfg(feature = "proxy")]
    pub use super::proxy::server::*;
    #[cfg(feature = "proxy")]
    pub use super::proxy::values::*;
    pub use super::settle::*;
    pub use super::store::*;
}

use crate::{ChannelOptions, LeaseStore, ListStore, ManualClock, MemoryStore, Peer, RedisChannel};

/// A store under test, with control of its time and of its keys.
pub trait Harness: Sync {
    /// The store type.
    type Store: ListStore + Clone + Send + Sync + std::fmt::Debug + 'static;

    /// A handle on the store (clones share data).
    fn store(&self) -> Self::Store;

    /// Lets `by` pass, as the store's TTLs see it (a real store: sleep).
    fn advance(&self, by: Duration);

    /// Runs `call`, which may block on a timeout, with the store's time
    /// moving: real time for a real store, a fast-forwarding clock for a
    /// fake.
    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R;

    /// Stores a string at `key` (SET): a key of another type than list.
    fn set_string(&self, key: &str, value: &str);

    /// The string at `key` (GET); `None` when it holds none.
    fn get_string(&self, key: &str) -> Option<String>;

    /// The time left before `key` expires (PTTL); `None` without a TTL or key.
    fn ttl(&self, key: &str) -> Option<Duration>;

    /// Deletes `key`, a list or a string (DEL).
    fn delete(&self, key: &str);

    /// Waits until `condition` holds, up to `within` of the store's time.
    fn eventually(&self, within: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let step = Duration::from_millis(20);
        let mut waited = Duration::ZERO;
        loop {
            if condition() {
                return true;
            }
            if waited >= within {
                return false;
            }
            self.advance(step);
            waited += step;
        }
    }
}

/// The harness of [`MemoryStore`] on a [`ManualClock`].
#[derive(Debug, Clone)]
pub struct MemoryHarness {
    store: MemoryStore,
    clock: ManualClock,
}

impl MemoryHarness {
    /// An empty store on a manual clock.
    pub fn new() -> Self {
        let clock = ManualClock::default();
        Self {
            store: MemoryStore::with_clock(clock.clone()),
            clock,
        }
    }

    /// The clock the store runs on.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }
}

impl Default for MemoryHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness for MemoryHarness {
    type Store = MemoryStore;

    fn store(&self) -> MemoryStore {
        self.store.clone()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        let done = AtomicBool::new(false);
        thread::scope(|scope| {
            scope.spawn(|| {
                // Ten manual milliseconds for each real one.
                while !done.load(Ordering::Acquire) {
                    self.clock.advance(Duration::from_millis(10));
                    thread::sleep(Duration::from_millis(1));
                }
            });
            let result = call();
            done.store(true, Ordering::Release);
            result
        })
    }

    fn set_string(&self, key: &str, value: &str) {
        self.store.set_string(key, value);
    }

    fn get_string(&self, key: &str) -> Option<String> {
        let value = self.store.get_string(key)?;
        Some(String::from_utf8_lossy(&value).into_owned())
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        self.store.ttl(key)
    }

    fn delete(&self, key: &str) {
        self.store.delete(key);
    }
}

/// A scenario: its name and the function that runs it.
pub type Scenario<H> = (&'static str, fn(&H));

/// Runs every scenario on `harness`, then panics naming those that failed.
pub fn run_all<H: Harness>(harness: &H) {
    run_each("conformance", harness, scenarios::<H>());
}

/// Runs every lease scenario on `harness`, then panics naming those that
/// failed.
pub fn run_all_leases<H: Harness>(harness: &H)
where
    H::Store: LeaseStore,
{
    run_each("lease conformance", harness, lease_scenarios::<H>());
}

/// Runs each of `scenarios` on `harness`, then panics naming those of the
/// `suite` that failed.
fn run_each<H>(suite: &str, harness: &H, scenarios: Vec<Scenario<H>>) {
    let failed: Vec<&str> = scenarios
        .into_iter()
        .filter(|(_, scenario)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(harness))).is_err()
        })
        .map(|(name, _)| name)
        .collect();
    assert!(failed.is_empty(), "{suite} scenarios failed: {failed:?}");
}

/// A channel of the harness's store.
type Chan<B> = RedisChannel<<B as Harness>::Store>;

/// Both ends of the channel `name`.
fn pair<B: Harness>(harness: &B, name: &str) -> (Chan<B>, Chan<B>) {
    let client = RedisChannel::new(harness.store(), name, Peer::Client).unwrap();
    let server = RedisChannel::new(harness.store(), name, Peer::Server).unwrap();
    (client, server)
}

/// Both ends of a new channel under `prefix`, the client's sends giving
/// its sending list `ttl`.
fn ttl_pair<B: Harness>(harness: &B, prefix: &str, ttl: Duration) -> (Chan<B>, Chan<B>) {
    let name = unique(prefix);
    let options = ChannelOptions {
        ttl: Some(ttl),
        ..Default::default()
    };
    let client = RedisChannel::with_options(harness.store(), &name, Peer::Client, options).unwrap();
    let server = RedisChannel::new(harness.store(), &name, Peer::Server).unwrap();
    (client, server)
}

/// Runs `attempt` with a TTL of `first`, then, while it fails only
/// because the machine was too slow to tell (it answers how long its timed
/// steps took, and what it saw), again with a TTL twice as long, up to
/// `limit`. What failed with steps quicker than its TTL is a fault, and
/// panics at once. The attempt's result and the TTL it passed with.
fn with_a_ttl_long_enough<T>(
    first: Duration,
    limit: Duration,
    mut attempt: impl FnMut(Duration) -> Result<T, (Duration, String)>,
) -> (T, Duration) {
    let mut ttl = first;
    loop {
        match attempt(ttl) {
            Ok(passed) => return (passed, ttl),
            Err((took, what)) => assert!(
                took >= ttl && ttl < limit,
                "{what}, {took:?} after it began, TTL {ttl:?}"
            ),
        }
        ttl *= 2;
    }
}

/// A name no other scenario in this process uses.
fn unique(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}/{}", SEQ.fetch_add(1, Ordering::Relaxed))
}
