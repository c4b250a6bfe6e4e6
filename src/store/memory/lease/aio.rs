//! The fake's lease operations as futures.

use std::time::{Duration, SystemTime};

use crate::MemoryStore;
use crate::store::aio_traits::AsyncLeaseStore;
use crate::store::{
    DeadLetter, DeadReason, DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStats,
    LeaseStore, Leased, Nacked, Pick, StoreError,
};

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
