//! [`AsyncRedisChannel`]: [`RedisChannel`] on an [`AsyncListStore`].

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AsyncLeaseStore, AsyncListStore};
use crate::channel::{block_timeout, channels_of, channels_pattern, nack_delay};
use crate::store::{DeadLetter, DeadReason, LeaseStats, Pick};
use crate::store::{DeliveryTag, LeaseKeys, LeaseSnapshot, Leased};
use crate::{ChannelError, ChannelName, ChannelOptions, DecodeError, IntoChannelName, Peer};
use crate::{Deliveries, Delivery, Nacked, RedisChannel, StoreError};

/// One end of a duplex channel over two Redis lists, as futures: every
/// plain and batch operation of [`RedisChannel`], with the same names,
/// wire format, options and errors (a Python or sync Rust peer talks to
/// it), on an [`AsyncListStore`]:
/// [`AsyncRedisStore`](crate::aio::AsyncRedisStore) in production,
/// [`MemoryStore`](crate::MemoryStore) in tests.
///
/// Dropping a receive future never loses a message (see the
/// [module](crate::aio#cancellation)).
///
/// ```
/// use redisutil::MemoryStore;
/// use redisutil::Peer;
/// use redisutil::aio::AsyncRedisChannel;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = MemoryStore::new(); // `AsyncRedisStore::open(…)` on Redis
/// let client = AsyncRedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
/// let server = AsyncRedisChannel::new(store, "/jobs", Peer::Server)?;
///
/// client.send_msg("hello").await?;
/// let msg: Option<String> = server.brecv_msg(Duration::from_secs(1)).await?;
/// assert_eq!(msg.as_deref(), Some("hello"));
/// # Ok::<(), redisutil::ChannelError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AsyncRedisChannel<S> {
    chan: RedisChannel<S>,
}

impl<S: AsyncListStore> AsyncRedisChannel<S> {
    /// The `peer` end of `channel` on `store`, without TTL. Checks the name
    /// as [`RedisChannel::new`] does; connects to nothing.
    pub fn new(store: S, channel: impl IntoChannelName, peer: Peer) -> Result<Self, ChannelError> {
        Self::with_options(store, channel, peer, ChannelOptions::default())
    }

    /// The `peer` end of `channel` on `store`, with `options` (checked as
    /// [`RedisChannel::with_options`] does).
    pub fn with_options(
        store: S,
        channel: impl IntoChannelName,
        peer: Peer,
        options: ChannelOptions,
    ) -> Result<Self, ChannelError> {
        let chan = RedisChannel::with_options(store, channel, peer, options)?;
        Ok(Self { chan })
    }

    /// The channel's name.
    pub fn name(&self) -> &ChannelName {
        self.chan.name()
    }

    /// Which end this is.
    pub fn peer(&self) -> Peer {
        self.chan.peer()
    }

    /// The options in force.
    pub fn options(&self) -> &ChannelOptions {
        self.chan.options()
    }

    /// The store the channel runs on.
    pub fn store(&self) -> &S {
        self.chan.store()
    }

    /// The list this end sends on.
    pub fn send_key(&self) -> &str {
        self.chan.send_key()
    }

    /// The list this end receives from.
    pub fn recv_key(&self) -> &str {
        self.chan.recv_key()
    }

    /// [`RedisChannel::send_msg`]: one message, with the TTL in the same
    /// round trip.
    pub async fn send_msg<T: Serialize + ?Sized>(&self, msg: &T) -> Result<(), ChannelError> {
        let encoded = RedisChannel::<S>::encode(msg)?;
        self.push(&[&encoded]).await?;
        Ok(())
    }

    /// [`RedisChannel::send_msgs`]: many messages in one push, in order;
    /// nothing is sent if one fails to encode.
    pub async fn send_msgs<I>(&self, msgs: I) -> Result<usize, ChannelError>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let encoded = RedisChannel::<S>::encode_all(msgs)?;
        let values = encoded.values();
        if values.is_empty() {
            return Ok(0);
        }
        self.push(&values).await?;
        Ok(values.len())
    }

    /// [`RedisChannel::recv_msg`]: the oldest message; `None` when there is
    /// none.
    pub async fn recv_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let popped = self.store().pop(self.recv_key()).await?;
        self.chan.decode(popped)
    }

    /// [`RedisChannel::brecv_msg`]: the oldest message, waiting up to
    /// `timeout` (`Duration::ZERO`, or 100 years or more: without limit).
    /// Waiting holds no thread.
    pub async fn brecv_msg<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<Option<T>, ChannelError> {
        let popped = self
            .store()
            .blocking_pop(self.recv_key(), block_timeout(timeout))
            .await?;
        self.chan.decode(popped)
    }

    /// [`RedisChannel::recv_msgs`]: up to `max` of the oldest messages in
    /// one round trip, each decoded on its own.
    pub async fn recv_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
    ) -> Result<Vec<Result<T, DecodeError>>, ChannelError> {
        let popped = self.store().pop_many(self.recv_key(), max).await?;
        Ok(self.chan.decode_all(popped))
    }

    /// [`RedisChannel::brecv_msgs`]: like [`recv_msgs`](Self::recv_msgs),
    /// waiting up to `timeout` for the first message.
    pub async fn brecv_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Result<T, DecodeError>>, ChannelError> {
        let popped = self
            .store()
            .blocking_pop_many(self.recv_key(), max, block_timeout(timeout))
            .await?;
        Ok(self.chan.decode_all(popped))
    }

    /// [`RedisChannel::recv_last_msg`]: the newest message, dropping all
    /// older ones, atomically.
    pub async fn recv_last_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let last = self.store().take_last(self.recv_key()).await?;
        self.chan.decode(last)
    }

    /// [`RedisChannel::brecv_last_msg`]: the newest message as
    /// [`recv_last_msg`](Self::recv_last_msg) takes it, waiting up to
    /// `timeout` while the channel is empty.
    pub async fn brecv_last_msg<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<Option<T>, ChannelError> {
        let last = self
            .store()
            .blocking_take_last(self.recv_key(), block_timeout(timeout))
            .await?;
        self.chan.decode(last)
    }

    /// [`RedisChannel::peek_msg`]: the oldest message, left in the channel.
    pub async fn peek_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let head = self.store().index(self.recv_key(), 0).await?;
        self.chan.decode(head)
    }

    /// [`RedisChannel::rpeek_msg`]: the newest message, left in the channel.
    pub async fn rpeek_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let tail = self.store().index(self.recv_key(), -1).await?;
        self.chan.decode(tail)
    }

    /// [`RedisChannel::list_channel`]: the names of every channel under
    /// `prefix` on this channel's store, sorted, each once.
    pub async fn list_channel(&self, prefix: &str) -> Result<Vec<String>, ChannelError> {
        let pattern = channels_pattern(prefix)?;
        let keys = self.store().scan(&pattern).await?;
        Ok(channels_of(&keys, prefix))
    }

    async fn push(&self, values: &[&[u8]]) -> Result<u64, StoreError> {
        let ttl = self.options().ttl;
        self.store().push(self.send_key(), values, ttl).await
    }
}

/// Leased receive: at-least-once delivery, as [`RedisChannel`]'s (see its
/// `lease_msg` and the leases guide), one atomic step on the server each.
impl<S: AsyncLeaseStore> AsyncRedisChannel<S> {
    /// [`RedisChannel::lease_msg`]: the oldest message (due ones first)
    /// under a lease of `lease`; `None` when there is none.
    pub async fn lease_msg<T: DeserializeOwned>(
        &self,
        lease: Duration,
    ) -> Result<Option<Delivery<T>>, ChannelError> {
        let mut batch = self.lease_msgs(1, lease).await?;
        Ok(batch.pop().transpose()?)
    }

    /// [`RedisChannel::blease_msg`]: waits up to `timeout` (`ZERO`: without
    /// limit) for a message to lease. Waiting holds no thread.
    pub async fn blease_msg<T: DeserializeOwned>(
        &self,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Option<Delivery<T>>, ChannelError> {
        let mut batch = self.blease_msgs(1, lease, timeout).await?;
        Ok(batch.pop().transpose()?)
    }

    /// [`RedisChannel::lease_msgs`]: up to `max` messages under one lease
    /// each, in one round trip.
    pub async fn lease_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
        lease: Duration,
    ) -> Result<Deliveries<T>, ChannelError> {
        let (keys, policy) = self.chan.lease_policy(lease)?;
        let leased = self.store().lease(keys, max, policy).await?;
        Ok(self.deliveries(keys, leased).await)
    }

    /// [`RedisChannel::blease_msgs`]: waits up to `timeout` for the first.
    pub async fn blease_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Deliveries<T>, ChannelError> {
        let (keys, policy) = self.chan.lease_policy(lease)?;
        let leased = self
            .store()
            .blocking_lease(keys, max, policy, block_timeout(timeout))
            .await?;
        Ok(self.deliveries(keys, leased).await)
    }

    /// [`RedisChannel::ack`]: settles a delivery for good; `false` when it
    /// no longer held the message.
    pub async fn ack<T>(&self, delivery: &Delivery<T>) -> Result<bool, ChannelError> {
        Ok(self.ack_all([delivery]).await? == 1)
    }

    /// [`RedisChannel::ack_all`]: many acks in one round trip.
    pub async fn ack_all<'a, T: 'a>(
        &self,
        deliveries: impl IntoIterator<Item = &'a Delivery<T>>,
    ) -> Result<u64, ChannelError> {
        let keys = self.chan.lease_keys()?;
        let tags = tags_of(deliveries);
        Ok(self.store().ack(keys, &tags).await?)
    }

    /// [`RedisChannel::ack_and_lease_msg`]: acks `done` and leases the next,
    /// in one atomic step.
    pub async fn ack_and_lease_msg<D, T: DeserializeOwned>(
        &self,
        done: &Delivery<D>,
        lease: Duration,
    ) -> Result<(bool, Option<Delivery<T>>), ChannelError> {
        let (acked, mut batch) = self.ack_and_lease_msgs([done], 1, lease).await?;
        Ok((acked == 1, batch.pop().transpose()?))
    }

    /// [`RedisChannel::ack_and_lease_msgs`].
    pub async fn ack_and_lease_msgs<'a, D: 'a, T: DeserializeOwned>(
        &self,
        done: impl IntoIterator<Item = &'a Delivery<D>>,
        max: usize,
        lease: Duration,
    ) -> Result<(u64, Deliveries<T>), ChannelError> {
        let (keys, policy) = self.chan.lease_policy(lease)?;
        let tags = tags_of(done);
        let (acked, leased) = self.store().ack_and_lease(keys, &tags, max, policy).await?;
        Ok((acked, self.deliveries(keys, leased).await))
    }

    /// [`RedisChannel::nack`]: back to the queue `delay` from now, or to the
    /// dead letters after `max_deliveries`.
    pub async fn nack<T>(
        &self,
        delivery: &Delivery<T>,
        delay: Duration,
    ) -> Result<Nacked, ChannelError> {
        let keys = self.chan.lease_keys()?;
        let max = self.options().max_deliveries;
        Ok(self
            .store()
            .nack(keys, delivery.tag(), nack_delay(delay), max)
            .await?)
    }

    /// [`RedisChannel::extend`]: holds the message `lease` from now.
    pub async fn extend<T>(
        &self,
        delivery: &mut Delivery<T>,
        lease: Duration,
    ) -> Result<bool, ChannelError> {
        let (keys, _) = self.chan.lease_policy(lease)?;
        match self.store().extend(keys, delivery.tag(), lease).await? {
            Some(deadline) => {
                delivery.set_deadline(deadline);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// [`RedisChannel::reclaim`].
    pub async fn reclaim(&self) -> Result<u64, ChannelError> {
        let keys = self.chan.lease_keys()?;
        let max = self.options().max_deliveries;
        Ok(self.store().reclaim(keys, max).await?)
    }

    /// [`RedisChannel::release_all`]: hands deliveries back without
    /// counting them.
    pub async fn release_all<'a, T: 'a>(
        &self,
        deliveries: impl IntoIterator<Item = &'a Delivery<T>>,
    ) -> Result<u64, ChannelError> {
        let keys = self.chan.lease_keys()?;
        let tags = tags_of(deliveries);
        Ok(self.store().release(keys, &tags).await?)
    }

    /// [`RedisChannel::reject`]: a dead letter at once.
    pub async fn reject<T>(&self, delivery: &Delivery<T>) -> Result<bool, ChannelError> {
        let keys = self.chan.lease_keys()?;
        let reason = DeadReason::Refused;
        Ok(self
            .store()
            .dead_letter(keys, delivery.tag(), reason)
            .await?)
    }

    /// [`RedisChannel::dead_letters`].
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, ChannelError> {
        let keys = self.chan.lease_keys()?;
        Ok(self.store().dead_letters(keys, max).await?)
    }

    /// [`RedisChannel::requeue_dead`].
    pub async fn requeue_dead(&self, max: usize) -> Result<u64, ChannelError> {
        let keys = self.chan.lease_keys()?;
        Ok(self.store().requeue_dead(keys, Pick::Oldest(max)).await?)
    }

    /// [`RedisChannel::requeue_dead_letters`].
    pub async fn requeue_dead_letters(&self, ids: &[String]) -> Result<u64, ChannelError> {
        let keys = self.chan.lease_keys()?;
        Ok(self.store().requeue_dead(keys, Pick::Ids(ids)).await?)
    }

    /// [`RedisChannel::purge_dead`].
    pub async fn purge_dead(&self) -> Result<u64, ChannelError> {
        let keys = self.chan.lease_keys()?;
        let all = Pick::Oldest(usize::MAX);
        Ok(self.store().purge_dead(keys, all).await?)
    }

    /// [`RedisChannel::purge_dead_letters`].
    pub async fn purge_dead_letters(&self, ids: &[String]) -> Result<u64, ChannelError> {
        let keys = self.chan.lease_keys()?;
        Ok(self.store().purge_dead(keys, Pick::Ids(ids)).await?)
    }

    /// [`RedisChannel::lease_stats`].
    pub async fn lease_stats(&self) -> Result<LeaseStats, ChannelError> {
        let keys = self.chan.lease_keys()?;
        Ok(self.store().lease_stats(keys).await?)
    }

    /// [`RedisChannel::lease_snapshot`].
    pub async fn lease_snapshot(&self) -> Result<LeaseSnapshot, ChannelError> {
        let keys = self.chan.lease_keys()?;
        Ok(self.store().lease_snapshot(keys).await?)
    }

    /// [`RedisChannel::lease_keys`].
    pub fn lease_keys(&self) -> Result<&LeaseKeys, ChannelError> {
        self.chan.lease_keys()
    }

    /// Decodes, and moves the messages that do not decode to the dead
    /// letters.
    async fn deliveries<T: DeserializeOwned>(
        &self,
        keys: &LeaseKeys,
        leased: Vec<Leased>,
    ) -> Deliveries<T> {
        let (deliveries, undecodable) = self.chan.decode_leased(leased);
        for tag in &undecodable {
            let _ = self
                .store()
                .dead_letter(keys, tag, DeadReason::Undecodable)
                .await;
        }
        deliveries
    }
}

fn tags_of<'a, T: 'a>(deliveries: impl IntoIterator<Item = &'a Delivery<T>>) -> Vec<DeliveryTag> {
    deliveries
        .into_iter()
        .map(|delivery| delivery.tag().clone())
        .collect()
}
