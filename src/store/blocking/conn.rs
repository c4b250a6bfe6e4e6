//! [`Conn`]: a blocking connection to one server, over TCP, a Unix socket
//! or TLS, on which requests are written whole and replies read back with
//! the resumable RESP reader.
//!
//! The connection tells the ways an exchange fails apart, because the
//! call policy treats them apart: a request that never left
//! ([`Failure::NotSent`]), a reply lost after it left ([`Failure::Lost`])
//! and no reply in time ([`Failure::TimedOut`]). Before an idle connection
//! is used again, [`Conn::is_alive`] looks at its socket without blocking:
//! a server that closed it (restarted, `CLIENT KILL`, an idle timeout) is
//! seen before anything is sent.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::store::protocol::resp::{Reply, ReplyReader};
use crate::store::protocol::{Failure, OpenError, TlsConfig};
use crate::store::target::endpoint::{Endpoint, Place, Tls};

enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    #[cfg(feature = "tls-rustls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.set_read_timeout(timeout),
            #[cfg(unix)]
            Self::Unix(socket) => socket.set_read_timeout(timeout),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => stream.sock.set_read_timeout(timeout),
        }
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.set_write_timeout(timeout),
            #[cfg(unix)]
            Self::Unix(socket) => socket.set_write_timeout(timeout),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => stream.sock.set_write_timeout(timeout),
        }
    }

    /// Whether nothing waits to be read and the peer has not closed the
    /// stream, looked at without blocking. A socket is peeked at in one
    /// system call (`recv` with `MSG_PEEK | MSG_DONTWAIT`; it stays in
    /// blocking mode). TLS reads through rustls, so that what rustls holds
    /// already counts and a `close_notify` is seen.
    fn is_quiet(&mut self) -> bool {
        match self {
            #[cfg(unix)]
            Self::Tcp(socket) => peek_quiet(&*socket),
            #[cfg(not(unix))]
            Self::Tcp(socket) => read_quiet(socket, TcpStream::set_nonblocking),
            #[cfg(unix)]
            Self::Unix(socket) => peek_quiet(&*socket),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => {
                read_quiet(&mut **stream, |stream, on| stream.sock.set_nonblocking(on))
            }
        }
    }
}

/// Whether a socket has nothing to read and is not closed, peeked at
/// without blocking and without taking anything.
#[cfg(unix)]
fn peek_quiet(socket: impl std::os::fd::AsFd) -> bool {
    use rustix::net::RecvFlags;
    let mut byte = [0u8; 1];
    matches!(
        rustix::net::recv(socket, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT),
        Err(rustix::io::Errno::WOULDBLOCK)
    )
}

/// Whether a read of `stream`, its socket put into non-blocking mode by
/// `set_nonblocking` for it, finds nothing (three system calls).
#[cfg(any(not(unix), feature = "tls-rustls"))]
fn read_quiet<S: Read>(
    stream: &mut S,
    set_nonblocking: impl Fn(&S, bool) -> io::Result<()>,
) -> bool {
    if set_nonblocking(stream, true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let quiet = matches!(
        stream.read(&mut byte),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock
    );
    set_nonblocking(stream, false).is_ok() && quiet
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(socket) => socket.read(buf),
            #[cfg(unix)]
            Self::Unix(socket) => socket.read(buf),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(socket) => socket.write(buf),
            #[cfg(unix)]
            Self::Unix(socket) => socket.write(buf),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.flush(),
            #[cfg(unix)]
            Self::Unix(socket) => socket.flush(),
            #[cfg(feature = "tls-rustls")]
            Self::Tls(stream) => stream.flush(),
        }
    }
}

/// A blocking connection to one server.
pub(crate) struct Conn {
    stream: Stream,
    reader: ReplyReader,
    /// Bytes read and not yet consumed: `input[start..end]`. The rest of
    /// `input` is room for the next read, zeroed once when it was added
    /// (not before each read).
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// The read timeout the socket has now.
    read_timeout: Option<Duration>,
    /// The server's id of this connection (`CLIENT ID`), once asked.
    pub(crate) client_id: Option<i64>,
}

/// The smallest read: large enough that a run of small replies costs one
/// system call.
const READ_CHUNK: usize = 16 * 1024;

impl Conn {
    /// Opens a connection to `endpoint` by `deadline`: every address its
    /// host resolves to in turn, then the TLS handshake when it speaks TLS.
    /// Reads and writes then wait at most `io_timeout` (`None`: without
    /// limit) until [`exchange`](Self::exchange) sets its own.
    pub(crate) fn open(
        endpoint: &Endpoint,
        tls: Option<&TlsConfig>,
        deadline: Instant,
        io_timeout: Option<Duration>,
    ) -> Result<Self, OpenError> {
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or(OpenError::TimedOut)
        };
        let stream = match &endpoint.place {
            #[cfg(unix)]
            Place::Unix(path) => {
                left()?;
                Stream::Unix(UnixStream::connect(path).map_err(OpenError::Io)?)
            }
            #[cfg(not(unix))]
            Place::Unix(_) => {
                return Err(OpenError::Io(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "Unix sockets are not available on this platform",
                )));
            }
            Place::Tcp { host, port } => {
                let socket = connect_tcp(host, *port, &left)?;
                socket.set_nodelay(true).map_err(OpenError::Io)?;
                match endpoint.tls {
                    Tls::Off => Stream::Tcp(socket),
                    Tls::Verified | Tls::Insecure => tls_handshake(socket, host, tls, &left)?,
                }
            }
        };
        let timeout = io_timeout.map(at_least_a_millisecond);
        stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(timeout))
            .map_err(OpenError::Io)?;
        Ok(Self {
            stream,
            reader: ReplyReader::default(),
            input: Vec::new(),
            start: 0,
            end: 0,
            read_timeout: timeout,
            client_id: None,
        })
    }

    /// Writes `request` whole, then reads `replies` replies, waiting at
    /// most `timeout` for each read (`None`: without limit).
    pub(crate) fn exchange(
        &mut self,
        request: &[u8],
        replies: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Reply>, Failure> {
        if let Err(err) = self
            .stream
            .write_all(request)
            .and_then(|()| self.stream.flush())
        {
            return Err(Failure::NotSent(err));
        }
        let timeout = timeout.map(at_least_a_millisecond);
        if self.read_timeout != timeout {
            self.stream
                .set_read_timeout(timeout)
                .map_err(Failure::Lost)?;
            self.read_timeout = timeout;
        }
        let mut read = Vec::with_capacity(replies);
        while read.len() < replies {
            read.push(self.read_reply(timeout)?);
        }
        Ok(read)
    }

    /// Reads one reply.
    fn read_reply(&mut self, timeout: Option<Duration>) -> Result<Reply, Failure> {
        loop {
            let found = self
                .reader
                .read(&self.input[self.start..self.end])
                .map_err(Failure::Garbled)?;
            self.start += found.consumed;
            if let Some(reply) = found.reply {
                if self.start == self.end {
                    (self.start, self.end) = (0, 0);
                }
                return Ok(reply);
            }
            self.fill(found.wanted).map_err(|err| match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    Failure::TimedOut(timeout.unwrap_or_default())
                }
                _ => Failure::Lost(err),
            })?;
        }
    }

    /// Reads at least one more byte; an end of stream is an error.
    fn fill(&mut self, wanted: usize) -> io::Result<()> {
        if self.start > 0 {
            self.input.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let room = self.end + wanted.max(READ_CHUNK);
        if self.input.len() < room {
            self.input.resize(room, 0);
        }
        match self.stream.read(&mut self.input[self.end..])? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            read => {
                self.end += read;
                Ok(())
            }
        }
    }

    /// Whether the connection may be used again: nothing unread waits on
    /// it and the server has not closed it, looked at without blocking.
    pub(crate) fn is_alive(&mut self) -> bool {
        if self.start < self.end || self.reader.is_midway() {
            return false;
        }
        self.stream.is_quiet()
    }
}

/// A socket timeout as the standard library takes it (it refuses zero).
fn at_least_a_millisecond(timeout: Duration) -> Duration {
    timeout.max(Duration::from_millis(1))
}

/// A TCP connection to `host:port`: each address in turn, with what is
/// left of the time.
fn connect_tcp(
    host: &str,
    port: u16,
    left: &dyn Fn() -> Result<Duration, OpenError>,
) -> Result<TcpStream, OpenError> {
    let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(OpenError::Resolve)?
            .collect(),
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(socket) => return Ok(socket),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => return Err(OpenError::TimedOut),
            Err(err) => last = Some(err),
        }
    }
    Err(match last {
        Some(err) => OpenError::Io(err),
        None => OpenError::Resolve(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )),
    })
}

/// The TLS handshake on `socket`, within what is left of the time.
#[cfg(feature = "tls-rustls")]
fn tls_handshake(
    mut socket: TcpStream,
    host: &str,
    config: Option<&TlsConfig>,
    left: &dyn Fn() -> Result<Duration, OpenError>,
) -> Result<Stream, OpenError> {
    let config = config.ok_or_else(|| OpenError::Tls("no TLS configuration".into()))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| OpenError::Tls(format!("{host:?} is no name a certificate can hold")))?;
    let mut tls = rustls::ClientConnection::new(config.clone(), name)
        .map_err(|err| OpenError::Tls(err.to_string()))?;
    while tls.is_handshaking() {
        let left = left().map_err(|_| OpenError::TlsTimedOut)?;
        socket
            .set_read_timeout(Some(left))
            .and_then(|()| socket.set_write_timeout(Some(left)))
            .map_err(OpenError::Io)?;
        if let Err(err) = tls.complete_io(&mut socket) {
            return Err(match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => OpenError::TlsTimedOut,
                _ => match err
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls) => OpenError::Tls(tls.to_string()),
                    None if err.kind() == io::ErrorKind::UnexpectedEof => OpenError::Tls(
                        "the server closed the connection during the handshake".into(),
                    ),
                    None => OpenError::Io(err),
                },
            });
        }
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(tls, socket))))
}

#[cfg(not(feature = "tls-rustls"))]
fn tls_handshake(
    _socket: TcpStream,
    _host: &str,
    config: Option<&TlsConfig>,
    _left: &dyn Fn() -> Result<Duration, OpenError>,
) -> Result<Stream, OpenError> {
    match config {
        Some(never) => match *never {},
        None => Err(OpenError::Tls(
            "a rediss:// address needs the feature tls-rustls".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    /// A connection, and the server's end of it.
    type Pair = (Conn, Box<dyn Write + Send>);

    /// A connection to a listener of the test's own, by TCP, and the
    /// server's end of it.
    fn tcp_pair() -> Pair {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let conn = open(&Endpoint::tcp("127.0.0.1", port, Tls::Off));
        (conn, Box::new(listener.accept().unwrap().0))
    }

    /// A connection to `endpoint`, reads and writes without limit.
    fn open(endpoint: &Endpoint) -> Conn {
        let deadline = Instant::now() + Duration::from_secs(10);
        Conn::open(endpoint, None, deadline, None).unwrap()
    }

    /// The same by a Unix socket.
    #[cfg(unix)]
    fn unix_pair() -> Pair {
        let name = format!(
            "redisutil-conn-{}-{:?}.sock",
            std::process::id(),
            thread::current().id()
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let conn = open(&Endpoint {
            place: Place::Unix(path.clone()),
            tls: Tls::Off,
        });
        let server = listener.accept().unwrap().0;
        std::fs::remove_file(&path).unwrap();
        (conn, Box::new(server))
    }

    /// Whether `conn` is alive, which it must tell without waiting for
    /// the server (here: within ten seconds).
    fn looked_at(conn: Conn) -> (Conn, bool) {
        let (answer, answered) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut conn = conn;
            let alive = conn.is_alive();
            let _ = answer.send((conn, alive));
        });
        let waited = answered.recv_timeout(Duration::from_secs(10));
        waited.expect("is_alive waited for the server")
    }

    fn pairs() -> Vec<fn() -> Pair> {
        vec![
            tcp_pair,
            #[cfg(unix)]
            unix_pair,
        ]
    }

    /// Looking at an idle connection takes nothing and leaves it
    /// blocking: a reply that comes later is waited for.
    #[test]
    fn an_idle_connection_is_alive_and_still_blocks() {
        for pair in pairs() {
            let (conn, mut server) = pair();
            let (conn, alive) = looked_at(conn);
            assert!(alive);
            let (mut conn, alive) = looked_at(conn);
            assert!(alive);
            let late = thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                server.write_all(b"+OK\r\n").unwrap();
                server
            });
            let replies = conn.exchange(b"PING\r\n", 1, None).unwrap();
            assert_eq!(replies, [Reply::Status("OK".into())]);
            drop(late.join().unwrap());
        }
    }

    /// A connection with something to read, or closed by the server, is
    /// not used again; looking at it took nothing.
    #[test]
    fn a_connection_with_bytes_waiting_or_closed_is_not_alive() {
        for pair in pairs() {
            let (conn, mut server) = pair();
            server.write_all(b":7\r\n").unwrap();
            let (mut conn, alive) = looked_at(conn);
            assert!(!alive);
            let replies = conn.exchange(b"", 1, Some(Duration::from_secs(5)));
            assert_eq!(replies.unwrap(), [Reply::Int(7)]);
            assert!(conn.is_alive());
            drop(server);
            assert!(!conn.is_alive());
        }
    }
}
