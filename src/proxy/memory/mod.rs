//! [`MemoryProxy`]: the redis proxy server's protocol in memory, for tests
//! that run a [`RedisProxyClient`](crate::proxy::RedisProxyClient) end to
//! end without a network.
//!
//! A request is answered in three steps: the signature is checked, the
//! request is parsed with the protocol's [`wire`](crate::proxy::wire)
//! rules into a `ProxyRequest` (`request.rs`), and that is executed on the
//! data (`data.rs`).

mod data;
mod request;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};

use crate::clock::{Clock, SystemClock};
use crate::proxy::sign::Signer;
use crate::proxy::transport::{HttpTransport, TransportError};
use data::Data;
use request::ProxyRequest;

struct Inner {
    clock: Arc<dyn Clock>,
    signer: Option<Signer>,
    data: Mutex<Data>,
    handled: AtomicU64,
}

/// The redis proxy server in memory.
///
/// It routes the paths of the protocol, verifies signatures with the same
/// [`Signer`] code that makes them (403 when wrong or expired), honours
/// `expire` on keys and hash fields on its [`Clock`], answers 404 for
/// missing keys and stores JSON bodies as they were sent. It is an
/// [`HttpTransport`] itself, and [`MemoryProxy::handle`] lets a real HTTP
/// server serve it. Clones share the same data.
///
/// | request | answer |
/// |---|---|
/// | `GET /redisproxy/v1/GET/<key>` | 200 and the value, or 404 |
/// | `PUT /redisproxy/v1/SET/<key>` | 200 (body must be JSON) |
/// | `GET /redisproxy/v1/HGET/<hashname>/<hashkey>` | 200 and the value, or 404 |
/// | `PUT /redisproxy/v1/HSET/<hashname>/<hashkey>` | 200 |
/// | `GET /redisproxy/v1/HKEYS/<hashname>` | 200, a JSON array of names (sorted), or 404 |
/// | `GET /redisproxy/v1/HVALS/<hashname>` | 200, a JSON array of values (by name), or 404 |
/// | `GET /redisproxy/v1/HGETALL/<hashname>` | 200, a JSON object, or 404 |
/// | `DELETE /redisproxy/v1/DEL/<key>`, `…/HDEL/<hashname>/<hashkey>` | 200, present or not |
///
/// Every request needs `n`, `w` and `r` in its query; `expire=<ms>` is
/// optional on writes. A bad request is a 400, a wrong method a 405, a
/// string used as a hash (or the other way round) a 409.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use redisutil::ManualClock;
/// use redisutil::proxy::{
///     CallOptions, Credentials, MemoryProxy, ProxyConfig, RedisProxyClient, SignatureVersion,
///     Signer,
/// };
///
/// let clock = ManualClock::default();
/// let credentials = Credentials::new("access", "secret");
/// let server = MemoryProxy::builder()
///     .clock(clock.clone())
///     .signer(Signer::new(credentials.clone(), SignatureVersion::default()))
///     .build();
/// let config = ProxyConfig {
///     credentials: Some(credentials),
///     ..ProxyConfig::with_hosts([("127.0.0.1", 2222)])
/// };
/// let client = RedisProxyClient::new(server.clone(), config)?.with_clock(clock.clone());
///
/// client.hset_with("h", "f", &42, &CallOptions::new().expire(Duration::from_millis(500)))?;
/// assert_eq!(client.hget::<u32>("h", "f")?, 42);
/// clock.advance(Duration::from_millis(500));
/// assert!(client.hget::<u32>("h", "f").unwrap_err().is_key_not_found());
///
/// // An unsigned request is refused.
/// let unsigned = RedisProxyClient::new(server, ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
/// assert!(unsigned.get::<u32>("h").is_err());
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryProxy {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryProxy")
            .field("clock", &self.inner.clock)
            .field("signer", &self.inner.signer)
            .field("handled", &self.requests_handled())
            .finish_non_exhaustive()
    }
}

/// Builds a [`MemoryProxy`]: its clock and whether it checks signatures.
#[derive(Debug, Default)]
pub struct MemoryProxyBuilder {
    clock: Option<Arc<dyn Clock>>,
    signer: Option<Signer>,
}

impl MemoryProxyBuilder {
    /// Reads the time (expiry of keys and of signatures) from `clock`.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Accepts only requests presigned by `signer`'s credentials and
    /// version; others get a 403.
    #[must_use]
    pub fn signer(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The proxy, empty.
    pub fn build(self) -> MemoryProxy {
        MemoryProxy {
            inner: Arc::new(Inner {
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                signer: self.signer,
                data: Mutex::new(Data::default()),
                handled: AtomicU64::new(0),
            }),
        }
    }
}

/// A refusal: the status and a short message, sent as `text/plain`.
type Refusal = (StatusCode, String);

/// A response, or a refusal.
type Answer = Result<Response<Vec<u8>>, Refusal>;

fn fail<T>(status: StatusCode, message: impl Into<String>) -> Result<T, Refusal> {
    Err((status, message.into()))
}

impl Default for MemoryProxy {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryProxy {
    /// An empty proxy on the system clock that checks no signatures.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a proxy with a clock or signature checking.
    pub fn builder() -> MemoryProxyBuilder {
        MemoryProxyBuilder::default()
    }

    /// How many requests [`handle`](Self::handle) has answered.
    pub fn requests_handled(&self) -> u64 {
        self.inner.handled.load(Ordering::Relaxed)
    }

    /// Answers one request, as a proxy server would.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::MemoryProxy;
    ///
    /// let proxy = MemoryProxy::new();
    /// let put = http::Request::put("http://h:1/redisproxy/v1/SET/k?n=3&w=2&r=2")
    ///     .header("host", "h:1")
    ///     .header("content-length", "4")
    ///     .body(b"true".to_vec())?;
    /// assert_eq!(proxy.handle(&put).status(), 200);
    /// let get = http::Request::get("http://h:1/redisproxy/v1/GET/k?n=3&w=2&r=2")
    ///     .header("host", "h:1")
    ///     .body(Vec::new())?;
    /// assert_eq!(proxy.handle(&get).body(), b"true");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle(&self, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        self.inner.handled.fetch_add(1, Ordering::Relaxed);
        let now = self.inner.clock.now();
        self.answer(request, now)
            .unwrap_or_else(|(status, message)| {
                let mut response = Response::new(message.into_bytes());
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
                response
            })
    }

    /// Signature check, then [`ProxyRequest::parse`], then
    /// [`Data::execute`].
    fn answer(&self, request: &Request<Vec<u8>>, now: SystemTime) -> Answer {
        if let Some(signer) = &self.inner.signer
            && let Err(error) = signer.verify(request, now)
        {
            return fail(StatusCode::FORBIDDEN, format!("request refused: {error}"));
        }
        let parsed = ProxyRequest::parse(request, now)?;
        self.inner
            .data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .execute(&parsed, now)
    }
}

impl HttpTransport for MemoryProxy {
    fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        Ok(self.handle(&request))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::MemoryProxy;
    use crate::clock::ManualClock;

    /// Found by the `proxy_request` fuzz seeds: an `expire` past the end of
    /// the clock's time panicked on overflow.
    #[test]
    fn expire_past_the_end_of_time_is_a_bad_request() {
        let end = UNIX_EPOCH
            .checked_add(Duration::new(i64::MAX as u64, 999_999_999))
            .unwrap();
        let proxy = MemoryProxy::builder().clock(ManualClock::new(end)).build();
        let put = http::Request::put("http://h:1/redisproxy/v1/SET/k?n=3&w=2&r=2&expire=1")
            .header("host", "h:1")
            .header("content-length", "1")
            .body(b"1".to_vec())
            .unwrap();
        assert_eq!(proxy.handle(&put).status(), 400);
    }
}
