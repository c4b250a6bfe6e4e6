//! The channel suite on an [`AsyncListStore`] (features `conformance` and
//! `tokio`): [`BlockOn`] makes an async store a sync one, call for call,
//! and [`AsyncHarness`] runs every scenario of [`scenarios`](super::scenarios)
//! (and of [`lease_scenarios`](super::lease_scenarios), on an
//! [`AsyncLeaseStore`]) through it, so the async stores pass the very
//! scenarios the sync ones do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use std::time::SystemTime;

use super::Harness;
use crate::aio::{AsyncLeaseStore, AsyncListStore};
use crate::store::{DeadLetter, DeadReason, LeaseStats, Pick};
use crate::store::{DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, Leased};
use crate::{LeaseStore, ListStore, Nacked, StoreError};

/// A [`ListStore`] whose every call is the same call of an
/// [`AsyncListStore`], run to its end on a tokio runtime (from a thread
/// outside it). Clones share the runtime.
pub struct BlockOn<S> {
    store: S,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl<S> BlockOn<S> {
    /// `store`, called on `runtime`.
    pub fn new(store: S, runtime: Arc<tokio::runtime::Runtime>) -> Self {
        Self { store, runtime }
    }

    /// The async store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: Clone> Clone for BlockOn<S> {
    fn clone(&self) -> Self {
        Self::new(self.store.clone(), self.runtime.clone())
    }
}

impl<S: fmt::Debug> fmt::Debug for BlockOn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockOn").field(&self.store).finish()
    }
}

impl<S: AsyncListStore> ListStore for BlockOn<S> {
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

impl<S: AsyncLeaseStore> LeaseStore for BlockOn<S> {
    fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        self.runtime
            .block_on(self.store.ack_and_lease(keys, tags, count, policy))
    }
    fn lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> Result<Vec<Leased>, StoreError> {
        self.runtime.block_on(self.store.lease(keys, count, policy))
    }
    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        self.runtime
            .block_on(self.store.blocking_lease(keys, count, policy, timeout))
    }
    fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.runtime.block_on(self.store.ack(keys, tags))
    }
    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        self.runtime
            .block_on(self.store.nack(keys, tag, delay, max_deliveries))
    }
    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        self.runtime.block_on(self.store.extend(keys, tag, lease))
    }
    fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.runtime.block_on(self.store.release(keys, tags))
    }
    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        self.runtime
            .block_on(self.store.dead_letter(keys, tag, reason))
    }
    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        self.runtime
            .block_on(self.store.reclaim(keys, max_deliveries))
    }
    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.runtime.block_on(self.store.dead_letters(keys, max))
    }
    fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        self.runtime.block_on(self.store.requeue_dead(keys, pick))
    }
    fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        self.runtime.block_on(self.store.purge_dead(keys, pick))
    }
    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.runtime.block_on(self.store.lease_snapshot(keys))
    }
    fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        self.runtime.block_on(self.store.lease_stats(keys))
    }
}

/// The harness of an async store: `harness`'s server, time and keys, with
/// the async store `store` (which reaches that server) under test.
pub struct AsyncHarness<H, S> {
    harness: H,
    store: BlockOn<S>,
}

impl<H, S> AsyncHarness<H, S> {
    /// Runs the scenarios on `store`, which must reach the server of
    /// `harness`, on a runtime of two worker threads.
    ///
    /// # Panics
    ///
    /// When the runtime cannot start.
    pub fn new(harness: H, store: S) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("start a tokio runtime");
        Self {
            harness,
            store: BlockOn::new(store, Arc::new(runtime)),
        }
    }
}

impl<H, S> Harness for AsyncHarness<H, S>
where
    H: Harness,
    S: AsyncListStore + Clone + fmt::Debug + 'static,
{
    type Store = BlockOn<S>;

    fn store(&self) -> BlockOn<S> {
        self.store.clone()
    }
    fn advance(&self, by: Duration) {
        self.harness.advance(by);
    }
    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        self.harness.blocking(call)
    }
    fn set_string(&self, key: &str, value: &str) {
        self.harness.set_string(key, value);
    }
    fn get_string(&self, key: &str) -> Option<String> {
        self.harness.get_string(key)
    }
    fn ttl(&self, key: &str) -> Option<Duration> {
        self.harness.ttl(key)
    }
    fn delete(&self, key: &str) {
        self.harness.delete(key);
    }
}
