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
//! [`WorkerOptions::poll`]), and [`Worker::run`] returns.
//!
//! Times are the store's: the retry delays and the leases are on its clock
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

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use crate::channel::{ChannelError, Delivery, RedisChannel};
use crate::store::{DeliveryTag, LeaseStore, Nacked, StoreError};

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
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 1,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            time_limit: None,
            backoff: Backoff::default(),
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
}

/// A message handed to a handler, and its delivery.
pub struct Job<'a, T> {
    delivery: &'a Delivery<T>,
    lost: &'a AtomicBool,
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

    /// Whether the lease was lost (an extension found it gone, or the time
    /// limit passed): the message will be delivered again, and whatever
    /// this handler returns is ignored. A long handler may look at it to
    /// stop early.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

/// The counters behind [`WorkerStats`].
#[derive(Default)]
struct Counters {
    processed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    panicked: AtomicU64,
    timed_out: AtomicU64,
    leases_lost: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WorkerStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WorkerStats {
            processed: read(&self.processed),
            retried: read(&self.retried),
            dead_lettered: read(&self.dead_lettered),
            panicked: read(&self.panicked),
            timed_out: read(&self.timed_out),
            leases_lost: read(&self.leases_lost),
            errors: read(&self.errors),
            in_flight: read(&self.in_flight),
        }
    }
}

/// A message whose handler runs, as the keeper of leases sees it.
struct Held {
    tag: DeliveryTag,
    /// When, on the store's clock, its lease is extended next; `None`:
    /// never again (lost, or abandoned).
    extend_at: Option<SystemTime>,
    /// When its handler passes the time limit.
    abandon_at: Option<SystemTime>,
    marks: Marks,
}

/// What the keeper tells a running handler's loop.
#[derive(Clone, Default)]
struct Marks {
    /// An extension found the lease gone.
    lost: Arc<AtomicBool>,
    /// The handler passed its time limit.
    timed_out: Arc<AtomicBool>,
}

/// The book of the running handlers, and what the loop does with each:
/// one description for the threaded and the async worker.
#[derive(Default)]
struct Book {
    held: Mutex<HashMap<u64, Held>>,
    next: AtomicU64,
}

impl Book {
    /// A handler starts on `tag` at `now`: its slot and marks.
    fn open(&self, tag: &DeliveryTag, now: SystemTime, options: &WorkerOptions) -> (u64, Marks) {
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        let marks = Marks::default();
        lock(&self.held).insert(
            slot,
            Held {
                tag: tag.clone(),
                extend_at: Some(now + options.lease / 3),
                abandon_at: options.time_limit.map(|limit| now + limit),
                marks: marks.clone(),
            },
        );
        (slot, marks)
    }

    /// The handler of `slot` returned.
    fn close(&self, slot: u64) {
        lock(&self.held).remove(&slot);
    }

    /// The leases to extend at `now`; handlers past their time limit are
    /// marked and their leases left to run out.
    fn due(&self, now: SystemTime) -> Vec<(u64, DeliveryTag)> {
        let mut held = lock(&self.held);
        let mut due = Vec::new();
        for (slot, entry) in held.iter_mut() {
            if entry.abandon_at.is_some_and(|at| at <= now) {
                entry.marks.timed_out.store(true, Ordering::SeqCst);
                entry.abandon_at = None;
                entry.extend_at = None;
                continue;
            }
            if entry.extend_at.is_some_and(|at| at <= now) {
                due.push((*slot, entry.tag.clone()));
            }
        }
        due
    }

    /// What an extension of `slot` at `now` came to.
    fn extended(
        &self,
        slot: u64,
        extended: Result<Option<SystemTime>, StoreError>,
        now: SystemTime,
        lease: Duration,
        counters: &Counters,
    ) {
        let mut held = lock(&self.held);
        let Some(entry) = held.get_mut(&slot) else {
            return;
        };
        match extended {
            Ok(Some(_)) if entry.extend_at.is_some() => {
                crate::trace::event!(TRACE, id = %entry.tag.id, "worker: lease extended");
                entry.extend_at = Some(now + lease / 3);
            }
            // Abandoned meanwhile: no longer extended.
            Ok(Some(_)) => {}
            Ok(None) => {
                entry.marks.lost.store(true, Ordering::SeqCst);
                entry.extend_at = None;
            }
            // Tried again at the next tick.
            Err(_) => Counters::add(&counters.errors),
        }
    }
}

/// How a delivery is settled once its handler returned (`None`: it
/// panicked).
enum Settle {
    Ack,
    Nack(Duration),
    Reject,
    /// Left to its lease: lost, or abandoned past the time limit.
    Leave,
}

/// What the handler's return means for its delivery.
fn settle_plan(
    outcome: Option<Outcome>,
    marks: &Marks,
    attempt: u32,
    tag: &DeliveryTag,
    options: &WorkerOptions,
    counters: &Counters,
) -> Settle {
    if marks.timed_out.load(Ordering::SeqCst) {
        crate::trace::event!(WARN, id = %tag.id, attempt, "worker: a handler passed its time limit; its lease runs out");
        Counters::add(&counters.timed_out);
        return Settle::Leave;
    }
    if marks.lost.load(Ordering::SeqCst) {
        crate::trace::event!(WARN, id = %tag.id, attempt, "worker: a lease was lost while its handler ran");
        Counters::add(&counters.leases_lost);
        return Settle::Leave;
    }
    let outcome = outcome.unwrap_or_else(|| {
        crate::trace::event!(WARN, id = %tag.id, attempt, "worker: a handler panicked: a retry");
        Counters::add(&counters.panicked);
        Outcome::Retry
    });
    match outcome {
        Outcome::Done => Settle::Ack,
        Outcome::Reject => Settle::Reject,
        Outcome::Retry => Settle::Nack(options.backoff.delay(attempt, spread(tag))),
    }
}

/// What a settlement came to, as counted.
enum Settled {
    Acked(bool),
    Rejected(bool),
    Nacked(Nacked),
}

fn count_settled(settled: Result<Settled, ChannelError>, tag: &DeliveryTag, counters: &Counters) {
    let said = match &settled {
        Ok(Settled::Acked(true)) => "acked",
        Ok(Settled::Rejected(true)) => "refused: a dead letter",
        Ok(Settled::Nacked(Nacked::DeadLettered)) => "failed its last delivery: a dead letter",
        Ok(Settled::Nacked(Nacked::Retrying)) => "failed: delivered again after the backoff",
        Ok(_) => "no longer held by this delivery",
        Err(_) => "not settled: the store failed; its lease runs out",
    };
    crate::trace::event!(
        DEBUG,
        id = %tag.id,
        attempt = tag.attempt,
        error = settled.as_ref().err().map(ToString::to_string),
        "worker: {said}"
    );
    let _ = (said, tag);
    let counter = match settled {
        Ok(Settled::Acked(true)) => &counters.processed,
        Ok(Settled::Rejected(true) | Settled::Nacked(Nacked::DeadLettered)) => {
            &counters.dead_lettered
        }
        Ok(Settled::Nacked(Nacked::Retrying)) => &counters.retried,
        Ok(Settled::Acked(false) | Settled::Rejected(false) | Settled::Nacked(Nacked::NotHeld)) => {
            &counters.leases_lost
        }
        // The lease runs out and the message comes back.
        Err(_) => &counters.errors,
    };
    Counters::add(counter);
}

/// What a failed lease means: a message that did not decode is a dead
/// letter already (its bytes kept); anything else, a pause.
fn lease_failed(err: &ChannelError, counters: &Counters) -> bool {
    if err.is_decode() {
        Counters::add(&counters.dead_lettered);
        return false;
    }
    Counters::add(&counters.errors);
    true
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
    Ok(())
}

/// The consumer loop of a leased channel: see the [module](self).
pub struct Worker<S> {
    channel: RedisChannel<S>,
    core: Core,
}

/// What both workers hold besides their channel.
struct Core {
    options: WorkerOptions,
    shutdown: Shutdown,
    counters: Arc<Counters>,
}

impl Core {
    /// The core of a worker with `options`, refused when they cannot work.
    fn new(options: WorkerOptions) -> Result<Self, ChannelError> {
        check(&options)?;
        Ok(Self {
            options,
            shutdown: Shutdown::default(),
            counters: Arc::default(),
        })
    }
}

impl<S: LeaseStore + Send + Sync> Worker<S> {
    /// A worker on `channel` (the end it receives on) with `options`;
    /// refuses options that cannot work (no thread, a lease or a poll
    /// of zero).
    pub fn new(channel: RedisChannel<S>, options: WorkerOptions) -> Result<Self, ChannelError> {
        let core = Core::new(options)?;
        channel.lease_keys()?;
        Ok(Self { channel, core })
    }

    /// The handle that stops this worker.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.core.shutdown.clone()
    }

    /// What it did so far.
    pub fn stats(&self) -> WorkerStats {
        self.core.counters.snapshot()
    }

    /// Runs `handler` on every message, on `concurrency` threads, until
    /// [`Shutdown::shutdown`]; returns what it did.
    pub fn run<T, F>(&self, handler: F) -> Result<WorkerStats, ChannelError>
    where
        T: DeserializeOwned,
        F: Fn(&Job<'_, T>) -> Outcome + Sync,
    {
        let book = Book::default();
        let handlers_done = AtomicBool::new(false);
        thread::scope(|scope| {
            let keeper = scope.spawn(|| self.keep_leases(&book, &handlers_done));
            let threads: Vec<_> = (0..self.core.options.concurrency)
                .map(|_| scope.spawn(|| self.handle_until_shutdown(&handler, &book)))
                .collect();
            for thread in threads {
                if let Err(panic) = thread.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            handlers_done.store(true, Ordering::SeqCst);
            let _ = keeper.join();
        });
        Ok(self.stats())
    }

    /// One thread's loop.
    fn handle_until_shutdown<T, F>(&self, handler: &F, book: &Book)
    where
        T: DeserializeOwned,
        F: Fn(&Job<'_, T>) -> Outcome + Sync,
    {
        let clock = self.channel.store().clock();
        while !self.core.shutdown.is_shut_down() {
            match self
                .channel
                .blease_msg::<T>(self.core.options.lease, self.core.options.poll)
            {
                Ok(Some(delivery)) => self.handle(handler, book, clock.now(), delivery),
                Ok(None) => {}
                Err(err) => {
                    if lease_failed(&err, &self.core.counters) {
                        thread::sleep(ERROR_PAUSE);
                    }
                }
            }
        }
    }

    /// Runs the handler on one delivery leased at `now`, the lease kept,
    /// then settles it.
    fn handle<T, F>(&self, handler: &F, book: &Book, now: SystemTime, delivery: Delivery<T>)
    where
        F: Fn(&Job<'_, T>) -> Outcome,
    {
        let counters = &self.core.counters;
        let (slot, marks) = book.open(delivery.tag(), now, &self.core.options);
        Counters::add(&counters.in_flight);
        let job = Job {
            delivery: &delivery,
            lost: &marks.lost,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(&job))).ok();
        book.close(slot);
        counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let plan = settle_plan(
            outcome,
            &marks,
            delivery.attempt(),
            delivery.tag(),
            &self.core.options,
            counters,
        );
        let settled = match plan {
            Settle::Leave => return,
            Settle::Ack => self.channel.ack(&delivery).map(Settled::Acked),
            Settle::Reject => self.channel.reject(&delivery).map(Settled::Rejected),
            Settle::Nack(delay) => self.channel.nack(&delivery, delay).map(Settled::Nacked),
        };
        count_settled(settled, delivery.tag(), counters);
    }

    /// Extends the leases of the running handlers when a third of the
    /// lease has passed; abandons those past the time limit.
    fn keep_leases(&self, book: &Book, handlers_done: &AtomicBool) {
        let clock = self.channel.store().clock();
        let Ok(keys) = self.channel.lease_keys() else {
            return;
        };
        let lease = self.core.options.lease;
        while !handlers_done.load(Ordering::SeqCst) {
            thread::sleep(KEEPER_TICK.min(lease / 6));
            let now = clock.now();
            for (slot, tag) in book.due(now) {
                let extended = self.channel.store().extend(keys, &tag, lease);
                book.extended(slot, extended, now, lease, &self.core.counters);
            }
        }
    }
}

/// The async worker (feature `tokio`): [`Worker`]'s loop as tasks on a
/// tokio runtime, on an [`AsyncRedisChannel`](crate::aio::AsyncRedisChannel).
/// The same book of leases, settlement and counters as the threaded one:
/// its behaviour is the same by construction. A handler is a task of its
/// own (a panic there is a retry); one past the time limit is cancelled.
/// Dropping the future of [`run`](Self::run) stops every task it started
/// at once: a blocked lease is cancelled (what it leased is handed back),
/// a running handler is cancelled and its lease left to run out.
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use redisutil::aio::AsyncRedisChannel;
/// use redisutil::worker::{AsyncJob, AsyncWorker, Outcome, WorkerOptions};
/// use redisutil::{MemoryStore, Peer, RedisChannel};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = MemoryStore::new();
/// RedisChannel::new(store.clone(), "/jobs", Peer::Client)?.send_msgs([1u32, 2])?;
/// let channel = AsyncRedisChannel::new(store, "/jobs", Peer::Server)?;
/// let worker = AsyncWorker::new(channel, WorkerOptions::default())?;
/// let shutdown = worker.shutdown_handle();
/// let stats = worker
///     .run(move |job: AsyncJob<u32>| {
///         let shutdown = shutdown.clone();
///         async move {
///             if *job.msg() == 2 {
///                 shutdown.shutdown();
///             }
///             Outcome::Done
///         }
///     })
///     .await?;
/// assert_eq!(stats.processed, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "tokio")]
pub struct AsyncWorker<S> {
    channel: crate::aio::AsyncRedisChannel<S>,
    core: Core,
}

/// A message handed to an async handler, and its delivery: owned, so
/// that the handler's future may keep it.
#[cfg(feature = "tokio")]
pub struct AsyncJob<T> {
    delivery: Arc<Delivery<T>>,
    lost: Arc<AtomicBool>,
}

#[cfg(feature = "tokio")]
impl<T> AsyncJob<T> {
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

    /// Whether the lease was lost: see [`Job::is_lost`].
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

#[cfg(feature = "tokio")]
impl<S> AsyncWorker<S>
where
    S: crate::aio::AsyncLeaseStore + Clone + Send + Sync + 'static,
{
    /// A worker on `channel` with `options`, checked as [`Worker::new`]
    /// checks them.
    pub fn new(
        channel: crate::aio::AsyncRedisChannel<S>,
        options: WorkerOptions,
    ) -> Result<Self, ChannelError> {
        let core = Core::new(options)?;
        channel.lease_keys()?;
        Ok(Self { channel, core })
    }

    /// The handle that stops this worker.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.core.shutdown.clone()
    }

    /// What it did so far.
    pub fn stats(&self) -> WorkerStats {
        self.core.counters.snapshot()
    }

    /// Runs `handler` on every message, `concurrency` at once, until
    /// [`Shutdown::shutdown`]; returns what it did.
    pub async fn run<T, F, Fut>(&self, handler: F) -> Result<WorkerStats, ChannelError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
        F: Fn(AsyncJob<T>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Outcome> + Send + 'static,
    {
        let book = Arc::new(Book::default());
        let handler = Arc::new(handler);
        let done = Arc::new(AtomicBool::new(false));
        // Dropping this future stops every task it started (a loop's
        // blocked lease is cancelled: what it leased is handed back).
        let mut stop_on_drop = Vec::with_capacity(self.core.options.concurrency + 1);
        let keeper = tokio::spawn(keep_leases_async(
            self.channel.clone(),
            Arc::clone(&book),
            Arc::clone(&done),
            self.core.options.lease,
            Arc::clone(&self.core.counters),
        ));
        let loops: Vec<_> = (0..self.core.options.concurrency)
            .map(|_| {
                tokio::spawn(handle_until_shutdown_async(
                    self.channel.clone(),
                    self.core.options.clone(),
                    self.core.shutdown.clone(),
                    Arc::clone(&self.core.counters),
                    Arc::clone(&book),
                    Arc::clone(&handler),
                ))
            })
            .collect();
        stop_on_drop.push(Aborting(keeper.abort_handle()));
        stop_on_drop.extend(loops.iter().map(|task| Aborting(task.abort_handle())));
        for task in loops {
            if let Err(err) = task.await
                && err.is_panic()
            {
                std::panic::resume_unwind(err.into_panic());
            }
        }
        done.store(true, Ordering::SeqCst);
        let _ = keeper.await;
        Ok(self.stats())
    }
}

/// One task's loop of the async worker.
#[cfg(feature = "tokio")]
async fn handle_until_shutdown_async<S, T, F, Fut>(
    channel: crate::aio::AsyncRedisChannel<S>,
    options: WorkerOptions,
    shutdown: Shutdown,
    counters: Arc<Counters>,
    book: Arc<Book>,
    handler: Arc<F>,
) where
    S: crate::aio::AsyncLeaseStore + Send + Sync + 'static,
    T: DeserializeOwned + Send + Sync + 'static,
    F: Fn(AsyncJob<T>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let clock = channel.store().clock();
    while !shutdown.is_shut_down() {
        let delivery = match channel.blease_msg::<T>(options.lease, options.poll).await {
            Ok(Some(delivery)) => Arc::new(delivery),
            Ok(None) => continue,
            Err(err) => {
                if lease_failed(&err, &counters) {
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
                continue;
            }
        };
        let (slot, marks) = book.open(delivery.tag(), clock.now(), &options);
        Counters::add(&counters.in_flight);
        let job = AsyncJob {
            delivery: Arc::clone(&delivery),
            lost: Arc::clone(&marks.lost),
        };
        let task = tokio::spawn(handler(job));
        // Cancelled with this loop, or past its time limit.
        let running = Aborting(task.abort_handle());
        let outcome = match options.time_limit {
            None => task.await.ok(),
            Some(limit) => match tokio::time::timeout(limit, task).await {
                Ok(joined) => joined.ok(),
                Err(_) => {
                    // Past its time limit: cancelled, its lease left to run out.
                    drop(running);
                    marks.timed_out.store(true, Ordering::SeqCst);
                    None
                }
            },
        };
        book.close(slot);
        counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let plan = settle_plan(
            outcome,
            &marks,
            delivery.attempt(),
            delivery.tag(),
            &options,
            &counters,
        );
        let settled = match plan {
            Settle::Leave => continue,
            Settle::Ack => channel.ack(&delivery).await.map(Settled::Acked),
            Settle::Reject => channel.reject(&delivery).await.map(Settled::Rejected),
            Settle::Nack(delay) => channel.nack(&delivery, delay).await.map(Settled::Nacked),
        };
        count_settled(settled, delivery.tag(), &counters);
    }
}

/// Aborts a task when dropped (a no-op once it has ended).
#[cfg(feature = "tokio")]
struct Aborting(tokio::task::AbortHandle);

#[cfg(feature = "tokio")]
impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The async worker's keeper of leases.
#[cfg(feature = "tokio")]
async fn keep_leases_async<S>(
    channel: crate::aio::AsyncRedisChannel<S>,
    book: Arc<Book>,
    done: Arc<AtomicBool>,
    lease: Duration,
    counters: Arc<Counters>,
) where
    S: crate::aio::AsyncLeaseStore + Send + Sync + 'static,
{
    let clock = channel.store().clock();
    let Ok(keys) = channel.lease_keys() else {
        return;
    };
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(KEEPER_TICK.min(lease / 6)).await;
        let now = clock.now();
        for (slot, tag) in book.due(now) {
            let extended = channel.store().extend(keys, &tag, lease).await;
            book.extended(slot, extended, now, lease, &counters);
        }
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
