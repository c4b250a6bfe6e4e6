//! Leased receive: at-least-once delivery on a channel, with ack, nack,
//! extend, reclaim and dead letters.
//!
//! A plain receive (`recv_msg`) pops the message: a consumer that dies
//! before it has done its work loses it. A leased receive hands the message
//! out under a lease and keeps it in Redis until the consumer
//! [`ack`](RedisChannel::ack)s it; if the lease runs out first, the next
//! leased receive on that end (by any consumer) delivers it again, with its
//! attempt count raised. After [`max_deliveries`](super::ChannelOptions::max_deliveries)
//! deliveries without an ack it becomes a dead letter instead.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use redisutil::{ManualClock, MemoryStore, Peer, RedisChannel};
//!
//! let clock = ManualClock::default();
//! let store = MemoryStore::with_clock(clock.clone());
//! let client = RedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
//! let worker = RedisChannel::new(store, "/jobs", Peer::Server)?;
//! client.send_msg("resize 1.png")?;
//!
//! let lease = Duration::from_secs(30);
//! let job = worker.lease_msg::<String>(lease)?.unwrap();
//! assert_eq!(job.attempt(), 1);
//! // The worker dies without an ack: 30 s later the job is back.
//! clock.advance(lease);
//! let again = worker.lease_msg::<String>(lease)?.unwrap();
//! assert_eq!((again.msg().as_str(), again.attempt()), ("resize 1.png", 2));
//! assert!(worker.ack(&again)?);
//! assert!(!worker.ack(&job)?, "the first delivery no longer holds it");
//! assert!(worker.lease_msg::<String>(lease)?.is_none());
//! # Ok::<(), redisutil::ChannelError>(())
//! ```

use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use super::{ChannelError, DecodeError, MAX_TTL, RedisChannel};
use crate::json;
use crate::store::{
    DeadLetter, DeadReason, DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStats,
    LeaseStore, Leased, Nacked, Pick,
};

/// A leased batch: each message decoded on its own, one that does not
/// decode (now a dead letter) an `Err` holding its bytes in its place.
pub type Deliveries<T> = Vec<Result<Delivery<T>, DecodeError>>;

/// A message received under a lease: settle it with
/// [`ack`](RedisChannel::ack) (done), [`nack`](RedisChannel::nack) (deliver
/// it again) or let the lease run out; [`extend`](RedisChannel::extend)
/// holds it longer.
///
/// ```
/// use redisutil::{MemoryStore, Peer, RedisChannel};
/// use std::time::Duration;
///
/// let store = MemoryStore::new();
/// let client = RedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
/// let server = RedisChannel::new(store, "/jobs", Peer::Server)?;
/// client.send_msg("resize a.png")?;
///
/// let delivery = server.lease_msg::<String>(Duration::from_secs(30))?.unwrap();
/// assert_eq!(delivery.msg(), "resize a.png");
/// assert_eq!(delivery.attempt(), 1);
/// assert!(server.ack(&delivery)?); // done: it will not come back
/// assert!(server.lease_msg::<String>(Duration::from_secs(30))?.is_none());
/// # Ok::<(), redisutil::ChannelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<T> {
    msg: T,
    tag: DeliveryTag,
    deadline: SystemTime,
}

impl<T> Delivery<T> {
    /// The message.
    pub fn msg(&self) -> &T {
        &self.msg
    }

    /// The message, taken out (the delivery's tag is then gone: ack first,
    /// or keep [`tag`](Self::tag)).
    pub fn into_msg(self) -> T {
        self.msg
    }

    /// Which delivery of the message this is: 1 for the first.
    pub fn attempt(&self) -> u32 {
        self.tag.attempt
    }

    /// When the lease runs out, on the store's clock (the Redis server's).
    pub fn deadline(&self) -> SystemTime {
        self.deadline
    }

    /// The message's id and this delivery's attempt.
    pub fn tag(&self) -> &DeliveryTag {
        &self.tag
    }
}

/// Leased receive, on a store that keeps leases ([`LeaseStore`]: every
/// store of this crate).
impl<S: LeaseStore> RedisChannel<S> {
    /// Receives the oldest message under a lease of `lease` (1 ms to 100
    /// years); `None` when there is none. One round trip.
    ///
    /// Messages whose lease ran out, or that were refused with
    /// [`nack`](Self::nack) and are due again, come first, in the order they
    /// became due; one already delivered `max_deliveries` times goes to the
    /// dead letters instead, in the same step. A message that does not decode is
    /// moved to the dead letters at once (its bytes stay there and are in
    /// the [`DecodeError`]).
    pub fn lease_msg<T: DeserializeOwned>(
        &self,
        lease: Duration,
    ) -> Result<Option<Delivery<T>>, ChannelError> {
        let mut batch = self.lease_msgs(1, lease)?;
        Ok(batch.pop().transpose()?)
    }

    /// Like [`lease_msg`](Self::lease_msg), but waits up to `timeout`
    /// (`Duration::ZERO`, or 100 years or more: without limit) for a
    /// message: a new one, or one due again.
    pub fn blease_msg<T: DeserializeOwned>(
        &self,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Option<Delivery<T>>, ChannelError> {
        let mut batch = self.blease_msgs(1, lease, timeout)?;
        Ok(batch.pop().transpose()?)
    }

    /// Receives up to `max` messages under one lease each, in one round
    /// trip; each is decoded on its own, and one that does not decode is a
    /// dead letter, an `Err` holding its bytes in its place.
    pub fn lease_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
        lease: Duration,
    ) -> Result<Deliveries<T>, ChannelError> {
        let (keys, policy) = self.lease_policy(lease)?;
        let leased = self.store.lease(keys, max, policy)?;
        Ok(self.deliveries(keys, leased))
    }

    /// Like [`lease_msgs`](Self::lease_msgs), but waits up to `timeout`
    /// (`Duration::ZERO`, or 100 years or more: without limit) for the
    /// first message. Empty when the time passed.
    pub fn blease_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Deliveries<T>, ChannelError> {
        let (keys, policy) = self.lease_policy(lease)?;
        let leased = self
            .store
            .blocking_lease(keys, max, policy, super::block_timeout(timeout))?;
        Ok(self.deliveries(keys, leased))
    }

    /// Settles a delivery for good: the message is deleted. `false` when
    /// this delivery no longer held it: it was acked already, or its lease
    /// ran out and another delivery of it has begun (which will be acked
    /// or run out on its own). One round trip.
    pub fn ack<T>(&self, delivery: &Delivery<T>) -> Result<bool, ChannelError> {
        Ok(self.ack_all([delivery])? == 1)
    }

    /// Acks many deliveries in one round trip; returns how many were still
    /// held.
    pub fn ack_all<'a, T: 'a>(
        &self,
        deliveries: impl IntoIterator<Item = &'a Delivery<T>>,
    ) -> Result<u64, ChannelError> {
        let keys = self.lease_keys()?;
        let tags: Vec<DeliveryTag> = deliveries
            .into_iter()
            .map(|delivery| delivery.tag.clone())
            .collect();
        Ok(self.store.ack(keys, &tags)?)
    }

    /// Acks `done` and leases the next message, in one atomic step and one
    /// round trip: the loop of a consumer that works one message at a
    /// time. Returns whether `done` was still held (see [`ack`](Self::ack))
    /// and the next delivery, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisutil::{MemoryStore, Peer, RedisChannel};
    ///
    /// let store = MemoryStore::new();
    /// let client = RedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
    /// let worker = RedisChannel::new(store, "/jobs", Peer::Server)?;
    /// client.send_msgs([1, 2, 3])?;
    /// let lease = Duration::from_secs(30);
    /// let mut next = worker.lease_msg::<u32>(lease)?;
    /// let mut done = Vec::new();
    /// while let Some(delivery) = next {
    ///     done.push(*delivery.msg()); // the work
    ///     let (acked, following) = worker.ack_and_lease_msg(&delivery, lease)?;
    ///     assert!(acked);
    ///     next = following;
    /// }
    /// assert_eq!(done, [1, 2, 3]);
    /// # Ok::<(), redisutil::ChannelError>(())
    /// ```
    pub fn ack_and_lease_msg<D, T: DeserializeOwned>(
        &self,
        done: &Delivery<D>,
        lease: Duration,
    ) -> Result<(bool, Option<Delivery<T>>), ChannelError> {
        let (acked, mut batch) = self.ack_and_lease_msgs([done], 1, lease)?;
        Ok((acked == 1, batch.pop().transpose()?))
    }

    /// Acks `done` and leases up to `max` messages, in one atomic step and
    /// one round trip; returns how many of `done` were still held, and the
    /// batch (as [`lease_msgs`](Self::lease_msgs) gives it).
    pub fn ack_and_lease_msgs<'a, D: 'a, T: DeserializeOwned>(
        &self,
        done: impl IntoIterator<Item = &'a Delivery<D>>,
        max: usize,
        lease: Duration,
    ) -> Result<(u64, Deliveries<T>), ChannelError> {
        let (keys, policy) = self.lease_policy(lease)?;
        let tags: Vec<DeliveryTag> = done.into_iter().map(|d| d.tag.clone()).collect();
        let (acked, leased) = self.store.ack_and_lease(keys, &tags, max, policy)?;
        Ok((acked, self.deliveries(keys, leased)))
    }

    /// Refuses a delivery: the message may be delivered again `delay` from
    /// now (`Duration::ZERO`: at once), or becomes a dead letter if it has
    /// been delivered `max_deliveries` times. One round trip.
    pub fn nack<T>(&self, delivery: &Delivery<T>, delay: Duration) -> Result<Nacked, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.nack(
            keys,
            &delivery.tag,
            nack_delay(delay),
            self.options.max_deliveries,
        )?)
    }

    /// Holds the message `lease` from now (1 ms to 100 years) instead of to
    /// its deadline, for long work; `false` when the lease was reclaimed
    /// already, and then the delivery is unchanged. One round trip.
    pub fn extend<T>(
        &self,
        delivery: &mut Delivery<T>,
        lease: Duration,
    ) -> Result<bool, ChannelError> {
        let (keys, _) = self.lease_policy(lease)?;
        match self.store.extend(keys, &delivery.tag, lease)? {
            Some(deadline) => {
                delivery.set_deadline(deadline);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Moves every expired lease of this end to wait to be delivered again
    /// (or to the dead letters, after `max_deliveries`) now, and returns how
    /// many. Leased receives take expired leases by themselves; this is for
    /// operators, and for dead-lettering exhausted messages at once.
    pub fn reclaim(&self) -> Result<u64, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.reclaim(keys, self.options.max_deliveries)?)
    }

    /// Hands deliveries back without counting them, for work not started
    /// (a consumer shutting down with prefetched messages): each message
    /// is delivered again first, with the attempt this delivery had, so it
    /// spends none of its `max_deliveries`. Returns how many were still
    /// held. One round trip.
    pub fn release_all<'a, T: 'a>(
        &self,
        deliveries: impl IntoIterator<Item = &'a Delivery<T>>,
    ) -> Result<u64, ChannelError> {
        let keys = self.lease_keys()?;
        let tags: Vec<DeliveryTag> = deliveries.into_iter().map(|d| d.tag.clone()).collect();
        Ok(self.store.release(keys, &tags)?)
    }

    /// Refuses a delivery for good: the message becomes a dead letter at
    /// once, whatever its deliveries (a permanent failure). `false` when
    /// this delivery no longer held it. One round trip.
    pub fn reject<T>(&self, delivery: &Delivery<T>) -> Result<bool, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self
            .store
            .dead_letter(keys, &delivery.tag, DeadReason::Refused)?)
    }

    /// Up to `max` dead letters of this end, oldest first, with their ids,
    /// deliveries, why and when they died, and the bytes that were sent;
    /// they stay.
    pub fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.dead_letters(keys, max)?)
    }

    /// Sends up to `max` of the oldest dead letters again: they move to the
    /// tail of the receiving list as new messages (attempt 1). Returns how
    /// many moved.
    pub fn requeue_dead(&self, max: usize) -> Result<u64, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.requeue_dead(keys, Pick::Oldest(max))?)
    }

    /// Sends the dead letters with these [`DeadLetter::id`]s again, as
    /// [`requeue_dead`](Self::requeue_dead) does; returns how many were
    /// still there.
    pub fn requeue_dead_letters(&self, ids: &[String]) -> Result<u64, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.requeue_dead(keys, Pick::Ids(ids))?)
    }

    /// Deletes every dead letter of this end; returns how many there were.
    pub fn purge_dead(&self) -> Result<u64, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.purge_dead(keys, Pick::Oldest(usize::MAX))?)
    }

    /// Deletes the dead letters with these [`DeadLetter::id`]s; returns how
    /// many were still there.
    pub fn purge_dead_letters(&self, ids: &[String]) -> Result<u64, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.purge_dead(keys, Pick::Ids(ids))?)
    }

    /// How many messages wait on this end's receiving list, are in flight,
    /// wait to be delivered again, and are dead, and the nearest lease
    /// deadline: one atomic read, one round trip.
    pub fn lease_stats(&self) -> Result<LeaseStats, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.lease_stats(keys)?)
    }

    /// Everything in flight, waiting to be delivered again, or dead on
    /// this end, read in one atomic step (its size is the state's).
    pub fn lease_snapshot(&self) -> Result<LeaseSnapshot, ChannelError> {
        let keys = self.lease_keys()?;
        Ok(self.store.lease_snapshot(keys)?)
    }
}

/// What does not depend on the store, shared with the async channel.
impl<S> RedisChannel<S> {
    /// The lease keys of the receiving list, or why there are none.
    pub fn lease_keys(&self) -> Result<&LeaseKeys, ChannelError> {
        self.lease_keys.as_ref().ok_or_else(|| ChannelError::InvalidName {
            name: self.name.as_str().to_owned(),
            reason: "a name with a '}' but no hash tag cannot keep leases in its list's cluster slot",
        })
    }

    pub(crate) fn lease_policy(
        &self,
        lease: Duration,
    ) -> Result<(&LeaseKeys, LeasePolicy), ChannelError> {
        if !(Duration::from_millis(1)..=MAX_TTL).contains(&lease) {
            return Err(ChannelError::InvalidOption(
                "a lease is between 1 ms and 100 years",
            ));
        }
        let policy = LeasePolicy {
            lease,
            max_deliveries: self.options.max_deliveries,
        };
        Ok((self.lease_keys()?, policy))
    }

    /// Decodes each leased message on its own; also the tags of those that
    /// do not decode, which go to the dead letters. If moving one fails, it
    /// stays leased, comes back when its lease runs out and ends among the
    /// dead letters after `max_deliveries`: either way, its bytes are kept.
    pub(crate) fn decode_leased<T: DeserializeOwned>(
        &self,
        leased: Vec<Leased>,
    ) -> (Deliveries<T>, Vec<DeliveryTag>) {
        let mut undecodable = Vec::new();
        let deliveries = leased
            .into_iter()
            .map(|leased| match json::from_slice(&leased.body) {
                Ok(msg) => Ok(Delivery {
                    msg,
                    tag: leased.tag,
                    deadline: leased.deadline,
                }),
                Err(err) => {
                    undecodable.push(leased.tag);
                    Err(DecodeError::new(&self.recv_key, leased.body, err))
                }
            })
            .collect();
        (deliveries, undecodable)
    }
}

impl<T> Delivery<T> {
    /// Moves the deadline, once the store extended the lease to it.
    pub(crate) fn set_deadline(&mut self, deadline: SystemTime) {
        self.deadline = deadline;
    }
}

/// A nack's delay as the stores take it: at most 100 years.
pub(crate) fn nack_delay(delay: Duration) -> Duration {
    delay.min(MAX_TTL)
}

impl<S: LeaseStore> RedisChannel<S> {
    /// [`decode_leased`](Self::decode_leased), and the messages that do not
    /// decode moved to the dead letters.
    fn deliveries<T: DeserializeOwned>(
        &self,
        keys: &LeaseKeys,
        leased: Vec<Leased>,
    ) -> Deliveries<T> {
        let (deliveries, undecodable) = self.decode_leased(leased);
        for tag in &undecodable {
            let _ = self.store.dead_letter(keys, tag, DeadReason::Undecodable);
        }
        deliveries
    }
}
