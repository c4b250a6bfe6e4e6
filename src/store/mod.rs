//! The storage a channel runs on: the [`ListStore`] trait and its errors.
//!
//! A [`RedisChannel`](crate::RedisChannel) needs only a handful of Redis
//! list operations. [`ListStore`] names exactly those, so the channel runs
//! unchanged on real Redis ([`RedisStore`](crate::RedisStore)), on a Redis
//! Cluster (`RedisClusterStore`, feature `cluster`) and on the in-memory
//! fake ([`MemoryStore`](crate::MemoryStore)) that downstream tests inject.
//! All fail with the same [`StoreError`] variants. With feature `tokio`,
//! `AsyncListStore` and `AsyncLeaseStore` are the same operations as
//! futures, declared beside the sync traits (and re-exported by
//! [`aio`](crate::aio)).
//!
//! # Examples
//!
//! ```
//! use redisutil::{ListStore, MemoryStore};
//!
//! let store = MemoryStore::new();
//! store.push("/jobs/client", &[b"1", b"2"], None)?;
//! assert_eq!(store.pop("/jobs/client")?, Some(b"1".to_vec()));
//! assert_eq!(store.take_last("/jobs/client")?, Some(b"2".to_vec()));
//! assert_eq!(store.index("/jobs/client", 0)?, None);
//! # Ok::<(), redisutil::StoreError>(())
//! ```

pub(crate) mod addr;
#[cfg(all(feature = "redis", feature = "tokio"))]
pub(crate) mod aio;
pub(crate) mod auth;
#[cfg(all(feature = "conformance", feature = "tokio"))]
pub(crate) mod block_on;
#[cfg(feature = "redis")]
pub(crate) mod blocking;
pub(crate) mod error;
pub(crate) mod fault;
pub(crate) mod glob;
pub(crate) mod lease;
pub(crate) mod memory;
pub(crate) mod policy;
#[cfg(feature = "redis")]
pub(crate) mod protocol;
#[cfg(feature = "redis")]
pub(crate) mod registry;
#[cfg(feature = "redis")]
pub(crate) mod script;
#[cfg(feature = "redis")]
pub(crate) mod target;

#[cfg(feature = "tokio")]
use std::future::Future;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use std::time::Duration;

pub use crate::tls::{ClientIdentity, TlsOptions};
pub use addr::{IntoRedisAddr, RedisAddr};
pub use auth::RedisAuth;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use blocking::BlockingStore;
pub(crate) use error::Excerpt;
pub use error::{BoxError, StoreError};
pub use fault::Fault;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use lease::AsyncLeaseStore;
pub use lease::{
    DeadLetter, DeadReason, DeliveryTag, LeaseEntry, LeaseKeys, LeasePolicy, LeaseSnapshot,
    LeaseStats, LeaseStore, Leased, Nacked, Pick,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use registry::DEFAULT_WAIT_SERVE_TIMEOUT;
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use target::Cluster;
#[cfg(feature = "sentinel")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
pub use target::Sentinel;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use target::{PoolOptions, Server};

/// The Redis list operations a channel needs.
///
/// Keys are UTF-8 strings; values are raw bytes. Every method but
/// [`blocking_take_last`](ListStore::blocking_take_last) is one round trip
/// to the server, and the multi-step ones ([`push`](ListStore::push) with a
/// TTL, [`take_last`](ListStore::take_last)) are atomic. A method that
/// fails changes nothing: on a key of another type it fails with `WRONGTYPE`
/// ([`StoreError::Command`]), and a TTL Redis refuses writes nothing.
///
/// Implementations are shared between threads; a blocked
/// [`blocking_pop`](ListStore::blocking_pop) must not stall other calls.
///
/// A channel needs nothing else; the conformance suite
/// ([`conformance`](crate::conformance), feature `conformance`) checks a
/// store of your own against Redis's rules.
///
/// ```
/// use redisutil::{ListStore, MemoryStore};
///
/// let store = MemoryStore::new();
/// assert_eq!(store.push("/q/server", &[b"1", b"2"], None)?, 2); // RPUSH
/// assert_eq!(store.pop("/q/server")?.as_deref(), Some(&b"1"[..])); // LPOP
/// assert_eq!(store.scan("/q/*")?, ["/q/server"]);
/// # Ok::<(), redisutil::StoreError>(())
/// ```
pub trait ListStore: Send + Sync {
    /// Appends `values` to the tail of the list `key` (RPUSH) and, when
    /// `ttl` is given, sets the list to expire `ttl` from now, in the same
    /// atomic step. Returns the list's length after the push.
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError>;

    /// Removes and returns the head of the list (LPOP); `None` when empty.
    fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Like [`pop`](ListStore::pop), but waits up to `timeout` for an
    /// element to arrive (BLPOP); `None`, or a timeout of 100 years or more,
    /// waits without limit. Returns
    /// `None` when the timeout passes with the list still empty.
    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes and returns up to `count` elements from the head, oldest
    /// first (LPOP with a count, Redis 6.2 and newer); empty when the list
    /// is. A `count` of 0 asks the store nothing and gives an empty batch.
    /// One round trip on the real stores; this default pops one by one.
    fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut popped = Vec::new();
        while popped.len() < count {
            match self.pop(key)? {
                Some(element) => popped.push(element),
                None => break,
            }
        }
        Ok(popped)
    }

    /// Like [`pop_many`](ListStore::pop_many), but waits up to `timeout`
    /// (`None`: without limit) for the first element (BLMPOP, Redis 7 and
    /// newer). Empty when the timeout passes with the list still empty. This
    /// default waits with [`blocking_pop`](ListStore::blocking_pop), then
    /// takes the rest with `pop_many`.
    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let Some(first) = self.blocking_pop(key, timeout)? else {
            return Ok(Vec::new());
        };
        let mut popped = vec![first];
        popped.extend(self.pop_many(key, count - 1)?);
        Ok(popped)
    }

    /// The element at `index` (LINDEX): 0 is the head, -1 the tail.
    fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Returns the tail element and deletes the whole list, atomically.
    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Like [`take_last`](ListStore::take_last), but waits up to `timeout`
    /// (`None`: without limit) for the list to have an element. Nothing
    /// leaves the list before the one atomic take: a call that fails or
    /// times out has taken nothing.
    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every key matching the Redis glob `pattern` (SCAN MATCH, never KEYS).
    /// Keys that are not UTF-8 are skipped. The order is unspecified.
    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError>;

    /// Checks that the store answers (PING).
    fn ping(&self) -> Result<(), StoreError>;

    /// The clock this process reads for the store's times: for pauses,
    /// retries and lease extensions that callers (a worker) time
    /// themselves. The system clock, but for
    /// [`MemoryStore`](crate::MemoryStore), whose injected clock a test moves. (Lease deadlines
    /// themselves are on the store's own clock: the server's, for Redis.)
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
}

/// A store behind a shared pointer or a reference is a store.
macro_rules! forward_list_store {
    ($($pointer:ty),*) => {$(
        impl<S: ListStore + ?Sized> ListStore for $pointer {
            fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
                (**self).push(key, values, ttl)
            }
            fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                (**self).pop(key)
            }
            fn blocking_pop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
                (**self).blocking_pop(key, timeout)
            }
            fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
                (**self).pop_many(key, count)
            }
            fn blocking_pop_many(&self, key: &str, count: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>, StoreError> {
                (**self).blocking_pop_many(key, count, timeout)
            }
            fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
                (**self).index(key, index)
            }
            fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                (**self).take_last(key)
            }
            fn blocking_take_last(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
                (**self).blocking_take_last(key, timeout)
            }
            fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
                (**self).scan(pattern)
            }
            fn ping(&self) -> Result<(), StoreError> {
                (**self).ping()
            }
            fn clock(&self) -> Arc<dyn Clock> {
                (**self).clock()
            }
        }
    )*};
}

forward_list_store!(&S, Arc<S>, Box<S>);

/// The list operations a channel needs, as futures: the async
/// [`ListStore`], with the same semantics method for method (also at
/// [`redisutil::aio`](crate::aio)).
///
/// The futures are `Send`, so a store serves tasks on a multi-threaded
/// runtime. None blocks a runtime thread: a blocked pop is a future that
/// waits.
///
/// Implementations: [`MemoryStore`](crate::MemoryStore), and
/// [`AsyncRedisStore`](crate::aio::AsyncRedisStore) (feature `redis`).
/// See the [module](crate::aio) for what dropping a receive future does.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub trait AsyncListStore: Send + Sync {
    /// As [`ListStore::push`]: RPUSH, and with a TTL
    /// the expiry, in one atomic step; the list's length after it.
    fn push(
        &self,
        key: &str,
        values: &[&[u8]],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// As [`ListStore::pop`]: LPOP.
    fn pop(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// As [`ListStore::blocking_pop`]: BLPOP,
    /// waiting up to `timeout` (`None`, or 100 years or more: without
    /// limit).
    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// As [`ListStore::pop_many`]: LPOP with a
    /// count.
    fn pop_many(
        &self,
        key: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::blocking_pop_many`]:
    /// BLMPOP.
    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;

    /// As [`ListStore::index`]: LINDEX.
    fn index(
        &self,
        key: &str,
        index: i64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// As [`ListStore::take_last`]: the tail, and
    /// the whole list deleted, atomically.
    fn take_last(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::blocking_take_last`].
    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// As [`ListStore::scan`]: SCAN MATCH.
    fn scan(&self, pattern: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// As [`ListStore::ping`]: PING.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// As [`ListStore::clock`]: the clock this
    /// process reads for the store's times.
    fn clock(&self) -> Arc<dyn crate::Clock> {
        Arc::new(crate::SystemClock)
    }
}

/// A store behind a shared pointer or a reference is a store.
#[cfg(feature = "tokio")]
macro_rules! forward_async_list_store {
    ($($pointer:ty),*) => {$(
        impl<S: AsyncListStore + ?Sized> AsyncListStore for $pointer {
            fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).push(key, values, ttl)
            }
            fn pop(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
                (**self).pop(key)
            }
            fn blocking_pop(&self, key: &str, timeout: Option<Duration>) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
                (**self).blocking_pop(key, timeout)
            }
            fn pop_many(&self, key: &str, count: usize) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send {
                (**self).pop_many(key, count)
            }
            fn blocking_pop_many(&self, key: &str, count: usize, timeout: Option<Duration>) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send {
                (**self).blocking_pop_many(key, count, timeout)
            }
            fn index(&self, key: &str, index: i64) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
                (**self).index(key, index)
            }
            fn take_last(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
                (**self).take_last(key)
            }
            fn blocking_take_last(&self, key: &str, timeout: Option<Duration>) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
                (**self).blocking_take_last(key, timeout)
            }
            fn scan(&self, pattern: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
                (**self).scan(pattern)
            }
            fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
                (**self).ping()
            }
            fn clock(&self) -> Arc<dyn crate::Clock> {
                (**self).clock()
            }
        }
    )*};
}

#[cfg(feature = "tokio")]
forward_async_list_store!(&S, Arc<S>, Box<S>);

/// Each call runs the async store's, to its end.
#[cfg(all(feature = "conformance", feature = "tokio"))]
impl<S: AsyncListStore> ListStore for block_on::BlockOn<S> {
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        self.runtime.block_on(self.store.push(key, values, ttl))
    }
    fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.runtime.block_on(self.store.pop(key))
    }
    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.runtime.block_on(self.store.blocking_pop(key, timeout))
    }
    fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.runtime.block_on(self.store.pop_many(key, count))
    }
    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.runtime
            .block_on(self.store.blocking_pop_many(key, count, timeout))
    }
    fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.runtime.block_on(self.store.index(key, index))
    }
    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.runtime.block_on(self.store.take_last(key))
    }
    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.runtime
            .block_on(self.store.blocking_take_last(key, timeout))
    }
    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.runtime.block_on(self.store.scan(pattern))
    }
    fn ping(&self) -> Result<(), StoreError> {
        self.runtime.block_on(self.store.ping())
    }
}

/// A blocking wait this long or longer waits without limit (100 years):
/// Redis refuses a timeout whose deadline it cannot represent, and the
/// deadline of `Duration::MAX` overflows any clock.
pub(crate) const WAITS_FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A blocking timeout as the stores use it: `None` (no limit) for huge ones.
pub(crate) fn wait_limit(timeout: Option<Duration>) -> Option<Duration> {
    timeout.filter(|timeout| *timeout < WAITS_FOREVER)
}

/// Milliseconds as Redis's PEXPIRE takes them: rounded up, so that a TTL is
/// never shortened.
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}
