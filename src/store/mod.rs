//! The storage a channel runs on: the [`ListStore`] trait and its errors.
//!
//! A [`RedisChannel`](crate::RedisChannel) needs only a handful of Redis
//! list operations. [`ListStore`] names exactly those, so the channel runs
//! unchanged on real Redis ([`RedisStore`](crate::RedisStore)), on a Redis
//! Cluster (`RedisClusterStore`, feature `cluster`) and on the in-memory
//! fake ([`MemoryStore`](crate::MemoryStore)) that downstream tests inject.
//! All fail with the same [`StoreError`] variants.
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
#[cfg(feature = "tokio")]
pub(crate) mod aio_traits;
pub(crate) mod auth;
#[cfg(feature = "redis")]
pub(crate) mod blocking;
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

use std::fmt;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use std::time::Duration;

pub use crate::tls::{ClientIdentity, TlsOptions};
pub use addr::{IntoRedisAddr, RedisAddr};
pub use auth::RedisAuth;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use blocking::BlockingStore;
pub use fault::Fault;
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

/// A [`ListStore`] operation failed.
///
/// The real and the in-memory store fail with the same variants, so code
/// tested on [`MemoryStore`](crate::MemoryStore) handles real failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached, the connection broke during the
    /// call, or the server said it cannot serve for now (still loading its
    /// data after a restart, cluster down). The command may or may not have
    /// run; the next call reconnects.
    #[error("connection to {addr} failed: {message}")]
    Connection {
        /// The store's address (`redis://host:port/db`, or `memory`).
        addr: String,
        /// What went wrong.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The request reached the server, and the connection broke before
    /// its reply came back: the command may have been applied. The store
    /// does not send such a command again when a second run could change
    /// its effect (a push would push twice); see
    /// [`may_have_run`](Self::may_have_run).
    #[error("{addr}: the reply was lost, the command may have been applied: {message}")]
    ReplyLost {
        /// The store's address.
        addr: String,
        /// How the connection broke.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The store did not answer within the configured timeout: the command
    /// may have run, and may still run.
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout {
        /// The store's address.
        addr: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The server answered with an error (a wrong key type, out of memory,
    /// a read-only replica, …).
    #[error("{addr} refused the command: {message}")]
    Command {
        /// The store's address.
        addr: String,
        /// The server's error message.
        message: String,
    },
    /// Every connection the store's pool may open
    /// (`max_connections`) stayed in use, and none came back within the
    /// pool timeout. Nothing was sent: the command never ran. A later call
    /// may pass, once other calls (a blocked receive among them) give
    /// their connections back.
    #[error(
        "connection pool of {addr} exhausted: all {max_connections} connections \
         (max_connections) stayed in use for {timeout:?} (pool_timeout)"
    )]
    PoolExhausted {
        /// The store's address.
        addr: String,
        /// The pool's cap, `max_connections`.
        max_connections: usize,
        /// How long the call waited for a connection, `pool_timeout`.
        timeout: Duration,
    },
    /// An argument the store refuses before sending anything (a dead
    /// letter id that is not one).
    #[error("invalid argument: {message}")]
    InvalidInput {
        /// Which argument, and why.
        message: String,
    },
    /// Options that cannot be used (a pool of no connection); nothing
    /// connected.
    #[error("invalid store options: {message}")]
    InvalidOptions {
        /// Which option, and why.
        message: String,
    },
    /// An address or configuration could not be used.
    #[error("invalid redis address {addr:?}: {message}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it was refused.
        message: String,
    },
}

/// A boxed error kept as the [`source`](std::error::Error::source) of another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// Whether the failure was a lost or refused connection, a timeout, or
    /// a pool with no connection free in time: the kind of failure that a
    /// later call may not see.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Self::Connection { .. }
                | Self::ReplyLost { .. }
                | Self::Timeout { .. }
                | Self::PoolExhausted { .. }
        )
    }

    /// Whether the command may have run although the call failed: its
    /// reply was lost ([`ReplyLost`](Self::ReplyLost)) or did not come in
    /// time ([`Timeout`](Self::Timeout)). Every other error means it did
    /// not run: a call that failed so can be made again safely.
    ///
    /// ```
    /// use redisutil::{ListStore, MemoryStore};
    /// use redisutil::store::Fault;
    ///
    /// let store = MemoryStore::new();
    /// store.fail_next_with(1, Fault::Disconnect);
    /// assert!(!store.push("k", &[b"v"], None).unwrap_err().may_have_run());
    /// store.fail_next_with(1, Fault::ReplyLost);
    /// assert!(store.push("k", &[b"v"], None).unwrap_err().may_have_run());
    /// # Ok::<(), redisutil::StoreError>(())
    /// ```
    pub fn may_have_run(&self) -> bool {
        matches!(self, Self::ReplyLost { .. } | Self::Timeout { .. })
    }

    /// Whether the call ran out of time: the store did not answer in time
    /// ([`Timeout`](Self::Timeout): the command may have run, a receive may
    /// have taken its message), or no pooled connection came free in time
    /// ([`PoolExhausted`](Self::PoolExhausted): the command never ran).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::PoolExhausted { .. })
    }

    /// Whether every connection of the store's pool stayed in use for the
    /// pool timeout ([`PoolExhausted`](Self::PoolExhausted)): nothing was
    /// sent.
    pub fn is_pool_exhausted(&self) -> bool {
        matches!(self, Self::PoolExhausted { .. })
    }

    /// The error code the server answered (`WRONGTYPE`, `NOPERM`, `OOM`,
    /// `ERR`…), when it refused the command.
    ///
    /// ```
    /// use redisutil::{ListStore, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// store.set_string("k", "not a list");
    /// let err = store.pop("k").unwrap_err();
    /// assert_eq!(err.code(), Some("WRONGTYPE"));
    /// assert!(err.is_wrong_type());
    /// assert!(!err.is_connection());
    /// ```
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Command { message, .. } => message.split_whitespace().next(),
            _ => None,
        }
    }

    /// Whether the key holds another type than a list (`WRONGTYPE`).
    pub fn is_wrong_type(&self) -> bool {
        self.code() == Some("WRONGTYPE")
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

/// Shows bytes as text when they are UTF-8, else as escaped bytes, bounded.
pub(crate) struct Excerpt<'a>(pub &'a [u8]);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 128;
        let shown = &self.0[..self.0.len().min(MAX)];
        write!(f, "{:?}", String::from_utf8_lossy(shown))?;
        if self.0.len() > MAX {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}
