//! The HTTP seam: [`HttpTransport`] sends one request and returns the
//! response, whatever its status; [`TransportError`] says how an exchange
//! failed when there is no response at all; [`TransportConfig`], the
//! timeouts and body bound of the real transports.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::proxy::redact::redact;

/// Sends one HTTP request and returns its response.
///
/// Implementations: [`UreqTransport`](crate::proxy::UreqTransport) (real
/// HTTP), [`MemoryProxy`](crate::proxy::MemoryProxy) (an in-memory server),
/// [`FakeTransport`](crate::proxy::FakeTransport) (scripted outcomes) and
/// [`RoutingTransport`](crate::proxy::RoutingTransport) (one transport per
/// host).
///
/// Every status is a response, not an error: a 404 or a 503 comes back as
/// `Ok`. `Err` means there is no response at all.
///
/// # Examples
///
/// ```
/// use redisutil::proxy::{HttpTransport, TransportError, TransportErrorKind};
///
/// /// A transport that can reach nothing.
/// struct Offline;
///
/// impl HttpTransport for Offline {
///     fn send(
///         &self,
///         _request: http::Request<Vec<u8>>,
///     ) -> Result<http::Response<Vec<u8>>, TransportError> {
///         Err(TransportError::new(TransportErrorKind::Unreachable, "offline"))
///     }
/// }
///
/// let request = http::Request::get("http://127.0.0.1:1/").body(Vec::new())?;
/// let error = Offline.send(request).unwrap_err();
/// assert_eq!(error.kind(), TransportErrorKind::Unreachable);
/// assert_eq!(error.to_string(), "host unreachable, nothing sent: offline");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait HttpTransport {
    /// Sends `request` (its URI is absolute: `http://ip:port/path?query`)
    /// and returns the response with its whole body.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] when no response came back.
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

impl<T: HttpTransport + ?Sized> HttpTransport for &T {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (**self).send(request)
    }
}

impl<T: HttpTransport + ?Sized> HttpTransport for Box<T> {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (**self).send(request)
    }
}

impl<T: HttpTransport + ?Sized> HttpTransport for Arc<T> {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (**self).send(request)
    }
}

/// Timeouts and limits of one HTTP exchange, which only the transport uses
/// (`UreqConfig` for [`UreqTransport`](crate::proxy::UreqTransport),
/// `HyperConfig` for `HyperTransport`, the async one; a
/// [`ProxyConfig`](crate::proxy::ProxyConfig) says where to send and how
/// to sign; this says how long to wait and how much to read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    /// Timeout of one whole exchange (connect, send, receive). Default 2 s.
    pub timeout: Duration,
    /// Timeout to connect. Default 2 s.
    pub connect_timeout: Duration,
    /// Largest response body read; a longer one is an error. Default 16 MiB.
    pub max_response_body: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            max_response_body: 16 * 1024 * 1024,
        }
    }
}

impl TransportConfig {
    /// The default settings with both timeouts `timeout`: what the seed's
    /// (and `ProxyConfig`'s former) `timeout` set.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisutil::proxy::TransportConfig;
    ///
    /// let settings = TransportConfig::with_timeout(Duration::from_secs(5));
    /// assert_eq!(settings.timeout, Duration::from_secs(5));
    /// assert_eq!(settings.connect_timeout, Duration::from_secs(5));
    /// assert_eq!(settings.max_response_body, TransportConfig::default().max_response_body);
    /// assert_eq!(TransportConfig::default(), TransportConfig::with_timeout(Duration::from_secs(2)));
    /// ```
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            connect_timeout: timeout,
            ..Self::default()
        }
    }
}

/// How an exchange failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportErrorKind {
    /// The host was never reached and nothing was sent (connection
    /// refused, no route, name not found).
    Unreachable,
    /// The request was (or may have been) sent, but no answer came back
    /// (connection reset, closed early).
    NoResponse,
    /// The connection or the exchange timed out.
    TimedOut,
    /// The answer was unusable: malformed, or its body over the size bound.
    BadResponse,
    /// Anything else, e.g. a request the transport cannot send.
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "host unreachable, nothing sent",
            Self::NoResponse => "request sent, no response",
            Self::TimedOut => "timed out",
            Self::BadResponse => "bad response",
            Self::Other => "transport error",
        })
    }
}

/// An exchange that produced no response.
///
/// Its message is scrubbed of signature and credential query values, so it
/// can be shown or logged.
#[derive(Clone)]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl TransportError {
    /// An error of `kind` with a short lower-case `message`.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{TransportError, TransportErrorKind};
    ///
    /// let error = TransportError::new(TransportErrorKind::TimedOut, "after 2s");
    /// assert_eq!(error.to_string(), "timed out: after 2s");
    /// ```
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: redact(&message.into()),
            source: None,
        }
    }

    /// Keeps `source` as this error's [`source`](StdError::source).
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// How the exchange failed.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message (without the kind).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.message)
        }
    }
}

impl fmt::Debug for TransportError {
    /// Like a derived `Debug`, with the source shown as its scrubbed
    /// `Display` (a dependency's `Debug` may carry the URL).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field(
                "source",
                &self
                    .source
                    .as_ref()
                    .map(|source| redact(&source.to_string())),
            )
            .finish()
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl PartialEq for TransportError {
    /// Kind and message; the source is not compared.
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}
