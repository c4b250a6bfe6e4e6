//! [`AsyncRedisChannel`]: [`RedisChannel`] on an [`AsyncListStore`].

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AsyncListStore;
use crate::channel::{block_timeout, channels_of, channels_pattern};
use crate::{ChannelError, ChannelName, ChannelOptions, DecodeError, IntoChannelName, Peer};
use crate::{RedisChannel, StoreError};

/// One end of a duplex channel over two Redis lists, as futures: every
/// plain and batch operation of [`RedisChannel`], with the same names,
/// wire format, options and errors (a Python or sync Rust peer talks to
/// it), on an [`AsyncListStore`]:
/// [`AsyncRedisStore`](crate::aio::AsyncRedisStore) in production,
/// [`MemoryStore`](crate::MemoryStore) in tests.
///
/// Dropping a receive future never loses a message (see the
/// [module](crate::aio#cancellation)).
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
