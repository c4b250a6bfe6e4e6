//! The async API on tokio (feature `tokio`): [`AsyncListStore`], the
//! channel over it, [`AsyncRedisChannel`], and the real async store,
//! [`AsyncRedisStore`] (feature `redis` too).
//!
//! The semantics are the sync API's: the same wire format, channel names,
//! options and errors, shared with it rather than written twice.
//! [`MemoryStore`](crate::MemoryStore) is an async store as well as a sync
//! one, so one instance serves sync and async users of one test alike; its
//! blocked pops are futures woken by pushes and by its clock.
//!
//! # Cancellation
//!
//! Dropping a receive future at any point loses no message:
//!
//! - **Before it has taken anything** (a pop still waiting, a request not
//!   yet answered), nothing was taken.
//! - **After Redis has taken a message for it** (the answer was on its
//!   way, or a blocked pop was served as the future was dropped), the
//!   message goes back to the head of its list, where a later receive
//!   finds it first: the store finishes the call in a task of its own and
//!   pushes back what it took. So a message is never lost to a
//!   cancellation, and never delivered twice; what a cancelled receive
//!   took may, in the meantime, be seen behind a message sent later, and
//!   comes back without the list's TTL if the list had emptied.
//!
//! This needs the runtime to keep running while the dropped call finishes
//! (a task on it does the push back): a process that stops its runtime
//! right after cancelling a receive can lose what that receive had taken,
//! as a sync receive killed after its pop would.
//!
//! Sends are not cancellation-safe the other way round: a send dropped
//! after its request left may or may not have been applied (as with a
//! lost connection).
//!
//! # Examples
//!
//! ```
//! use redisutil::MemoryStore;
//! use redisutil::Peer;
//! use redisutil::aio::AsyncRedisChannel;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let client = AsyncRedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
//! let server = AsyncRedisChannel::new(store, "/jobs", Peer::Server)?;
//! client.send_msg(&"resize").await?;
//! let job: Option<String> = server.brecv_msg(std::time::Duration::from_secs(1)).await?;
//! assert_eq!(job.as_deref(), Some("resize"));
//! # Ok::<(), redisutil::ChannelError>(())
//! # }).unwrap();
//! ```

mod channel;

pub use crate::channel::channel_stats_async as channel_stats;
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "tokio", feature = "cluster"))))]
pub use crate::store::aio::AsyncRedisClusterStore;
#[cfg(feature = "sentinel")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "tokio", feature = "sentinel"))))]
pub use crate::store::aio::AsyncRedisSentinelStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::store::aio::{AsyncRedisStore, AsyncStore};
pub use crate::store::{AsyncLeaseStore, AsyncListStore};
pub use channel::AsyncRedisChannel;
