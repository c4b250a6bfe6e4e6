//! [`HyperTransport`]: real HTTP/1.1 for the async client, on hyper 1 and
//! hyper-util's pooled client (feature `hyper`); https with `hyper-rustls`
//! (rustls with `ring`, through `tokio-rustls`).
//!
//! What it does, on purpose, as [`UreqTransport`](crate::proxy::UreqTransport)
//! does:
//!
//! - **Redirects: never followed** (hyper follows none): a 3xx comes back
//!   as a response like any other status.
//! - **No proxy from the environment:** hyper reads no `HTTP_PROXY`; every
//!   request goes to the host its URI names.
//! - **No automatic retry** of a request that may have been sent: retries
//!   are the client's, counted in its rounds. (hyper-util sends a request
//!   once more on a new connection only when the kept-alive one it picked
//!   was found closed before anything was written.)
//! - **No `Accept-Encoding`**, no decompression; **User-Agent** `redisutil`.
//! - **Timeouts:** `connect_timeout` bounds the connect, TLS handshake
//!   included; `timeout` the whole exchange, body read included. A body
//!   longer than `max_response_body` is an error, never read whole.
//! - **Keep-alive:** one pool per transport (clones share it); idle
//!   connections are kept for 90 s. A connection's task runs on the tokio
//!   runtime of the call that opened it.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::hyper::body::Bytes;
use ::hyper::rt::{Read, ReadBufCursor, Write};
use http::header::USER_AGENT;
use http::uri::Scheme;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::proxy::aio::AsyncHttpTransport;
#[cfg(feature = "hyper-rustls")]
use crate::proxy::error::Error;
use crate::proxy::transport::{TransportConfig, TransportError, TransportErrorKind};

/// The settings of a [`HyperTransport`]: [`TransportConfig`], the settings
/// of one HTTP exchange every real transport of this crate takes.
pub type HyperConfig = TransportConfig;

/// How long an idle kept-alive connection stays in the pool.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// An [`AsyncHttpTransport`] over real HTTP/1.1 with hyper: the transport
/// of [`AsyncRedisProxyClient::connect`](crate::proxy::aio::AsyncRedisProxyClient::connect).
///
/// One pool of kept-alive connections per transport (clones share it);
/// every status is returned as a response; bodies are read up to
/// [`TransportConfig::max_response_body`]. Its calls need a tokio runtime
/// with I/O and time enabled.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redisutil::proxy::{HyperConfig, HyperTransport, ProxyConfig};
/// use redisutil::proxy::aio::AsyncRedisProxyClient;
///
/// let transport = HyperTransport::new(HyperConfig::with_timeout(Duration::from_millis(500)));
/// let client = AsyncRedisProxyClient::new(transport, ProxyConfig::with_hosts([("127.0.0.1", 2222)]))?;
/// assert_eq!(client.transport().config().timeout, Duration::from_millis(500));
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Clone)]
pub struct HyperTransport {
    client: Client<Connector, Full<Bytes>>,
    config: TransportConfig,
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for HyperTransport {
    fn default() -> Self {
        Self::new(TransportConfig::default())
    }
}

impl HyperTransport {
    /// A transport with its own pool. With the feature `hyper-rustls` it
    /// speaks https too, trusting Mozilla's roots (`webpki-roots`);
    /// without it, an https request fails with
    /// [`TransportErrorKind::Other`].
    pub fn new(config: HyperConfig) -> Self {
        #[cfg(feature = "hyper-rustls")]
        let tls =
            Some(tls::connector(&crate::TlsOptions::default()).expect("no certificate to read"));
        #[cfg(not(feature = "hyper-rustls"))]
        let tls = None;
        Self::with_connector(config, tls)
    }

    /// A transport for `https` proxy hosts that trusts the CA of `tls`
    /// (none: Mozilla's roots) and presents its client certificate, if any
    /// (feature `hyper-rustls`): what
    /// [`UreqTransport::with_tls`](crate::proxy::UreqTransport::with_tls)
    /// does for the blocking client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when a certificate or the key is not PEM,
    /// or the key is not the certificate's.
    #[cfg(feature = "hyper-rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "hyper-rustls")))]
    pub fn with_tls(config: HyperConfig, tls: &crate::TlsOptions) -> Result<Self, Error> {
        Ok(Self::with_connector(config, Some(tls::connector(tls)?)))
    }

    fn with_connector(config: HyperConfig, tls: Option<TlsConnector>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let connector = Connector {
            http,
            tls,
            connect_timeout: config.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .build(connector);
        Self { client, config }
    }

    /// The settings.
    pub fn config(&self) -> &HyperConfig {
        &self.config
    }

    /// One exchange, without the overall timeout.
    async fn exchange(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<Response<Vec<u8>>, TransportError> {
        let mut request = request.map(|body| Full::new(Bytes::from(body)));
        request
            .headers_mut()
            .entry(USER_AGENT)
            .or_insert(HeaderValue::from_static("redisutil"));
        let response = self.client.request(request).await.map_err(classify)?;
        let (parts, body) = response.into_parts();
        let limit = usize::try_from(self.config.max_response_body).unwrap_or(usize::MAX);
        let body = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    TransportError::new(
                        TransportErrorKind::BadResponse,
                        format!("body over {limit} bytes"),
                    )
                } else {
                    let kind = match error.downcast_ref::<::hyper::Error>() {
                        Some(error) if error.is_parse() => TransportErrorKind::BadResponse,
                        _ => TransportErrorKind::NoResponse,
                    };
                    TransportError::new(kind, format!("reading the body: {}", chain(&*error)))
                }
            })?
            .to_bytes();
        Ok(Response::from_parts(parts, body.to_vec()))
    }
}

impl AsyncHttpTransport for HyperTransport {
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        let timeout = self.config.timeout;
        tokio::time::timeout(timeout, self.exchange(request))
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::new(
                    TransportErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                ))
            })
    }
}

/// A message and its sources, joined by `": "`: hyper's own messages are
/// terse ("client error (Connect)"), the cause is below.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            message.push_str(": ");
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    message
}

/// Whether an I/O error in `error`'s chain is a timeout.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Sorts a failed request into the ways an exchange fails: a connect that
/// failed sent nothing ([`TransportErrorKind::Unreachable`], or
/// [`TransportErrorKind::TimedOut`] past the connect timeout); a
/// malformed answer is [`TransportErrorKind::BadResponse`]; a connection
/// closed or reset once the request was (or may have been) written is
/// [`TransportErrorKind::NoResponse`].
fn classify(error: hyper_util::client::legacy::Error) -> TransportError {
    let message = chain(&error);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            return TransportError::new(connect.kind, format!("connect: {}", connect.message));
        }
        if let Some(hyper) = cause.downcast_ref::<::hyper::Error>() {
            let kind = if hyper.is_parse() || hyper.is_parse_status() {
                TransportErrorKind::BadResponse
            } else if hyper.is_user() {
                TransportErrorKind::Other
            } else {
                TransportErrorKind::NoResponse
            };
            return TransportError::new(kind, message);
        }
        source = cause.source();
    }
    let kind = if error.is_connect() {
        TransportErrorKind::Unreachable
    } else {
        TransportErrorKind::Other
    };
    TransportError::new(kind, message)
}

/// Why a connect failed, sorted when it happened.
#[derive(Debug)]
struct ConnectError {
    kind: TransportErrorKind,
    message: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

#[cfg(feature = "hyper-rustls")]
type TlsConnector = tokio_rustls::TlsConnector;
#[cfg(not(feature = "hyper-rustls"))]
type TlsConnector = std::convert::Infallible;

/// TCP, then TLS for an `https` URI, all within the connect timeout.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: Option<TlsConnector>,
    connect_timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (mut http, tls, timeout) = (self.http.clone(), self.tls.clone(), self.connect_timeout);
        Box::pin(async move {
            let connect = async move {
                let https = uri.scheme() == Some(&Scheme::HTTPS);
                let host = uri.host().unwrap_or_default().to_owned();
                let tcp = tower_service::Service::call(&mut http, uri)
                    .await
                    .map_err(|error| ConnectError {
                        kind: if timed_out(&error) {
                            TransportErrorKind::TimedOut
                        } else {
                            TransportErrorKind::Unreachable
                        },
                        message: chain(&error),
                    })?;
                if !https {
                    return Ok(Stream::Plain(tcp));
                }
                match tls {
                    #[cfg(feature = "hyper-rustls")]
                    Some(tls) => tls::handshake(&tls, &host, tcp.into_inner()).await,
                    _ => {
                        let _ = host;
                        Err(ConnectError {
                            kind: TransportErrorKind::Other,
                            message: "https needs the feature hyper-rustls".into(),
                        })
                    }
                }
            };
            tokio::time::timeout(timeout, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(ConnectError {
                        kind: TransportErrorKind::TimedOut,
                        message: format!("not connected within {timeout:?}"),
                    })
                })
        })
    }
}

/// A connection: plain TCP or TLS over it.
enum Stream {
    Plain(TokioIo<TcpStream>),
    #[cfg(feature = "hyper-rustls")]
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            #[cfg(feature = "hyper-rustls")]
            Self::Tls(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            #[cfg(feature = "hyper-rustls")]
            Self::Tls(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            #[cfg(feature = "hyper-rustls")]
            Self::Tls(stream) => Pin::new(&mut **stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            #[cfg(feature = "hyper-rustls")]
            Self::Tls(stream) => Pin::new(&mut **stream).poll_shutdown(cx),
        }
    }
}

/// https (feature `hyper-rustls`): the rustls config of a [`TlsOptions`]
/// and the handshake.
///
/// [`TlsOptions`]: crate::TlsOptions
#[cfg(feature = "hyper-rustls")]
mod tls {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::net::TcpStream;
    use tokio_rustls::TlsConnector;

    use super::{ConnectError, Stream, TokioIo, chain};
    use crate::proxy::error::Error;
    use crate::proxy::transport::TransportErrorKind;

    /// A connector trusting `tls`'s CA (else Mozilla's roots) and
    /// presenting its client certificate.
    pub(super) fn connector(tls: &crate::TlsOptions) -> Result<TlsConnector, Error> {
        tls.check().map_err(Error::InvalidArgument)?;
        crate::tls::install_crypto_provider();
        let invalid = |what: &str| Error::InvalidArgument(format!("unusable {what}"));
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_pem {
            Some(pem) => {
                for certificate in CertificateDer::pem_slice_iter(pem) {
                    let certificate = certificate.map_err(|_| invalid("CA certificate"))?;
                    roots
                        .add(certificate)
                        .map_err(|_| invalid("CA certificate"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| invalid("TLS configuration"))?
            .with_root_certificates(roots);
        let config = match &tls.client {
            Some(client) => {
                let chain = CertificateDer::pem_slice_iter(&client.cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| invalid("client certificate"))?;
                let key = PrivateKeyDer::from_pem_slice(&client.key_pem)
                    .map_err(|_| invalid("client key"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|_| invalid("client key"))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsConnector::from(Arc::new(config)))
    }

    /// TLS on `tcp` to `host` (a name, or an IP address in or out of
    /// brackets). A refused certificate makes the host unreachable: it
    /// was sent nothing.
    pub(super) async fn handshake(
        tls: &TlsConnector,
        host: &str,
        tcp: TcpStream,
    ) -> Result<Stream, ConnectError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_owned()).map_err(|_| ConnectError {
            kind: TransportErrorKind::Unreachable,
            message: format!("no TLS server name for {host}"),
        })?;
        let stream = tls.connect(name, tcp).await.map_err(|error| ConnectError {
            kind: TransportErrorKind::Unreachable,
            message: format!("TLS handshake with {host}: {}", chain(&error)),
        })?;
        Ok(Stream::Tls(Box::new(TokioIo::new(stream))))
    }
}
