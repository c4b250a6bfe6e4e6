//! [`RedisChannel`]: a duplex message channel on two Redis lists.
//!
//! A channel `/a/b` is two lists, `/a/b/client` and `/a/b/server`. A
//! [`Peer::Client`] pushes to the first and pops from the second; a
//! [`Peer::Server`] the other way round. A message is one list element, the
//! JSON encoding of a value: the wire format of the Python `k3redisutil`,
//! so Rust and Python peers talk over the same Redis.
//!
//! # Examples
//!
//! ```
//! use redisutil::{MemoryStore, Peer, RedisChannel};
//!
//! let store = MemoryStore::new();
//! let client = RedisChannel::new(store.clone(), "/foo", Peer::Client)?;
//! let server = RedisChannel::new(store, "/foo", Peer::Server)?;
//!
//! client.send_msg("c2s")?;
//! server.send_msg(&serde_json::json!({"reply": "s2c"}))?;
//!
//! assert_eq!(client.list_channel("/")?, ["/foo"]);
//! assert_eq!(server.recv_msg::<String>()?.as_deref(), Some("c2s"));
//! let reply: Option<serde_json::Value> = client.recv_msg()?;
//! assert_eq!(reply.unwrap()["reply"], "s2c");
//! assert_eq!(client.recv_msg::<String>()?, None); // empty
//! # Ok::<(), redisutil::ChannelError>(())
//! ```

mod error;
mod lease;
mod name;
mod stats;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{ChannelError, DecodeError};
#[cfg(feature = "tokio")]
pub(crate) use lease::nack_delay;
pub use lease::{Deliveries, Delivery};

pub use name::{ChannelName, IntoChannelName, Peer};
#[cfg(feature = "tokio")]
pub use stats::channel_stats_async;
pub use stats::{ChannelStats, channel_stats};

use crate::json;
use crate::store::{LeaseKeys, ListStore, glob};

/// The longest channel TTL: 100 years. Redis refuses a TTL whose deadline
/// passes `i64::MAX` milliseconds since 1970; refusing far earlier, when the
/// channel is built, means a send never half-applies.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Settings of a [`RedisChannel`]. `Default` gives no TTL and
/// [`DEFAULT_MAX_DELIVERIES`] for leased receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOptions {
    /// The channel's TTL (the Python original's `timeout`): every send sets
    /// the sending list to expire this long after it (millisecond
    /// precision), in the same atomic step as the push. `None`: the lists
    /// live until they are emptied. From 1 ms to 100 years; the channel
    /// refuses others when it is built.
    pub ttl: Option<Duration>,
    /// How many times a leased receive delivers a message before one more
    /// lease running out, or a [`nack`](RedisChannel::nack), makes it a dead
    /// letter; at least 1. Every consumer of a channel should agree on it.
    pub max_deliveries: u32,
}

/// The default of [`ChannelOptions::max_deliveries`].
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            ttl: None,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
        }
    }
}

/// One end of a duplex channel over two Redis lists.
///
/// Creating it opens no connection and writes nothing. It is generic over
/// the [`ListStore`]: [`RedisStore`](crate::RedisStore) in production,
/// [`MemoryStore`](crate::MemoryStore) in tests.
///
/// Messages are typed with serde: any `Serialize` value is sent; receiving
/// asks for a `DeserializeOwned` type (`serde_json::Value` takes anything).
/// `Ok(None)` always means "no message", so a message whose JSON is `null`
/// comes back as `Ok(Some(..))`.
///
/// ```
/// use redisutil::{MemoryStore, Peer, RedisChannel};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Resize { file: String, width: u32 }
///
/// let store = MemoryStore::new(); // `redisutil::get_client(6379)?` on Redis
/// let client = RedisChannel::new(store.clone(), "/jobs/resize", Peer::Client)?;
/// let server = RedisChannel::new(store, "/jobs/resize", Peer::Server)?;
///
/// client.send_msg(&Resize { file: "a.png".into(), width: 64 })?;
/// let job: Option<Resize> = server.recv_msg()?;
/// assert_eq!(job.unwrap().width, 64);
/// assert_eq!(server.recv_msg::<Resize>()?, None); // nothing waiting
/// # Ok::<(), redisutil::ChannelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisChannel<S> {
    store: S,
    name: ChannelName,
    peer: Peer,
    send_key: String,
    recv_key: String,
    /// The lease keys of the receiving list; `None` when they could not
    /// share its cluster slot.
    lease_keys: Option<LeaseKeys>,
    options: ChannelOptions,
}

/// What does not depend on the store: building, names and keys, and the
/// encoding, shared with the async channel.
impl<S> RedisChannel<S> {
    /// The `peer` end of `channel` on `store`, without TTL.
    pub fn new(store: S, channel: impl IntoChannelName, peer: Peer) -> Result<Self, ChannelError> {
        Self::with_options(store, channel, peer, ChannelOptions::default())
    }

    /// The `peer` end of `channel` on `store`, with `options`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisutil::{ChannelOptions, MemoryStore, Peer, RedisChannel};
    ///
    /// let options = ChannelOptions { ttl: Some(Duration::from_secs(60)), ..Default::default() };
    /// let chan = RedisChannel::with_options(MemoryStore::new(), ["jobs", "resize"], Peer::Client, options)?;
    /// assert_eq!(chan.name().as_str(), "/jobs/resize");
    /// # Ok::<(), redisutil::ChannelError>(())
    /// ```
    pub fn with_options(
        store: S,
        channel: impl IntoChannelName,
        peer: Peer,
        options: ChannelOptions,
    ) -> Result<Self, ChannelError> {
        if options
            .ttl
            .is_some_and(|ttl| !(Duration::from_millis(1)..=MAX_TTL).contains(&ttl))
        {
            return Err(ChannelError::InvalidOption(
                "a channel ttl is between 1 ms and 100 years; None keeps the lists without one",
            ));
        }
        if options.max_deliveries == 0 {
            return Err(ChannelError::InvalidOption(
                "max_deliveries is at least 1: a message is delivered at least once",
            ));
        }
        let name = channel.into_channel_name()?;
        let recv_key = name.list_key(peer.other());
        Ok(Self {
            send_key: name.list_key(peer),
            lease_keys: LeaseKeys::for_list(&recv_key),
            recv_key,
            store,
            name,
            peer,
            options,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &ChannelName {
        &self.name
    }

    /// Which end this is.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The options in force.
    pub fn options(&self) -> &ChannelOptions {
        &self.options
    }

    /// The store the channel runs on.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The list this end sends on.
    pub fn send_key(&self) -> &str {
        &self.send_key
    }

    /// The list this end receives from.
    pub fn recv_key(&self) -> &str {
        &self.recv_key
    }

    /// The JSON of one message, or the error that refuses it.
    pub(crate) fn encode<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>, ChannelError> {
        json::to_vec(msg).map_err(ChannelError::Encode)
    }

    /// The JSON of many messages in one buffer (one allocation, not one
    /// per message), and where each ends; nothing if one fails to encode.
    pub(crate) fn encode_all<I>(msgs: I) -> Result<Encoded, ChannelError>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let msgs = msgs.into_iter();
        // Room for as many small messages as the iterator says it holds,
        // up to 16,384 (more, or larger ones, grow the buffer as they go):
        // a batch is not copied over and over as its buffer doubles.
        let count = msgs.size_hint().0.min(16_384);
        let mut encoded = Encoded {
            buffer: Vec::with_capacity(count * 64),
            ends: Vec::with_capacity(count),
        };
        for msg in msgs {
            json::to_writer(&mut encoded.buffer, &msg).map_err(ChannelError::Encode)?;
            encoded.ends.push(encoded.buffer.len());
        }
        Ok(encoded)
    }

    pub(crate) fn decode_all<T: DeserializeOwned>(
        &self,
        popped: Vec<Vec<u8>>,
    ) -> Vec<Result<T, DecodeError>> {
        popped
            .into_iter()
            .map(|raw| match json::from_slice(&raw) {
                Ok(value) => Ok(value),
                Err(err) => Err(DecodeError::new(&self.recv_key, raw, err)),
            })
            .collect()
    }

    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        raw: Option<Vec<u8>>,
    ) -> Result<Option<T>, ChannelError> {
        let Some(raw) = raw else { return Ok(None) };
        match json::from_slice(&raw) {
            Ok(value) => Ok(Some(value)),
            Err(err) => Err(DecodeError::new(&self.recv_key, raw, err).into()),
        }
    }
}

/// Messages encoded by [`RedisChannel::encode_all`].
pub(crate) struct Encoded {
    buffer: Vec<u8>,
    ends: Vec<usize>,
}

impl Encoded {
    /// Each message's bytes, in order.
    pub(crate) fn values(&self) -> Vec<&[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.buffer[start..end])
            .collect()
    }
}

/// A receive's timeout as the stores take it: `Duration::ZERO` waits
/// without limit, as in the Python original.
pub(crate) fn block_timeout(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

/// The SCAN pattern of the lists of every channel under `prefix`, once
/// the prefix is checked.
pub(crate) fn channels_pattern(prefix: &str) -> Result<String, ChannelError> {
    name::check_prefix(prefix)?;
    Ok(format!("{}*", glob::escape(prefix)))
}

/// The channels under `prefix` that the `keys` a scan found belong to,
/// sorted, each once.
pub(crate) fn channels_of(keys: &[String], prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = keys
        .iter()
        .filter_map(|key| ChannelName::from_list_key(key))
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

impl<S: ListStore> RedisChannel<S> {
    /// Sends one message: its JSON is pushed onto this end's list (and the
    /// channel's TTL refreshed, in the same round trip).
    pub fn send_msg<T: Serialize + ?Sized>(&self, msg: &T) -> Result<(), ChannelError> {
        let encoded = Self::encode(msg)?;
        self.store
            .push(&self.send_key, &[&encoded], self.options.ttl)?;
        Ok(())
    }

    /// Sends many messages in one push (one round trip), in order, and
    /// returns how many were sent. Nothing is sent if one fails to encode.
    ///
    /// ```
    /// use redisutil::{MemoryStore, Peer, RedisChannel};
    ///
    /// let store = MemoryStore::new();
    /// let client = RedisChannel::new(store.clone(), "/nums", Peer::Client)?;
    /// let server = RedisChannel::new(store, "/nums", Peer::Server)?;
    /// assert_eq!(client.send_msgs(1..=3)?, 3);
    /// assert_eq!(server.recv_last_msg::<i32>()?, Some(3));
    /// # Ok::<(), redisutil::ChannelError>(())
    /// ```
    pub fn send_msgs<I>(&self, msgs: I) -> Result<usize, ChannelError>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let encoded = Self::encode_all(msgs)?;
        let values = encoded.values();
        if values.is_empty() {
            return Ok(0);
        }
        self.store.push(&self.send_key, &values, self.options.ttl)?;
        Ok(values.len())
    }

    /// Receives the oldest message; `None` when there is none.
    pub fn recv_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        self.decode(self.store.pop(&self.recv_key)?)
    }

    /// Receives the oldest message, waiting up to `timeout` for one;
    /// `Duration::ZERO`, or 100 years or more, waits without limit. `None`
    /// when the time passed.
    pub fn brecv_msg<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<Option<T>, ChannelError> {
        self.decode(self.blocking_pop(timeout)?)
    }

    /// Receives up to `max` of the oldest messages at once, oldest first, in
    /// one round trip (LPOP with a count); empty when there is none.
    ///
    /// Each message is decoded on its own: one that does not decode is an
    /// `Err` holding its bytes in its place, and the others still arrive.
    ///
    /// ```
    /// use redisutil::{MemoryStore, Peer, RedisChannel};
    ///
    /// let store = MemoryStore::new();
    /// let client = RedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
    /// let server = RedisChannel::new(store, "/jobs", Peer::Server)?;
    /// client.send_msgs([1, 2, 3])?;
    /// let batch: Vec<u32> = server.recv_msgs(2)?.into_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(batch, [1, 2]);
    /// assert_eq!(server.recv_msgs::<u32>(10)?.len(), 1);
    /// assert!(server.recv_msgs::<u32>(10)?.is_empty());
    /// # Ok::<(), redisutil::ChannelError>(())
    /// ```
    pub fn recv_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
    ) -> Result<Vec<Result<T, DecodeError>>, ChannelError> {
        let popped = self.store.pop_many(&self.recv_key, max)?;
        Ok(self.decode_all(popped))
    }

    /// Like [`recv_msgs`](Self::recv_msgs), but waits up to `timeout`
    /// (`Duration::ZERO`, or 100 years or more: without limit) for the first
    /// message, then takes up to `max` at once (BLMPOP, one round trip on
    /// Redis 7 and newer; BLPOP then LPOP before). Empty when the time passed.
    pub fn brecv_msgs<T: DeserializeOwned>(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Result<T, DecodeError>>, ChannelError> {
        let popped = self
            .store
            .blocking_pop_many(&self.recv_key, max, block_timeout(timeout))?;
        Ok(self.decode_all(popped))
    }

    /// Receives the newest message and drops all older ones, atomically and
    /// in one round trip, whatever the backlog; `None` when there is none.
    pub fn recv_last_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        self.decode(self.store.take_last(&self.recv_key)?)
    }

    /// Like [`recv_last_msg`](Self::recv_last_msg), but waits up to
    /// `timeout` (`Duration::ZERO`, or 100 years or more: without limit)
    /// while the channel is empty. The wait takes nothing: the messages
    /// leave Redis only in the final atomic take, so a call that fails
    /// before it has taken nothing.
    pub fn brecv_last_msg<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<Option<T>, ChannelError> {
        self.decode(
            self.store
                .blocking_take_last(&self.recv_key, block_timeout(timeout))?,
        )
    }

    /// The oldest message, left in the channel; `None` when there is none.
    pub fn peek_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        self.decode(self.store.index(&self.recv_key, 0)?)
    }

    /// The newest message, left in the channel; `None` when there is none.
    pub fn rpeek_msg<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        self.decode(self.store.index(&self.recv_key, -1)?)
    }

    /// The names of every channel under `prefix` on this channel's store;
    /// see [`list_channels`].
    pub fn list_channel(&self, prefix: &str) -> Result<Vec<String>, ChannelError> {
        list_channels(&self.store, prefix)
    }

    /// BLPOP on the receiving list.
    fn blocking_pop(&self, timeout: Duration) -> Result<Option<Vec<u8>>, ChannelError> {
        Ok(self
            .store
            .blocking_pop(&self.recv_key, block_timeout(timeout))?)
    }
}

/// The names of every channel under `prefix`, sorted, each once.
///
/// `prefix` starts and ends with `/` (`"/"` lists every channel). Glob
/// characters in it are matched literally. A channel is listed while
/// either of its lists exists. Uses SCAN, never KEYS.
///
/// ```
/// use redisutil::{list_channels, MemoryStore, Peer, RedisChannel};
///
/// let store = MemoryStore::new();
/// for name in ["/a/x", "/a/y", "/b/z"] {
///     RedisChannel::new(store.clone(), name, Peer::Client)?.send_msg(&1)?;
/// }
/// assert_eq!(list_channels(&store, "/a/")?, ["/a/x", "/a/y"]);
/// assert!(list_channels(&store, "/a").is_err());
/// # Ok::<(), redisutil::ChannelError>(())
/// ```
pub fn list_channels<S: ListStore + ?Sized>(
    store: &S,
    prefix: &str,
) -> Result<Vec<String>, ChannelError> {
    let pattern = channels_pattern(prefix)?;
    Ok(channels_of(&store.scan(&pattern)?, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    /// A number beyond 64 bits (the Python original sends any integer)
    /// would come back as a float with other digits: it is a decode error
    /// holding the bytes, and the channel goes on.
    #[test]
    fn integers_beyond_64_bits_are_decode_errors_holding_the_bytes() {
        let store = MemoryStore::new();
        let server = RedisChannel::new(store.clone(), "/big", Peer::Server).unwrap();
        let client = RedisChannel::new(store.clone(), "/big", Peer::Client).unwrap();
        for raw in [
            &b"18446744073709551617"[..],
            b"{\"n\": -9223372036854775809}",
        ] {
            store.push(client.send_key(), &[raw, b"1"], None).unwrap();
            match server.recv_msg::<serde_json::Value>() {
                Err(ChannelError::Decode(err)) => assert_eq!(err.raw(), raw),
                other => panic!("expected a decode error, got {other:?}"),
            }
            assert_eq!(server.recv_msg::<u8>().unwrap(), Some(1));
        }
    }

    /// JSON encoded already (`serde_json::value::RawValue`) goes out byte
    /// for byte, spaces and all, and comes back as it is, a number beyond
    /// 64 bits too (nothing is decoded, so nothing can change).
    #[test]
    fn pre_encoded_json_is_sent_and_received_as_it_is() {
        use serde_json::value::RawValue;
        let store = MemoryStore::new();
        let server = RedisChannel::new(store.clone(), "/raw", Peer::Server).unwrap();
        let client = RedisChannel::new(store.clone(), "/raw", Peer::Client).unwrap();
        let texts = [
            r#"{"id": 1,  "tags": ["a", "b"]}"#,
            r#"[18446744073709551617, -9223372036854775809]"#,
            r#""caf\u00e9""#,
        ];
        let raws: Vec<Box<RawValue>> = texts
            .iter()
            .map(|text| RawValue::from_string(text.to_string()).unwrap())
            .collect();
        client.send_msg(&raws[0]).unwrap();
        assert_eq!(client.send_msgs(&raws).unwrap(), 3);
        let key = client.send_key();
        let sent: Vec<&str> = std::iter::once(texts[0]).chain(texts).collect();
        for (at, text) in sent.iter().enumerate() {
            let stored = store.index(key, at as i64).unwrap().unwrap();
            assert_eq!(stored, text.as_bytes());
        }
        let first = server.recv_msg::<Box<RawValue>>().unwrap().unwrap();
        assert_eq!(first.get(), texts[0]);
        let rest: Vec<String> = server
            .recv_msgs::<Box<RawValue>>(3)
            .unwrap()
            .into_iter()
            .map(|raw| raw.unwrap().get().to_owned())
            .collect();
        assert_eq!(rest, texts);
    }

    /// The encoder makes room for as many messages as an iterator says
    /// it holds: one that claims more than memory holds is still sent.
    #[test]
    fn an_iterator_claiming_too_many_messages_is_sent_as_it_is() {
        struct Boastful(u8);
        impl Iterator for Boastful {
            type Item = u8;
            fn next(&mut self) -> Option<u8> {
                self.0 = self.0.checked_sub(1)?;
                Some(self.0)
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (usize::MAX, None)
            }
        }
        let store = MemoryStore::new();
        let client = RedisChannel::new(store.clone(), "/many", Peer::Client).unwrap();
        let server = RedisChannel::new(store, "/many", Peer::Server).unwrap();
        assert_eq!(client.send_msgs(Boastful(3)).unwrap(), 3);
        let got: Vec<u8> = server
            .recv_msgs(10)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [2, 1, 0]);
    }

    #[test]
    fn nan_and_infinity_are_refused_before_sending() {
        let store = MemoryStore::new();
        let client = RedisChannel::new(store.clone(), "/nan", Peer::Client).unwrap();
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = client.send_msg(&[1.0, value]).unwrap_err();
            assert!(matches!(err, ChannelError::Encode(_)), "{err}");
            let err = client.send_msgs([1.0, value]).unwrap_err();
            assert!(matches!(err, ChannelError::Encode(_)), "{err}");
        }
        assert!(store.is_empty());
    }
}
