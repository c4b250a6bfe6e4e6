//! The prefetch queue, and what a lease, a start and an end of a message come to, shared by both loops.

use super::*;

/// A delivery leased for a handler, with its slot in the book.
pub(super) struct Leased<T> {
    pub(super) delivery: Arc<Delivery<T>>,
    pub(super) slot: u64,
    pub(super) marks: Marks,
}

/// The worker's own messages: those leased that no handler has started
/// (at most `bound`, counting those a thread is leasing now), and those
/// done but not yet acked (acked with the next lease, in its round trip).
pub(super) struct Queue<T> {
    pub(super) waiting: Mutex<(VecDeque<Leased<T>>, usize)>,
    /// Done, with when (on the store's clock) the first of them was.
    pub(super) done: Mutex<(Vec<Leased<T>>, Option<SystemTime>)>,
    pub(super) bound: usize,
}

/// How long a done message may wait for its ack when the next lease is
/// not needed yet (its lease is kept meanwhile).
pub(super) const ACK_DELAY: Duration = Duration::from_millis(100);

impl<T> Queue<T> {
    pub(super) fn new(bound: usize) -> Self {
        Self {
            waiting: Mutex::new((VecDeque::new(), 0)),
            done: Mutex::new((Vec::new(), None)),
            bound,
        }
    }

    pub(super) fn take(&self, counters: &Counters) -> Option<Leased<T>> {
        let taken = lock(&self.waiting).0.pop_front();
        if taken.is_some() {
            counters.prefetched.fetch_sub(1, Ordering::Relaxed);
        }
        taken
    }

    /// How many messages beyond its own a thread may lease now; they are
    /// counted against the bound until [`fill`](Self::fill).
    pub(super) fn reserve(&self) -> usize {
        let mut waiting = lock(&self.waiting);
        let (queue, reserved) = &mut *waiting;
        let room = self.bound.saturating_sub(queue.len() + *reserved);
        *reserved += room;
        room
    }

    pub(super) fn fill(&self, reserved: usize, leased: Vec<Leased<T>>, counters: &Counters) {
        let mut waiting = lock(&self.waiting);
        waiting.1 -= reserved;
        counters
            .prefetched
            .fetch_add(leased.len() as u64, Ordering::Relaxed);
        waiting.0.extend(leased);
    }

    pub(super) fn drain(&self, counters: &Counters) -> Vec<Leased<T>> {
        let drained: Vec<_> = lock(&self.waiting).0.drain(..).collect();
        counters
            .prefetched
            .fetch_sub(drained.len() as u64, Ordering::Relaxed);
        drained
    }

    /// `leased` was handled at `now`: to be acked.
    pub(super) fn finished(&self, leased: Leased<T>, now: SystemTime) {
        let mut done = lock(&self.done);
        done.1.get_or_insert(now);
        done.0.push(leased);
    }

    /// Everything done, to ack now.
    pub(super) fn take_done(&self) -> Vec<Leased<T>> {
        let mut done = lock(&self.done);
        done.1 = None;
        std::mem::take(&mut done.0)
    }

    /// Everything done, when the first has waited [`ACK_DELAY`] at `now`.
    pub(super) fn take_done_due(&self, now: SystemTime) -> Vec<Leased<T>> {
        let due = lock(&self.done)
            .1
            .is_some_and(|since| since + ACK_DELAY <= now);
        if due { self.take_done() } else { Vec::new() }
    }

    /// An ack of `done` failed: they wait for the next one (an ack is
    /// idempotent), their leases kept.
    pub(super) fn put_back_done(&self, done: Vec<Leased<T>>, now: SystemTime) {
        if !done.is_empty() {
            let mut waiting = lock(&self.done);
            waiting.1.get_or_insert(now);
            waiting.0.extend(done);
        }
    }
}

/// Of the messages `done`, `acked` were still held when acked: they are
/// processed; the others had lost their leases (delivered again).
pub(super) fn settle_done<T>(done: &[Leased<T>], acked: u64, book: &Book, counters: &Counters) {
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
pub(super) fn acked_late<T>(
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
pub(super) fn after_lease<T>(
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
pub(super) fn took_batch<T>(
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
pub(super) fn begin<T>(leased: &Leased<T>, now: SystemTime, book: &Book, core: &Core) -> bool {
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
pub(super) fn end<T>(
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
pub(super) struct Limiter {
    pub(super) rate: Option<Rate>,
    pub(super) next: Mutex<Option<SystemTime>>,
}

impl Limiter {
    /// Zero when one more handler may start now (it is counted),
    /// else how long to wait before asking again.
    pub(super) fn admit(&self, clock: &dyn Clock) -> Duration {
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
    pub(super) fn refund(&self) {
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
pub(super) fn turn_pause(clock: &dyn Clock, wait: Duration, poll: Duration) -> Duration {
    if clock.sleeps_for_real() {
        wait.min(poll)
    } else {
        clock.recheck_after(wait).min(poll)
    }
}

/// The worker stopped: the messages `left` waiting were handed back (or
/// the store failed: their leases run out), and those done were acked
/// with `acked`.
pub(super) fn stopped<T>(
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
