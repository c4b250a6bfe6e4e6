//! [`FakeTransport`]: scripted per-host outcomes, and a record of every
//! request, for unit tests of code that uses a
//! [`RedisProxyClient`](crate::proxy::RedisProxyClient).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use http::{Request, Response, StatusCode};
use serde::Serialize;

use crate::proxy::transport::{HttpTransport, TransportError, TransportErrorKind};

/// What a scripted host does with one request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answers with this status and body.
    Respond {
        /// The status.
        status: StatusCode,
        /// The body.
        body: Vec<u8>,
    },
    /// Refuses the connection: nothing sent
    /// ([`TransportErrorKind::Unreachable`]).
    Refused,
    /// Times out ([`TransportErrorKind::TimedOut`]).
    TimedOut,
    /// Resets the connection after the request was sent
    /// ([`TransportErrorKind::NoResponse`]).
    Reset,
}

impl Outcome {
    /// Answers `status` with an empty body.
    ///
    /// # Panics
    ///
    /// When `status` is not in `100..=999`.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::Outcome;
    ///
    /// assert!(matches!(Outcome::status(503), Outcome::Respond { .. }));
    /// ```
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status: StatusCode::from_u16(status).expect("status code in 100..=999"),
            body: Vec::new(),
        }
    }

    /// Answers `status` with the JSON of `value` as body.
    ///
    /// # Panics
    ///
    /// When `status` is not in `100..=999` or `value` cannot be encoded.
    pub fn json<V: Serialize + ?Sized>(status: u16, value: &V) -> Self {
        Self::Respond {
            status: StatusCode::from_u16(status).expect("status code in 100..=999"),
            body: serde_json::to_vec(value).expect("value encodes as json"),
        }
    }

    fn play(&self, host: &str) -> Result<Response<Vec<u8>>, TransportError> {
        match self {
            Self::Respond { status, body } => {
                let mut response = Response::new(body.clone());
                *response.status_mut() = *status;
                Ok(response)
            }
            Self::Refused => Err(TransportError::new(
                TransportErrorKind::Unreachable,
                format!("connection to {host} refused"),
            )),
            Self::TimedOut => Err(TransportError::new(
                TransportErrorKind::TimedOut,
                format!("no answer from {host}"),
            )),
            Self::Reset => Err(TransportError::new(
                TransportErrorKind::NoResponse,
                format!("connection to {host} reset"),
            )),
        }
    }
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, VecDeque<Outcome>>,
    defaults: HashMap<String, Outcome>,
    requests: Vec<Request<Vec<u8>>>,
}

/// A transport whose hosts do what they are told.
///
/// Each host (named `ip:port`, as in the `Host` header) plays its script of
/// [`Outcome`]s one request at a time; when the script is used up it plays
/// its default ([`set_default`](Self::set_default)), and a host with
/// neither refuses the connection. Every request is recorded, signed query
/// and all, for the test to inspect.
///
/// # Examples
///
/// ```
/// use redisutil::proxy::{Error, FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
///
/// let fake = FakeTransport::new();
/// fake.push("10.0.0.1:80", Outcome::Refused);
/// fake.push("10.0.0.2:80", Outcome::json(200, &"v1"));
///
/// let config = ProxyConfig::with_hosts([("10.0.0.1", 80), ("10.0.0.2", 80)]);
/// let client = RedisProxyClient::new(&fake, config)?;
/// assert_eq!(client.get::<String>("k1")?, "v1");
/// assert_eq!(fake.hosts_tried(), ["10.0.0.1:80", "10.0.0.2:80"]);
///
/// // Unscripted hosts refuse connections.
/// assert!(matches!(client.get::<String>("k1"), Err(Error::SendRequest { .. })));
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Default)]
pub struct FakeTransport {
    state: Mutex<State>,
}

impl fmt::Debug for FakeTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FakeTransport")
            .field("scripted_hosts", &state.scripts.len())
            .field("requests", &state.requests.len())
            .finish()
    }
}

impl FakeTransport {
    /// A transport where every host refuses connections.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `outcome` to `host`'s script.
    pub fn push(&self, host: impl fmt::Display, outcome: Outcome) -> &Self {
        self.lock()
            .scripts
            .entry(host.to_string())
            .or_default()
            .push_back(outcome);
        self
    }

    /// What `host` does once its script is used up.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{FakeTransport, HttpTransport, Outcome};
    ///
    /// let fake = FakeTransport::new();
    /// fake.set_default("127.0.0.1:1", Outcome::status(503));
    /// let request = http::Request::get("http://127.0.0.1:1/")
    ///     .header("host", "127.0.0.1:1")
    ///     .body(Vec::new())?;
    /// assert_eq!(fake.send(request)?.status(), 503);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_default(&self, host: impl fmt::Display, outcome: Outcome) -> &Self {
        self.lock().defaults.insert(host.to_string(), outcome);
        self
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request<Vec<u8>>> {
        self.lock().requests.clone()
    }

    /// The `Host` of every request received so far, in order.
    pub fn hosts_tried(&self) -> Vec<String> {
        self.lock().requests.iter().map(host_of).collect()
    }

    /// Forgets the recorded requests; the scripted outcomes and defaults
    /// stay (see [`reset`](Self::reset) to start a test phase afresh).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Forgets everything: the recorded requests, the outcomes still
    /// scripted and the defaults: every host refuses again, as in a new
    /// transport.
    ///
    /// ```
    /// use redisutil::proxy::{FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
    ///
    /// let fake = FakeTransport::new();
    /// let client = RedisProxyClient::new(&fake, ProxyConfig::with_hosts([("10.0.0.1", 80)]))?;
    /// fake.push("10.0.0.1:80", Outcome::json(200, "first"));
    /// fake.set_default("10.0.0.1:80", Outcome::json(200, "then"));
    /// assert_eq!(client.get::<String>("k")?, "first");
    ///
    /// fake.reset();
    /// assert!(fake.requests().is_empty());
    /// assert!(client.get::<String>("k").unwrap_err().is_connection());
    /// # Ok::<(), redisutil::proxy::Error>(())
    /// ```
    pub fn reset(&self) {
        let mut state = self.lock();
        state.scripts.clear();
        state.defaults.clear();
        state.requests.clear();
    }
}

fn host_of(request: &Request<Vec<u8>>) -> String {
    request
        .headers()
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

impl HttpTransport for FakeTransport {
    fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        let host = host_of(&request);
        let mut state = self.lock();
        state.requests.push(request);
        let outcome = state
            .scripts
            .get_mut(&host)
            .and_then(VecDeque::pop_front)
            .or_else(|| state.defaults.get(&host).cloned())
            .unwrap_or(Outcome::Refused);
        drop(state);
        outcome.play(&host)
    }
}
