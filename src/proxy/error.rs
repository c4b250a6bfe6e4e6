//! The proxy client's errors, mirroring the seed's `RedisProxyError`
//! hierarchy: [`Error::SendRequest`], [`Error::KeyNotFound`],
//! [`Error::ServerResponse`], plus invalid arguments, decoding failures and
//! writes that did not reach every cluster.

use std::fmt;

use http::StatusCode;

use crate::proxy::config::ProxyHost;
use crate::proxy::transport::TransportError;

/// What went wrong with one attempt on one host, when the client moved on
/// to the next host.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptFailure {
    /// No response: refused, timed out, reset.
    Transport(TransportError),
    /// The host answered 502, 503 or 504.
    Unavailable(StatusCode),
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(error) => write!(f, "{error}"),
            Self::Unavailable(status) => write!(f, "answered {status}"),
        }
    }
}

/// One failed attempt: which host, in which round, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The host tried.
    pub host: ProxyHost,
    /// The round (0 for the first pass over the cluster).
    pub round: u32,
    /// Why it gave no usable answer.
    pub failure: AttemptFailure,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (round {}): {}", self.host, self.round, self.failure)
    }
}

/// A cluster that did not take a write, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterFailure {
    /// Index of the cluster in `proxy_hosts` (0 is the main cluster).
    pub cluster: usize,
    /// What that cluster answered.
    pub error: Box<Error>,
}

/// An error of the proxy client.
///
/// # Examples
///
/// ```
/// use redisutil::proxy::{Error, MemoryProxy, ProxyConfig, RedisProxyClient};
///
/// let client = RedisProxyClient::new(
///     MemoryProxy::new(),
///     ProxyConfig::with_hosts([("127.0.0.1", 2222)]),
/// )?;
/// match client.get::<String>("missing") {
///     Err(Error::KeyNotFound { key, .. }) => assert_eq!(key, "missing"),
///     other => panic!("expected KeyNotFound, got {other:?}"),
/// }
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// No host of the cluster gave a usable answer: every attempt was
    /// refused, timed out, reset or answered 502/503/504.
    #[error("failed to send request to any proxy host: {}", Attempts(attempts))]
    SendRequest {
        /// Every attempt, in order.
        attempts: Vec<Attempt>,
    },
    /// The proxy answered 404.
    #[error("key not found: {key:?} on {host}")]
    KeyNotFound {
        /// The key (`hashname/hashkey` for hash fields).
        key: String,
        /// The host that answered.
        host: ProxyHost,
    },
    /// The proxy answered a status other than 200 and 404 (and other than
    /// 502/503/504, which move on to the next host). A redirect (3xx) is
    /// never followed: it is this error, with its `Location`.
    #[error("proxy {host} answered {status}{}: {body:?}", Location(location.as_deref()))]
    ServerResponse {
        /// The status.
        status: StatusCode,
        /// The host that answered.
        host: ProxyHost,
        /// The start of the body (lossy UTF-8, at most 512 bytes, signature
        /// values scrubbed).
        body: String,
        /// The `Location` header of a redirect, when there is one (lossy
        /// UTF-8, signature and credential values scrubbed).
        location: Option<String>,
    },
    /// An argument was rejected before anything was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The value could not be encoded as JSON.
    #[error("cannot encode value as json: {0}")]
    Encode(String),
    /// A 200 body could not be decoded as the requested type.
    #[error("cannot decode response from {host}: {message}")]
    Decode {
        /// The host that answered.
        host: ProxyHost,
        /// The decoder's message.
        message: String,
        /// The whole body, so nothing is lost.
        body: Vec<u8>,
    },
    /// A write or delete that some clusters took and others did not
    /// (`written` is never empty). When no cluster took it, the call
    /// returns the main cluster's error instead, whatever the number of
    /// clusters.
    #[error("write taken by clusters {written:?}, not by {}", Failures(failed))]
    PartialWrite {
        /// Clusters that took the write.
        written: Vec<usize>,
        /// Clusters that did not, with their errors.
        failed: Vec<ClusterFailure>,
    },
}

struct Location<'a>(Option<&'a str>);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, " (location {location:?})"),
            None => Ok(()),
        }
    }
}

struct Attempts<'a>(&'a [Attempt]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, attempt) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}

struct Failures<'a>(&'a [ClusterFailure]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, failure) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "cluster {} ({})", failure.cluster, failure.error)?;
        }
        Ok(())
    }
}

impl Error {
    /// Whether this is [`Error::KeyNotFound`].
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::Error;
    ///
    /// assert!(!Error::InvalidArgument("x".into()).is_key_not_found());
    /// ```
    pub fn is_key_not_found(&self) -> bool {
        matches!(self, Self::KeyNotFound { .. })
    }
}
