//! Test support: a private `redis-server` per test, and the backends the
//! conformance suites run on.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::{ListStore, ManualClock, MemoryStore, RedisStore, wait_serve};

/// A `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

const INSTALL_HINT: &str = "redis-server is needed by these tests and was not found on PATH: \
     install it (Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`)";

impl RedisServer {
    /// Starts a server with no persistence.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut server = Self::unstarted(extra);
        for _attempt in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port after 5 tries");
    }

    /// Starts a server on `port`, which the caller found free.
    pub fn start_on(port: u16) -> Self {
        let mut server = Self::unstarted(&[]);
        server.port = port;
        assert!(server.spawn(), "redis-server did not start on port {port}");
        server
    }

    fn unstarted(extra: &[&str]) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redisutil-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        Self {
            child: None,
            port: 0,
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts the process on `self.port`; false if it did not come up.
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(err) => panic!("cannot start redis-server: {err}"),
        };
        self.child = Some(child);
        if wait_serve(self.port, Duration::from_secs(5)).is_ok() {
            return true;
        }
        self.kill();
        false
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A new store (its own pool) for this server.
    pub fn store(&self) -> RedisStore {
        RedisStore::open(self.addr()).expect("open a store")
    }

    /// A raw redis-rs connection, for checks the store does not offer.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(format!("redis://{}/", self.addr()))
            .and_then(|client| client.get_connection())
            .expect("raw connection")
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free port")
}

/// A store to run the conformance scenarios on, and control of its time.
pub trait Backend: Sync {
    /// The store type.
    type Store: ListStore + Clone + Send + Sync + std::fmt::Debug + 'static;

    /// A handle on the backend's store (clones share data).
    fn store(&self) -> Self::Store;

    /// Lets `by` pass, as TTLs see it.
    fn advance(&self, by: Duration);

    /// Runs `call`, which may block on a timeout, with the backend's time
    /// moving: real time for Redis, a fast-forwarding manual clock for the fake.
    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R;

    /// Waits until `condition` holds, up to `within` of the backend's time.
    fn eventually(&self, within: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let step = Duration::from_millis(20);
        let mut waited = Duration::ZERO;
        loop {
            if condition() {
                return true;
            }
            if waited >= within {
                return false;
            }
            self.advance(step);
            waited += step;
        }
    }
}

/// The in-memory fake on a manual clock.
pub struct MemoryBackend {
    pub store: MemoryStore,
    pub clock: ManualClock,
}

impl MemoryBackend {
    pub fn new() -> Self {
        let clock = ManualClock::default();
        Self {
            store: MemoryStore::with_clock(clock.clone()),
            clock,
        }
    }
}

impl Backend for MemoryBackend {
    type Store = MemoryStore;

    fn store(&self) -> MemoryStore {
        self.store.clone()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        let done = AtomicBool::new(false);
        thread::scope(|scope| {
            scope.spawn(|| {
                // Ten manual milliseconds for each real one.
                while !done.load(Ordering::Acquire) {
                    self.clock.advance(Duration::from_millis(10));
                    thread::sleep(Duration::from_millis(1));
                }
            });
            let result = call();
            done.store(true, Ordering::Release);
            result
        })
    }
}

/// A private redis-server.
pub struct RedisBackend {
    pub server: RedisServer,
    pub store: RedisStore,
}

impl RedisBackend {
    pub fn new() -> Self {
        let server = RedisServer::start();
        let store = server.store();
        Self { server, store }
    }
}

impl Backend for RedisBackend {
    type Store = RedisStore;

    fn store(&self) -> RedisStore {
        self.store.clone()
    }

    fn advance(&self, by: Duration) {
        thread::sleep(by);
    }

    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        call()
    }
}

/// A channel name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}/{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A TCP forwarder in front of a server that counts round trips: each time
/// the client writes after the server has answered (or first) is one.
pub struct RoundTripCounter {
    port: u16,
    round_trips: std::sync::Arc<AtomicU64>,
    stop: std::sync::Arc<AtomicBool>,
}

impl RoundTripCounter {
    /// Forwards a free loopback port to `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> Self {
        use std::io::{Read, Write};
        use std::net::TcpStream;
        use std::sync::Arc;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let round_trips = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (round_trips.clone(), stop.clone());
        thread::spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                // true while the server spoke last.
                let answered = Arc::new(AtomicBool::new(true));
                let pump = |mut from: TcpStream, mut to: TcpStream, client_side: bool| {
                    let (answered, counter) = (answered.clone(), counter.clone());
                    thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if client_side {
                                if answered.swap(false, Ordering::AcqRel) {
                                    counter.fetch_add(1, Ordering::AcqRel);
                                }
                            } else {
                                answered.store(true, Ordering::Release);
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pump(server, client, false);
            }
        });
        Self {
            port,
            round_trips,
            stop,
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Round trips so far; resets the count.
    pub fn take(&self) -> u64 {
        // Let the last answer reach the pump before reading.
        thread::sleep(Duration::from_millis(20));
        self.round_trips.swap(0, Ordering::AcqRel)
    }
}

impl Drop for RoundTripCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
