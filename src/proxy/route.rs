//! [`RoutingTransport`]: one transport per host, so a test can put several
//! hosts on one [`MemoryProxy`](crate::proxy::MemoryProxy), give clusters
//! their own, and make some hosts fail through a
//! [`FakeTransport`](crate::proxy::FakeTransport).

use std::collections::HashMap;
use std::fmt;

use http::{Request, Response};

use crate::proxy::transport::{HttpTransport, TransportError, TransportErrorKind};

type Route = Box<dyn HttpTransport + Send + Sync>;

/// Sends each request to the transport routed for its `Host` header; a host
/// without a route is unreachable unless there is a fallback.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use redisutil::proxy::{
///     FakeTransport, MemoryProxy, Outcome, ProxyConfig, RedisProxyClient, RoutingTransport,
/// };
///
/// let server = MemoryProxy::new();
/// let dead = Arc::new(FakeTransport::new());
/// dead.set_default("10.0.0.1:80", Outcome::TimedOut);
/// let routes = RoutingTransport::new()
///     .route("10.0.0.1:80", Arc::clone(&dead))
///     .route("10.0.0.2:80", server.clone());
///
/// let config = ProxyConfig::with_hosts([("10.0.0.1", 80), ("10.0.0.2", 80)]);
/// let client = RedisProxyClient::new(routes, config)?;
/// client.set("k", &[1, 2, 3])?;
/// assert_eq!(client.get::<Vec<u8>>("k")?, [1, 2, 3]);
/// assert_eq!(dead.requests().len(), 2);
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Default)]
pub struct RoutingTransport {
    routes: HashMap<String, Route>,
    fallback: Option<Route>,
}

impl fmt::Debug for RoutingTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<&String> = self.routes.keys().collect();
        hosts.sort();
        f.debug_struct("RoutingTransport")
            .field("hosts", &hosts)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl RoutingTransport {
    /// No routes: every host is unreachable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends requests for `host` (`ip:port`) to `transport`.
    #[must_use]
    pub fn route(
        mut self,
        host: impl fmt::Display,
        transport: impl HttpTransport + Send + Sync + 'static,
    ) -> Self {
        self.routes.insert(host.to_string(), Box::new(transport));
        self
    }

    /// Sends requests for hosts without a route to `transport`.
    #[must_use]
    pub fn fallback(mut self, transport: impl HttpTransport + Send + Sync + 'static) -> Self {
        self.fallback = Some(Box::new(transport));
        self
    }
}

impl HttpTransport for RoutingTransport {
    fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match self.routes.get(&host).or(self.fallback.as_ref()) {
            Some(transport) => transport.send(request),
            None => Err(TransportError::new(
                TransportErrorKind::Unreachable,
                format!("no route to {host}"),
            )),
        }
    }
}
