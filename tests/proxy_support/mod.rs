//! Shared helpers of the proxy test suites: a small HTTP/1.1 server on
//! loopback that serves a handler (keep-alive aware), a server that accepts
//! and never answers, and a port where nothing listens.
//!
//! Every server binds 127.0.0.1 on an ephemeral port and stops itself (and
//! its connection threads) when dropped.

#![allow(dead_code)] // each test crate uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redisutil::proxy::MemoryProxy;
use redisutil::proxy::{AttemptFailure, Error, ProxyHost, TransportErrorKind};

type Handler = dyn Fn(&http::Request<Vec<u8>>) -> http::Response<Vec<u8>> + Send + Sync;

/// How long a connection may sit idle before the server closes it.
const IDLE_LIMIT: Duration = Duration::from_secs(20);
/// How often connection threads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// The most connections a server accepts in its life.
const MAX_CONNECTIONS: usize = 256;

#[derive(Clone)]
enum Mode {
    Serve(Arc<Handler>),
    /// Like `Serve`, over TLS.
    #[cfg(feature = "tls-rustls")]
    ServeTls(Arc<Handler>, Arc<rustls::ServerConfig>),
    Silent,
    HangUp,
    Raw {
        reply: Arc<Vec<u8>>,
        then: AfterReply,
    },
    Reset,
}

/// What a [`TestServer::raw`] server does once it has written its reply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AfterReply {
    /// Closes the connection.
    Close,
    /// Keeps the connection open without writing more.
    Stall,
}

/// A loopback HTTP server that stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    accept_thread: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TestServer {
    /// Serves `handler` over HTTP/1.1 with keep-alive.
    pub fn serve(
        handler: impl Fn(&http::Request<Vec<u8>>) -> http::Response<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Self::start(Mode::Serve(Arc::new(handler)))
    }

    /// Serves `handler` over HTTP/1.1 with keep-alive, over TLS with `config`.
    #[cfg(feature = "tls-rustls")]
    pub fn serve_tls(
        handler: impl Fn(&http::Request<Vec<u8>>) -> http::Response<Vec<u8>> + Send + Sync + 'static,
        config: Arc<rustls::ServerConfig>,
    ) -> Self {
        Self::start(Mode::ServeTls(Arc::new(handler), config))
    }

    /// Accepts connections and never answers.
    pub fn silent() -> Self {
        Self::start(Mode::Silent)
    }

    /// Reads each request, then closes the connection without answering.
    pub fn hang_up() -> Self {
        Self::start(Mode::HangUp)
    }

    /// Reads each request, writes `reply` (raw bytes: garbage, a truncated
    /// response, …) and then closes or stalls.
    pub fn raw(reply: impl Into<Vec<u8>>, then: AfterReply) -> Self {
        Self::start(Mode::Raw {
            reply: Arc::new(reply.into()),
            then,
        })
    }

    /// Accepts a connection and resets it (closes it with the request
    /// unread, so the kernel answers with RST).
    pub fn reset() -> Self {
        Self::start(Mode::Reset)
    }

    fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let workers = Arc::new(Mutex::new(Vec::new()));
        let accept_thread = {
            let (stop, accepted, requests, workers) = (
                Arc::clone(&stop),
                Arc::clone(&accepted),
                Arc::clone(&requests),
                Arc::clone(&workers),
            );
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst)
                        || accepted.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS
                    {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (stop, requests, mode) =
                        (Arc::clone(&stop), Arc::clone(&requests), mode.clone());
                    let worker = std::thread::spawn(move || match mode {
                        Mode::Serve(handler) => {
                            serve_connection(stream, &*handler, &stop, &requests)
                        }
                        #[cfg(feature = "tls-rustls")]
                        Mode::ServeTls(handler, config) => {
                            serve_tls_connection(stream, config, &*handler, &stop, &requests)
                        }
                        Mode::Silent => hold_connection(stream, &stop),
                        Mode::HangUp => hang_up(stream, &stop),
                        Mode::Raw { reply, then } => raw_reply(stream, &reply, then, &stop),
                        Mode::Reset => {
                            // Let the request arrive, then drop it unread.
                            std::thread::sleep(TICK);
                            drop(stream);
                        }
                    });
                    workers.lock().expect("workers").push(worker);
                }
            })
        };
        Self {
            addr,
            stop,
            accepted,
            requests,
            accept_thread: Some(accept_thread),
            workers,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> ProxyHost {
        ProxyHost::new("127.0.0.1", self.addr.port())
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Requests received and handled so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        let workers = std::mem::take(&mut *self.workers.lock().expect("workers"));
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// A host where nothing listens (a port just released).
pub fn closed_port() -> ProxyHost {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    ProxyHost::new("127.0.0.1", port)
}

fn hang_up(stream: TcpStream, stop: &AtomicBool) {
    if stream.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    let _ = read_request(&mut reader, stop);
}

fn raw_reply(stream: TcpStream, reply: &[u8], then: AfterReply, stop: &AtomicBool) {
    if stream.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    if read_request(&mut reader, stop).is_none() || writer.write_all(reply).is_err() {
        return;
    }
    let _ = writer.flush();
    if then == AfterReply::Stall {
        hold_connection(writer, stop);
    }
}

fn hold_connection(stream: TcpStream, stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < IDLE_LIMIT {
        std::thread::sleep(TICK);
    }
    drop(stream);
}

/// Reads one line, waiting across read timeouts until the stop flag or the
/// idle limit. `None` at EOF, stop or idle.
fn read_line(reader: &mut BufReader<impl Read>, stop: &AtomicBool) -> Option<String> {
    let started = Instant::now();
    let mut line = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with(b"\n") => {
                return String::from_utf8(line).ok();
            }
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) || started.elapsed() > IDLE_LIMIT {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

fn read_request(
    reader: &mut BufReader<impl Read>,
    stop: &AtomicBool,
) -> Option<(http::Request<Vec<u8>>, bool)> {
    let request_line = read_line(reader, stop)?;
    let mut parts = request_line.trim_end().split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    let mut builder = http::Request::builder().method(method).uri(target);
    let mut length = 0usize;
    let mut close = false;
    loop {
        let line = read_line(reader, stop)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        }
        if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
        builder = builder.header(name, value);
    }
    let mut body = vec![0; length];
    // The socket times out every TICK: read on through the timeouts, for
    // up to 5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut filled = 0;
    while filled < length {
        match reader.read(&mut body[filled..]) {
            Ok(0) => return None,
            Ok(read) => filled += read,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) && Instant::now() < deadline => {}
            Err(_) => return None,
        }
    }
    Some((builder.body(body).ok()?, close))
}

fn serve_connection(stream: TcpStream, handler: &Handler, stop: &AtomicBool, served: &AtomicUsize) {
    if stream.set_read_timeout(Some(TICK)).is_err() || stream.set_nodelay(true).is_err() {
        return;
    }
    serve_stream(stream, handler, stop, served);
}

/// [`serve_connection`] over TLS.
#[cfg(feature = "tls-rustls")]
fn serve_tls_connection(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    handler: &Handler,
    stop: &AtomicBool,
    served: &AtomicUsize,
) {
    if stream.set_read_timeout(Some(TICK)).is_err() || stream.set_nodelay(true).is_err() {
        return;
    }
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    serve_stream(
        rustls::StreamOwned::new(connection, stream),
        handler,
        stop,
        served,
    );
}

/// Answers the requests of one connection until either side closes it.
fn serve_stream(
    stream: impl Read + Write,
    handler: &Handler,
    stop: &AtomicBool,
    served: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream);
    while let Some((request, close)) = read_request(&mut reader, stop) {
        let response = handler(&request);
        served.fetch_add(1, Ordering::SeqCst);
        let status = response.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-length: {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Unknown"),
            response.body().len()
        );
        for (name, value) in response.headers() {
            if name != http::header::CONTENT_LENGTH {
                head.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap_or("")));
            }
        }
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        // Head and body in one write: two small writes would let Nagle's
        // algorithm hold the body back until the client's delayed ACK of
        // the head (40 ms on Linux) on a kept-alive connection.
        let mut message = head.into_bytes();
        message.extend_from_slice(response.body());
        let writer = reader.get_mut();
        if writer.write_all(&message).is_err() || writer.flush().is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

/// A fresh [`MemoryProxy`] served over HTTP, and a handle on its data.
pub fn memory_server() -> (TestServer, MemoryProxy) {
    let proxy = MemoryProxy::new();
    let served = proxy.clone();
    (
        TestServer::serve(move |request| served.handle(request)),
        proxy,
    )
}

/// The transport failure of the first attempt of a `SendRequest` error.
pub fn first_transport_failure(error: &Error) -> TransportErrorKind {
    match error {
        Error::SendRequest { attempts } => match &attempts[0].failure {
            AttemptFailure::Transport(error) => error.kind(),
            other => panic!("expected a transport failure, got {other:?}"),
        },
        other => panic!("expected SendRequest, got {other:?}"),
    }
}
