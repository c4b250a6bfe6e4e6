//! [`RedisProxyClient`]: the typed API (`get`, `set`, `hget`, `hset`,
//! `hkeys`, `hvals`, `hgetall`, `delete`, `hdel`) over any
//! [`HttpTransport`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock};
use crate::proxy::answered::Answered;
use crate::proxy::config::{CallOptions, ProxyConfig, ProxyHost};
use crate::proxy::error::Error;
use crate::proxy::sign::Signer;
use crate::proxy::transport::HttpTransport;

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

/// The transport, config and signer the clones of a client share.
pub(crate) struct Shared<T> {
    pub(crate) transport: T,
    pub(crate) config: ProxyConfig,
    pub(crate) signer: Option<Signer>,
}

impl<T> Shared<T> {
    /// The config checked, and its signer.
    pub(crate) fn new(transport: T, config: ProxyConfig) -> Result<Self, Error> {
        config.validate()?;
        let signer = config
            .credentials
            .clone()
            .map(|credentials| Signer::new(credentials, config.signature.clone()));
        Ok(Self {
            transport,
            config,
            signer,
        })
    }
}

impl<T> Clone for RedisProxyClient<T> {
    /// Another handle on the same transport and config (two reference
    /// counts; the transport itself is not cloned).
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            clock: Arc::clone(&self.clock),
        }
    }
}

impl<T> fmt::Debug for RedisProxyClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisProxyClient")
            .field("config", &self.shared.config)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

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
    pub fn connect(config: ProxyConfig) -> Result<Self, Error> {
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
        config: ProxyConfig,
        transport: crate::proxy::UreqConfig,
    ) -> Result<Self, Error> {
        transport.validate()?;
        Self::new(crate::proxy::UreqTransport::new(transport), config)
    }
}

impl<T: HttpTransport> RedisProxyClient<T> {
    /// A client sending through `transport`, on the system clock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config has no cluster, an empty
    /// cluster or an invalid host ([`ProxyHost::validate`]).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{MemoryProxy, ProxyConfig, RedisProxyClient};
    ///
    /// let client = RedisProxyClient::new(MemoryProxy::new(), ProxyConfig::with_hosts([("127.0.0.1", 1)]))?;
    /// assert!(RedisProxyClient::new(MemoryProxy::new(), ProxyConfig::default()).is_err());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn new(transport: T, config: ProxyConfig) -> Result<Self, Error> {
        Ok(Self {
            shared: Arc::new(Shared::new(transport, config)?),
            clock: Arc::new(SystemClock),
        })
    }

    /// Uses `clock` for signing dates and backoff sleeps (this handle and
    /// the clones made from it afterwards; earlier clones keep theirs).
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

    /// The value at `key`; [`Error::KeyNotFound`] when there is none.
    ///
    /// # Errors
    ///
    /// Any [`Error`]; [`Error::Decode`] when the value is not a `V`.
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Result<V, Error> {
        self.get_with(key, &CallOptions::new())
    }

    /// [`get`](Self::get) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn get_with<V: DeserializeOwned>(
        &self,
        key: &str,
        options: &CallOptions,
    ) -> Result<V, Error> {
        self.get_answered(key, options).map(Answered::into_value)
    }

    /// Sets `key` to the JSON of `value`.
    ///
    /// # Errors
    ///
    /// Any [`Error`]; [`Error::PartialWrite`] when some clusters took the
    /// write and others did not. When no cluster took it, the main
    /// cluster's error, as with a single cluster.
    pub fn set<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Result<(), Error> {
        self.set_with(key, value, &CallOptions::new())
    }

    /// [`set`](Self::set) with per-call options (`expire`, `retry`).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn set_with<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error> {
        self.set_answered(key, value, options).map(drop)
    }

    /// The value of field `hashkey` in hash `hashname`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hget<V: DeserializeOwned>(&self, hashname: &str, hashkey: &str) -> Result<V, Error> {
        self.hget_with(hashname, hashkey, &CallOptions::new())
    }

    /// [`hget`](Self::hget) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hget_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<V, Error> {
        self.hget_answered(hashname, hashkey, options)
            .map(Answered::into_value)
    }

    /// Sets field `hashkey` of hash `hashname` to the JSON of `value`.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn hset<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
    ) -> Result<(), Error> {
        self.hset_with(hashname, hashkey, value, &CallOptions::new())
    }

    /// [`hset`](Self::hset) with per-call options (`expire` applies to the
    /// field).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn hset_with<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error> {
        self.hset_answered(hashname, hashkey, value, options)
            .map(drop)
    }

    /// The field names of hash `hashname` (a JSON array on the wire).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hkeys(&self, hashname: &str) -> Result<Vec<String>, Error> {
        self.hkeys_with(hashname, &CallOptions::new())
    }

    /// [`hkeys`](Self::hkeys) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hkeys_with(&self, hashname: &str, options: &CallOptions) -> Result<Vec<String>, Error> {
        self.hkeys_answered(hashname, options)
            .map(Answered::into_value)
    }

    /// The values of hash `hashname` (a JSON array on the wire).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hvals<V: DeserializeOwned>(&self, hashname: &str) -> Result<Vec<V>, Error> {
        self.hvals_with(hashname, &CallOptions::new())
    }

    /// [`hvals`](Self::hvals) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hvals_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Vec<V>, Error> {
        self.hvals_answered(hashname, options)
            .map(Answered::into_value)
    }

    /// Every field of hash `hashname` with its value (a JSON object on the
    /// wire).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hgetall<V: DeserializeOwned>(
        &self,
        hashname: &str,
    ) -> Result<HashMap<String, V>, Error> {
        self.hgetall_with(hashname, &CallOptions::new())
    }

    /// [`hgetall`](Self::hgetall) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hgetall_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<HashMap<String, V>, Error> {
        self.hgetall_answered(hashname, options)
            .map(Answered::into_value)
    }

    /// Deletes `key` (a string or a whole hash).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.delete_with(key, &CallOptions::new())
    }

    /// [`delete`](Self::delete) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn delete_with(&self, key: &str, options: &CallOptions) -> Result<(), Error> {
        self.delete_answered(key, options).map(drop)
    }

    /// Deletes field `hashkey` of hash `hashname`.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn hdel(&self, hashname: &str, hashkey: &str) -> Result<(), Error> {
        self.hdel_with(hashname, hashkey, &CallOptions::new())
    }

    /// [`hdel`](Self::hdel) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn hdel_with(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<(), Error> {
        self.hdel_answered(hashname, hashkey, options).map(drop)
    }
}

pub(crate) fn encode<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>, Error> {
    crate::json::to_vec(value).map_err(|error| Error::Encode(error.to_string(), Arc::new(error)))
}

pub(crate) fn decode<V: DeserializeOwned>(body: Vec<u8>, host: ProxyHost) -> Result<V, Error> {
    crate::json::from_slice(&body).map_err(|error| {
        crate::trace::decode_failed("proxy value", host.to_string().as_str(), body.len(), &error);
        Error::Decode {
            host,
            message: error.to_string(),
            body,
            source: Arc::new(error),
        }
    })
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
