//! [`Worker`]: the consumer loop of a leased channel, done once.
//!
//! A worker leases messages from its [`RedisChannel`] and hands each to a
//! handler on one of `concurrency` threads; while a handler runs, its
//! lease is extended ahead of its deadline; the handler's [`Outcome`]
//! settles the message: acked, retried after a backoff (a `nack` whose
//! delay grows with each delivery), or made a dead letter at once. A
//! handler that panics counts as a retryable failure and the worker goes
//! on. A message that does not decode is a dead letter before any handler
//! sees it (as every leased receive does). After `max_deliveries`, a
//! message that keeps failing is a dead letter.
//!
//! [`AsyncWorker`] (feature `tokio`) is the same loop as tasks on an
//! [`AsyncRedisChannel`](crate::aio::AsyncRedisChannel): one book of
//! leases, one settlement and one set of counters serve both.
//!
//! [`Shutdown::shutdown`] stops the leasing: each thread finishes the
//! message it runs and ends (a thread waiting for a message ends within
//! [`WorkerOptions::poll`]), the messages prefetched
//! ([`WorkerOptions::prefetch`]) are handed back without spending a
//! delivery, and [`Worker::run`] returns.
//!
//! Times are the store's: the retry delays, the leases, the time limit,
//! the rate limit ([`WorkerOptions::rate`]) and the handler times are on its clock
//! ([`ListStore::clock`](crate::ListStore::clock)), so a test on a
//! [`MemoryStore`](crate::MemoryStore) with a [`ManualClock`](crate::ManualClock)
//! moves them.
//!
//! ```
//! use std::time::Duration;
//! use redisutil::worker::{Outcome, Worker, WorkerOptions};
//! use redisutil::{MemoryStore, Peer, RedisChannel};
//!
//! let store = MemoryStore::new();
//! let client = RedisChannel::new(store.clone(), "/jobs", Peer::Client)?;
//! client.send_msgs([1u32, 2, 3])?;
//!
//! let channel = RedisChannel::new(store, "/jobs", Peer::Server)?;
//! let worker = Worker::new(channel, WorkerOptions::default())?;
//! let shutdown = worker.shutdown_handle();
//! let stats = worker.run(|job: &redisutil::worker::Job<'_, u32>| {
//!     if *job.msg() == 3 {
//!         shutdown.shutdown(); // a signal handler would do this
//!     }
//!     Outcome::Done
//! })?;
//! assert_eq!(stats.processed, 3);
//! # Ok::<(), redisutil::ChannelError>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use crate::Clock;
use crate::channel::{ChannelError, Deliveries, Delivery, RedisChannel};
use crate::store::{DeliveryTag, LeaseStore, Nacked, StoreError};

#[cfg(feature = "tokio")]
mod aio;
mod blocking;
mod book;
mod queue;
mod stats;

#[cfg(feature = "tokio")]
pub use aio::{AsyncJob, AsyncWorker};
pub use blocking::Worker;
use book::*;
use queue::*;
use stats::*;

/// What a handler made of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the message is acked.
    Done,
    /// A failure worth another try: the message is delivered again after
    /// the backoff (a dead letter after `max_deliveries`).
    Retry,
    /// A failure no retry mends: the message is a dead letter at once.
    Reject,
}

/// The delay before a failed message is delivered again: `first` after
/// the first delivery, multiplied by `factor` after each one, at most
/// `max`, each spread by up to ± `jitter` of itself so that failures of
/// many messages do not come back together.
///
/// `Default`: 1 s, doubled, at most 5 minutes, ± 20 % (BullMQ's
/// exponential backoff with jitter, Sidekiq's cap in spirit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first delivery failed.
    pub first: Duration,
    /// The factor from one delivery to the next (1: a fixed delay).
    pub factor: u32,
    /// The longest delay.
    pub max: Duration,
    /// The spread, from 0.0 (none) to 1.0.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            factor: 2,
            max: Duration::from_secs(5 * 60),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay after delivery `attempt` (1 for the first) failed, with
    /// `spread` in -1.0..=1.0 choosing where in the jitter it falls.
    pub fn delay(&self, attempt: u32, spread: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(63);
        let grown = self
            .first
            .saturating_mul(self.factor.max(1).saturating_pow(exponent))
            .min(self.max);
        let spread = spread.clamp(-1.0, 1.0) * self.jitter.clamp(0.0, 1.0);
        grown.mul_f64(1.0 + spread).min(self.max)
    }
}

/// Settings of a [`Worker`]. `Default` gives the documented values.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// How many handlers run at once, each on a thread of its own.
    /// Default: 1.
    pub concurrency: usize,
    /// The lease each message is taken under; while its handler runs it is
    /// extended by as much whenever a third of it has passed (two thirds
    /// are left: room for a slow store or a busy machine). Default: 30 s.
    pub lease: Duration,
    /// How long a thread waits for a message before it looks whether the
    /// worker is shutting down. Default: 1 s.
    pub poll: Duration,
    /// A handler running longer than this is abandoned: its lease is no
    /// longer extended (the message is delivered again when it runs out),
    /// and what it returns is ignored. `None`: no limit. Default: `None`.
    pub time_limit: Option<Duration>,
    /// The delays between the deliveries of a failing message.
    pub backoff: Backoff,
    /// How many messages the worker may hold leased that no handler has
    /// started: a thread finding none leases up to `1 + prefetch` in one
    /// round trip, starts one and leaves the rest to the next free
    /// threads. Their leases are kept alive while they wait; at shutdown
    /// they are handed back without spending a delivery. A small bound
    /// keeps one busy worker from holding what idle ones could run.
    /// Default: 0 (a message is leased when a thread is free to run it).
    pub prefetch: usize,
    /// At most so many handlers started per period, over all the
    /// worker's threads; `None`: no limit. Default: `None`.
    pub rate: Option<Rate>,
    /// Once the worker shuts down, how long running handlers have to
    /// finish; past it they are abandoned as past their time limit (the
    /// async worker cancels them; a thread's result is ignored, and
    /// [`Worker::run`] returns when it does). Default: 25 s (Sidekiq's,
    /// under the 30 s a service manager such as Kubernetes waits after
    /// SIGTERM).
    pub grace: Duration,
}

/// A rate limit: at most `messages` handlers started in any `per`, the
/// first `messages` at once, then one every `per / messages` (a token
/// bucket that holds `messages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many.
    pub messages: u32,
    /// In how long.
    pub per: Duration,
}

impl Rate {
    /// At most `messages` a second.
    pub fn per_second(messages: u32) -> Self {
        Self {
            messages,
            per: Duration::from_secs(1),
        }
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 1,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            time_limit: None,
            backoff: Backoff::default(),
            prefetch: 0,
            rate: None,
            grace: Duration::from_secs(25),
        }
    }
}

/// What a worker did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Messages handled with [`Outcome::Done`] and acked.
    pub processed: u64,
    /// Messages handed back to be delivered again after a failure.
    pub retried: u64,
    /// Messages made dead letters: refused, failing after their last
    /// delivery, or not decoding.
    pub dead_lettered: u64,
    /// Handlers that panicked (each counted as a retryable failure too).
    pub panicked: u64,
    /// Handlers abandoned past the time limit.
    pub timed_out: u64,
    /// Messages whose lease was lost while their handler ran (its outcome
    /// was not taken for a settlement).
    pub leases_lost: u64,
    /// Calls to the store that failed (the worker waits a moment, then
    /// goes on).
    pub errors: u64,
    /// Handlers running now.
    pub in_flight: u64,
    /// Messages leased and waiting for a free handler (at most
    /// [`WorkerOptions::prefetch`]).
    pub prefetched: u64,
    /// How long handlers ran, on the store's clock: the median and the
    /// 99th percentile, each the upper edge of a bucket at most 19 % wide
    /// (never above the longest seen); zero before the first.
    pub handler_p50: Duration,
    /// See [`handler_p50`](Self::handler_p50).
    pub handler_p99: Duration,
}

/// Stops a [`Worker`]; clones stop the same one.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// Stops leasing; each handler running finishes, then
    /// [`Worker::run`] returns.
    pub fn shutdown(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Wires SIGTERM and SIGINT (Ctrl-C) to [`shutdown`](Self::shutdown),
    /// the way a service manager or a terminal stops a program: the first
    /// signal shuts the worker down gracefully; a second one, while it
    /// drains, ends the process at once with status 130 (as a shell reports
    /// a program ended by Ctrl-C), like Sidekiq's or Celery's second
    /// Ctrl-C. Feature `signal`, Unix.
    ///
    /// # Errors
    ///
    /// The operating system refused to install the handler.
    #[cfg(all(feature = "signal", unix))]
    pub fn on_termination(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for signal in [SIGINT, SIGTERM] {
            // Registered first: it runs before the flag is set by this
            // signal, so only a signal after the first ends the process.
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&self.0))?;
            signal_hook::flag::register(signal, Arc::clone(&self.0))?;
        }
        Ok(())
    }
}

/// A message handed to a handler, and its delivery.
pub struct Job<'a, T> {
    delivery: &'a Delivery<T>,
    marks: &'a Marks,
}

impl<T> Job<'_, T> {
    /// The message.
    pub fn msg(&self) -> &T {
        self.delivery.msg()
    }

    /// Which delivery of the message this is (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.delivery.attempt()
    }

    /// When the lease ends, as taken (extensions move it).
    pub fn deadline(&self) -> SystemTime {
        self.delivery.deadline()
    }

    /// Whether the lease was lost (an extension found it gone), or the
    /// time limit or the shutdown's grace passed: the message will be
    /// delivered again, and whatever this handler returns is ignored. A
    /// long handler may look at it to stop early.
    pub fn is_lost(&self) -> bool {
        self.marks.is_lost()
    }
}

/// How often the keeper looks at the leases, in real time.
const KEEPER_TICK: Duration = Duration::from_millis(20);

/// The pause after a failed call to the store.
const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Refuses options that cannot work.
fn check(options: &WorkerOptions) -> Result<(), ChannelError> {
    let refuse = |message: &str| {
        ChannelError::Store(StoreError::InvalidOptions {
            message: message.into(),
        })
    };
    if options.concurrency == 0 {
        return Err(refuse(
            "worker concurrency is 0: it needs at least one thread",
        ));
    }
    if options.lease < Duration::from_millis(3) {
        return Err(refuse("worker lease is under 3 ms"));
    }
    if options.poll.is_zero() {
        return Err(refuse("worker poll is zero"));
    }
    if let Some(rate) = options.rate
        && (rate.messages == 0 || rate.per.is_zero())
    {
        return Err(refuse("worker rate is zero messages or a period of zero"));
    }
    Ok(())
}

/// What both workers hold besides their channel.
struct Core {
    options: WorkerOptions,
    shutdown: Shutdown,
    counters: Arc<Counters>,
    limiter: Limiter,
}

impl Core {
    /// The core of a worker with `options`, refused when they cannot work.
    fn new(options: WorkerOptions) -> Result<Self, ChannelError> {
        check(&options)?;
        Ok(Self {
            limiter: Limiter {
                rate: options.rate,
                next: Mutex::new(None),
            },
            options,
            shutdown: Shutdown::default(),
            counters: Arc::default(),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A spread in -1.0..=1.0 for a delivery's backoff jitter: its tag and a
/// process-random key hashed, so that failures of many messages spread.
fn spread(tag: &DeliveryTag) -> f64 {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let hashed = KEYS.get_or_init(Default::default).hash_one(tag);
    (hashed as f64 / u64::MAX as f64) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_spreads() {
        let backoff = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        let delays: Vec<u64> = (1..=10).map(|n| backoff.delay(n, 0.7).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff.delay(u32::MAX, 0.0), Duration::from_secs(300));
        let spread = Backoff::default();
        assert_eq!(spread.delay(1, 1.0), Duration::from_millis(1200));
        assert_eq!(spread.delay(1, -1.0), Duration::from_millis(800));
        assert_eq!(spread.delay(20, 1.0), Duration::from_secs(300), "capped");
    }
}
