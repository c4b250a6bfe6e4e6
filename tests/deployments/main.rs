//! The stores on a Redis Cluster (slots, redirections, failover) and behind
//! Sentinel (master search, failover, stale sentinels), all started by the
//! tests on loopback. One binary.

#[cfg(feature = "sentinel")]
#[path = "../resp_support/mod.rs"]
mod resp_support;
#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "cluster")]
mod cluster_failover;
#[cfg(all(feature = "sentinel", feature = "conformance"))]
mod sentinel;
