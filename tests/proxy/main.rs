//! The proxy client's tests: signing, hosts, failover, retries, the wire
//! format, the conformance suite on `MemoryProxy` and over HTTP, the async
//! client and https. One binary; nothing here needs Redis.

#[path = "../proxy_support/mod.rs"]
mod proxy_support;
#[path = "../python_support/mod.rs"]
mod python_support;
#[cfg(feature = "tls-rustls")]
#[path = "../support/mod.rs"]
mod support;

#[cfg(all(feature = "tokio", feature = "conformance"))]
mod aio;
#[cfg(feature = "conformance")]
mod conformance;
mod dots;
mod failover;
mod faults;
mod hosts;
mod http;
mod k3awssign;
mod numbers;
mod redirect;
mod secrets;
mod seed_cases;
mod sign;
#[cfg(all(feature = "tls-rustls", feature = "ureq"))]
mod tls;
