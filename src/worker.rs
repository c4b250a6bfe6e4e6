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

/// The counters behind [`WorkerStats`].
#[derive(Default)]
struct Counters {
    prefetched: AtomicU64,
    handler_times: Latencies,
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
            prefetched: read(&self.prefetched),
            handler_p50: self.handler_times.quantile(0.5),
            handler_p99: self.handler_times.quantile(0.99),
        }
    }
}

/// Buckets per doubling of [`Latencies`].
const STEPS_PER_DOUBLING: f64 = 4.0;

/// A histogram of durations in microseconds, four buckets per doubling
/// (each about 19 % wide), from 1 µs to 2^40 µs (about 12 days).
struct Latencies {
    buckets: [AtomicU64; 161],
    longest: AtomicU64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            longest: AtomicU64::new(0),
        }
    }
}

impl Latencies {
    fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let index = ((micros as f64).log2() * STEPS_PER_DOUBLING) as usize;
        self.buckets[index.min(self.buckets.len() - 1)].fetch_add(1, Ordering::Relaxed);
        self.longest.fetch_max(micros, Ordering::Relaxed);
    }

    /// The upper edge of the bucket holding the `q` quantile.
    fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let index = counts
            .iter()
            .position(|count| {
                seen += count;
                seen >= rank
            })
            .unwrap_or(counts.len() - 1);
        let edge = 2f64.powf((index + 1) as f64 / STEPS_PER_DOUBLING);
        let longest = self.longest.load(Ordering::Relaxed);
        Duration::from_micros((edge.ceil() as u64).min(longest))
    }
}

/// A message whose handler runs, as the keeper of leases sees it.
struct Held {
    tag: DeliveryTag,
    /// When, on the store's clock, its lease is extended next; `None`:
    /// never again (lost, or abandoned).
    extend_at: Option<SystemTime>,
    /// When its handler passes the time limit (or the shutdown's grace).
    abandon_at: Option<SystemTime>,
    /// Whether its handler runs now.
    running: bool,
    marks: Marks,
}

/// What the keeper tells a running handler's loop.
#[derive(Clone, Default)]
struct Marks {
    /// An extension found the lease gone.
    lost: Arc<AtomicBool>,
    /// The handler passed its time limit.
    timed_out: Arc<AtomicBool>,
    /// Wakes the async loop of a handler past its time limit.
    #[cfg(feature = "tokio")]
    abandon: Arc<tokio::sync::Notify>,
}

impl Marks {
    /// Whether the handler's result no longer counts.
    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst) || self.timed_out.load(Ordering::SeqCst)
    }
}

/// The book of the running handlers, and what the loop does with each:
/// one description for the threaded and the async worker.
#[derive(Default)]
struct Book {
    held: Mutex<HashMap<u64, Held>>,
    next: AtomicU64,
}

impl Book {
    /// `tag` was leased at `now`: its slot and marks; its lease is kept
    /// alive from now on.
    /// (`held` is the book's, locked once for a batch).
    fn open(
        &self,
        held: &mut HashMap<u64, Held>,
        tag: &DeliveryTag,
        now: SystemTime,
        lease: Duration,
    ) -> (u64, Marks) {
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        let marks = Marks::default();
        held.insert(
            slot,
            Held {
                tag: tag.clone(),
                extend_at: Some(now + lease / 3),
                abandon_at: None,
                running: false,
                marks: marks.clone(),
            },
        );
        (slot, marks)
    }

    /// The handler of `slot` starts at `now`: its time limit runs.
    fn start(&self, slot: u64, now: SystemTime, time_limit: Option<Duration>) {
        if let Some(entry) = lock(&self.held).get_mut(&slot) {
            entry.abandon_at = time_limit.map(|limit| now + limit);
            entry.running = true;
        }
    }

    /// The handler of `slot` returned: no time limit any more; its lease
    /// is still kept until it is settled.
    fn finish(&self, slot: u64) {
        if let Some(entry) = lock(&self.held).get_mut(&slot) {
            entry.abandon_at = None;
            entry.running = false;
        }
    }

    /// The worker shuts down: every running handler has until `deadline`.
    fn limit_running(&self, deadline: SystemTime) {
        for entry in lock(&self.held).values_mut() {
            if entry.running {
                entry.abandon_at = Some(entry.abandon_at.map_or(deadline, |at| at.min(deadline)));
            }
        }
    }

    /// The messages of `leased` were settled or handed back.
    fn close_all<T>(&self, leased: &[Leased<T>]) {
        let mut held = lock(&self.held);
        for one in leased {
            held.remove(&one.slot);
        }
    }

    /// The message of `slot` was settled or handed back: its lease is no
    /// longer kept.
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
                #[cfg(feature = "tokio")]
                entry.marks.abandon.notify_one();
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
    Rejected(bool),
    Nacked(Nacked),
}

fn count_settled(settled: Result<Settled, ChannelError>, tag: &DeliveryTag, counters: &Counters) {
    let said = match &settled {
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
        Ok(Settled::Rejected(true) | Settled::Nacked(Nacked::DeadLettered)) => {
            &counters.dead_lettered
        }
        Ok(Settled::Nacked(Nacked::Retrying)) => &counters.retried,
        Ok(Settled::Rejected(false) | Settled::Nacked(Nacked::NotHeld)) => &counters.leases_lost,
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

/// A delivery leased for a handler, with its slot in the book.
struct Leased<T> {
    delivery: Arc<Delivery<T>>,
    slot: u64,
    marks: Marks,
}

/// The worker's own messages: those leased that no handler has started
/// (at most `bound`, counting those a thread is leasing now), and those
/// done but not yet acked (acked with the next lease, in its round trip).
struct Queue<T> {
    waiting: Mutex<(VecDeque<Leased<T>>, usize)>,
    /// Done, with when (on the store's clock) the first of them was.
    done: Mutex<(Vec<Leased<T>>, Option<SystemTime>)>,
    bound: usize,
}

/// How long a done message may wait for its ack when the next lease is
/// not needed yet (its lease is kept meanwhile).
const ACK_DELAY: Duration = Duration::from_millis(100);

impl<T> Queue<T> {
    fn new(bound: usize) -> Self {
        Self {
            waiting: Mutex::new((VecDeque::new(), 0)),
            done: Mutex::new((Vec::new(), None)),
            bound,
        }
    }

    fn take(&self, counters: &Counters) -> Option<Leased<T>> {
        let taken = lock(&self.waiting).0.pop_front();
        if taken.is_some() {
            counters.prefetched.fetch_sub(1, Ordering::Relaxed);
        }
        taken
    }

    /// How many messages beyond its own a thread may lease now; they are
    /// counted against the bound until [`fill`](Self::fill).
    fn reserve(&self) -> usize {
        let mut waiting = lock(&self.waiting);
        let (queue, reserved) = &mut *waiting;
        let room = self.bound.saturating_sub(queue.len() + *reserved);
        *reserved += room;
        room
    }

    fn fill(&self, reserved: usize, leased: Vec<Leased<T>>, counters: &Counters) {
        let mut waiting = lock(&self.waiting);
        waiting.1 -= reserved;
        counters
            .prefetched
            .fetch_add(leased.len() as u64, Ordering::Relaxed);
        waiting.0.extend(leased);
    }

    fn drain(&self, counters: &Counters) -> Vec<Leased<T>> {
        let drained: Vec<_> = lock(&self.waiting).0.drain(..).collect();
        counters
            .prefetched
            .fetch_sub(drained.len() as u64, Ordering::Relaxed);
        drained
    }

    /// `leased` was handled at `now`: to be acked.
    fn finished(&self, leased: Leased<T>, now: SystemTime) {
        let mut done = lock(&self.done);
        done.1.get_or_insert(now);
        done.0.push(leased);
    }

    /// Everything done, to ack now.
    fn take_done(&self) -> Vec<Leased<T>> {
        let mut done = lock(&self.done);
        done.1 = None;
        std::mem::take(&mut done.0)
    }

    /// Everything done, when the first has waited [`ACK_DELAY`] at `now`.
    fn take_done_due(&self, now: SystemTime) -> Vec<Leased<T>> {
        let due = lock(&self.done)
            .1
            .is_some_and(|since| since + ACK_DELAY <= now);
        if due { self.take_done() } else { Vec::new() }
    }

    /// An ack of `done` failed: they wait for the next one (an ack is
    /// idempotent), their leases kept.
    fn put_back_done(&self, done: Vec<Leased<T>>, now: SystemTime) {
        if !done.is_empty() {
            let mut waiting = lock(&self.done);
            waiting.1.get_or_insert(now);
            waiting.0.extend(done);
        }
    }
}

/// Of the messages `done`, `acked` were still held when acked: they are
/// processed; the others had lost their leases (delivered again).
fn settle_done<T>(done: &[Leased<T>], acked: u64, book: &Book, counters: &Counters) {
    book.close_all(done);
    let held = done.len() as u64;
    crate::trace::event!(DEBUG, count = held, acked, "worker: acked");
    counters.processed.fetch_add(acked, Ordering::Relaxed);
    counters
        .leases_lost
        .fetch_add(held.saturating_sub(acked), Ordering::Relaxed);
}

/// An ack of `done` (due, no lease needed yet) came to `acked` at
/// `now`; when it failed they wait for the next one.
fn acked_late<T>(
    done: Vec<Leased<T>>,
    acked: Result<u64, ChannelError>,
    now: SystemTime,
    book: &Book,
    queue: &Queue<T>,
    core: &Core,
) {
    match acked {
        Ok(acked) => settle_done(&done, acked, book, &core.counters),
        Err(_) => {
            Counters::add(&core.counters.errors);
            queue.put_back_done(done, now);
        }
    }
}

/// A lease of `1 + reserved` that also acked `done` (how many were still
/// held, and the batch) came to `leased` at `now`: the thread's delivery,
/// if any, and whether to pause (the store failed). On a failure `done`
/// waits for the next ack.
fn after_lease<T>(
    leased: Result<(u64, Deliveries<T>), ChannelError>,
    done: Vec<Leased<T>>,
    reserved: usize,
    now: SystemTime,
    book: &Book,
    queue: &Queue<T>,
    core: &Core,
) -> (Option<Leased<T>>, bool) {
    match leased {
        Ok((acked, batch)) => {
            if !done.is_empty() {
                settle_done(&done, acked, book, &core.counters);
            }
            (took_batch(batch, reserved, now, book, queue, core), false)
        }
        Err(err) => {
            queue.fill(reserved, Vec::new(), &core.counters);
            queue.put_back_done(done, now);
            (None, lease_failed(&err, &core.counters))
        }
    }
}

/// What a batch lease at `now` brought: the first delivery for the
/// thread that leased it, the rest prefetched. One that did not decode
/// is a dead letter already.
fn took_batch<T>(
    batch: Deliveries<T>,
    reserved: usize,
    now: SystemTime,
    book: &Book,
    queue: &Queue<T>,
    core: &Core,
) -> Option<Leased<T>> {
    let mut held = lock(&book.held);
    let mut leased = batch.into_iter().filter_map(|delivery| match delivery {
        Ok(delivery) => {
            let (slot, marks) = book.open(&mut held, delivery.tag(), now, core.options.lease);
            Some(Leased {
                delivery: Arc::new(delivery),
                slot,
                marks,
            })
        }
        Err(_) => {
            Counters::add(&core.counters.dead_lettered);
            None
        }
    });
    let first = leased.next();
    let rest = leased.collect();
    drop(held);
    queue.fill(reserved, rest, &core.counters);
    first
}

/// A handler is about to run `leased` at `now`: `false` when its lease
/// was lost while it waited (it is not run; it is delivered again).
fn begin<T>(leased: &Leased<T>, now: SystemTime, book: &Book, core: &Core) -> bool {
    if leased.marks.lost.load(Ordering::SeqCst) {
        book.close(leased.slot);
        Counters::add(&core.counters.leases_lost);
        return false;
    }
    book.start(leased.slot, now, core.options.time_limit);
    Counters::add(&core.counters.in_flight);
    true
}

/// The handler of `leased` returned `outcome` (`None`: it panicked, or
/// was cancelled) after `took`: what is left to do with it.
fn end<T>(
    leased: Leased<T>,
    outcome: Option<Outcome>,
    took: Duration,
    now: SystemTime,
    book: &Book,
    queue: &Queue<T>,
    core: &Core,
) -> Option<(Arc<Delivery<T>>, Settle)> {
    let counters = &core.counters;
    book.finish(leased.slot);
    counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    counters.handler_times.record(took);
    let delivery = &leased.delivery;
    let plan = settle_plan(
        outcome,
        &leased.marks,
        delivery.attempt(),
        delivery.tag(),
        &core.options,
        counters,
    );
    match plan {
        Settle::Ack => {
            queue.finished(leased, now);
            None
        }
        Settle::Leave => {
            book.close(leased.slot);
            None
        }
        plan => {
            book.close(leased.slot);
            Some((leased.delivery, plan))
        }
    }
}

/// The rate limit of a worker, as a token bucket on the store's clock:
/// `next` is when the bucket is full again.
struct Limiter {
    rate: Option<Rate>,
    next: Mutex<Option<SystemTime>>,
}

impl Limiter {
    /// Zero when one more handler may start now (it is counted),
    /// else how long to wait before asking again.
    fn admit(&self, clock: &dyn Clock) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let now = clock.now();
        let interval = rate.per / rate.messages;
        let mut next = lock(&self.next);
        let full_at = next.map_or(now, |at| at.max(now));
        let allowed_at = full_at
            .checked_sub(rate.per - interval)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if let Ok(wait) = allowed_at.duration_since(now)
            && !wait.is_zero()
        {
            return wait;
        }
        *next = Some(full_at + interval);
        Duration::ZERO
    }

    /// A turn admitted was not used (no message came).
    fn refund(&self) {
        if let Some(rate) = self.rate
            && let Some(at) = lock(&self.next).as_mut()
        {
            *at = at.checked_sub(rate.per / rate.messages).unwrap_or(*at);
        }
    }
}

/// How long a thread waiting for its turn sleeps in real time before it
/// asks again: `wait` on a clock that moves by itself, a short tick on a
/// manual one (whose time moves when a test says so).
fn turn_pause(clock: &dyn Clock, wait: Duration, poll: Duration) -> Duration {
    if clock.sleeps_for_real() {
        wait.min(poll)
    } else {
        clock.recheck_after(wait).min(poll)
    }
}

/// The worker stopped: the messages `left` waiting were handed back (or
/// the store failed: their leases run out), and those done were acked
/// with `acked`.
fn stopped<T>(
    left: &[Leased<T>],
    handed_back: bool,
    done: &[Leased<T>],
    acked: Result<u64, ChannelError>,
    book: &Book,
    counters: &Counters,
) {
    book.close_all(left);
    if !left.is_empty() {
        crate::trace::event!(
            DEBUG,
            count = left.len(),
            handed_back,
            "worker: prefetched messages handed back at shutdown"
        );
        if !handed_back {
            Counters::add(&counters.errors);
        }
    }
    match acked {
        Ok(acked) => settle_done(done, acked, book, counters),
        // Not acked: their leases run out and they are delivered again.
        Err(_) => {
            book.close_all(done);
            Counters::add(&counters.errors);
        }
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

/// The consumer loop of a leased channel on threads: see the
/// [module](self), whose example runs one.
pub struct Worker<S> {
    channel: RedisChannel<S>,
    core: Core,
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
        T: DeserializeOwned + Send + Sync,
        F: Fn(&Job<'_, T>) -> Outcome + Sync,
    {
        let book = Book::default();
        let queue = Queue::new(self.core.options.prefetch);
        let handlers_done = AtomicBool::new(false);
        thread::scope(|scope| {
            let keeper = scope.spawn(|| self.keep_leases(&book, &handlers_done));
            let threads: Vec<_> = (0..self.core.options.concurrency)
                .map(|_| scope.spawn(|| self.handle_until_shutdown(&handler, &book, &queue)))
                .collect();
            let mut panicked = None;
            for thread in threads {
                if let Err(panic) = thread.join() {
                    panicked = Some(panic);
                }
            }
            let left = queue.drain(&self.core.counters);
            let handed_back = self.channel.release_all(left.iter().map(|l| &*l.delivery));
            let done = queue.take_done();
            let acked = if done.is_empty() {
                Ok(0)
            } else {
                self.channel.ack_all(done.iter().map(|l| &*l.delivery))
            };
            stopped(
                &left,
                handed_back.is_ok(),
                &done,
                acked,
                &book,
                &self.core.counters,
            );
            handlers_done.store(true, Ordering::SeqCst);
            keeper.thread().unpark();
            let _ = keeper.join();
            if let Some(panic) = panicked {
                std::panic::resume_unwind(panic);
            }
        });
        Ok(self.stats())
    }

    /// One thread's loop.
    fn handle_until_shutdown<T, F>(&self, handler: &F, book: &Book, queue: &Queue<T>)
    where
        T: DeserializeOwned + Send + Sync,
        F: Fn(&Job<'_, T>) -> Outcome + Sync,
    {
        let core = &self.core;
        let clock = self.channel.store().clock();
        while !core.shutdown.is_shut_down() {
            let wait = core.limiter.admit(&*clock);
            if !wait.is_zero() {
                thread::sleep(turn_pause(&*clock, wait, core.options.poll));
                continue;
            }
            let Some(leased) = self.next(book, queue, &*clock) else {
                core.limiter.refund();
                continue;
            };
            let started = clock.now();
            if !begin(&leased, started, book, core) {
                continue;
            }
            let job = Job {
                delivery: &leased.delivery,
                marks: &leased.marks,
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| handler(&job))).ok();
            let now = clock.now();
            let took = now.duration_since(started).unwrap_or_default();
            let Some((delivery, plan)) = end(leased, outcome, took, now, book, queue, core) else {
                continue;
            };
            let settled = match plan {
                Settle::Reject => self.channel.reject(&delivery).map(Settled::Rejected),
                Settle::Nack(delay) => self.channel.nack(&delivery, delay).map(Settled::Nacked),
                Settle::Ack | Settle::Leave => continue,
            };
            count_settled(settled, delivery.tag(), &core.counters);
        }
    }

    /// The next message for a thread: one prefetched, or a batch leased
    /// (in the round trip that acks what is done); `None` when none came.
    fn next<T>(&self, book: &Book, queue: &Queue<T>, clock: &dyn Clock) -> Option<Leased<T>>
    where
        T: DeserializeOwned,
    {
        let core = &self.core;
        let (lease, poll) = (core.options.lease, core.options.poll);
        if let Some(leased) = queue.take(&core.counters) {
            let done = queue.take_done_due(clock.now());
            if !done.is_empty() {
                let acked = self.channel.ack_all(done.iter().map(|l| &*l.delivery));
                acked_late(done, acked, clock.now(), book, queue, core);
            }
            return Some(leased);
        }
        let reserved = queue.reserve();
        let done = queue.take_done();
        let leased = if done.is_empty() {
            let batch = self.channel.blease_msgs::<T>(1 + reserved, lease, poll);
            batch.map(|batch| (0, batch))
        } else {
            let acked = done.iter().map(|l| &*l.delivery);
            self.channel.ack_and_lease_msgs(acked, 1 + reserved, lease)
        };
        let (next, pause) = after_lease(leased, done, reserved, clock.now(), book, queue, core);
        if pause {
            thread::sleep(ERROR_PAUSE);
        }
        next
    }

    /// Extends the leases of the messages held when a third of the lease
    /// has passed; abandons handlers past the time limit, and once the
    /// worker shuts down, those past its grace.
    fn keep_leases(&self, book: &Book, handlers_done: &AtomicBool) {
        let clock = self.channel.store().clock();
        let Ok(keys) = self.channel.lease_keys() else {
            return;
        };
        let lease = self.core.options.lease;
        let mut graced = false;
        while !handlers_done.load(Ordering::SeqCst) {
            // Woken at once when the handlers are done.
            thread::park_timeout(KEEPER_TICK.min(lease / 6));
            let now = clock.now();
            if !graced && self.core.shutdown.is_shut_down() {
                book.limit_running(now + self.core.options.grace);
                graced = true;
            }
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
/// a running handler is cancelled and its lease left to run out, and so
/// are the leases of messages prefetched or done but not yet acked (acks
/// go with the next lease, at most 100 ms later): those are delivered
/// again. [`Shutdown::shutdown`] is the graceful way.
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
    core: Arc<Core>,
}

/// A message handed to an async handler, and its delivery: owned, so
/// that the handler's future may keep it.
#[cfg(feature = "tokio")]
pub struct AsyncJob<T> {
    delivery: Arc<Delivery<T>>,
    marks: Marks,
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
        self.marks.is_lost()
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
        let core = Arc::new(Core::new(options)?);
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
        let core = &self.core;
        let shared = Arc::new(Shared {
            channel: self.channel.clone(),
            book: Book::default(),
            queue: Queue::new(core.options.prefetch),
            core: Arc::clone(core),
        });
        let handler = Arc::new(handler);
        let done = Arc::new(AtomicBool::new(false));
        // Dropping this future stops every task it started (a loop's
        // blocked lease is cancelled: what it leased is handed back).
        let mut stop_on_drop = Vec::with_capacity(core.options.concurrency + 1);
        let keeper = tokio::spawn(keep_leases_async(Arc::clone(&shared), Arc::clone(&done)));
        let loops: Vec<_> = (0..core.options.concurrency)
            .map(|_| {
                tokio::spawn(handle_until_shutdown_async(
                    Arc::clone(&shared),
                    Arc::clone(&handler),
                ))
            })
            .collect();
        stop_on_drop.push(Aborting(keeper.abort_handle()));
        stop_on_drop.extend(loops.iter().map(|task| Aborting(task.abort_handle())));
        let mut panicked = None;
        for task in loops {
            if let Err(err) = task.await
                && err.is_panic()
            {
                panicked = Some(err.into_panic());
            }
        }
        let Shared {
            channel,
            book,
            queue,
            ..
        } = &*shared;
        let left = queue.drain(&core.counters);
        let handed_back = channel.release_all(left.iter().map(|l| &*l.delivery)).await;
        let finished = queue.take_done();
        let acked = if finished.is_empty() {
            Ok(0)
        } else {
            channel.ack_all(finished.iter().map(|l| &*l.delivery)).await
        };
        stopped(
            &left,
            handed_back.is_ok(),
            &finished,
            acked,
            book,
            &core.counters,
        );
        // Nothing is held any more: the keeper stops at once.
        done.store(true, Ordering::SeqCst);
        keeper.abort();
        let _ = keeper.await;
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
        Ok(self.stats())
    }
}

/// What the tasks of an async worker share.
#[cfg(feature = "tokio")]
struct Shared<S, T> {
    channel: crate::aio::AsyncRedisChannel<S>,
    book: Book,
    queue: Queue<T>,
    core: Arc<Core>,
}

/// One task's loop of the async worker.
#[cfg(feature = "tokio")]
async fn handle_until_shutdown_async<S, T, F, Fut>(shared: Arc<Shared<S, T>>, handler: Arc<F>)
where
    S: crate::aio::AsyncLeaseStore + Send + Sync + 'static,
    T: DeserializeOwned + Send + Sync + 'static,
    F: Fn(AsyncJob<T>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let Shared {
        channel,
        book,
        queue,
        core,
    } = &*shared;
    let clock = channel.store().clock();
    while !core.shutdown.is_shut_down() {
        let wait = core.limiter.admit(&*clock);
        if !wait.is_zero() {
            tokio::time::sleep(turn_pause(&*clock, wait, core.options.poll)).await;
            continue;
        }
        let Some(leased) = next_async(&shared, &*clock).await else {
            core.limiter.refund();
            continue;
        };
        let started = clock.now();
        if !begin(&leased, started, book, core) {
            continue;
        }
        let job = AsyncJob {
            delivery: Arc::clone(&leased.delivery),
            marks: leased.marks.clone(),
        };
        let mut task = tokio::spawn(handler(job));
        // Cancelled with this loop, or past its time limit (the keeper
        // tells, on the store's clock): its lease is left to run out.
        let _running = Aborting(task.abort_handle());
        let outcome = tokio::select! {
            joined = &mut task => joined.ok(),
            () = leased.marks.abandon.notified() => None,
        };
        let now = clock.now();
        let took = now.duration_since(started).unwrap_or_default();
        let Some((delivery, plan)) = end(leased, outcome, took, now, book, queue, core) else {
            continue;
        };
        let settled = match plan {
            Settle::Reject => channel.reject(&delivery).await.map(Settled::Rejected),
            Settle::Nack(delay) => channel.nack(&delivery, delay).await.map(Settled::Nacked),
            Settle::Ack | Settle::Leave => continue,
        };
        count_settled(settled, delivery.tag(), &core.counters);
    }
}

/// The async twin of [`Worker::next`].
#[cfg(feature = "tokio")]
async fn next_async<S, T>(shared: &Shared<S, T>, clock: &dyn Clock) -> Option<Leased<T>>
where
    S: crate::aio::AsyncLeaseStore + Send + Sync + 'static,
    T: DeserializeOwned,
{
    let Shared {
        channel,
        book,
        queue,
        core,
    } = shared;
    let (lease, poll) = (core.options.lease, core.options.poll);
    if let Some(leased) = queue.take(&core.counters) {
        let done = queue.take_done_due(clock.now());
        if !done.is_empty() {
            let acked = channel.ack_all(done.iter().map(|l| &*l.delivery)).await;
            acked_late(done, acked, clock.now(), book, queue, core);
        }
        return Some(leased);
    }
    let reserved = queue.reserve();
    let done = queue.take_done();
    let leased = if done.is_empty() {
        let batch = channel.blease_msgs::<T>(1 + reserved, lease, poll).await;
        batch.map(|batch| (0, batch))
    } else {
        let acked = done.iter().map(|l| &*l.delivery);
        channel.ack_and_lease_msgs(acked, 1 + reserved, lease).await
    };
    let (next, pause) = after_lease(leased, done, reserved, clock.now(), book, queue, core);
    if pause {
        tokio::time::sleep(ERROR_PAUSE).await;
    }
    next
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
async fn keep_leases_async<S, T>(shared: Arc<Shared<S, T>>, done: Arc<AtomicBool>)
where
    S: crate::aio::AsyncLeaseStore + Send + Sync + 'static,
{
    let channel = &shared.channel;
    let clock = channel.store().clock();
    let Ok(keys) = channel.lease_keys() else {
        return;
    };
    let lease = shared.core.options.lease;
    let mut graced = false;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(KEEPER_TICK.min(lease / 6)).await;
        let now = clock.now();
        if !graced && shared.core.shutdown.is_shut_down() {
            shared.book.limit_running(now + shared.core.options.grace);
            graced = true;
        }
        for (slot, tag) in shared.book.due(now) {
            let extended = channel.store().extend(keys, &tag, lease).await;
            shared
                .book
                .extended(slot, extended, now, lease, &shared.core.counters);
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
