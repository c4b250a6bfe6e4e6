// The crate's page is the README (its examples run as doctests), its link
// labels first resolved to the items here (the first definition wins).
#![doc = include_str!("../docs/links.md")]
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Parts that only some features use are dead in builds without them; the
// build with every feature (clippy in CI) finds code that is dead for good.
#![cfg_attr(
    not(all(
        feature = "cluster",
        feature = "sentinel",
        feature = "tokio",
        feature = "proxy"
    )),
    allow(dead_code)
)]

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod aio;
mod channel;
mod clock;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod guide;
mod host;
mod json;
mod percent;
#[cfg(feature = "proxy")]
#[cfg_attr(docsrs, doc(cfg(feature = "proxy")))]
pub mod proxy;
pub mod store;
mod tls;
mod trace;
pub mod worker;

pub use channel::{
    ChannelError, ChannelName, ChannelOptions, ChannelStats, DEFAULT_MAX_DELIVERIES, DecodeError,
    Deliveries, Delivery, IntoChannelName, Peer, RedisChannel, channel_stats, list_channels,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use store::auth::RedisAuth;
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use store::blocking::RedisClusterStore;
#[cfg(feature = "sentinel")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
pub use store::blocking::RedisSentinelStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::blocking::RedisStore;
pub use store::memory::MemoryStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::registry::{get_client, get_client_with, wait_serve};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use store::registry::{get_cluster_client, get_cluster_client_with};
#[cfg(feature = "sentinel")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
pub use store::registry::{get_sentinel_client, get_sentinel_client_with};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use store::target::RedisClusterStoreOptions;
#[cfg(feature = "sentinel")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
pub use store::target::RedisSentinelStoreOptions;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::target::{PoolOptions, RedisStoreOptions};
pub use store::{LeaseStore, ListStore, Nacked, StoreError};
pub use tls::{ClientIdentity, TlsOptions};
