//! The async HTTP seam (feature `tokio`): [`AsyncHttpTransport`] sends one
//! request and returns a future of its response, whatever its status. The
//! crate's fakes ([`MemoryProxy`], [`FakeTransport`], [`RoutingTransport`])
//! implement it beside [`HttpTransport`], so one instance serves blocking
//! and async clients alike.

use std::future::Future;
use std::sync::Arc;

use http::{Request, Response};

use crate::proxy::fake::FakeTransport;
use crate::proxy::memory::MemoryProxy;
use crate::proxy::route::RoutingTransport;
use crate::proxy::transport::{HttpTransport, TransportError};

/// Sends one HTTP request and returns a future of its response: the async
/// form of [`HttpTransport`], which
/// [`AsyncRedisProxyClient`](crate::proxy::aio::AsyncRedisProxyClient) sends
/// through.
///
/// Implementations: `HyperTransport` (real HTTP, feature `hyper`),
/// [`MemoryProxy`], [`FakeTransport`] and [`RoutingTransport`] (the
/// in-memory fakes, which answer at once), and `&T`, `Arc<T>`, `Box<T>`.
/// As with [`HttpTransport`], every status is a response: `Err` means there
/// is no response at all. The future is `Send`, so calls can run on a
/// multi-threaded runtime; it must not block the thread that polls it.
///
/// Where both traits are in scope on a type that implements both, name the
/// one meant: `AsyncHttpTransport::send(&fake, request)`.
///
/// # Examples
///
/// ```
/// use redisutil::proxy::{TransportError, TransportErrorKind};
/// use redisutil::proxy::aio::AsyncHttpTransport;
///
/// /// A transport that can reach nothing.
/// struct Offline;
///
/// impl AsyncHttpTransport for Offline {
///     async fn send(
///         &self,
///         _request: http::Request<Vec<u8>>,
///     ) -> Result<http::Response<Vec<u8>>, TransportError> {
///         Err(TransportError::new(TransportErrorKind::Unreachable, "offline"))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let request = http::Request::get("http://127.0.0.1:1/").body(Vec::new())?;
/// let error = Offline.send(request).await.unwrap_err();
/// assert_eq!(error.kind(), TransportErrorKind::Unreachable);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AsyncHttpTransport {
    /// Sends `request` (its URI is absolute: `http://ip:port/path?query`)
    /// and resolves to the response with its whole body, or to a
    /// [`TransportError`] when no response came back.
    fn send(
        &self,
        request: Request<Vec<u8>>,
    ) -> impl Future<Output = Result<Response<Vec<u8>>, TransportError>> + Send;
}

impl<T: AsyncHttpTransport + ?Sized> AsyncHttpTransport for &T {
    fn send(
        &self,
        request: Request<Vec<u8>>,
    ) -> impl Future<Output = Result<Response<Vec<u8>>, TransportError>> + Send {
        (**self).send(request)
    }
}

impl<T: AsyncHttpTransport + ?Sized> AsyncHttpTransport for Box<T> {
    fn send(
        &self,
        request: Request<Vec<u8>>,
    ) -> impl Future<Output = Result<Response<Vec<u8>>, TransportError>> + Send {
        (**self).send(request)
    }
}

impl<T: AsyncHttpTransport + ?Sized> AsyncHttpTransport for Arc<T> {
    fn send(
        &self,
        request: Request<Vec<u8>>,
    ) -> impl Future<Output = Result<Response<Vec<u8>>, TransportError>> + Send {
        (**self).send(request)
    }
}

/// The in-memory server answers when polled, without waiting on anything.
impl AsyncHttpTransport for MemoryProxy {
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        HttpTransport::send(self, request)
    }
}

/// The script plays when polled, without waiting on anything; the request
/// is recorded as for a blocking client.
impl AsyncHttpTransport for FakeTransport {
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        HttpTransport::send(self, request)
    }
}

/// Routes to blocking transports, as for a blocking client: give an async
/// client routes that never block (the in-memory fakes), since a route's
/// `send` runs on the thread that polls.
impl AsyncHttpTransport for RoutingTransport {
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        HttpTransport::send(self, request)
    }
}
