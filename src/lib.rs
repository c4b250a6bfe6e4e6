//! Redis made easy: cross-process message channels over Redis lists, and a
//! client for a redis proxy server.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod addr;
mod channel;
mod clock;
mod json;
pub mod proxy;
#[cfg(feature = "redis")]
mod registry;
mod store;

pub use addr::{IntoRedisAddr, RedisAddr};
pub use channel::{
    ChannelError, ChannelName, ChannelOptions, DecodeError, IntoChannelName, Peer, RedisChannel,
    list_channels,
};
pub use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "ureq")]
#[cfg_attr(docsrs, doc(cfg(feature = "ureq")))]
pub use proxy::UreqTransport;
pub use proxy::{FakeTransport, HttpTransport, MemoryProxy, RedisProxyClient};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use registry::get_cluster_client;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use registry::{DEFAULT_WAIT_SERVE_TIMEOUT, get_client, wait_serve};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use store::cluster::{RedisClusterStore, RedisClusterStoreOptions};
pub use store::memory::MemoryStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::{RedisStore, RedisStoreOptions};
pub use store::{BoxError, ListStore, StoreError};
