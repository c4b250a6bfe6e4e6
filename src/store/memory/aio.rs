//! [`MemoryStore`] as an [`AsyncListStore`]: the same data and rules as
//! the sync store (one instance serves both), with blocked pops as futures.
//!
//! A call that cannot block runs at once under the store's lock, on its
//! first poll: it is atomic, and a future dropped before that poll did
//! nothing. A blocked pop takes a place in the same queue as blocked
//! threads (a push serves the longest waiting first, whichever API it
//! waits on); it wakes on a push, and on its clock: the system clock
//! through a tokio timer, a [`ManualClock`](crate::ManualClock) when a
//! test moves it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use super::lease::{Look, after_empty_look};
use super::state::{List, State, deadline, remaining};
use super::{MemoryStore, StoreError};
use crate::store::fault::Fault;
use crate::store::lease::{LeaseKeys, LeasePolicy, Leased};
use crate::store::policy::{AfterLostReply, Op, policy};

/// What a blocked call waits to take.
pub(super) enum Want {
    /// Up to this many elements from the head (BLPOP, BLMPOP).
    Head(usize),
    /// The tail, deleting the list (the blocking take-last).
    Last,
}

/// A blocked call on a [`MemoryStore`]: ready when it has taken what it
/// wants, or when its deadline on the store's clock has passed.
struct Blocked {
    store: MemoryStore,
    key: String,
    want: Want,
    deadline: Option<SystemTime>,
    /// Its place among the waiters for a push; for a head pop, also its
    /// place in the key's queue of blocked pops. `None` before it waits.
    ticket: Option<u64>,
    /// The timer that wakes it to look at the clock again.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Blocked {
    fn new(store: &MemoryStore, key: &str, want: Want, timeout: Option<Duration>) -> Self {
        Self {
            deadline: deadline(store.shared.clock.now(), timeout),
            store: store.clone(),
            key: key.to_owned(),
            want,
            ticket: None,
            timer: None,
        }
    }

    /// One look at the store: what was taken, `None` to wait on.
    fn look(&mut self, state: &mut State) -> Option<Vec<Vec<u8>>> {
        let now = self.store.shared.clock.now();
        match self.want {
            Want::Head(count) => match self.ticket {
                None => {
                    let popped = state.pop_front_many(&self.key, count, now);
                    if !popped.is_empty() {
                        return Some(popped);
                    }
                    let ticket = self.take_ticket(state);
                    state
                        .waiters
                        .entry(self.key.clone())
                        .or_default()
                        .push_back((ticket, count));
                    None
                }
                Some(ticket) => {
                    let handed = state.handed.remove(&ticket)?;
                    self.ticket = None;
                    Some(handed)
                }
            },
            Want::Last => {
                let last = state.take_last(&self.key, now)?;
                self.ticket = None;
                Some(vec![last])
            }
        }
    }

    fn take_ticket(&mut self, state: &mut State) -> u64 {
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        self.ticket = Some(ticket);
        ticket
    }

    /// Leaves the queue of blocked pops, putting back what a push handed
    /// this call after it stopped looking: nothing is lost when a blocked
    /// future is dropped. Whether anything was put back.
    fn leave(&mut self, state: &mut State) -> bool {
        let Some(ticket) = self.ticket.take() else {
            return false;
        };
        self.store.wakers().remove(&ticket);
        if let Some(waiters) = state.waiters.get_mut(&self.key) {
            waiters.retain(|(waiting, _)| *waiting != ticket);
            if waiters.is_empty() {
                state.waiters.remove(&self.key);
            }
        }
        let Some(handed) = state.handed.remove(&ticket) else {
            return false;
        };
        let now = self.store.shared.clock.now();
        state.live(&self.key, now);
        let list = state.lists.entry(self.key.clone()).or_insert_with(|| List {
            items: VecDeque::new(),
            expires_at: None,
        });
        for item in handed.into_iter().rev() {
            list.items.push_front(item);
        }
        state.serve_waiters(&self.key);
        true
    }
}

impl Future for Blocked {
    type Output = Result<Vec<Vec<u8>>, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The lock borrows its own handle, not `this`.
        let store = this.store.clone();
        loop {
            let mut state = match store.begin_on(&this.key) {
                Ok(state) => state,
                Err(err) => {
                    let mut state = store.lock();
                    this.leave(&mut state);
                    return Poll::Ready(Err(err));
                }
            };
            let waited = this.ticket;
            if let Some(taken) = this.look(&mut state) {
                if let Some(ticket) = waited {
                    this.store.wakers().remove(&ticket);
                }
                return Poll::Ready(Ok(taken));
            }
            let now = this.store.shared.clock.now();
            let remaining = remaining(this.deadline, now);
            if remaining.is_some_and(|remaining| remaining.is_zero()) {
                let put_back = this.leave(&mut state);
                drop(state);
                if put_back {
                    this.store.notify_pushed();
                }
                return Poll::Ready(Ok(Vec::new()));
            }
            // Registered under the state's lock: a push after the look
            // above finds this waker.
            let ticket = match this.ticket {
                Some(ticket) => ticket,
                None => this.take_ticket(&mut state),
            };
            this.store.wakers().insert(ticket, cx.waker().clone());
            drop(state);
            if wait_on_clock(&this.store, &mut this.timer, remaining, now, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// After a look that found nothing, with `remaining` left of the wait
/// (`None`: without limit): `Pending` to wait for a push or for the
/// clock, `Ready` to look again now. A manual clock wakes the wait when a
/// test moves it (one that advances by itself moves to the deadline at
/// once); the system clock's time is waited on with a tokio timer.
///
/// `read` is the clock's time `remaining` was computed from: a clock moved
/// after that reading and before the waker is registered with it would
/// wake nobody, so once registered the clock is read again, and a move in
/// between means looking again now.
fn wait_on_clock(
    store: &MemoryStore,
    timer: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    remaining: Option<Duration>,
    read: SystemTime,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(remaining) = remaining else {
        return Poll::Pending;
    };
    let clock = &store.shared.clock;
    if clock.wake_when_moved(cx.waker()) {
        if clock.now() != read {
            return Poll::Ready(());
        }
        // An auto-advancing clock moves now, and wakes this wait.
        return if clock.recheck_after(remaining).is_zero() {
            Poll::Ready(())
        } else {
            Poll::Pending
        };
    }
    let wait = clock.recheck_after(remaining);
    if wait.is_zero() {
        return Poll::Ready(());
    }
    let timer = timer.insert(Box::pin(tokio::time::sleep(wait.min(remaining))));
    timer.as_mut().poll(cx)
}

impl Drop for Blocked {
    fn drop(&mut self) {
        if self.ticket.is_none() {
            return;
        }
        let store = self.store.clone();
        let mut state = store.lock();
        let put_back = self.leave(&mut state);
        drop(state);
        if put_back {
            store.notify_pushed();
        }
    }
}

/// A wait for the next push after the store's push count read `seen`, or
/// for `wait` of the clock's time (`None`: without limit).
struct Pushed {
    store: MemoryStore,
    seen: u64,
    until: Option<SystemTime>,
    ticket: Option<u64>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Pushed {
    fn pushed(&self) -> bool {
        self.store.shared.pushes.load(Ordering::SeqCst) != self.seen
    }
}

impl Future for Pushed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            if this.pushed() {
                return Poll::Ready(());
            }
            let now = this.store.shared.clock.now();
            let remaining = remaining(this.until, now);
            if remaining.is_some_and(|remaining| remaining.is_zero()) {
                return Poll::Ready(());
            }
            let ticket = *this.ticket.get_or_insert_with(|| {
                let mut state = this.store.lock();
                state.next_ticket += 1;
                state.next_ticket
            });
            this.store.wakers().insert(ticket, cx.waker().clone());
            // A push between the look above and the waker's registration.
            if this.pushed() {
                return Poll::Ready(());
            }
            if wait_on_clock(&this.store, &mut this.timer, remaining, now, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Pushed {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.store.wakers().remove(&ticket);
        }
    }
}

impl MemoryStore {
    /// Runs `call`, the blocking operation `op`, failing as the next
    /// injected fault says: at once, or, for an answer lost after the
    /// command ran, by the call policy once `call` has run (as the sync
    /// store's `run`: a leased receive answers what it leased, a receive
    /// fails with [`StoreError::ReplyLost`]).
    async fn faulted<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let fault = self.next_fault();
        if let Some(fault) = fault
            .as_ref()
            .filter(|fault| !matches!(fault, Fault::ReplyLost))
        {
            return Err(fault.error());
        }
        let outcome = call.await?;
        match fault {
            Some(fault) if policy(op).after_lost_reply == AfterLostReply::Report => {
                Err(fault.error())
            }
            _ => Ok(outcome),
        }
    }

    /// Waits as `want` says.
    pub(super) async fn blocked(
        &self,
        key: &str,
        want: Want,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let op = match want {
            Want::Last => Op::TakeLast,
            _ => Op::BlockingPop,
        };
        self.faulted(op, Blocked::new(self, key, want, timeout))
            .await
    }

    /// The blocking lease: a look, then a wait for a push or until a
    /// pending message is due, bounded by `timeout`; again.
    pub(crate) async fn async_blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let clock = &self.shared.clock;
        let deadline = deadline(clock.now(), timeout);
        self.faulted(Op::Lease, async {
            loop {
                let seen = self.shared.pushes.load(Ordering::SeqCst);
                let (leased, next_due) = self.try_lease(keys, count, policy)?;
                if !leased.is_empty() {
                    return Ok(leased);
                }
                let now = clock.now();
                let wait = match after_empty_look(deadline, now, next_due) {
                    Look::Over => return Ok(Vec::new()),
                    Look::Again => continue,
                    Look::After(wait) => wait,
                };
                Pushed {
                    store: self.clone(),
                    seen,
                    until: wait.and_then(|wait| now.checked_add(wait)),
                    ticket: None,
                    timer: None,
                }
                .await;
            }
        })
        .await
    }
}
