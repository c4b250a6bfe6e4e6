//! [`ChannelError`] and [`DecodeError`].

use std::fmt;

use crate::store::{Excerpt, StoreError};

/// A [`RedisChannel`](crate::RedisChannel) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A channel name broke the naming rules; nothing was sent.
    #[error("invalid channel name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A [`list_channel`](crate::RedisChannel::list_channel) prefix broke
    /// the rules; nothing was sent.
    #[error("invalid channel prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A peer was neither `"client"` nor `"server"`.
    #[error("invalid peer {0:?}: expected \"client\" or \"server\"")]
    InvalidPeer(String),
    /// An option was out of range; nothing was sent.
    #[error("invalid channel option: {0}")]
    InvalidOption(&'static str),
    /// The value could not be encoded as JSON; nothing was sent.
    #[error("cannot encode message as json: {0}")]
    Encode(#[source] serde_json::Error),
    /// A received message did not decode; it has left Redis, and the error
    /// holds its bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChannelError {
    /// Whether the store failed with a lost or refused connection, or a
    /// timeout: a later call may pass.
    pub fn is_connection(&self) -> bool {
        matches!(self, Self::Store(err) if err.is_connection())
    }

    /// Whether the call ran out of time: the store did not answer in time
    /// (a receive may have taken its message), or no pooled connection came
    /// free within the pool timeout (nothing was sent; see
    /// [`StoreError::is_pool_exhausted`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Store(err) if err.is_timeout())
    }

    /// Whether the command may have run although the call failed: its
    /// reply was lost or did not come in time (see
    /// [`StoreError::may_have_run`]).
    pub fn may_have_run(&self) -> bool {
        matches!(self, Self::Store(err) if err.may_have_run())
    }

    /// Whether a received message did not decode ([`DecodeError`] holds its
    /// bytes).
    ///
    /// ```
    /// use redisutil::{ListStore, MemoryStore, Peer, RedisChannel};
    ///
    /// let store = MemoryStore::new();
    /// store.push("/jobs/client", &[b"not json"], None)?;
    /// let server = RedisChannel::new(store, "/jobs", Peer::Server)?;
    /// let err = server.recv_msg::<u32>().unwrap_err();
    /// assert!(err.is_decode() && !err.is_connection());
    /// # Ok::<(), redisutil::ChannelError>(())
    /// ```
    pub fn is_decode(&self) -> bool {
        matches!(self, Self::Decode(_))
    }

    /// Whether the input was refused before anything was sent: a bad name,
    /// prefix, peer or option, or a value JSON cannot carry.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidName { .. }
                | Self::InvalidPrefix { .. }
                | Self::InvalidPeer(_)
                | Self::InvalidOption(_)
                | Self::Encode(_)
                | Self::Store(StoreError::InvalidInput { .. })
        )
    }
}

/// A message that was received but did not decode into the asked type.
///
/// The message has already been removed from its list (unless it was only
/// peeked at): [`raw`](DecodeError::raw) and
/// [`into_raw`](DecodeError::into_raw) give its bytes back, so nothing is lost.
///
/// # Examples
///
/// ```
/// use redisutil::{ChannelError, ListStore, MemoryStore, Peer, RedisChannel};
///
/// let store = MemoryStore::new();
/// store.push("/jobs/client", &[b"not json"], None)?;
/// let server = RedisChannel::new(store, "/jobs", Peer::Server)?;
/// match server.recv_msg::<serde_json::Value>() {
///     Err(ChannelError::Decode(err)) => assert_eq!(err.raw(), b"not json"),
///     other => panic!("expected a decode error, got {other:?}"),
/// }
/// # Ok::<(), ChannelError>(())
/// ```
pub struct DecodeError {
    key: String,
    raw: Vec<u8>,
    source: serde_json::Error,
}

impl DecodeError {
    pub(crate) fn new(key: &str, raw: Vec<u8>, source: serde_json::Error) -> Self {
        crate::trace::decode_failed("channel message", key, raw.len(), &source);
        Self {
            key: key.to_owned(),
            raw,
            source,
        }
    }

    /// The list the message came from (`<channel>/<peer>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The message's bytes, exactly as they were in Redis.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Takes the message's bytes.
    pub fn into_raw(self) -> Vec<u8> {
        self.raw
    }

    /// Why the bytes did not decode.
    pub fn json_error(&self) -> &serde_json::Error {
        &self.source
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message from {:?} does not decode: {}; raw message: {}",
            self.key,
            self.source,
            Excerpt(&self.raw)
        )
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeError")
            .field("key", &self.key)
            .field("raw", &Excerpt(&self.raw).to_string())
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
