//! The proxy client: an HTTP client for a redis proxy server that stores
//! JSON values by key and hash field, with request signing, host failover,
//! retries, backup clusters and quorum parameters (`n`, `w`, `r`).
//!
//! | file | what |
//! |---|---|
//! | `client.rs` | [`RedisProxyClient`], the blocking driver: constructors and the loop that sends and sleeps |
//! | `aio/` | [`aio::AsyncRedisProxyClient`], the async driver, and the [`aio::AsyncHttpTransport`] seam (feature `tokio`) |
//! | `commands.rs` | the commands, each written once: every client's `get`, `get_with`, `get_answered`, `get_answered_with`, … |
//! | `walk.rs` | the walk over clusters, rounds and hosts, without I/O: signed requests, answers, pauses, the result |
//! | `answered.rs` | [`Answered`]: who answered a call, after how many attempts; JSON in and out |
//! | `wire.rs` | the protocol: the nine commands, paths, the `n`/`w`/`r`/`expire` query |
//! | `config.rs` | [`ProxyConfig`], [`ProxyHost`], [`Nwr`], [`CallOptions`] |
//! | `error/` | [`Error`] and its predicates; its parts ([`Attempt`], [`ClusterFailure`]) |
//! | `transport.rs` | the [`HttpTransport`] seam, [`TransportError`], [`TransportConfig`] |
//! | `ureq.rs` | [`UreqTransport`], real HTTP (feature `ureq`) |
//! | `hyper.rs` | `HyperTransport`, real HTTP for the async client (feature `hyper`) |
//! | `sign/` | [`Signer`]: AWS SigV4 and SigV2 query signing |
//! | `memory/` | [`MemoryProxy`], the server in memory: `request.rs` parses, `data.rs` executes |
//! | `fake.rs` | [`FakeTransport`], scripted hosts |
//! | `route.rs` | [`RoutingTransport`], one transport per host |
//!
//! # Examples
//!
//! The seed's synopsis, on the in-memory server and a manual clock:
//!
//! ```
//! use std::time::Duration;
//! use redisutil::ManualClock;
//! use redisutil::proxy::{CallOptions, MemoryProxy, ProxyConfig, RedisProxyClient};
//!
//! let clock = ManualClock::default();
//! let server = MemoryProxy::builder().clock(clock.clone()).build();
//! let config = ProxyConfig::with_hosts([("127.0.0.1", 2222), ("192.168.0.100", 222)]);
//! let cli = RedisProxyClient::new(server, config)?.with_clock(clock.clone());
//! let msec = Duration::from_millis;
//!
//! cli.set_with("k1", "v1", &CallOptions::new().retry(1))?;
//! cli.set_with("k2", "v2", &CallOptions::new().expire(msec(1000)))?;
//! assert_eq!(cli.get_with::<String>("k1", &CallOptions::new().retry(2))?, "v1");
//! assert_eq!(cli.get::<String>("k2")?, "v2");
//! clock.advance(msec(1000));
//! assert!(cli.get::<String>("k2").unwrap_err().is_key_not_found());
//!
//! cli.hset("hashname1", "k3", "v3")?;
//! cli.hset_with("hashname2", "k4", "v4", &CallOptions::new().expire(msec(1000)))?;
//! assert_eq!(cli.hget::<String>("hashname1", "k3")?, "v3");
//! assert_eq!(cli.hget::<String>("hashname2", "k4")?, "v4");
//! clock.advance(msec(1000));
//! assert!(cli.hget::<String>("hashname2", "k4").unwrap_err().is_key_not_found());
//! # Ok::<(), redisutil::proxy::Error>(())
//! ```

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod aio;
mod answered;
mod client;
mod commands;
mod config;
mod error;
mod fake;
mod host;
#[cfg(feature = "hyper")]
mod hyper;
mod memory;
mod redact;
mod route;
pub mod sign;
mod transport;
#[cfg(feature = "ureq")]
mod ureq;
mod walk;
mod wire;

#[cfg(feature = "hyper")]
pub use self::hyper::{HyperConfig, HyperTransport};
#[cfg(feature = "ureq")]
pub use self::ureq::{UreqConfig, UreqTransport};
pub use answered::Answered;
pub use client::RedisProxyClient;
pub use config::{CallOptions, Nwr, ProxyConfig};
pub use error::{Attempt, AttemptFailure, ClusterFailure, Error};
pub use fake::{FakeTransport, Outcome};
pub use host::ProxyHost;
pub use memory::{MemoryProxy, MemoryProxyBuilder};
pub use route::RoutingTransport;
pub use sign::{Credentials, SignError, SignatureVersion, Signer, VerifyError};
pub use transport::{HttpTransport, TransportConfig, TransportError, TransportErrorKind};

/// The `http` crate, whose `Request` and `Response` an [`HttpTransport`]
/// takes and gives: the version this crate is built with.
#[doc(no_inline)]
pub use ::http;
