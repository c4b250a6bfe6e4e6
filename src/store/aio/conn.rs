//! The async driver's connections: [`Conn`], one call at a time (for
//! blocking calls, and while a connection is opened), and [`Shared`], a
//! connection many tasks send on at once, their requests pipelined.
//!
//! Both tell the call policy what it needs: a request that never left
//! ([`Failure::NotSent`]: the connection had closed, or the write failed),
//! a reply lost after it left ([`Failure::Lost`]), no reply in time
//! ([`Failure::TimedOut`]).

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::alarm::Alarm;
use crate::store::protocol::resp::{Reply, ReplyReader};
use crate::store::protocol::{Failure, OpenError, TlsConfig};
use crate::store::target::endpoint::{Endpoint, Place, Tls};

/// A socket: TCP, a Unix socket, or TLS over TCP.
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
    #[cfg(feature = "tls-rustls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(socket) => Pin::new(socket).poll_read(cx, buf),
            #[cfg(unix)]
            Self::Unix(socket) => Pin::new(socket).poll_read(cx, buf),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(socket) => Pin::new(socket).poll_write(cx, buf),
            #[cfg(unix)]
            Self::Unix(socket) => Pin::new(socket).poll_write(cx, buf),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(socket) => Pin::new(socket).poll_flush(cx),
            #[cfg(unix)]
            Self::Unix(socket) => Pin::new(socket).poll_flush(cx),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(socket) => Pin::new(socket).poll_shutdown(cx),
            #[cfg(unix)]
            Self::Unix(socket) => Pin::new(socket).poll_shutdown(cx),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens a socket to `endpoint` by `deadline`: every address of its host
/// in turn, then the TLS handshake when it speaks TLS.
pub(crate) async fn open(
    endpoint: &Endpoint,
    tls: Option<&TlsConfig>,
    deadline: Instant,
) -> Result<Stream, OpenError> {
    let deadline = tokio::time::Instant::from_std(deadline);
    match &endpoint.place {
        #[cfg(unix)]
        Place::Unix(path) => {
            tokio::time::timeout_at(deadline, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| OpenError::TimedOut)?
                .map(Stream::Unix)
                .map_err(OpenError::Io)
        }
        #[cfg(not(unix))]
        Place::Unix(_) => Err(OpenError::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix sockets are not available on this platform",
        ))),
        Place::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, *port)],
                Err(_) => tokio::time::timeout_at(
                    deadline,
                    tokio::net::lookup_host((host.as_str(), *port)),
                )
                .await
                .map_err(|_| OpenError::TimedOut)?
                .map_err(OpenError::Resolve)?
                .collect(),
            };
            let mut last = None;
            let mut socket = None;
            for addr in addrs {
                match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                    Err(_) => return Err(OpenError::TimedOut),
                    Ok(Ok(connected)) => {
                        socket = Some(connected);
                        break;
                    }
                    Ok(Err(err)) => last = Some(err),
                }
            }
            let socket = match (socket, last) {
                (Some(socket), _) => socket,
                (None, Some(err)) => return Err(OpenError::Io(err)),
                (None, None) => {
                    return Err(OpenError::Resolve(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    )));
                }
            };
            socket.set_nodelay(true).map_err(OpenError::Io)?;
            match endpoint.tls {
                Tls::Off => Ok(Stream::Tcp(socket)),
                Tls::Verified | Tls::Insecure => tls_handshake(socket, host, tls, deadline).await,
            }
        }
    }
}

#[cfg(feature = "tls-rustls")]
async fn tls_handshake(
    socket: TcpStream,
    host: &str,
    config: Option<&TlsConfig>,
    deadline: tokio::time::Instant,
) -> Result<Stream, OpenError> {
    let config = config.ok_or_else(|| OpenError::Tls("no TLS configuration".into()))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| OpenError::Tls(format!("{host:?} is no name a certificate can hold")))?;
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    match tokio::time::timeout_at(deadline, connector.connect(name, socket)).await {
        Err(_) => Err(OpenError::TlsTimedOut),
        Ok(Ok(stream)) => Ok(Stream::Tls(Box::new(stream))),
        Ok(Err(err)) => Err(
            match err
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => OpenError::Tls(tls.to_string()),
                None if err.kind() == io::ErrorKind::UnexpectedEof => {
                    OpenError::Tls("the server closed the connection during the handshake".into())
                }
                None => OpenError::Io(err),
            },
        ),
    }
}

#[cfg(not(feature = "tls-rustls"))]
async fn tls_handshake(
    _socket: TcpStream,
    _host: &str,
    config: Option<&TlsConfig>,
    _deadline: tokio::time::Instant,
) -> Result<Stream, OpenError> {
    match config {
        Some(never) => match *never {},
        None => Err(OpenError::Tls(
            "a rediss:// address needs the feature tls-rustls".into(),
        )),
    }
}

/// Reads whole replies from a socket.
#[derive(Default)]
struct Replies {
    reader: ReplyReader,
    input: Vec<u8>,
    start: usize,
}

/// The smallest read.
const READ_CHUNK: usize = 16 * 1024;

impl Replies {
    /// The next whole reply already read, if any.
    fn take(&mut self) -> Result<Option<Reply>, Failure> {
        let found = self
            .reader
            .read(&self.input[self.start..])
            .map_err(Failure::Garbled)?;
        self.start += found.consumed;
        if self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        }
        Ok(found.reply)
    }

    /// Reads more from `stream`; an end of stream is an error. Cancelled,
    /// it has read nothing (`read_buf` only grows the buffer by what it
    /// read).
    async fn fill<R: AsyncRead + Unpin>(&mut self, stream: &mut R) -> io::Result<()> {
        if self.start > 0 && self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        } else if self.start > READ_CHUNK {
            self.input.drain(..self.start);
            self.start = 0;
        }
        self.input.reserve(READ_CHUNK);
        match stream.read_buf(&mut self.input).await? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            _ => Ok(()),
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.input.len() && !self.reader.is_midway()
    }
}

/// A connection used by one call at a time.
pub(crate) struct Conn {
    stream: Stream,
    replies: Replies,
    /// The server's id of this connection (`CLIENT ID`), once asked.
    pub(crate) client_id: Option<i64>,
    /// The timer of its response timeouts.
    alarm: Alarm,
}

impl Conn {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            stream,
            replies: Replies::default(),
            client_id: None,
            alarm: Alarm::default(),
        }
    }

    /// Writes `request` whole, then reads `count` replies, each read
    /// waiting at most `timeout` (`None`: without limit), on the
    /// connection's [`Alarm`].
    pub(crate) async fn exchange(
        &mut self,
        request: &[u8],
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Reply>, Failure> {
        let Self {
            stream,
            replies: read,
            alarm,
            ..
        } = self;
        let written = async {
            stream.write_all(request).await?;
            stream.flush().await
        };
        written.await.map_err(Failure::NotSent)?;
        let mut replies = Vec::with_capacity(count);
        while replies.len() < count {
            let next = async {
                loop {
                    if let Some(reply) = read.take()? {
                        return Ok(reply);
                    }
                    read.fill(stream).await.map_err(Failure::Lost)?;
                }
            };
            let limit = timeout.and_then(|timeout| {
                let deadline = tokio::time::Instant::now().checked_add(timeout)?;
                Some((timeout, deadline))
            });
            let reply = match limit {
                None => next.await?,
                Some((timeout, deadline)) => {
                    alarm.arm(deadline);
                    let mut next = pin!(next);
                    poll_fn(|cx| match next.as_mut().poll(cx) {
                        Poll::Ready(reply) => Poll::Ready(reply),
                        Poll::Pending => alarm
                            .poll_passed(cx, deadline)
                            .map(|()| Err(Failure::TimedOut(timeout))),
                    })
                    .await?
                }
            };
            replies.push(reply);
        }
        Ok(replies)
    }

    /// Whether the connection may be used again: nothing unread waits on
    /// it and the server has not closed it, looked at without waiting.
    pub(crate) fn is_alive(&mut self) -> bool {
        if !self.replies.is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(
            Pin::new(&mut self.stream).poll_read(&mut cx, &mut buf),
            Poll::Pending
        )
    }

    /// The connection as one many tasks share, its requests pipelined.
    pub(crate) fn into_shared(self) -> Shared {
        let (jobs, queue) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicBool::new(true));
        tokio::spawn(drive(self, queue, Arc::clone(&open)));
        Shared { jobs, open }
    }
}

/// One request on a shared connection, and where its replies go.
struct Job {
    request: Vec<u8>,
    count: usize,
    done: oneshot::Sender<Result<Vec<Reply>, Failure>>,
}

/// A connection many tasks send on at once: a task of its own writes
/// their requests as they come (several in one write) and hands the
/// replies back in order. Clones share it.
#[derive(Clone)]
pub(crate) struct Shared {
    jobs: mpsc::UnboundedSender<Job>,
    open: Arc<AtomicBool>,
}

impl Shared {
    /// Whether the connection still runs.
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Whether `self` and `other` are the same connection.
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.open, &other.open)
    }

    /// Sends `request` and reads `count` replies, within `timeout`.
    pub(crate) async fn exchange(
        &self,
        request: &[u8],
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Reply>, Failure> {
        let (done, replied) = oneshot::channel();
        let job = Job {
            request: request.to_vec(),
            count,
            done,
        };
        if self.jobs.send(job).is_err() {
            return Err(Failure::NotSent(closed()));
        }
        let answer = match timeout {
            None => replied.await,
            Some(timeout) => tokio::time::timeout(timeout, replied)
                .await
                .map_err(|_| Failure::TimedOut(timeout))?,
        };
        answer.unwrap_or_else(|_| {
            Err(Failure::Lost(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection's task ended",
            )))
        })
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection had closed")
}

/// The task of a shared connection: writes the requests, reads the
/// replies; when the connection ends, fails what is waiting (as lost when
/// its request had left, as not sent else).
async fn drive(conn: Conn, mut queue: mpsc::UnboundedReceiver<Job>, open: Arc<AtomicBool>) {
    let Conn {
        stream,
        mut replies,
        ..
    } = conn;
    let (mut reading, mut writing) = tokio::io::split(stream);
    // Requests sent, in order, with the replies they have so far.
    let mut waiting: VecDeque<(Job, Vec<Reply>)> = VecDeque::new();
    let mut out = Vec::new();
    let failure = loop {
        tokio::select! {
            job = queue.recv() => {
                let Some(job) = job else { break None };
                let mut batch = vec![job];
                while out.len() < 1 << 20 {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                out.clear();
                for job in &batch {
                    out.extend_from_slice(&job.request);
                }
                let written = async {
                    writing.write_all(&out).await?;
                    writing.flush().await
                }.await;
                // Written or not, the batch may have reached the server
                // in part: its replies are waited for, or lost.
                waiting.extend(batch.into_iter().map(|job| (job, Vec::new())));
                if let Err(err) = written {
                    break Some(Failure::Lost(err));
                }
            }
            read = replies.fill(&mut reading) => {
                if let Err(err) = read {
                    break Some(Failure::Lost(err));
                }
                let mut garbled = None;
                loop {
                    match replies.take() {
                        Err(failure) => {
                            garbled = Some(failure);
                            break;
                        }
                        Ok(None) => break,
                        Ok(Some(reply)) => match waiting.front_mut() {
                            // A reply nobody asked for: the connection is
                            // out of step with its requests.
                            None => {
                                garbled = Some(Failure::Lost(io::Error::other("a reply no request asked for")));
                                break;
                            }
                            Some((job, got)) => {
                                got.push(reply);
                                if got.len() == job.count {
                                    let (job, got) = waiting.pop_front().expect("a request waiting");
                                    let _ = job.done.send(Ok(got));
                                }
                            }
                        },
                    }
                }
                if garbled.is_some() {
                    break garbled;
                }
            }
        }
    };
    open.store(false, Ordering::SeqCst);
    queue.close();
    for (job, _) in waiting {
        let lost = match &failure {
            Some(Failure::Lost(err)) => Failure::Lost(io::Error::new(err.kind(), err.to_string())),
            Some(Failure::Garbled(err)) => Failure::Garbled(err.clone()),
            _ => Failure::Lost(closed()),
        };
        let _ = job.done.send(Err(lost));
    }
    while let Ok(job) = queue.try_recv() {
        let _ = job.done.send(Err(Failure::NotSent(closed())));
    }
}
