//! [`AsyncWorker`] (feature `tokio`): the loop as tasks.

use super::*;

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
pub struct AsyncWorker<S> {
    pub(super) channel: crate::aio::AsyncRedisChannel<S>,
    pub(super) core: Arc<Core>,
}

/// A message handed to an async handler, and its delivery: owned, so
/// that the handler's future may keep it.
pub struct AsyncJob<T> {
    pub(super) delivery: Arc<Delivery<T>>,
    pub(super) marks: Marks,
}

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
pub(super) struct Shared<S, T> {
    pub(super) channel: crate::aio::AsyncRedisChannel<S>,
    pub(super) book: Book,
    pub(super) queue: Queue<T>,
    pub(super) core: Arc<Core>,
}

/// One task's loop of the async worker.
pub(super) async fn handle_until_shutdown_async<S, T, F, Fut>(
    shared: Arc<Shared<S, T>>,
    handler: Arc<F>,
) where
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
pub(super) async fn next_async<S, T>(shared: &Shared<S, T>, clock: &dyn Clock) -> Option<Leased<T>>
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
pub(super) struct Aborting(tokio::task::AbortHandle);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The async worker's keeper of leases.
pub(super) async fn keep_leases_async<S, T>(shared: Arc<Shared<S, T>>, done: Arc<AtomicBool>)
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
