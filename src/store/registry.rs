//! The process-wide client registry, [`get_client`] and
//! [`get_client_with`] (and `get_cluster_client`,
//! `get_cluster_client_with` with the `cluster` feature), and
//! [`wait_serve`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::addr::{IntoRedisAddr, RedisAddr};
use crate::store::blocking::RedisStore;
use crate::store::target::RedisStoreOptions;
use crate::store::{ListStore, StoreError};

/// The stores handed out so far, and the process they belong to: after a
/// `fork()` the child finds another pid and starts afresh.
struct Registry<K, V> {
    state: Mutex<Option<(u32, HashMap<K, V>)>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Registry<K, V> {
    const fn new() -> Self {
        Self {
            state: Mutex::new(None),
        }
    }

    /// The store for `key`, opened by `open` the first time in this process.
    fn get_or_open(
        &self,
        key: K,
        open: impl FnOnce(K) -> Result<V, StoreError>,
    ) -> Result<V, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        let (owner, stores) = state.get_or_insert_with(|| (pid, HashMap::new()));
        if *owner != pid {
            *owner = pid;
            stores.clear();
        }
        if let Some(store) = stores.get(&key) {
            return Ok(store.clone());
        }
        let store = open(key.clone())?;
        stores.insert(key, store.clone());
        Ok(store)
    }
}

/// The process-wide [`RedisStore`] for `addr`, with default options:
/// created on first use, then the same handle (sharing one connection pool)
/// for every caller. The same as [`get_client_with`] with
/// `RedisStoreOptions::default()`.
///
/// After `fork()` the child gets fresh handles, never the parent's sockets.
/// `addr` is a port, `(host, port)`, `"host:port"` or a `redis://` URL
/// (see [`RedisAddr`]). Nothing connects until the store is used.
///
/// # Examples
///
/// ```
/// use redisutil::get_client;
///
/// let a = get_client(6379)?;
/// let b = get_client(("127.0.0.1", 6379))?;
/// assert!(a.ptr_eq(&b));
/// # Ok::<(), redisutil::StoreError>(())
/// ```
pub fn get_client(addr: impl IntoRedisAddr) -> Result<RedisStore, StoreError> {
    get_client_with(addr, RedisStoreOptions::default())
}

/// The process-wide [`RedisStore`] for `addr` with `options` (timeouts,
/// pool size): created on first use, then the same handle for every caller
/// that asks for the same address with equal options.
///
/// A store is kept per address *and* options: asking for an address with
/// other options gives another store, with its own pool, never a store
/// whose options differ from the ones asked for. So each option set has its
/// own `max_connections`, and the caps of the stores of one address add
/// up; to share one pool, share the options (or the store). A
/// `max_connections` of 0 is refused, and nothing is kept.
///
/// After `fork()` the child gets fresh handles, never the parent's sockets.
/// Nothing connects until the store is used.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use redisutil::{PoolOptions, RedisStoreOptions, get_client, get_client_with};
///
/// let options = RedisStoreOptions {
///     pool: PoolOptions { max_connections: 8, pool_timeout: Duration::from_secs(1), ..PoolOptions::default() },
///     ..RedisStoreOptions::default()
/// };
/// let a = get_client_with(6379, options.clone())?;
/// assert_eq!(a.options(), &options);
/// assert!(a.ptr_eq(&get_client_with("127.0.0.1:6379", options)?));
/// // Other options, another store; the defaults are `get_client`'s.
/// assert!(!a.ptr_eq(&get_client(6379)?));
/// assert!(get_client(6379)?.ptr_eq(&get_client_with(6379, RedisStoreOptions::default())?));
/// # Ok::<(), redisutil::StoreError>(())
/// ```
pub fn get_client_with(
    addr: impl IntoRedisAddr,
    options: RedisStoreOptions,
) -> Result<RedisStore, StoreError> {
    static CLIENTS: Registry<(RedisAddr, RedisStoreOptions), RedisStore> = Registry::new();
    CLIENTS.get_or_open((addr.into_redis_addr()?, options), |(addr, options)| {
        RedisStore::open_with(addr, options)
    })
}

/// The process-wide [`RedisClusterStore`](crate::RedisClusterStore) for
/// the cluster of `seeds`, with default options: created on first use,
/// then the same handle (sharing one connection pool) for every caller
/// that names the same set of seeds, in any order. The same as
/// [`get_cluster_client_with`] with `RedisClusterStoreOptions::default()`.
///
/// After `fork()` the child gets fresh handles, never the parent's sockets.
/// Each seed is a port, `(host, port)`, `"host:port"` or a `redis://` URL
/// (see [`RedisAddr`]). Nothing connects until the store is used.
///
/// # Examples
///
/// ```
/// use redisutil::get_cluster_client;
///
/// let a = get_cluster_client([7000, 7001, 7002])?;
/// let b = get_cluster_client(["127.0.0.1:7002", "127.0.0.1:7001", "127.0.0.1:7000"])?;
/// assert!(a.ptr_eq(&b));
/// assert!(!a.ptr_eq(&get_cluster_client([7000])?));
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[cfg(feature = "cluster")]
pub fn get_cluster_client<I>(seeds: I) -> Result<crate::RedisClusterStore, StoreError>
where
    I: IntoIterator,
    I::Item: IntoRedisAddr,
{
    get_cluster_client_with(seeds, crate::RedisClusterStoreOptions::default())
}

/// The process-wide [`RedisClusterStore`](crate::RedisClusterStore) for
/// the cluster of `seeds` with `options`: created on first use, then the
/// same handle for every caller that names the same set of seeds, in any
/// order, with equal options.
///
/// As with [`get_client_with`], a store is kept per seed set *and*
/// options: other options give another store, with its own pool, never a
/// store whose options differ from the ones asked for. A
/// `max_connections` of 0 is refused, and nothing is kept.
///
/// # Examples
///
/// ```
/// use redisutil::{PoolOptions, RedisClusterStoreOptions, get_cluster_client, get_cluster_client_with};
///
/// let options = RedisClusterStoreOptions {
///     pool: PoolOptions { max_connections: 8, ..PoolOptions::default() },
///     ..RedisClusterStoreOptions::default()
/// };
/// let a = get_cluster_client_with([7000, 7001], options.clone())?;
/// assert_eq!(a.options(), &options);
/// assert!(a.ptr_eq(&get_cluster_client_with([7001, 7000], options)?));
/// assert!(!a.ptr_eq(&get_cluster_client([7000, 7001])?));
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[cfg(feature = "cluster")]
pub fn get_cluster_client_with<I>(
    seeds: I,
    options: crate::RedisClusterStoreOptions,
) -> Result<crate::RedisClusterStore, StoreError>
where
    I: IntoIterator,
    I::Item: IntoRedisAddr,
{
    use super::addr::addr_set;
    use crate::{RedisClusterStore, RedisClusterStoreOptions};

    type Key = (Vec<RedisAddr>, RedisClusterStoreOptions);
    static CLUSTERS: Registry<Key, RedisClusterStore> = Registry::new();
    let seeds = addr_set(seeds)?;
    CLUSTERS.get_or_open((seeds, options), |(seeds, options)| {
        RedisClusterStore::open_with(seeds, options)
    })
}

/// The process-wide [`RedisSentinelStore`](crate::RedisSentinelStore) for
/// the master of `service` that `sentinels` watch, with default options:
/// created on first use, then the same handle for every caller that names
/// the same set of sentinels (in any order) and service.
///
/// ```
/// use redisutil::get_sentinel_client;
///
/// let a = get_sentinel_client(["10.0.0.1:26379", "10.0.0.2:26379"], "mymaster")?;
/// let b = get_sentinel_client(["10.0.0.2:26379", "10.0.0.1:26379"], "mymaster")?;
/// assert!(a.ptr_eq(&b));
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[cfg(feature = "sentinel")]
pub fn get_sentinel_client<I>(
    sentinels: I,
    service: &str,
) -> Result<crate::RedisSentinelStore, StoreError>
where
    I: IntoIterator,
    I::Item: IntoRedisAddr,
{
    get_sentinel_client_with(
        sentinels,
        service,
        crate::RedisSentinelStoreOptions::default(),
    )
}

/// Like [`get_sentinel_client`], with `options`: a store is kept per set
/// of sentinels, service *and* options, as [`get_client_with`] keeps one
/// per address and options.
#[cfg(feature = "sentinel")]
pub fn get_sentinel_client_with<I>(
    sentinels: I,
    service: &str,
    options: crate::RedisSentinelStoreOptions,
) -> Result<crate::RedisSentinelStore, StoreError>
where
    I: IntoIterator,
    I::Item: IntoRedisAddr,
{
    use super::addr::addr_set;
    use crate::{RedisSentinelStore, RedisSentinelStoreOptions};

    type Key = (Vec<RedisAddr>, String, RedisSentinelStoreOptions);
    static SENTINELS: Registry<Key, RedisSentinelStore> = Registry::new();
    let sentinels = addr_set(sentinels)?;
    SENTINELS.get_or_open(
        (sentinels, service.to_owned(), options),
        |(sentinels, service, options)| RedisSentinelStore::open_with(sentinels, &service, options),
    )
}

/// How long [`wait_serve`] waits when the caller has no better idea: 5 s.
pub const DEFAULT_WAIT_SERVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until the Redis at `addr` answers PING, at most `timeout`.
///
/// Useful right after starting a server. On failure the error is a
/// [`StoreError::Connection`] naming the address and the last cause.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use redisutil::wait_serve;
///
/// // Nothing listens on port 1.
/// let err = wait_serve(1, Duration::from_millis(200)).unwrap_err();
/// assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
/// ```
pub fn wait_serve(addr: impl IntoRedisAddr, timeout: Duration) -> Result<(), StoreError> {
    const PAUSE: Duration = Duration::from_millis(20);
    let addr = addr.into_redis_addr()?;
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let options = RedisStoreOptions {
            connect_timeout: remaining.clamp(Duration::from_millis(1), Duration::from_secs(1)),
            response_timeout: Some(remaining.max(Duration::from_millis(1))),
            pool: crate::store::target::PoolOptions {
                max_idle: 0,
                max_connections: 1,
                pool_timeout: Duration::ZERO,
                ..Default::default()
            },
            ..RedisStoreOptions::default()
        };
        let last = match RedisStore::open_with(addr.clone(), options)?.ping() {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        if Instant::now() + PAUSE >= deadline {
            return Err(StoreError::Connection {
                addr: addr.to_string(),
                message: format!("redis did not answer within {timeout:?}; last error: {last}"),
                source: Some(Box::new(last)),
            });
        }
        thread::sleep(PAUSE);
    }
}
