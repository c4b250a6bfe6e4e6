//! The backends the conformance suites run on: the [`Backend`] trait, the
//! in-memory fake ([`MemoryBackend`]) and a private redis-server
//! ([`RedisBackend`]); the cluster's is in `cluster.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use redisutil::{ListStore, ManualClock, MemoryStore, RedisStore};

use super::RedisServer;

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

    /// Stores a string at `key` (SET): a key of another type than list.
    fn set_string(&self, key: &str, value: &str);

    /// The string at `key` (GET); `None` when it holds none.
    fn get_string(&self, key: &str) -> Option<String>;

    /// The time left before `key` expires (PTTL); `None` without a TTL or key.
    fn ttl(&self, key: &str) -> Option<Duration>;

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

    fn set_string(&self, key: &str, value: &str) {
        self.store.set_string(key, value);
    }

    fn get_string(&self, key: &str) -> Option<String> {
        let value = self.store.get_string(key)?;
        Some(String::from_utf8(value).unwrap())
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        self.store.ttl(key)
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

    fn set_string(&self, key: &str, value: &str) {
        set_string(&mut self.server.raw(), key, value);
    }

    fn get_string(&self, key: &str) -> Option<String> {
        get_string(&mut self.server.raw(), key)
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        ttl(&mut self.server.raw(), key)
    }

    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        call()
    }
}

pub(super) fn set_string(raw: &mut redis::Connection, key: &str, value: &str) {
    redis::cmd("SET").arg(key).arg(value).exec(raw).unwrap();
}

pub(super) fn get_string(raw: &mut redis::Connection, key: &str) -> Option<String> {
    let kind: String = redis::cmd("TYPE").arg(key).query(raw).unwrap();
    if kind != "string" {
        return None;
    }
    redis::cmd("GET").arg(key).query(raw).unwrap()
}

pub(super) fn ttl(raw: &mut redis::Connection, key: &str) -> Option<Duration> {
    let millis: i64 = redis::cmd("PTTL").arg(key).query(raw).unwrap();
    u64::try_from(millis).ok().map(Duration::from_millis)
}
