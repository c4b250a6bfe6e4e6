//! Leases: the [`LeaseStore`] trait behind at-least-once delivery, and the
//! keys it keeps beside a channel's list.
//!
//! A leased receive takes messages from the head of a list, as a pop does,
//! but keeps each one in the store under a delivery id until it is
//! acknowledged. A message whose lease runs out, or that is refused
//! ([`nack`](LeaseStore::nack)), waits to be delivered again; one that has
//! been delivered `max_deliveries` times without an ack goes to a list of
//! dead letters instead. The list itself stays as it is (the wire format of
//! the Python original); the lease state lives in three keys named after it,
//! and a list per batch in flight ([`LeaseKeys`]).

use std::fmt;
#[cfg(feature = "tokio")]
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

#[cfg(feature = "tokio")]
use super::AsyncListStore;
use super::{ListStore, StoreError};

pub(crate) mod keys;
mod millis;
mod values;
pub use keys::LeaseKeys;
pub(crate) use millis::*;
pub use values::*;

/// The lease operations behind at-least-once delivery, each one atomic
/// step on the store, on the keys [`LeaseKeys`] names.
///
/// Time is the store's own: the server's clock for Redis (so consumers on
/// machines whose clocks disagree see the same deadlines), the injected
/// [`Clock`](crate::Clock) for [`MemoryStore`](crate::MemoryStore).
/// A lease whose deadline has come is *expired*: the message is due again,
/// like one waiting after a [`nack`](LeaseStore::nack) whose time has
/// come, and the next [`lease`](LeaseStore::lease) on the list takes it (or
/// moves it to the dead letters once delivered `max_deliveries` times),
/// without a daemon. A key of another type fails with `WRONGTYPE` and
/// changes nothing.
///
/// [`RedisChannel`](crate::RedisChannel)'s leased receive is the usual way
/// in; the trait is what it runs on:
///
/// ```
/// use redisutil::{LeaseStore, ListStore, MemoryStore};
/// use redisutil::store::{LeaseKeys, LeasePolicy};
/// use std::time::Duration;
///
/// let store = MemoryStore::new();
/// store.push("/jobs/server", &[b"\"a\""], None)?;
/// let keys = LeaseKeys::for_list("/jobs/server").unwrap();
/// let policy = LeasePolicy { lease: Duration::from_secs(30), max_deliveries: 5 };
///
/// let leased = store.lease(&keys, 10, policy)?;
/// assert_eq!(leased.len(), 1);
/// assert_eq!(leased[0].body, b"\"a\"");
/// assert_eq!(store.ack(&keys, &[leased[0].tag.clone()])?, 1);
/// assert!(store.lease(&keys, 10, policy)?.is_empty());
/// # Ok::<(), redisutil::StoreError>(())
/// ```
pub trait LeaseStore: ListStore {
    /// Leases up to `count` messages: first the pending ones that are due
    /// (expired leases and retries whose time has come), by when they
    /// became due, then the head of the list. Each is delivered with its
    /// attempt count raised and a deadline `policy.lease` from now; a due
    /// one already delivered `policy.max_deliveries` times goes to the dead
    /// letters instead. One round trip.
    fn lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> Result<Vec<Leased>, StoreError> {
        Ok(self.ack_and_lease(keys, &[], count, policy)?.1)
    }

    /// [`ack`](LeaseStore::ack)s `tags`, then [`lease`](LeaseStore::lease)s,
    /// in one atomic step and one round trip: a consumer's loop settles the
    /// message it has done and takes the next at once. Returns how many
    /// were acked, and the leased messages.
    fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError>;

    /// Like [`lease`](LeaseStore::lease), but waits up to `timeout`
    /// (`None`, or 100 years or more: without limit) for a message to send,
    /// to come back from an expired lease, or to be due again. Empty when
    /// the time passed.
    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError>;

    /// Settles deliveries for good: each message still held by its
    /// delivery (in flight, even past its deadline, or waiting to be
    /// delivered again after that delivery) is deleted. Returns how many
    /// were. One round trip for all.
    fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError>;

    /// Ends a delivery without an ack: the message may be delivered again
    /// `delay` from now, or becomes a dead letter when it has been
    /// delivered `max_deliveries` times.
    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError>;

    /// Moves the deadline of a lease still in flight (not yet reclaimed) to
    /// `lease` from now; `None` when the delivery no longer holds it.
    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError>;

    /// Hands deliveries still in flight back without counting them: each
    /// message waits to be delivered again from now, first in line (before
    /// the list's head), with its attempt as if this delivery had not
    /// happened, so a delivery nobody processed does not spend one of its
    /// `max_deliveries`. For a receive cancelled after it leased, and a
    /// consumer shutting down with messages it has not started. Returns
    /// how many were handed back.
    fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError>;

    /// Moves a message still in flight under `tag` to the dead letters at
    /// once, for `reason` (a message that does not decode, one a consumer
    /// refuses for good). Whether it was there.
    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError>;

    /// Moves every expired lease to wait to be delivered again, or to the
    /// dead letters after `max_deliveries`, and returns how many messages it
    /// moved. Leasing does this by itself for the messages it takes; this
    /// settles them all at once (one step, over every due message).
    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError>;

    /// Up to `max` dead letters, oldest first, left in place.
    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Moves the dead letters `pick` names back to the tail of the list, as
    /// new messages; returns how many.
    fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError>;

    /// Deletes the dead letters `pick` names; returns how many there were.
    fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError>;

    /// The whole lease state, in one atomic read (for tests and operators:
    /// its size is the state's).
    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError>;

    /// How many messages wait in the list, are in flight, wait to be
    /// delivered again and are dead, in one atomic read.
    fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError>;
}

/// A store behind a shared pointer or a reference is a lease store.
macro_rules! forward_lease_store {
    ($($pointer:ty),*) => {$(
        impl<S: LeaseStore + ?Sized> LeaseStore for $pointer {
            fn lease(&self, keys: &LeaseKeys, count: usize, policy: LeasePolicy) -> Result<Vec<Leased>, StoreError> {
                (**self).lease(keys, count, policy)
            }
            fn ack_and_lease(&self, keys: &LeaseKeys, tags: &[DeliveryTag], count: usize, policy: LeasePolicy) -> Result<(u64, Vec<Leased>), StoreError> {
                (**self).ack_and_lease(keys, tags, count, policy)
            }
            fn blocking_lease(&self, keys: &LeaseKeys, count: usize, policy: LeasePolicy, timeout: Option<Duration>) -> Result<Vec<Leased>, StoreError> {
                (**self).blocking_lease(keys, count, policy, timeout)
            }
            fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
                (**self).ack(keys, tags)
            }
            fn nack(&self, keys: &LeaseKeys, tag: &DeliveryTag, delay: Duration, max_deliveries: u32) -> Result<Nacked, StoreError> {
                (**self).nack(keys, tag, delay, max_deliveries)
            }
            fn extend(&self, keys: &LeaseKeys, tag: &DeliveryTag, lease: Duration) -> Result<Option<SystemTime>, StoreError> {
                (**self).extend(keys, tag, lease)
            }
            fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
                (**self).release(keys, tags)
            }
            fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag, reason: DeadReason) -> Result<bool, StoreError> {
                (**self).dead_letter(keys, tag, reason)
            }
            fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
                (**self).reclaim(keys, max_deliveries)
            }
            fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
                (**self).dead_letters(keys, max)
            }
            fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
                (**self).requeue_dead(keys, pick)
            }
            fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
                (**self).purge_dead(keys, pick)
            }
            fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
                (**self).lease_snapshot(keys)
            }
            fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
                (**self).lease_stats(keys)
            }
        }
    )*};
}

forward_lease_store!(&S, Arc<S>, Box<S>);

/// The async [`LeaseStore`]: the same operations with the same semantics,
/// each one atomic step on the server (see [`LeaseStore`] for each).
///
/// A leased receive dropped before it ends stops waiting at once; what the
/// server had leased for it is handed back at once
/// ([`release`](AsyncLeaseStore::release): the delivery does not count
/// toward `max_deliveries`), and a message whose hand-back fails comes
/// back when its lease runs out.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
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
#[cfg(feature = "tokio")]
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

#[cfg(feature = "tokio")]
forward_async_lease_store!(&S, Arc<S>, Box<S>);

/// Each call runs the async store's, to its end.
#[cfg(all(feature = "conformance", feature = "tokio"))]
impl<S: AsyncLeaseStore> LeaseStore for super::block_on::BlockOn<S> {
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
