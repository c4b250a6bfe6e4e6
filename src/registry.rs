//! The process-wide client registry, [`get_client`] (and
//! `get_cluster_client` with the `cluster` feature), and [`wait_serve`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::addr::{IntoRedisAddr, RedisAddr};
use crate::store::redis::{RedisStore, RedisStoreOptions};
use crate::store::{ListStore, StoreError};

/// The stores handed out so far, and the process they belong to.
struct Registry {
    pid: u32,
    stores: HashMap<RedisAddr, RedisStore>,
}

/// The process-wide [`RedisStore`] for `addr`: created on first use, then
/// the same handle (sharing one connection pool) for every caller.
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
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let addr = addr.into_redis_addr()?;
    let registry = REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            pid: std::process::id(),
            stores: HashMap::new(),
        })
    });
    let mut registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if registry.pid != pid {
        registry.stores.clear();
        registry.pid = pid;
    }
    if let Some(store) = registry.stores.get(&addr) {
        return Ok(store.clone());
    }
    let store = RedisStore::open(addr.clone())?;
    registry.stores.insert(addr, store.clone());
    Ok(store)
}

/// The process-wide [`RedisClusterStore`](crate::RedisClusterStore) for
/// the cluster of `seeds`: created on first use, then the same handle
/// (sharing one connection pool) for every caller that names the same set
/// of seeds, in any order.
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
    use crate::RedisClusterStore;

    /// The stores handed out so far, by sorted seed set, and their process.
    struct ClusterRegistry {
        pid: u32,
        stores: HashMap<Vec<RedisAddr>, RedisClusterStore>,
    }

    static REGISTRY: OnceLock<Mutex<ClusterRegistry>> = OnceLock::new();
    let mut seeds = seeds
        .into_iter()
        .map(IntoRedisAddr::into_redis_addr)
        .collect::<Result<Vec<_>, _>>()?;
    seeds.sort_unstable_by(|a, b| a.url().cmp(b.url()));
    seeds.dedup();
    let registry = REGISTRY.get_or_init(|| {
        Mutex::new(ClusterRegistry {
            pid: std::process::id(),
            stores: HashMap::new(),
        })
    });
    let mut registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if registry.pid != pid {
        registry.stores.clear();
        registry.pid = pid;
    }
    if let Some(store) = registry.stores.get(&seeds) {
        return Ok(store.clone());
    }
    let store = RedisClusterStore::open(seeds.clone())?;
    registry.stores.insert(seeds, store.clone());
    Ok(store)
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
            max_idle: 0,
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
