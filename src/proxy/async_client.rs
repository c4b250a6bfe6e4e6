//! [`AsyncRedisProxyClient`] (feature `tokio`): the proxy client whose
//! calls are futures. It walks hosts, rounds and clusters with the same
//! state machine as [`RedisProxyClient`](crate::proxy::RedisProxyClient)
//! (`failover.rs`), so requests, signatures, decisions, errors and events
//! are the same; only the sending and the pauses are awaited.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock};
use crate::proxy::answered::Answered;
use crate::proxy::async_transport::AsyncHttpTransport;
use crate::proxy::client::{Shared, encode};
use crate::proxy::config::{CallOptions, ProxyConfig};
use crate::proxy::error::Error;
use crate::proxy::failover::{Op, Step, Walk};

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
/// ([`ProxyConfig::round_backoff`]) is awaited on `tokio::time` when the
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
/// use redisutil::proxy::{AsyncRedisProxyClient, CallOptions, MemoryProxy, ProxyConfig};
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

impl<T> Clone for AsyncRedisProxyClient<T> {
    /// Another handle on the same transport and config.
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            clock: Arc::clone(&self.clock),
        }
    }
}

impl<T> fmt::Debug for AsyncRedisProxyClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncRedisProxyClient")
            .field("config", &self.shared.config)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

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
    /// use redisutil::proxy::{AsyncRedisProxyClient, ProxyConfig};
    ///
    /// // Creating a client connects to nothing.
    /// let client = AsyncRedisProxyClient::connect(ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
    /// assert_eq!(client.config().proxy_hosts[0].len(), 1);
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn connect(config: ProxyConfig) -> Result<Self, Error> {
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
    /// use redisutil::proxy::{AsyncRedisProxyClient, HyperConfig, ProxyConfig};
    ///
    /// let client = AsyncRedisProxyClient::connect_with(
    ///     ProxyConfig::with_hosts([("127.0.0.1", 2222)]),
    ///     HyperConfig::with_timeout(Duration::from_millis(500)),
    /// )?;
    /// assert_eq!(client.transport().config().timeout, Duration::from_millis(500));
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn connect_with(
        config: ProxyConfig,
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
    /// A client sending through `transport`, on the system clock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config has no cluster, an empty
    /// cluster or an invalid host
    /// ([`ProxyHost::validate`](crate::proxy::ProxyHost::validate)).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{AsyncRedisProxyClient, MemoryProxy, ProxyConfig};
    ///
    /// let config = ProxyConfig::with_hosts([("127.0.0.1", 1)]);
    /// let client = AsyncRedisProxyClient::new(MemoryProxy::new(), config)?;
    /// assert!(AsyncRedisProxyClient::new(MemoryProxy::new(), ProxyConfig::default()).is_err());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn new(transport: T, config: ProxyConfig) -> Result<Self, Error> {
        Ok(Self {
            shared: Arc::new(Shared::new(transport, config)?),
            clock: Arc::new(SystemClock),
        })
    }

    /// Uses `clock` for signing dates and the pauses between rounds (this
    /// handle and the clones made from it afterwards).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.shared.config
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.shared.transport
    }

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

    /// The value at `key`; [`Error::KeyNotFound`] when there is none. The async [`RedisProxyClient::get`](crate::proxy::RedisProxyClient::get).
    ///
    /// # Errors
    ///
    /// Any [`Error`]; [`Error::Decode`] when the value is not a `V`.
    pub async fn get<V: DeserializeOwned>(&self, key: &str) -> Result<V, Error> {
        self.get_answered(key, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`get`](Self::get) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn get_with<V: DeserializeOwned>(
        &self,
        key: &str,
        options: &CallOptions,
    ) -> Result<V, Error> {
        self.get_answered(key, options)
            .await
            .map(Answered::into_value)
    }

    /// [`get_with`](Self::get_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn get_answered<V: DeserializeOwned>(
        &self,
        key: &str,
        options: &CallOptions,
    ) -> Result<Answered<V>, Error> {
        let op = Op::get(key, options)?;
        self.walk(&op, options).await?.decoded()
    }

    /// Sets `key` to the JSON of `value`. The async [`RedisProxyClient::set`](crate::proxy::RedisProxyClient::set).
    ///
    /// # Errors
    ///
    /// Any [`Error`]; [`Error::PartialWrite`] when some clusters took the
    /// write and others did not. When no cluster took it, the main
    /// cluster's error, as with a single cluster.
    pub async fn set<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Result<(), Error> {
        self.set_answered(key, value, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`set`](Self::set) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub async fn set_with<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error> {
        self.set_answered(key, value, options)
            .await
            .map(Answered::into_value)
    }

    /// [`set_with`](Self::set_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub async fn set_answered<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<Answered<()>, Error> {
        let op = Op::set(key, encode(value)?, options)?;
        Ok(self.walk(&op, options).await?.written())
    }

    /// The value of field `hashkey` in hash `hashname`. The async [`RedisProxyClient::hget`](crate::proxy::RedisProxyClient::hget).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn hget<V: DeserializeOwned>(
        &self,
        hashname: &str,
        hashkey: &str,
    ) -> Result<V, Error> {
        self.hget_answered(hashname, hashkey, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`hget`](Self::hget) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`hget`](Self::hget).
    pub async fn hget_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<V, Error> {
        self.hget_answered(hashname, hashkey, options)
            .await
            .map(Answered::into_value)
    }

    /// [`hget_with`](Self::hget_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`hget`](Self::hget).
    pub async fn hget_answered<V: DeserializeOwned>(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<Answered<V>, Error> {
        let op = Op::hget(hashname, hashkey, options)?;
        self.walk(&op, options).await?.decoded()
    }

    /// Sets field `hashkey` of hash `hashname` to the JSON of `value`. The async [`RedisProxyClient::hset`](crate::proxy::RedisProxyClient::hset).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub async fn hset<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
    ) -> Result<(), Error> {
        self.hset_answered(hashname, hashkey, value, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`hset`](Self::hset) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`hset`](Self::hset).
    pub async fn hset_with<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error> {
        self.hset_answered(hashname, hashkey, value, options)
            .await
            .map(Answered::into_value)
    }

    /// [`hset_with`](Self::hset_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`hset`](Self::hset).
    pub async fn hset_answered<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<Answered<()>, Error> {
        let op = Op::hset(hashname, hashkey, encode(value)?, options)?;
        Ok(self.walk(&op, options).await?.written())
    }

    /// The field names of hash `hashname`. The async [`RedisProxyClient::hkeys`](crate::proxy::RedisProxyClient::hkeys).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn hkeys(&self, hashname: &str) -> Result<Vec<String>, Error> {
        self.hkeys_answered(hashname, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`hkeys`](Self::hkeys) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`hkeys`](Self::hkeys).
    pub async fn hkeys_with(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Vec<String>, Error> {
        self.hkeys_answered(hashname, options)
            .await
            .map(Answered::into_value)
    }

    /// [`hkeys_with`](Self::hkeys_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`hkeys`](Self::hkeys).
    pub async fn hkeys_answered(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Answered<Vec<String>>, Error> {
        let op = Op::hkeys(hashname, options)?;
        self.walk(&op, options).await?.decoded()
    }

    /// The values of hash `hashname`. The async [`RedisProxyClient::hvals`](crate::proxy::RedisProxyClient::hvals).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn hvals<V: DeserializeOwned>(&self, hashname: &str) -> Result<Vec<V>, Error> {
        self.hvals_answered(hashname, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`hvals`](Self::hvals) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`hvals`](Self::hvals).
    pub async fn hvals_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Vec<V>, Error> {
        self.hvals_answered(hashname, options)
            .await
            .map(Answered::into_value)
    }

    /// [`hvals_with`](Self::hvals_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`hvals`](Self::hvals).
    pub async fn hvals_answered<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Answered<Vec<V>>, Error> {
        let op = Op::hvals(hashname, options)?;
        self.walk(&op, options).await?.decoded()
    }

    /// Every field of hash `hashname` with its value. The async [`RedisProxyClient::hgetall`](crate::proxy::RedisProxyClient::hgetall).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn hgetall<V: DeserializeOwned>(
        &self,
        hashname: &str,
    ) -> Result<HashMap<String, V>, Error> {
        self.hgetall_answered(hashname, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`hgetall`](Self::hgetall) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`hgetall`](Self::hgetall).
    pub async fn hgetall_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<HashMap<String, V>, Error> {
        self.hgetall_answered(hashname, options)
            .await
            .map(Answered::into_value)
    }

    /// [`hgetall_with`](Self::hgetall_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`hgetall`](Self::hgetall).
    pub async fn hgetall_answered<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Answered<HashMap<String, V>>, Error> {
        let op = Op::hgetall(hashname, options)?;
        self.walk(&op, options).await?.decoded()
    }

    /// Deletes `key` (a string or a whole hash). The async [`RedisProxyClient::delete`](crate::proxy::RedisProxyClient::delete).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.delete_answered(key, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`delete`](Self::delete) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`delete`](Self::delete).
    pub async fn delete_with(&self, key: &str, options: &CallOptions) -> Result<(), Error> {
        self.delete_answered(key, options)
            .await
            .map(Answered::into_value)
    }

    /// [`delete_with`](Self::delete_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`delete`](Self::delete).
    pub async fn delete_answered(
        &self,
        key: &str,
        options: &CallOptions,
    ) -> Result<Answered<()>, Error> {
        let op = Op::delete(key, options)?;
        Ok(self.walk(&op, options).await?.written())
    }

    /// Deletes field `hashkey` of hash `hashname`. The async [`RedisProxyClient::hdel`](crate::proxy::RedisProxyClient::hdel).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub async fn hdel(&self, hashname: &str, hashkey: &str) -> Result<(), Error> {
        self.hdel_answered(hashname, hashkey, &CallOptions::new())
            .await
            .map(Answered::into_value)
    }

    /// [`hdel`](Self::hdel) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`hdel`](Self::hdel).
    pub async fn hdel_with(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<(), Error> {
        self.hdel_answered(hashname, hashkey, options)
            .await
            .map(Answered::into_value)
    }

    /// [`hdel_with`](Self::hdel_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`hdel`](Self::hdel).
    pub async fn hdel_answered(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<Answered<()>, Error> {
        let op = Op::hdel(hashname, hashkey, options)?;
        Ok(self.walk(&op, options).await?.written())
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::AsyncRedisProxyClient;
    use crate::proxy::{
        AsyncHttpTransport, FakeTransport, MemoryProxy, ProxyConfig, RoutingTransport,
    };

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
