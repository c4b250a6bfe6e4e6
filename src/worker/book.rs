//! The book of leases held: their deadlines, extensions and time limits, and how an outcome settles a message.

use super::*;

/// A message whose handler runs, as the keeper of leases sees it.
pub(super) struct Held {
    pub(super) tag: DeliveryTag,
    /// When, on the store's clock, its lease is extended next; `None`:
    /// never again (lost, or abandoned).
    pub(super) extend_at: Option<SystemTime>,
    /// When its handler passes the time limit (or the shutdown's grace).
    pub(super) abandon_at: Option<SystemTime>,
    /// Whether its handler runs now.
    pub(super) running: bool,
    pub(super) marks: Marks,
}

/// What the keeper tells a running handler's loop.
#[derive(Clone, Default)]
pub(super) struct Marks {
    /// An extension found the lease gone.
    pub(super) lost: Arc<AtomicBool>,
    /// The handler passed its time limit.
    pub(super) timed_out: Arc<AtomicBool>,
    /// Wakes the async loop of a handler past its time limit.
    #[cfg(feature = "tokio")]
    pub(super) abandon: Arc<tokio::sync::Notify>,
}

impl Marks {
    /// Whether the handler's result no longer counts.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst) || self.timed_out.load(Ordering::SeqCst)
    }
}

/// The book of the running handlers, and what the loop does with each:
/// one description for the threaded and the async worker.
#[derive(Default)]
pub(super) struct Book {
    pub(super) held: Mutex<HashMap<u64, Held>>,
    pub(super) next: AtomicU64,
}

impl Book {
    /// `tag` was leased at `now`: its slot and marks; its lease is kept
    /// alive from now on.
    /// (`held` is the book's, locked once for a batch).
    pub(super) fn open(
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
    pub(super) fn start(&self, slot: u64, now: SystemTime, time_limit: Option<Duration>) {
        if let Some(entry) = lock(&self.held).get_mut(&slot) {
            entry.abandon_at = time_limit.map(|limit| now + limit);
            entry.running = true;
        }
    }

    /// The handler of `slot` returned: no time limit any more; its lease
    /// is still kept until it is settled.
    pub(super) fn finish(&self, slot: u64) {
        if let Some(entry) = lock(&self.held).get_mut(&slot) {
            entry.abandon_at = None;
            entry.running = false;
        }
    }

    /// The worker shuts down: every running handler has until `deadline`.
    pub(super) fn limit_running(&self, deadline: SystemTime) {
        for entry in lock(&self.held).values_mut() {
            if entry.running {
                entry.abandon_at = Some(entry.abandon_at.map_or(deadline, |at| at.min(deadline)));
            }
        }
    }

    /// The messages of `leased` were settled or handed back.
    pub(super) fn close_all<T>(&self, leased: &[Leased<T>]) {
        let mut held = lock(&self.held);
        for one in leased {
            held.remove(&one.slot);
        }
    }

    /// The message of `slot` was settled or handed back: its lease is no
    /// longer kept.
    pub(super) fn close(&self, slot: u64) {
        lock(&self.held).remove(&slot);
    }

    /// The leases to extend at `now`; handlers past their time limit are
    /// marked and their leases left to run out.
    pub(super) fn due(&self, now: SystemTime) -> Vec<(u64, DeliveryTag)> {
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
    pub(super) fn extended(
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
                crate::trace::event!(TRACE, id = %entry.tag.id(), "worker: lease extended");
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
pub(super) enum Settle {
    Ack,
    Nack(Duration),
    Reject,
    /// Left to its lease: lost, or abandoned past the time limit.
    Leave,
}

/// What the handler's return means for its delivery.
pub(super) fn settle_plan(
    outcome: Option<Outcome>,
    marks: &Marks,
    attempt: u32,
    tag: &DeliveryTag,
    options: &WorkerOptions,
    counters: &Counters,
) -> Settle {
    if marks.timed_out.load(Ordering::SeqCst) {
        crate::trace::event!(WARN, id = %tag.id(), attempt, "worker: a handler passed its time limit; its lease runs out");
        Counters::add(&counters.timed_out);
        return Settle::Leave;
    }
    if marks.lost.load(Ordering::SeqCst) {
        crate::trace::event!(WARN, id = %tag.id(), attempt, "worker: a lease was lost while its handler ran");
        Counters::add(&counters.leases_lost);
        return Settle::Leave;
    }
    let outcome = outcome.unwrap_or_else(|| {
        crate::trace::event!(WARN, id = %tag.id(), attempt, "worker: a handler panicked: a retry");
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
pub(super) enum Settled {
    Rejected(bool),
    Nacked(Nacked),
}

pub(super) fn count_settled(
    settled: Result<Settled, ChannelError>,
    tag: &DeliveryTag,
    counters: &Counters,
) {
    let said = match &settled {
        Ok(Settled::Rejected(true)) => "refused: a dead letter",
        Ok(Settled::Nacked(Nacked::DeadLettered)) => "failed its last delivery: a dead letter",
        Ok(Settled::Nacked(Nacked::Retrying)) => "failed: delivered again after the backoff",
        Ok(_) => "no longer held by this delivery",
        Err(_) => "not settled: the store failed; its lease runs out",
    };
    crate::trace::event!(
        DEBUG,
        id = %tag.id(),
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
pub(super) fn lease_failed(err: &ChannelError, counters: &Counters) -> bool {
    if err.is_decode() {
        Counters::add(&counters.dead_lettered);
        return false;
    }
    Counters::add(&counters.errors);
    true
}
