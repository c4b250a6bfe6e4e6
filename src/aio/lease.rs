//! [`AsyncLeaseStore`]: the lease operations of [`LeaseStore`] as futures.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::AsyncListStore;
use crate::store::{
    DeadLetter, DeadReason, DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStats, Leased,
    Nacked, Pick,
};
use crate::{LeaseStore, MemoryStore, StoreError};

/// The async [`LeaseStore`]: the same operations with the same semantics,
/// each one atomic step on the server (see [`LeaseStore`] for each).
///
/// A leased receive dropped before it ends stops waiting at once; what the
/// server had leased for it is handed back at once
/// ([`release`](AsyncLeaseStore::release): the delivery does not count
/// toward `max_deliveries`), and a message whose hand-back fails comes
/// back when its lease runs out.
pub trait AsyncLeaseStore: AsyncListStore {
    /// [`LeaseStore::ack_and_lease`].
    fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> impl Future<Output = Result<(u64, Vec<Leased>), StoreError>> + Send;

    /// [`LeaseStore::lease`].
    fn lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> impl Future<Output = Result<Vec<Leased>, StoreError>> + Send {
        async move { Ok(self.ack_and_lease(keys, &[], count, policy).await?.1) }
    }

    /// [`LeaseStore::blocking_lease`]; the wait holds no thread.
    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Leased>, StoreError>> + Send;

    /// [`LeaseStore::ack`].
    fn ack(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::nack`].
    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> impl Future<Output = Result<Nacked, StoreError>> + Send;

    /// [`LeaseStore::extend`].
    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<SystemTime>, StoreError>> + Send;

    /// [`LeaseStore::release`].
    fn release(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::dead_letter`].
    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// [`LeaseStore::reclaim`].
    fn reclaim(
        &self,
        keys: &LeaseKeys,
        max_deliveries: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::dead_letters`].
    fn dead_letters(
        &self,
        keys: &LeaseKeys,
        max: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// [`LeaseStore::requeue_dead`].
    fn requeue_dead(
        &self,
        keys: &LeaseKeys,
        pick: Pick<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::purge_dead`].
    fn purge_dead(
        &self,
        keys: &LeaseKeys,
        pick: Pick<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::lease_snapshot`].
    fn lease_snapshot(
        &self,
        keys: &LeaseKeys,
    ) -> impl Future<Output = Result<LeaseSnapshot, StoreError>> + Send;

    /// [`LeaseStore::lease_stats`].
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

/// The fake's lease operations that cannot block run as the sync ones
/// do, under its lock, on the first poll: atomic, and a future dropped
/// before that poll did nothing.
impl AsyncLeaseStore for MemoryStore {
    async fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        LeaseStore::ack_and_lease(self, keys, tags, count, policy)
    }

    async fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        self.async_blocking_lease(keys, count, policy, timeout)
            .await
    }

    async fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        LeaseStore::ack(self, keys, tags)
    }

    async fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        LeaseStore::nack(self, keys, tag, delay, max_deliveries)
    }

    async fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        LeaseStore::extend(self, keys, tag, lease)
    }

    async fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        LeaseStore::release(self, keys, tags)
    }

    async fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        LeaseStore::dead_letter(self, keys, tag, reason)
    }

    async fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        LeaseStore::reclaim(self, keys, max_deliveries)
    }

    async fn dead_letters(
        &self,
        keys: &LeaseKeys,
        max: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        LeaseStore::dead_letters(self, keys, max)
    }

    async fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        LeaseStore::requeue_dead(self, keys, pick)
    }

    async fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        LeaseStore::purge_dead(self, keys, pick)
    }

    async fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        LeaseStore::lease_snapshot(self, keys)
    }

    async fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        LeaseStore::lease_stats(self, keys)
    }
}
