//! [`RedisProxyClient`]: the typed API (`get`, `set`, `hget`, `hset`,
//! `hkeys`, `hvals`, `hgetall`, `delete`, `hdel`) over any
//! [`HttpTransport`].

use std::sync::Arc;

use crate::clock::Clock;
use crate::proxy::answered::Answered;
use crate::proxy::commands::{proxy_client, proxy_commands};
use crate::proxy::config::CallOptions;
use crate::proxy::error::Error;
use crate::proxy::transport::HttpTransport;
use crate::proxy::walk::{Op, Shared, Step, Walk};

/// A client for a redis proxy server: JSON values by key and hash field,
/// signed requests, host failover, retries and backup clusters.
///
/// Reads (`get`, `hget`, `hkeys`, `hvals`, `hgetall`) try the main cluster,
/// then each backup cluster in order, and return the first success.
/// Writes (`set`, `hset`, `delete`, `hdel`) go to every cluster; see
/// [`Error::PartialWrite`]. Each operation has an `*_answered` form that
/// also returns the host that answered and the number of attempts
/// ([`Answered`]). Within a cluster, hosts are tried in order for
/// `retry + 1` rounds, moving on when a host cannot be reached or answers
/// 502, 503 or 504.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redisutil::ManualClock;
/// use redisutil::proxy::{CallOptions, MemoryProxy, ProxyConfig, RedisProxyClient};
///
/// let clock = ManualClock::default();
/// let server = MemoryProxy::builder().clock(clock.clone()).build();
/// let client = RedisProxyClient::new(server, ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?
///     .with_clock(clock.clone());
///
/// client.set("k1", "v1")?;
/// client.set_with("k2", "v2", &CallOptions::new().expire(Duration::from_millis(1000)))?;
/// assert_eq!(client.get::<String>("k1")?, "v1");
/// clock.advance(Duration::from_secs(1));
/// assert!(client.get::<String>("k2").unwrap_err().is_key_not_found());
///
/// // A config without hosts is refused when the client is made.
/// assert!(RedisProxyClient::new(MemoryProxy::new(), ProxyConfig::default()).is_err());
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
///
/// # Sharing
///
/// A client is cheap to clone: clones share its transport (so a
/// [`UreqTransport`](crate::proxy::UreqTransport)'s kept-alive connections),
/// its config and its signer, and can be used from many threads at once
/// (when the transport is `Send + Sync`, as every transport of this crate
/// is).
///
/// ```
/// use std::thread;
/// use redisutil::proxy::{MemoryProxy, ProxyConfig, RedisProxyClient};
///
/// let client = RedisProxyClient::new(MemoryProxy::new(), ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
/// let workers: Vec<_> = (0..4)
///     .map(|worker| {
///         let client = client.clone();
///         thread::spawn(move || client.set(&format!("k{worker}"), &worker))
///     })
///     .collect();
/// for worker in workers {
///     worker.join().expect("no panic")?;
/// }
/// assert_eq!(client.get::<u32>("k3")?, 3);
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
pub struct RedisProxyClient<T> {
    /// What every clone shares.
    pub(crate) shared: Arc<Shared<T>>,
    /// Signing dates and backoff sleeps; a clone may have its own
    /// ([`with_clock`](Self::with_clock)).
    pub(crate) clock: Arc<dyn Clock>,
}

proxy_client!(RedisProxyClient);

#[cfg(feature = "ureq")]
impl RedisProxyClient<crate::proxy::UreqTransport> {
    /// A client over real HTTP with the default transport settings
    /// (timeouts 2 s, bodies up to 16 MiB): [`connect_with`](Self::connect_with)
    /// and [`UreqConfig::default`](crate::proxy::UreqConfig::default).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config is invalid.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{ProxyConfig, RedisProxyClient};
    ///
    /// // Creating a client connects to nothing.
    /// let client = RedisProxyClient::connect(ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
    /// assert_eq!(client.config().proxy_hosts[0].len(), 1);
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn connect(config: crate::proxy::ProxyConfig) -> Result<Self, Error> {
        Self::connect_with(config, crate::proxy::UreqConfig::default())
    }

    /// A client over real HTTP: a new [`UreqTransport`](crate::proxy::UreqTransport)
    /// with `transport`'s timeouts and body bound.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config or the transport settings
    /// are invalid ([`UreqConfig::validate`](crate::proxy::UreqConfig::validate)).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisutil::proxy::{ProxyConfig, RedisProxyClient, UreqConfig};
    ///
    /// let client = RedisProxyClient::connect_with(
    ///     ProxyConfig::with_hosts([("127.0.0.1", 2222)]),
    ///     UreqConfig::with_timeout(Duration::from_millis(500)),
    /// )?;
    /// assert_eq!(client.transport().config().timeout, Duration::from_millis(500));
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn connect_with(
        config: crate::proxy::ProxyConfig,
        transport: crate::proxy::UreqConfig,
    ) -> Result<Self, Error> {
        transport.validate()?;
        Self::new(crate::proxy::UreqTransport::new(transport), config)
    }
}

impl<T: HttpTransport> RedisProxyClient<T> {
    /// Walks `op` over the clusters, sending through the transport and
    /// pausing on the clock: a read's 200 body, a write's empty one.
    fn walk(&self, op: &Op, options: &CallOptions) -> Result<Answered<Vec<u8>>, Error> {
        let mut walk = Walk::new(&self.shared, &*self.clock, op, options);
        loop {
            match walk.next() {
                Step::Send(request) => walk.answer(self.shared.transport.send(request)),
                Step::Pause(pause) => self.clock.sleep(pause),
                Step::Done(result) => return result,
            }
        }
    }

    proxy_commands!(blocking);
}

#[cfg(test)]
mod tests {
    use super::RedisProxyClient;
    use crate::proxy::{FakeTransport, MemoryProxy, ProxyConfig, RoutingTransport};

    fn shareable<C: Clone + Send + Sync + 'static>() {}

    #[test]
    fn clients_are_shareable_across_threads() {
        shareable::<RedisProxyClient<MemoryProxy>>();
        shareable::<RedisProxyClient<FakeTransport>>();
        shareable::<RedisProxyClient<RoutingTransport>>();
        #[cfg(feature = "ureq")]
        shareable::<RedisProxyClient<crate::proxy::UreqTransport>>();
    }

    #[test]
    fn clones_share_transport_and_config() {
        let server = MemoryProxy::new();
        let client =
            RedisProxyClient::new(server.clone(), ProxyConfig::with_hosts([("127.0.0.1", 1)]))
                .unwrap();
        let clone = client.clone();
        assert!(std::ptr::eq(client.transport(), clone.transport()));
        assert!(std::ptr::eq(client.config(), clone.config()));
        clone.set("k", &1).unwrap();
        assert_eq!(client.get::<u32>("k").unwrap(), 1);
        assert_eq!(server.requests_handled(), 2);
    }
}
