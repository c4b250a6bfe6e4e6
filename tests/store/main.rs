//! The Redis stores and the channel on private `redis-server`s (started per
//! test, stopped on drop): both conformance suites, the models, the call
//! policy under faults, pools, TLS, tracing, the async stores, and the
//! Python original on the same lists. One binary.

#[cfg(all(feature = "tracing", feature = "ureq"))]
#[path = "../proxy_support/mod.rs"]
mod proxy_support;
#[path = "../python_support/mod.rs"]
mod python_support;
#[path = "../resp_support/mod.rs"]
mod resp_support;
#[path = "../support/mod.rs"]
mod support;

mod addr_secrets;
#[cfg(all(feature = "tokio", feature = "conformance"))]
mod aio;
#[cfg(feature = "conformance")]
mod channel_model;
#[cfg(feature = "conformance")]
mod conformance;
mod fault_matrix;
mod lease_model;
mod pool_limits;
mod python_interop;
mod redis_store;
mod reliability;
mod round_trips;
mod server_replies;
#[cfg(feature = "conformance")]
mod store_differential;
#[cfg(all(feature = "tls-rustls-insecure", feature = "conformance"))]
mod tls;
#[cfg(all(feature = "tracing", feature = "ureq"))]
mod tracing_events;
