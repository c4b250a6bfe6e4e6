//! The proxy client's errors, mirroring the seed's `RedisProxyError`
//! hierarchy: [`Error::SendRequest`], [`Error::KeyNotFound`],
//! [`Error::ServerResponse`], plus invalid arguments, signing failures,
//! encoding and decoding failures and writes that did not reach every
//! cluster.
//!
//! Branch on what happened with the predicates ([`Error::is_key_not_found`],
//! [`Error::is_no_host_answered`], [`Error::is_timeout`], [`Error::status`],
//! …) rather than on variants, which may grow.

mod parts;

use std::fmt;
use std::sync::Arc;

use http::StatusCode;

use crate::proxy::host::ProxyHost;
use crate::proxy::sign::SignError;
use crate::proxy::transport::TransportErrorKind;
pub use parts::{Attempt, AttemptFailure, ClusterFailure};
use parts::{Attempts, Failures};

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
#[derive(Debug, Clone)]
pub enum Error {
    /// No host of the cluster gave a usable answer: every attempt was
    /// refused, timed out, reset or answered 502/503/504.
    SendRequest {
        /// Every attempt, in order.
        attempts: Vec<Attempt>,
    },
    /// The proxy answered 404.
    KeyNotFound {
        /// The key (`hashname/hashkey` for hash fields).
        key: String,
        /// The host that answered.
        host: ProxyHost,
    },
    /// The proxy answered a status other than 200 and 404 (and other than
    /// 502/503/504, which move on to the next host). A redirect (3xx) is
    /// never followed: it is this error, with its `Location`.
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
    InvalidArgument(String),
    /// A request could not be signed (nothing was sent): the clock reads
    /// a time no signature can carry, or the signature settings are
    /// invalid.
    Sign {
        /// What the signer refused.
        source: SignError,
    },
    /// The value could not be encoded as JSON: the encoder's message, and
    /// the encoder's error as [`source`](std::error::Error::source).
    Encode(String, Arc<serde_json::Error>),
    /// A 200 body could not be decoded as the requested type.
    Decode {
        /// The host that answered.
        host: ProxyHost,
        /// The decoder's message.
        message: String,
        /// The whole body, so nothing is lost.
        body: Vec<u8>,
        /// The decoder's error.
        source: Arc<serde_json::Error>,
    },
    /// A write or delete that some clusters took and others did not
    /// (`written` is never empty). When no cluster took it, the call
    /// returns the main cluster's error instead, whatever the number of
    /// clusters.
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SendRequest { attempts } => write!(
                f,
                "failed to send request to any proxy host: {}",
                Attempts(attempts)
            ),
            Self::KeyNotFound { key, host } => write!(f, "key not found: {key:?} on {host}"),
            Self::ServerResponse {
                status,
                host,
                body,
                location,
            } => write!(
                f,
                "proxy {host} answered {status}{}: {body:?}",
                Location(location.as_deref())
            ),
            Self::InvalidArgument(message) => write!(f, "invalid argument: {message}"),
            Self::Sign { source } => write!(f, "cannot sign request: {source}"),
            Self::Encode(message, _) => write!(f, "cannot encode value as json: {message}"),
            Self::Decode { host, message, .. } => {
                write!(f, "cannot decode response from {host}: {message}")
            }
            Self::PartialWrite { written, failed } => write!(
                f,
                "write taken by clusters {written:?}, not by {}",
                Failures(failed)
            ),
        }
    }
}

impl std::error::Error for Error {
    /// The signer's error of [`Error::Sign`], the `serde_json::Error` of
    /// [`Error::Encode`] and [`Error::Decode`] (downcast it with
    /// `source.downcast_ref::<serde_json::Error>()`).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sign { source } => Some(source),
            Self::Encode(_, source) | Self::Decode { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

impl PartialEq for Error {
    /// Field by field; a JSON error kept as source is compared by its
    /// message (which the variant also holds).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::SendRequest { attempts: a }, Self::SendRequest { attempts: b }) => a == b,
            (
                Self::KeyNotFound { key, host },
                Self::KeyNotFound {
                    key: other_key,
                    host: other_host,
                },
            ) => (key, host) == (other_key, other_host),
            (
                Self::ServerResponse {
                    status,
                    host,
                    body,
                    location,
                },
                Self::ServerResponse {
                    status: other_status,
                    host: other_host,
                    body: other_body,
                    location: other_location,
                },
            ) => {
                (status, host, body, location)
                    == (other_status, other_host, other_body, other_location)
            }
            (Self::InvalidArgument(a), Self::InvalidArgument(b)) => a == b,
            (Self::Sign { source: a }, Self::Sign { source: b }) => a == b,
            (Self::Encode(a, _), Self::Encode(b, _)) => a == b,
            (
                Self::Decode {
                    host,
                    message,
                    body,
                    ..
                },
                Self::Decode {
                    host: other_host,
                    message: other_message,
                    body: other_body,
                    ..
                },
            ) => (host, message, body) == (other_host, other_message, other_body),
            (
                Self::PartialWrite { written, failed },
                Self::PartialWrite {
                    written: other_written,
                    failed: other_failed,
                },
            ) => (written, failed) == (other_written, other_failed),
            _ => false,
        }
    }
}

impl Error {
    /// Whether the proxy answered 404: the key (or hash field) does not
    /// exist. ([`Error::KeyNotFound`].)
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{MemoryProxy, ProxyConfig, RedisProxyClient};
    ///
    /// let client = RedisProxyClient::new(MemoryProxy::new(), ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
    /// let value = match client.get::<String>("missing") {
    ///     Err(error) if error.is_key_not_found() => None,
    ///     other => Some(other?),
    /// };
    /// assert_eq!(value, None);
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn is_key_not_found(&self) -> bool {
        matches!(self, Self::KeyNotFound { .. })
    }

    /// Whether a write or delete was taken by some clusters and not by
    /// others ([`Error::PartialWrite`]).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{FakeTransport, Outcome, ProxyConfig, ProxyHost, RedisProxyClient};
    ///
    /// let fake = FakeTransport::new();
    /// fake.set_default("10.0.0.1:80", Outcome::json(200, &()));
    /// fake.set_default("10.0.1.1:80", Outcome::Refused);
    /// let config = ProxyConfig {
    ///     proxy_hosts: vec![vec![ProxyHost::new("10.0.0.1", 80)], vec![ProxyHost::new("10.0.1.1", 80)]],
    ///     ..ProxyConfig::default()
    /// };
    /// let client = RedisProxyClient::new(&fake, config)?;
    /// assert!(client.set("k", "v").unwrap_err().is_partial_write());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn is_partial_write(&self) -> bool {
        matches!(self, Self::PartialWrite { .. })
    }

    /// Whether no host of the cluster gave a usable answer: each attempt
    /// failed in transport or answered 502, 503 or 504
    /// ([`Error::SendRequest`], whose `attempts` say why, host by host).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
    ///
    /// let fake = FakeTransport::new();
    /// fake.set_default("10.0.0.1:80", Outcome::json(503, "busy"));
    /// let client = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([("10.0.0.1", 80)]))?;
    /// let error = client.get::<String>("k").unwrap_err();
    /// assert!(error.is_no_host_answered());
    /// assert!(!error.is_connection() && !error.is_timeout());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn is_no_host_answered(&self) -> bool {
        matches!(self, Self::SendRequest { .. })
    }

    /// Whether no host answered and at least one attempt failed for want
    /// of a connection: the host could not be reached, gave no response or
    /// timed out (a [`TransportError`](crate::proxy::TransportError) of kind `Unreachable`, `NoResponse`
    /// or `TimedOut`). Such a write may or may not have been applied.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
    ///
    /// let fake = FakeTransport::new();
    /// fake.set_default("10.0.0.1:80", Outcome::Refused);
    /// let client = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([("10.0.0.1", 80)]))?;
    /// let error = client.get::<String>("k").unwrap_err();
    /// assert!(error.is_connection() && error.is_no_host_answered());
    /// assert!(!error.is_timeout());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn is_connection(&self) -> bool {
        self.any_transport_failure(|kind| {
            matches!(
                kind,
                TransportErrorKind::Unreachable
                    | TransportErrorKind::NoResponse
                    | TransportErrorKind::TimedOut
            )
        })
    }

    /// Whether no host answered and at least one attempt timed out (then
    /// [`is_connection`](Self::is_connection) holds too).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
    ///
    /// let fake = FakeTransport::new();
    /// fake.set_default("10.0.0.1:80", Outcome::TimedOut);
    /// let client = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([("10.0.0.1", 80)]))?;
    /// let error = client.get::<String>("k").unwrap_err();
    /// assert!(error.is_timeout() && error.is_connection());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.any_transport_failure(|kind| kind == TransportErrorKind::TimedOut)
    }

    /// Whether a host answered a status the client does not take: not 200,
    /// not 404, not 502/503/504; a redirect included
    /// ([`Error::ServerResponse`]).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
    ///
    /// let fake = FakeTransport::new();
    /// fake.set_default("10.0.0.1:80", Outcome::json(500, "boom"));
    /// let client = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([("10.0.0.1", 80)]))?;
    /// let error = client.get::<String>("k").unwrap_err();
    /// assert!(error.is_server_response());
    /// assert_eq!(error.status().map(|status| status.as_u16()), Some(500));
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn is_server_response(&self) -> bool {
        matches!(self, Self::ServerResponse { .. })
    }

    /// Whether a request could not be signed ([`Error::Sign`]).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use redisutil::ManualClock;
    /// use redisutil::proxy::{Credentials, MemoryProxy, ProxyConfig, RedisProxyClient};
    ///
    /// let config = ProxyConfig {
    ///     credentials: Some(Credentials::new("access", "secret")),
    ///     ..ProxyConfig::with_hosts([("127.0.0.1", 2222)])
    /// };
    /// // No signature can carry a date after the year 9999.
    /// let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
    /// let client = RedisProxyClient::new(MemoryProxy::new(), config)?.with_clock(ManualClock::new(far));
    /// assert!(client.get::<String>("k").unwrap_err().is_sign());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn is_sign(&self) -> bool {
        matches!(self, Self::Sign { .. })
    }

    /// The HTTP status a host answered, when the error is one answer:
    /// 404 for [`Error::KeyNotFound`], the status of
    /// [`Error::ServerResponse`]. `None` otherwise (the attempts of
    /// [`Error::SendRequest`] each have their own failure).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{MemoryProxy, ProxyConfig, RedisProxyClient};
    ///
    /// let client = RedisProxyClient::new(MemoryProxy::new(), ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
    /// let error = client.get::<String>("missing").unwrap_err();
    /// assert_eq!(error.status(), Some(http::StatusCode::NOT_FOUND));
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::KeyNotFound { .. } => Some(StatusCode::NOT_FOUND),
            Self::ServerResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether this is [`Error::SendRequest`] with an attempt that failed
    /// in transport with a kind `wanted` accepts.
    fn any_transport_failure(&self, wanted: impl Fn(TransportErrorKind) -> bool) -> bool {
        let Self::SendRequest { attempts } = self else {
            return false;
        };
        attempts.iter().any(|attempt| {
            matches!(&attempt.failure, AttemptFailure::Transport(error) if wanted(error.kind()))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::Error;
    use crate::proxy::answered::{decode, encode};
    use crate::proxy::host::ProxyHost;

    #[test]
    fn json_errors_are_kept_as_source() {
        let error = decode::<u32>(b"\"text\"".to_vec(), ProxyHost::new("h", 1)).unwrap_err();
        let source = error.source().expect("a decode error has a source");
        assert!(source.is::<serde_json::Error>());
        assert!(matches!(&error, Error::Decode { message, .. } if *message == source.to_string()));
        assert_eq!(error.clone(), error);

        let error = encode(&f64::NAN).unwrap_err();
        let source = error.source().expect("an encode error has a source");
        assert!(source.is::<serde_json::Error>());
        assert!(matches!(&error, Error::Encode(message, _) if *message == source.to_string()));
    }
}
