//! The async API on tokio (feature `tokio`): [`AsyncListStore`], the
//! channel over it, [`AsyncRedisChannel`], and the real async store,
//! [`AsyncRedisStore`] (feature `redis` too).
//!
//! The semantics are the sync API's: the same wire format, channel names,
//! options and errors, shared with it rather than written twice.
//! [`MemoryStore`](crate::MemoryStore) is an async store as well as a sync
//! one, so one instance serves sync and async users of one test alike; its
//! blocked pops are futures woken by pushes and by its clock.
//!
//! # Cancellation
//!
//! Dropping a receive future at any point loses no message:
//!
//! - **Before it has taken anything** (a pop still waiting, a request not
//!   yet answered), nothing was taken.
//! - **After Redis has taken a message for it** (the answer was on its
//!   way, or a blocked pop was served as the future was dropped), the
//!   message goes back to the head of its list, where a later receive
//!   finds it first: the store finishes the call in a task of its own and
//!   pushes back what it took. So a message is never lost to a
//!   cancellation, and never delivered twice; what a cancelled receive
//!   took may, in the meantime, be seen behind a message sent later, and
//!   comes back without the list's TTL if the list had emptied.
//!
//! This needs the runtime to keep running while the dropped call finishes
//! (a task on it does the push back): a process that stops its runtime
//! right after cancelling a receive can lose what that receive had taken,
//! as a sync receive killed after its pop would.
//!
//! Sends are not cancellation-safe the other way round: a send dropped
//! after its request left may or may not have been applied (as with a
//! lost connection).
//!
//! # Examples
//!
//! ```
//! use redisutil::MemoryStore;
//! use redisutil::Peer;
//! use redisutil::aio::AsyncRedisChannel;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let client = AsyncRedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
//! let server = AsyncRedisChannel::new(store, "/jobs", Peer::Server)?;
//! client.send_msg(&"resize").await?;
//! let job: Option<String> = server.brecv_msg(std::time::Duration::from_secs(1)).await?;
//! assert_eq!(job.as_deref(), Some("resize"));
//! # Ok::<(), redisutil::ChannelError>(())
//! # }).unwrap();
//! ```

mod channel;
mod lease;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use crate::channel::channel_stats_async as channel_stats;
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "tokio", feature = "cluster"))))]
pub use crate::store::aio::AsyncRedisClusterStore;
#[cfg(feature = "sentinel")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "tokio", feature = "sentinel"))))]
pub use crate::store::aio::AsyncRedisSentinelStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::store::aio::{AsyncRedisStore, AsyncStore};
pub use channel::AsyncRedisChannel;
pub use lease::AsyncLeaseStore;

use crate::StoreError;

/// The list operations a channel needs, as futures: the async
/// [`ListStore`](crate::ListStore), with the same semantics method for
/// method.
///
/// The futures are `Send`, so a store serves tasks on a multi-threaded
/// runtime. None blocks a runtime thread: a blocked pop is a future that
/// waits.
///
/// Implementations: [`MemoryStore`](crate::MemoryStore), and
/// [`AsyncRedisStore`] (feature `redis`).
/// See the [module](self) for what dropping a receive future does.
pub trait AsyncListStore: Send + Sync {
    /// [`ListStore::push`](crate::ListStore::push): RPUSH, and with a TTL
    /// the expiry, in one atomic step; the list's length after it.
    fn push(
        &self,
        key: &str,
        values: &[&[u8]],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`ListStore::pop`](crate::ListStore::pop): LPOP.
    fn pop(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::blocking_pop`](crate::ListStore::blocking_pop): BLPOP,
    /// waiting up to `timeout` (`None`, or 100 years or more: without
    /// limit).
    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::pop_many`](crate::ListStore::pop_many): LPOP with a
    /// count.
    fn pop_many(
        &self,
        key: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::blocking_pop_many`](crate::ListStore::blocking_pop_many):
    /// BLMPOP.
    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::index`](crate::ListStore::index): LINDEX.
    fn index(
        &self,
        key: &str,
        index: i64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::take_last`](crate::ListStore::take_last): the tail, and
    /// the whole list deleted, atomically.
    fn take_last(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::blocking_take_last`](crate::ListStore::blocking_take_last).
    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// [`ListStore::scan`](crate::ListStore::scan): SCAN MATCH.
    fn scan(&self, pattern: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// [`ListStore::ping`](crate::ListStore::ping): PING.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`ListStore::clock`](crate::ListStore::clock): the clock this
    /// process reads for the store's times.
    fn clock(&self) -> Arc<dyn crate::Clock> {
        Arc::new(crate::SystemClock)
    }
}

/// A store behind a shared pointer or a reference is a store.
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

forward_async_list_store!(&S, Arc<S>, Box<S>);
