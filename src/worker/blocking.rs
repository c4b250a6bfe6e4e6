//! [`Worker`]: the loop on threads.

use super::*;

/// The consumer loop of a leased channel on threads: see the
/// [module](crate::worker), whose example runs one.
pub struct Worker<S> {
    pub(super) channel: RedisChannel<S>,
    pub(super) core: Core,
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
    pub(super) fn handle_until_shutdown<T, F>(&self, handler: &F, book: &Book, queue: &Queue<T>)
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
    pub(super) fn next<T>(
        &self,
        book: &Book,
        queue: &Queue<T>,
        clock: &dyn Clock,
    ) -> Option<Leased<T>>
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
    pub(super) fn keep_leases(&self, book: &Book, handlers_done: &AtomicBool) {
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
