//! [`MemoryProxy`]: the redis proxy server's protocol in memory, for tests
//! that run a [`RedisProxyClient`](crate::proxy::RedisProxyClient) end to
//! end without a network.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};

use crate::clock::{Clock, SystemClock};
use crate::proxy::encode::decode;
use crate::proxy::failover::PATH_PREFIX;
use crate::proxy::sign::{Signer, parse_query};
use crate::proxy::transport::{HttpTransport, TransportError};

/// A value with its deadline.
#[derive(Debug, Clone)]
struct Entry {
    json: Vec<u8>,
    expires_at: Option<SystemTime>,
}

impl Entry {
    fn live(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|deadline| now < deadline)
    }
}

#[derive(Debug)]
enum Value {
    Text(Entry),
    Hash(BTreeMap<String, Entry>),
}

struct Inner {
    clock: Arc<dyn Clock>,
    signer: Option<Signer>,
    data: Mutex<HashMap<String, Value>>,
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
                data: Mutex::new(HashMap::new()),
                handled: AtomicU64::new(0),
            }),
        }
    }
}

type Answer = Result<Response<Vec<u8>>, (StatusCode, String)>;

fn json(body: Vec<u8>) -> Answer {
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

fn fail<T>(status: StatusCode, message: impl Into<String>) -> Result<T, (StatusCode, String)> {
    Err((status, message.into()))
}

fn not_found<T>(what: &str) -> Result<T, (StatusCode, String)> {
    fail(StatusCode::NOT_FOUND, format!("{what} not found"))
}

fn wrong_type<T>() -> Result<T, (StatusCode, String)> {
    fail(
        StatusCode::CONFLICT,
        "wrongtype: operation against a key holding the wrong kind of value",
    )
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

    fn answer(&self, request: &Request<Vec<u8>>, now: SystemTime) -> Answer {
        if let Some(signer) = &self.inner.signer
            && let Err(error) = signer.verify(request, now)
        {
            return fail(StatusCode::FORBIDDEN, format!("request refused: {error}"));
        }
        let declared = request.headers().get(CONTENT_LENGTH).map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<usize>().ok())
        });
        match declared {
            Some(None) => return fail(StatusCode::BAD_REQUEST, "bad content-length"),
            Some(Some(length)) if length != request.body().len() => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "content-length does not match the body",
                );
            }
            None if request.method() == Method::PUT => {
                return fail(StatusCode::LENGTH_REQUIRED, "content-length required");
            }
            _ => {}
        }
        let params = parse_query(request.uri().query().unwrap_or_default())
            .ok_or((StatusCode::BAD_REQUEST, "bad query".to_owned()))?;
        let number = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.parse::<u64>().ok())
        };
        for name in ["n", "w", "r"] {
            if !matches!(number(name), Some(Some(_))) {
                return fail(
                    StatusCode::BAD_REQUEST,
                    format!("query parameter {name} missing or not a number"),
                );
            }
        }
        let expires_at = match number("expire") {
            None => None,
            Some(Some(ms)) if ms > 0 => match now.checked_add(Duration::from_millis(ms)) {
                Some(deadline) => Some(deadline),
                // As Redis answers "invalid expire time" for a deadline it
                // cannot represent.
                None => return fail(StatusCode::BAD_REQUEST, "expire is out of range"),
            },
            Some(_) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "expire must be a positive number of ms",
                );
            }
        };
        let Some(rest) = request.uri().path().strip_prefix(PATH_PREFIX) else {
            return fail(StatusCode::BAD_REQUEST, "unknown path");
        };
        let segments: Vec<String> = rest
            .split('/')
            .map(decode)
            .collect::<Option<_>>()
            .ok_or((StatusCode::BAD_REQUEST, "bad path encoding".to_owned()))?;
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return fail(StatusCode::BAD_REQUEST, "empty path segment");
        }
        let (expected, arity) = match segments[0] {
            "GET" | "HKEYS" | "HVALS" | "HGETALL" => (Method::GET, 2),
            "HGET" => (Method::GET, 3),
            "SET" => (Method::PUT, 2),
            "HSET" => (Method::PUT, 3),
            "DEL" => (Method::DELETE, 2),
            "HDEL" => (Method::DELETE, 3),
            _ => return fail(StatusCode::BAD_REQUEST, "unknown command"),
        };
        if segments.len() != arity {
            return fail(StatusCode::BAD_REQUEST, "wrong number of path segments");
        }
        if request.method() != expected {
            return fail(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        if expires_at.is_some() && expected != Method::PUT {
            return fail(StatusCode::BAD_REQUEST, "expire applies to writes only");
        }
        if expected == Method::PUT
            && serde_json::from_slice::<serde::de::IgnoredAny>(request.body()).is_err()
        {
            return fail(StatusCode::BAD_REQUEST, "body is not json");
        }
        let mut data = self
            .inner
            .data
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        purge(&mut data, segments[1], now);
        let entry = || Entry {
            json: request.body().clone(),
            expires_at,
        };
        match (segments[0], data.get_mut(segments[1])) {
            ("GET", None) => not_found("key"),
            ("GET", Some(Value::Text(entry))) => json(entry.json.clone()),
            ("SET", _) => {
                data.insert(segments[1].to_owned(), Value::Text(entry()));
                json(Vec::new())
            }
            ("DEL", _) => {
                data.remove(segments[1]);
                json(Vec::new())
            }
            ("HSET", None) => {
                let fields = BTreeMap::from([(segments[2].to_owned(), entry())]);
                data.insert(segments[1].to_owned(), Value::Hash(fields));
                json(Vec::new())
            }
            ("HSET", Some(Value::Hash(fields))) => {
                fields.insert(segments[2].to_owned(), entry());
                json(Vec::new())
            }
            ("HDEL", None) => json(Vec::new()),
            ("HDEL", Some(Value::Hash(fields))) => {
                fields.remove(segments[2]);
                if fields.is_empty() {
                    data.remove(segments[1]);
                }
                json(Vec::new())
            }
            (_, None) => not_found("key"),
            (command, Some(Value::Hash(fields))) => read_hash(command, fields, segments.get(2)),
            (_, Some(Value::Text(_))) => wrong_type(),
        }
    }
}

/// Drops `key`, or its fields, once expired.
fn purge(data: &mut HashMap<String, Value>, key: &str, now: SystemTime) {
    let gone = match data.get_mut(key) {
        Some(Value::Text(entry)) => !entry.live(now),
        Some(Value::Hash(fields)) => {
            fields.retain(|_, entry| entry.live(now));
            fields.is_empty()
        }
        None => false,
    };
    if gone {
        data.remove(key);
    }
}

fn read_hash(command: &str, fields: &BTreeMap<String, Entry>, field: Option<&&str>) -> Answer {
    let mut out = Vec::new();
    match command {
        "HGET" => {
            let field = field.copied().unwrap_or_default();
            return match fields.get(field) {
                Some(entry) => json(entry.json.clone()),
                None => not_found("field"),
            };
        }
        "HKEYS" => {
            let names: Vec<&String> = fields.keys().collect();
            out = serde_json::to_vec(&names)
                .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
        }
        "HVALS" => {
            out.push(b'[');
            for (index, entry) in fields.values().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&entry.json);
            }
            out.push(b']');
        }
        "HGETALL" => {
            out.push(b'{');
            for (index, (name, entry)) in fields.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                let name = serde_json::to_vec(name)
                    .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
                out.extend_from_slice(&name);
                out.push(b':');
                out.extend_from_slice(&entry.json);
            }
            out.push(b'}');
        }
        _ => return wrong_type(),
    }
    json(out)
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
