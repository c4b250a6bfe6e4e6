//! The async store traits (feature `tokio`): [`AsyncListStore`] and
//! [`AsyncLeaseStore`], the sync traits' operations as futures, with the
//! same semantics. The public home is [`redisutil::aio`](crate::aio).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::store::{
    DeadLetter, DeadReason, DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStats, Leased,
    Nacked, Pick, StoreError,
};

/// The list operations a channel needs, as futures: the async
/// [`ListStore`](crate::ListStore), with the same semantics method for
/// method.
///
/// The futures are `Send`, so a store serves tasks on a multi-threaded
/// runtime. None blocks a runtime thread: a blocked pop is a future that
/// waits.
///
/// Implementations: [`MemoryStore`](crate::MemoryStore), and
/// [`AsyncRedisStore`](crate::aio::AsyncRedisStore) (feature `redis`).
/// See the [module](crate::aio) for what dropping a receive future does.
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

/// The async [`LeaseStore`](crate::LeaseStore): the same operations with the same semantics,
/// each one atomic step on the server (see [`LeaseStore`](crate::LeaseStore) for each).
///
/// A leased receive dropped before it ends stops waiting at once; what the
/// server had leased for it is handed back at once
/// ([`release`](AsyncLeaseStore::release): the delivery does not count
/// toward `max_deliveries`), and a message whose hand-back fails comes
/// back when its lease runs out.
pub trait AsyncLeaseStore: AsyncListStore {
    /// [`LeaseStore::ack_and_lease`](crate::LeaseStore::ack_and_lease).
    fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> impl Future<Output = Result<(u64, Vec<Leased>), StoreError>> + Send;

    /// [`LeaseStore::lease`](crate::LeaseStore::lease).
    fn lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> impl Future<Output = Result<Vec<Leased>, StoreError>> + Send {
        async move { Ok(self.ack_and_lease(keys, &[], count, policy).await?.1) }
    }

    /// [`LeaseStore::blocking_lease`](crate::LeaseStore::blocking_lease); the wait holds no thread.
    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Leased>, StoreError>> + Send;

    /// [`LeaseStore::ack`](crate::LeaseStore::ack).
    fn ack(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::nack`](crate::LeaseStore::nack).
    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> impl Future<Output = Result<Nacked, StoreError>> + Send;

    /// [`LeaseStore::extend`](crate::LeaseStore::extend).
    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<SystemTime>, StoreError>> + Send;

    /// [`LeaseStore::release`](crate::LeaseStore::release).
    fn release(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::dead_letter`](crate::LeaseStore::dead_letter).
    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// [`LeaseStore::reclaim`](crate::LeaseStore::reclaim).
    fn reclaim(
        &self,
        keys: &LeaseKeys,
        max_deliveries: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::dead_letters`](crate::LeaseStore::dead_letters).
    fn dead_letters(
        &self,
        keys: &LeaseKeys,
        max: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// [`LeaseStore::requeue_dead`](crate::LeaseStore::requeue_dead).
    fn requeue_dead(
        &self,
        keys: &LeaseKeys,
        pick: Pick<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::purge_dead`](crate::LeaseStore::purge_dead).
    fn purge_dead(
        &self,
        keys: &LeaseKeys,
        pick: Pick<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::lease_snapshot`](crate::LeaseStore::lease_snapshot).
    fn lease_snapshot(
        &self,
        keys: &LeaseKeys,
    ) -> impl Future<Output = Result<LeaseSnapshot, StoreError>> + Send;

    /// [`LeaseStore::lease_stats`](crate::LeaseStore::lease_stats).
    fn lease_stats(
        &self,
        keys: &LeaseKeys,
    ) -> impl Future<Output = Result<LeaseStats, StoreError>> + Send;
}

/// A store behind a shared pointer or a reference is a lease store.
macro_rules! forward_async_lease_store {
    ($($pointer:ty),*) => {$(
        impl<S: AsyncLeaseStore + ?Sized> AsyncLeaseStore for $pointer {
            fn ack_and_lease(&self, keys: &LeaseKeys, tags: &[DeliveryTag], count: usize, policy: LeasePolicy) -> impl Future<Output = Result<(u64, Vec<Leased>), StoreError>> + Send {
                (**self).ack_and_lease(keys, tags, count, policy)
            }
            fn lease(&self, keys: &LeaseKeys, count: usize, policy: LeasePolicy) -> impl Future<Output = Result<Vec<Leased>, StoreError>> + Send {
                (**self).lease(keys, count, policy)
            }
            fn blocking_lease(&self, keys: &LeaseKeys, count: usize, policy: LeasePolicy, timeout: Option<Duration>) -> impl Future<Output = Result<Vec<Leased>, StoreError>> + Send {
                (**self).blocking_lease(keys, count, policy, timeout)
            }
            fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).ack(keys, tags)
            }
            fn nack(&self, keys: &LeaseKeys, tag: &DeliveryTag, delay: Duration, max_deliveries: u32) -> impl Future<Output = Result<Nacked, StoreError>> + Send {
                (**self).nack(keys, tag, delay, max_deliveries)
            }
            fn extend(&self, keys: &LeaseKeys, tag: &DeliveryTag, lease: Duration) -> impl Future<Output = Result<Option<SystemTime>, StoreError>> + Send {
                (**self).extend(keys, tag, lease)
            }
            fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).release(keys, tags)
            }
            fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag, reason: DeadReason) -> impl Future<Output = Result<bool, StoreError>> + Send {
                (**self).dead_letter(keys, tag, reason)
            }
            fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).reclaim(keys, max_deliveries)
            }
            fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send {
                (**self).dead_letters(keys, max)
            }
            fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).requeue_dead(keys, pick)
            }
            fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).purge_dead(keys, pick)
            }
            fn lease_snapshot(&self, keys: &LeaseKeys) -> impl Future<Output = Result<LeaseSnapshot, StoreError>> + Send {
                (**self).lease_snapshot(keys)
            }
            fn lease_stats(&self, keys: &LeaseKeys) -> impl Future<Output = Result<LeaseStats, StoreError>> + Send {
                (**self).lease_stats(keys)
            }
        }
    )*};
}

forward_async_lease_store!(&S, Arc<S>, Box<S>);
