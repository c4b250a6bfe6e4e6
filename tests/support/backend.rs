//! The real stores as conformance harnesses: a private redis-server
//! ([`RedisBackend`]); the cluster's is in `cluster.rs`. The fake's is the
//! crate's own `redisutil::conformance::MemoryHarness`.

use std::thread;
use std::time::Duration;

use redisutil::RedisStore;
use redisutil::conformance::Harness;

use super::RedisServer;

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

impl Harness for RedisBackend {
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

    fn delete(&self, key: &str) {
        delete(&mut self.server.raw(), key);
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

pub(super) fn delete(raw: &mut redis::Connection, key: &str) {
    redis::cmd("DEL").arg(key).exec(raw).unwrap();
}

pub(super) fn ttl(raw: &mut redis::Connection, key: &str) -> Option<Duration> {
    let millis: i64 = redis::cmd("PTTL").arg(key).query(raw).unwrap();
    u64::try_from(millis).ok().map(Duration::from_millis)
}

/// Creates the deployments guide's user on the server of `con`: its
/// `ACL SETUSER app …` lines that hold each of `markers`, in turn.
pub fn add_documented_user(con: &mut redis::Connection, markers: &[&str]) {
    for marker in markers {
        redis::cmd("ACL")
            .arg(documented_acl(marker))
            .exec(con)
            .unwrap();
    }
}

/// The arguments of the deployments guide's `ACL SETUSER app …` line that
/// holds `marker` (its note in brackets left out).
fn documented_acl(marker: &str) -> Vec<&'static str> {
    let guide = include_str!("../../docs/guide/deployments.md");
    let line = guide
        .lines()
        .find(|line| line.starts_with("ACL SETUSER app ") && line.contains(marker))
        .unwrap_or_else(|| panic!("the guide's ACL SETUSER line with {marker}"));
    let command = line.split(" (").next().unwrap();
    command.split_whitespace().skip(1).collect()
}
