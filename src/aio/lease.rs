//! [`AsyncLeaseStore`]: the lease operations of [`LeaseStore`] as futures.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::AsyncListStore;
use crate::store::{DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, Leased, Nacked};
use crate::{LeaseStore, MemoryStore, StoreError};

/// The async [`LeaseStore`]: the same operations with the same semantics,
/// each one atomic step on the server (see [`LeaseStore`] for each).
///
/// A leased receive dropped after the server leased its messages loses
/// none: the store hands them back at once (a
/// [`nack`](AsyncLeaseStore::nack) without delay), and a message whose
/// hand-back fails comes back when its lease runs out. Either way the
/// delivery counts toward `max_deliveries`.
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

    /// [`LeaseStore::dead_letter`].
    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
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
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;

    /// [`LeaseStore::requeue_dead`].
    fn requeue_dead(
        &self,
        keys: &LeaseKeys,
        max: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::purge_dead`].
    fn purge_dead(&self, keys: &LeaseKeys) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`LeaseStore::lease_snapshot`].
    fn lease_snapshot(
        &self,
        keys: &LeaseKeys,
    ) -> impl Future<Output = Result<LeaseSnapshot, StoreError>> + Send;
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
            fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag) -> impl Future<Output = Result<bool, StoreError>> + Send {
                (**self).dead_letter(keys, tag)
            }
            fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).reclaim(keys, max_deliveries)
            }
            fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send {
                (**self).dead_letters(keys, max)
            }
            fn requeue_dead(&self, keys: &LeaseKeys, max: usize) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).requeue_dead(keys, max)
            }
            fn purge_dead(&self, keys: &LeaseKeys) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).purge_dead(keys)
            }
            fn lease_snapshot(&self, keys: &LeaseKeys) -> impl Future<Output = Result<LeaseSnapshot, StoreError>> + Send {
                (**self).lease_snapshot(keys)
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

    async fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag) -> Result<bool, StoreError> {
        LeaseStore::dead_letter(self, keys, tag)
    }

    async fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        LeaseStore::reclaim(self, keys, max_deliveries)
    }

    async fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        LeaseStore::dead_letters(self, keys, max)
    }

    async fn requeue_dead(&self, keys: &LeaseKeys, max: usize) -> Result<u64, StoreError> {
        LeaseStore::requeue_dead(self, keys, max)
    }

    async fn purge_dead(&self, keys: &LeaseKeys) -> Result<u64, StoreError> {
        LeaseStore::purge_dead(self, keys)
    }

    async fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        LeaseStore::lease_snapshot(self, keys)
    }
}
