//! Test support: private `redis-server`s and a Redis Cluster on loopback,
//! each under one guard that stops it when the test process ends
//! (`process.rs`), and the backends the conformance suites run on.
#![allow(dead_code)] // each test binary uses a different part of this module

#[cfg(feature = "conformance")]
mod backend;
#[cfg(feature = "cluster")]
mod cluster;
mod counter;
pub mod fault_proxy;
pub mod process;
#[cfg(feature = "sentinel")]
mod sentinel;
mod server;
#[cfg(feature = "tls-rustls")]
pub mod tls;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "conformance")]
#[allow(unused_imports)] // each test binary uses a different part of this module
pub use backend::{RedisBackend, add_documented_user};
#[cfg(all(feature = "cluster", feature = "conformance"))]
#[allow(unused_imports)]
pub use cluster::ClusterBackend;
#[cfg(feature = "cluster")]
#[allow(unused_imports)]
pub use cluster::RedisCluster;
#[allow(unused_imports)]
pub use counter::RoundTripCounter;
#[cfg(all(feature = "sentinel", feature = "conformance"))]
#[allow(unused_imports)]
pub use sentinel::SentinelBackend;
#[cfg(feature = "sentinel")]
#[allow(unused_imports)]
pub use sentinel::{SERVICE, SentinelSet, SentinelSetup};
#[allow(unused_imports)]
pub use server::RedisServer;

/// A loopback port that nothing listened on a moment ago, and that no
/// other call in this process has handed out (so a node's bus or TLS port
/// is never another server's port).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("find a free port");
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// A channel name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}/{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Checks a bound on a time up to three times, each try on a fresh store:
/// a busy machine may stall one try a few hundred ms, while a store that
/// waits out what it should not is over the bound every time. A try
/// answers what went over its bound ([`over`]), if anything did.
pub fn within_three_tries(mut attempt: impl FnMut() -> Option<String>) {
    for tries in 1.. {
        match attempt() {
            None => break,
            Some(over) => assert!(tries < 3, "{over}, three times"),
        }
    }
}

/// What [`within_three_tries`] reports when `took` is not under `bound`.
pub fn over(took: std::time::Duration, bound: std::time::Duration) -> Option<String> {
    (took >= bound).then(|| format!("{took:?}, not under {bound:?}"))
}

/// A call made while the server was being slowed down, in round `round`
/// of a test, was answered in `took`, without the timeout it was made to
/// hit: it came before the slowdown took hold (a busy machine may hold up
/// the slowing command), and the round is made again, when it was
/// answered within `timeout` and before the third round; else the test
/// fails.
pub fn answered_before_the_slowdown(
    round: u32,
    took: std::time::Duration,
    timeout: std::time::Duration,
    what: &str,
) {
    assert!(
        took < timeout && round < 3,
        "{what}: answered in {took:?}, not a timeout of {timeout:?}"
    );
}
