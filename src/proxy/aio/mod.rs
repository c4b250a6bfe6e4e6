//! The async proxy client (feature `tokio`): [`AsyncRedisProxyClient`],
//! whose calls are futures, and [`AsyncHttpTransport`], what it sends
//! through. It walks hosts, rounds and clusters with the same state machine
//! as [`RedisProxyClient`](crate::proxy::RedisProxyClient) and has the same
//! commands, so requests, signatures, decisions, errors and events are the
//! same; only the sending and the pauses are awaited.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::proxy::answered::Answered;
use crate::proxy::commands::{proxy_client, proxy_commands};
use crate::proxy::config::CallOptions;
use crate::proxy::error::Error;
use crate::proxy::walk::{Op, Shared, Step, Walk};

mod transport;

pub use transport::AsyncHttpTransport;

/// A client for a redis proxy server whose calls are futures: the async
/// [`RedisProxyClient`](crate::proxy::RedisProxyClient), with the same
/// operations, options, failover, signing and errors.
///
/// It sends through an [`AsyncHttpTransport`]: `HyperTransport` for real
/// HTTP (feature `hyper`, [`connect`](Self::connect)), or one of the
/// in-memory fakes ([`MemoryProxy`](crate::proxy::MemoryProxy),
/// [`FakeTransport`](crate::proxy::FakeTransport),
/// [`RoutingTransport`](crate::proxy::RoutingTransport)), the very
/// instances a blocking client takes. The pause between rounds
/// ([`ProxyConfig::round_backoff`](crate::proxy::ProxyConfig::round_backoff)) is awaited on `tokio::time` when the
/// client's clock sleeps for real ([`Clock::sleeps_for_real`]); a
/// [`ManualClock`](crate::ManualClock) is moved forward instead, so a test
/// never waits. No call blocks the thread that polls it (with a transport
/// that does not). Dropping a call's future cancels it between two
/// requests or during one; nothing is left behind but what the server
/// already took.
///
/// The futures are `Send` when the transport is `Send + Sync` (as every
/// transport of this crate is) and, for `set` and `hset`, the value is
/// `Sync`.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redisutil::ManualClock;
/// use redisutil::proxy::{CallOptions, MemoryProxy, ProxyConfig};
/// use redisutil::proxy::aio::AsyncRedisProxyClient;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let clock = ManualClock::default();
/// let server = MemoryProxy::builder().clock(clock.clone()).build();
/// let config = ProxyConfig::with_hosts([("127.0.0.1", 2222)]);
/// let client = AsyncRedisProxyClient::new(server, config)?.with_clock(clock.clone());
///
/// client.set("k1", "v1").await?;
/// client.set_with("k2", "v2", &CallOptions::new().expire(Duration::from_secs(1))).await?;
/// assert_eq!(client.get::<String>("k1").await?, "v1");
/// clock.advance(Duration::from_secs(1));
/// assert!(client.get::<String>("k2").await.unwrap_err().is_key_not_found());
/// assert!(AsyncRedisProxyClient::new(MemoryProxy::new(), ProxyConfig::default()).is_err());
/// # Ok::<(), redisutil::proxy::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Sharing
///
/// Cheap to clone (two reference counts): clones share the transport, with
/// its kept-alive connections, the config and the signer, and can be moved
/// into tasks.
pub struct AsyncRedisProxyClient<T> {
    shared: Arc<Shared<T>>,
    clock: Arc<dyn Clock>,
}

proxy_client!(AsyncRedisProxyClient);

#[cfg(feature = "hyper")]
impl AsyncRedisProxyClient<crate::proxy::HyperTransport> {
    /// A client over real HTTP with the default transport settings
    /// (timeouts 2 s, bodies up to 16 MiB): [`connect_with`](Self::connect_with)
    /// and [`HyperConfig::default`](crate::proxy::HyperConfig::default)
    /// (feature `hyper`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config is invalid.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{ProxyConfig};
    /// use redisutil::proxy::aio::AsyncRedisProxyClient;
    ///
    /// // Creating a client connects to nothing.
    /// let client = AsyncRedisProxyClient::connect(ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
    /// assert_eq!(client.config().proxy_hosts[0].len(), 1);
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn connect(config: crate::proxy::ProxyConfig) -> Result<Self, Error> {
        Self::connect_with(config, crate::proxy::HyperConfig::default())
    }

    /// A client over real HTTP: a new
    /// [`HyperTransport`](crate::proxy::HyperTransport) with `transport`'s
    /// timeouts and body bound (feature `hyper`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config or the transport settings
    /// are invalid ([`TransportConfig::validate`](crate::proxy::TransportConfig::validate)).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisutil::proxy::{HyperConfig, ProxyConfig};
    /// use redisutil::proxy::aio::AsyncRedisProxyClient;
    ///
    /// let client = AsyncRedisProxyClient::connect_with(
    ///     ProxyConfig::with_hosts([("127.0.0.1", 2222)]),
    ///     HyperConfig::with_timeout(Duration::from_millis(500)),
    /// )?;
    /// assert_eq!(client.transport().config().timeout, Duration::from_millis(500));
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn connect_with(
        config: crate::proxy::ProxyConfig,
        transport: crate::proxy::HyperConfig,
    ) -> Result<Self, Error> {
        transport.validate()?;
        Self::new(crate::proxy::HyperTransport::new(transport), config)
    }
}

/// Waits `pause` on `clock`: on the runtime's timer when the clock sleeps
/// for real, else by telling the clock (a manual one moves at once).
async fn pause_on(clock: &dyn Clock, pause: Duration) {
    if clock.sleeps_for_real() {
        tokio::time::sleep(pause).await;
    } else {
        clock.sleep(pause);
    }
}

impl<T: AsyncHttpTransport> AsyncRedisProxyClient<T> {
    /// Walks `op` over the clusters, awaiting the transport and the
    /// pauses: a read's 200 body, a write's empty one.
    async fn walk(&self, op: &Op, options: &CallOptions) -> Result<Answered<Vec<u8>>, Error> {
        let mut walk = Walk::new(&self.shared, &*self.clock, op, options);
        loop {
            match walk.next() {
                Step::Send(request) => walk.answer(self.shared.transport.send(request).await),
                Step::Pause(pause) => pause_on(&*self.clock, pause).await,
                Step::Done(result) => return result,
            }
        }
    }

    proxy_commands!(async);
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::AsyncRedisProxyClient;
    use crate::proxy::aio::AsyncHttpTransport;
    use crate::proxy::{FakeTransport, MemoryProxy, ProxyConfig, RoutingTransport};

    fn sendable<F: Future + Send>(_: F) {}

    fn calls_are_send<T: AsyncHttpTransport + Send + Sync>(client: &AsyncRedisProxyClient<T>) {
        sendable(client.get::<String>("k"));
        sendable(client.set("k", "v"));
        sendable(client.hgetall::<u32>("h"));
        sendable(client.hdel("h", "f"));
    }

    #[test]
    fn futures_are_send_and_clients_shareable() {
        fn shareable<C: Clone + Send + Sync + 'static>() {}
        shareable::<AsyncRedisProxyClient<MemoryProxy>>();
        shareable::<AsyncRedisProxyClient<FakeTransport>>();
        shareable::<AsyncRedisProxyClient<RoutingTransport>>();
        #[cfg(feature = "hyper")]
        shareable::<AsyncRedisProxyClient<crate::proxy::HyperTransport>>();
        let config = ProxyConfig::with_hosts([("127.0.0.1", 1)]);
        calls_are_send(&AsyncRedisProxyClient::new(MemoryProxy::new(), config.clone()).unwrap());
        calls_are_send(&AsyncRedisProxyClient::new(FakeTransport::new(), config.clone()).unwrap());
        calls_are_send(
            &AsyncRedisProxyClient::new(RoutingTransport::new(), config.clone()).unwrap(),
        );
        #[cfg(feature = "hyper")]
        calls_are_send(&AsyncRedisProxyClient::connect(config.clone()).unwrap());
        let client = AsyncRedisProxyClient::new(MemoryProxy::new(), config).unwrap();
        let clone = client.clone();
        assert!(std::ptr::eq(client.transport(), clone.transport()));
        assert!(std::ptr::eq(client.config(), clone.config()));
    }
}
