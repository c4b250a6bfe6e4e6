//! Redis made easy: cross-process message channels over Redis lists, and a
//! client for a redis proxy server.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
pub mod proxy;

pub use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "ureq")]
pub use proxy::UreqTransport;
pub use proxy::{FakeTransport, HttpTransport, MemoryProxy, RedisProxyClient};
