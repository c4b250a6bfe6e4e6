//! [`UreqTransport`]: real HTTP/1.1 on a ureq 3 `Agent` (feature `ureq`).
//!
//! Every ureq default that could change what is sent, or to whom, is set
//! here on purpose:
//!
//! - **Redirects: never followed** (`max_redirects(0)`). ureq would follow
//!   up to 10, turning a PUT or DELETE into a GET, so a write could return
//!   `Ok` though nothing was written, and a presigned URL could reach
//!   another origin. A 3xx comes back as a response like any other status.
//! - **Statuses are responses** (`http_status_as_error(false)`): the client
//!   decides what a 404 or a 503 means.
//! - **No proxy from the environment** (`proxy(None)`). ureq reads
//!   `ALL_PROXY`, `HTTPS_PROXY` and `HTTP_PROXY` by default, which would
//!   hand every presigned request to a third party.
//! - **No automatic retry:** ureq 3 sends each request once; retries are the
//!   client's, counted in its failover rounds.
//! - **No `Accept-Encoding`:** the crate enables neither ureq's `gzip` nor
//!   its `brotli` feature, so bodies arrive as the server wrote them.
//! - **User-Agent** `redisutil` (not ureq's version string).

use std::fmt;
use std::io;

use http::{Request, Response};
use ureq::Agent;
use ureq::Timeout;

#[cfg(feature = "tls-rustls")]
use crate::proxy::error::Error;
use crate::proxy::transport::{HttpTransport, TransportConfig, TransportError, TransportErrorKind};

/// The settings of a [`UreqTransport`]: [`TransportConfig`], the
/// settings of one HTTP exchange every real transport of this crate takes.
pub type UreqConfig = TransportConfig;

/// An [`HttpTransport`] over real HTTP with ureq.
///
/// One agent per transport, so connections are kept alive and reused
/// (clones share the agent). Every status is returned as a response; bodies
/// are read up to [`UreqConfig::max_response_body`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use redisutil::proxy::{ProxyConfig, RedisProxyClient, UreqConfig, UreqTransport};
///
/// let transport = UreqTransport::new(UreqConfig {
///     timeout: Duration::from_millis(500),
///     ..UreqConfig::default()
/// });
/// let client = RedisProxyClient::new(transport, ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
/// # let _ = client;
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Clone)]
pub struct UreqTransport {
    agent: Agent,
    config: UreqConfig,
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        Self::new(UreqConfig::default())
    }
}

impl UreqTransport {
    /// A transport with its own agent (and connection pool).
    pub fn new(config: UreqConfig) -> Self {
        let agent = Self::agent_config(&config).build().new_agent();
        Self { agent, config }
    }

    /// The agent's settings: no redirect, no environment proxy, the
    /// timeouts of `config`.
    fn agent_config(
        config: &UreqConfig,
    ) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
        Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.timeout))
            .user_agent("redisutil")
    }

    /// A transport for `https` proxy hosts that trusts the CA of `tls`
    /// (none: Mozilla's roots) and presents its client certificate, if any
    /// (feature `tls-rustls`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when a certificate or the key is not PEM.
    #[cfg(feature = "tls-rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls-rustls")))]
    pub fn with_tls(config: UreqConfig, tls: &crate::TlsOptions) -> Result<Self, Error> {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

        tls.check().map_err(Error::InvalidArgument)?;
        let invalid = |what: &str| Error::InvalidArgument(format!("unusable {what}"));
        let certificates = |pem: &[u8]| -> Result<Vec<Certificate<'static>>, Error> {
            ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(Ok(certificate)),
                    Ok(_) => None,
                    Err(_) => Some(Err(invalid("certificate"))),
                })
                .collect()
        };
        let mut builder = TlsConfig::builder();
        if let Some(ca) = &tls.ca_pem {
            builder = builder.root_certs(RootCerts::new_with_certs(&certificates(ca)?));
        }
        if let Some(client) = &tls.client {
            let key = PrivateKey::from_pem(&client.key_pem).map_err(|_| invalid("client key"))?;
            let chain = certificates(&client.cert_pem)?;
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        crate::tls::install_crypto_provider();
        let agent = Self::agent_config(&config)
            .tls_config(builder.build())
            .build()
            .new_agent();
        Ok(Self { agent, config })
    }

    /// The settings.
    pub fn config(&self) -> &UreqConfig {
        &self.config
    }
}

/// Whether `error` is a failed name lookup: the standard library reports
/// it as an uncategorised I/O error whose message starts so.
fn is_lookup_failure(error: &io::Error) -> bool {
    error
        .to_string()
        .starts_with("failed to lookup address information")
}

/// Whether `error` is a failed TLS handshake (a certificate refused, no
/// TLS on the other side): the host could not be reached safely, and was
/// sent nothing.
fn is_tls_failure(error: &io::Error) -> bool {
    #[cfg(feature = "tls-rustls")]
    {
        error
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>())
    }
    #[cfg(not(feature = "tls-rustls"))]
    {
        let _ = error;
        false
    }
}

/// Sorts a ureq error into the ways an exchange fails.
///
/// Only errors that can happen after the first byte was written are
/// [`TransportErrorKind::NoResponse`]; a name that does not resolve
/// (`HostNotFound`, or the lookup's I/O error), a refused or failed
/// connection and a failed proxy connection sent nothing and are
/// [`TransportErrorKind::Unreachable`]. A timeout is
/// [`TransportErrorKind::TimedOut`] whatever its phase (the message names a
/// resolve or connect phase). The rest (`BadUri`, `Http`,
/// `RequireHttpsOnly`: refused before sending; `StatusCode`,
/// `TooManyRedirects`, `RedirectFailed`: impossible with this agent's
/// settings) are [`TransportErrorKind::Other`].
fn classify(error: ureq::Error) -> TransportError {
    let message = error.to_string();
    match error {
        ureq::Error::Timeout(phase) => {
            let kind = TransportErrorKind::TimedOut;
            let message = match phase {
                Timeout::Connect | Timeout::Resolve => format!("connect: {message}"),
                _ => message,
            };
            TransportError::new(kind, message).with_source(ureq::Error::Timeout(phase))
        }
        ureq::Error::Io(io_error) => {
            let kind = match io_error.kind() {
                _ if is_lookup_failure(&io_error) || is_tls_failure(&io_error) => {
                    TransportErrorKind::Unreachable
                }
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NotFound => TransportErrorKind::Unreachable,
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportErrorKind::TimedOut,
                _ => TransportErrorKind::NoResponse,
            };
            TransportError::new(kind, message).with_source(io_error)
        }
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Tls(_)
        | ureq::Error::TlsRequired
        | ureq::Error::ConnectProxyFailed(_) => {
            TransportError::new(TransportErrorKind::Unreachable, message)
        }
        #[cfg(feature = "tls-rustls")]
        ureq::Error::Rustls(_) => TransportError::new(TransportErrorKind::Unreachable, message),
        ureq::Error::BodyExceedsLimit(_)
        | ureq::Error::Protocol(_)
        | ureq::Error::LargeResponseHeader(..)
        | ureq::Error::BodyStalled => TransportError::new(TransportErrorKind::BadResponse, message),
        _ => TransportError::new(TransportErrorKind::Other, message),
    }
}

impl HttpTransport for UreqTransport {
    fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        // An empty GET or DELETE goes without a body (and so without a
        // `content-length: 0` header the signer never saw).
        let bodyless = request.body().is_empty()
            && !matches!(*request.method(), http::Method::PUT | http::Method::POST);
        let response = if bodyless {
            self.agent.run(request.map(|_| ()))
        } else {
            self.agent.run(request)
        }
        .map_err(classify)?;
        let (parts, mut body) = response.into_parts();
        let bytes = body
            .with_config()
            .limit(self.config.max_response_body)
            .read_to_vec()
            .map_err(classify)?;
        Ok(Response::from_parts(parts, bytes))
    }
}
