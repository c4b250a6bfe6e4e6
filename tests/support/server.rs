//! [`RedisServer`]: a private `redis-server` per test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::{RedisStore, wait_serve};

use super::free_port;
use super::process::Guarded;

/// A `redis-server` on a free loopback port, killed on drop (and when the
/// test process dies: see [`Guarded`]).
pub struct RedisServer {
    process: Option<Guarded>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

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
            process: None,
            port: 0,
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts the process on `self.port`; false if it did not come up.
    /// Its directory outlives a kill, so that a restart finds its data.
    fn spawn(&mut self) -> bool {
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--dir",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        args.push(self.dir.display().to_string());
        args.extend(self.args.iter().cloned());
        self.process = Some(Guarded::spawn(&args, None));
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
        if let Some(mut process) = self.process.take() {
            process.kill();
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
