//! [`Pool`]: the blocking connections of one node, opened by the manager
//! the pool is given ([`Manage`]), as r2d2 and deadpool take theirs.
//!
//! At most `max_connections` exist at once (idle, in use, or being
//! opened); a caller past the cap waits up to the pool timeout for one to
//! come back, then fails with [`StoreError::PoolExhausted`]. Idle ones are
//! kept up to `max_idle` and looked at before reuse: one the server closed
//! meanwhile is replaced in the same place, before anything is sent on it.
//! After `fork()`, the child starts afresh, never using the parent's
//! sockets.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::store::target::PoolOptions;
use crate::store::{StoreError, wait_limit};

/// What opens and checks the connections of a pool.
pub(crate) trait Manage<C>: Send + Sync {
    /// Opens a connection.
    fn open(&self) -> Result<C, StoreError>;

    /// Whether an idle connection may be used again.
    fn is_alive(&self, conn: &mut C) -> bool;
}

/// The connections of one node; see the [module](self).
pub(crate) struct Pool<M, C> {
    manager: M,
    limits: PoolOptions,
    /// The store as errors show it.
    shown: Arc<str>,
    state: Mutex<State<C>>,
    /// Signalled when a connection is checked in or its place freed.
    returned: Condvar,
}

struct State<C> {
    /// The process these connections belong to.
    pid: u32,
    idle: Vec<C>,
    /// Connections open or being opened, idle ones included.
    open: usize,
    /// Callers waiting for a connection.
    waiting: usize,
}

/// One of the pool's places, held by a call, with its connection. Dropped,
/// it closes the connection and frees the place; [`Pooled::check_in`]
/// keeps the connection for reuse instead.
pub(crate) struct Pooled<M, C> {
    pool: Arc<Pool<M, C>>,
    /// The process the place was counted in; `None` once given back.
    pid: Option<u32>,
    conn: Option<C>,
}

impl<M, C> Pooled<M, C> {
    pub(crate) fn conn(&mut self) -> &mut C {
        self.conn.as_mut().expect("a pooled connection")
    }

    /// Keeps the connection for reuse (when there is room) and frees the
    /// place.
    pub(crate) fn check_in(mut self) {
        self.give_back(true);
    }

    fn give_back(&mut self, reuse: bool) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        let conn = self.conn.take();
        let pool = &self.pool;
        let mut state = pool.lock();
        if state.pid != pid {
            return;
        }
        if let Some(conn) = conn {
            if reuse && state.idle.len() < pool.limits.max_idle {
                state.idle.push(conn);
                if state.waiting > 0 {
                    pool.returned.notify_one();
                }
                return;
            }
            // Closed before its place is freed (and outside the lock): the
            // server never sees more than `max_connections`, even for a
            // moment.
            drop(state);
            drop(conn);
            state = pool.lock();
            if state.pid != pid {
                return;
            }
        }
        state.open = state.open.saturating_sub(1);
        if state.waiting > 0 {
            pool.returned.notify_one();
        }
    }
}

impl<M, C> Drop for Pooled<M, C> {
    fn drop(&mut self) {
        self.give_back(false);
    }
}

impl<M, C> Pool<M, C> {
    pub(crate) fn new(manager: M, limits: PoolOptions, shown: Arc<str>) -> Self {
        Self {
            manager,
            limits,
            shown,
            state: Mutex::new(State {
                pid: std::process::id(),
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state of this process: a child after `fork()` starts afresh.
    fn state(&self) -> MutexGuard<'_, State<C>> {
        let mut state = self.lock();
        let pid = std::process::id();
        if state.pid != pid {
            state.pid = pid;
            state.idle.clear();
            state.open = 0;
            state.waiting = 0;
        }
        state
    }

    /// How many connections are open, and how many idle.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.state();
        (state.open, state.idle.len())
    }

    /// Closes every idle connection, then frees their places.
    pub(crate) fn clear_idle(&self) {
        let mut state = self.state();
        let pid = state.pid;
        let closed = std::mem::take(&mut state.idle);
        if closed.is_empty() {
            return;
        }
        drop(state);
        let count = closed.len();
        drop(closed);
        let mut state = self.lock();
        if state.pid != pid {
            return;
        }
        state.open = state.open.saturating_sub(count);
        if state.waiting > 0 {
            self.returned.notify_all();
        }
    }
}

impl<M: Manage<C>, C> Pool<M, C> {
    /// A connection in one of the pool's places: an idle one still open,
    /// else a new one.
    pub(crate) fn checkout(self: &Arc<Self>) -> Result<Pooled<M, C>, StoreError> {
        let (pid, idle) = self.place()?;
        let mut pooled = Pooled {
            pool: Arc::clone(self),
            pid: Some(pid),
            conn: idle,
        };
        loop {
            let alive = pooled.conn.as_mut().map(|conn| self.manager.is_alive(conn));
            match alive {
                Some(true) => return Ok(pooled),
                Some(false) => {
                    // The server closed it while it was idle: nothing was
                    // sent on it. Another idle one, or a new one, takes its
                    // place.
                    crate::trace::event!(DEBUG, addr = %self.shown, "an idle connection was found closed");
                    pooled.conn = None;
                    pooled.conn = self.state().idle.pop();
                }
                None => {
                    pooled.conn = Some(self.manager.open()?);
                    return Ok(pooled);
                }
            }
        }
    }

    /// A place: with an idle connection when there is one, else the right
    /// to open one; past the cap, waits up to the pool timeout.
    fn place(&self) -> Result<(u32, Option<C>), StoreError> {
        let PoolOptions {
            max_connections,
            pool_timeout,
            ..
        } = self.limits;
        let mut state = self.state();
        let mut deadline = None;
        loop {
            let idle = state.idle.pop();
            if idle.is_some() || state.open < max_connections {
                if idle.is_none() {
                    state.open += 1;
                }
                // Another place may be free too: pass the word on.
                let free = !state.idle.is_empty() || state.open < max_connections;
                if state.waiting > 0 && free {
                    self.returned.notify_one();
                }
                return Ok((state.pid, idle));
            }
            let left = match wait_limit(Some(pool_timeout)) {
                None => None,
                Some(timeout) => {
                    let now = Instant::now();
                    let deadline = *deadline.get_or_insert_with(|| now.checked_add(timeout));
                    match deadline {
                        None => None,
                        Some(deadline) if deadline <= now => {
                            return Err(StoreError::PoolExhausted {
                                addr: self.shown.to_string(),
                                max_connections,
                                timeout,
                            });
                        }
                        Some(deadline) => Some(deadline - now),
                    }
                }
            };
            state.waiting += 1;
            state = match left {
                None => self
                    .returned
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    self.returned
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            state.waiting -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;

    /// A connection that counts how many of its kind are alive.
    struct Fake {
        alive: Arc<AtomicUsize>,
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[derive(Default)]
    struct Manager {
        alive: Arc<AtomicUsize>,
        opened: AtomicUsize,
        most: AtomicUsize,
        failing: AtomicUsize,
        stale: AtomicBool,
    }

    impl Manage<Fake> for Manager {
        fn open(&self) -> Result<Fake, StoreError> {
            let fail = self
                .failing
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if fail.is_ok() {
                return Err(StoreError::Connection {
                    addr: "fake".into(),
                    message: "refused".into(),
                    source: None,
                });
            }
            self.opened.fetch_add(1, Ordering::SeqCst);
            let alive = self.alive.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(alive, Ordering::SeqCst);
            Ok(Fake {
                alive: Arc::clone(&self.alive),
            })
        }
        fn is_alive(&self, _: &mut Fake) -> bool {
            !self.stale.swap(false, Ordering::SeqCst)
        }
    }

    fn pool(
        max_idle: usize,
        max_connections: usize,
        timeout: Duration,
    ) -> Arc<Pool<Manager, Fake>> {
        let limits = PoolOptions {
            max_idle,
            max_connections,
            pool_timeout: timeout,
            ..PoolOptions::default()
        }
        .checked()
        .unwrap();
        Arc::new(Pool::new(Manager::default(), limits, "fake".into()))
    }

    /// Holds `n` connections in threads until the senders are dropped.
    fn hold<'s>(
        scope: &'s thread::Scope<'s, '_>,
        pool: &'s Arc<Pool<Manager, Fake>>,
        n: usize,
    ) -> Vec<mpsc::Sender<()>> {
        (0..n)
            .map(|_| {
                let (release, released) = mpsc::channel::<()>();
                let (held, holding) = mpsc::channel::<()>();
                scope.spawn(move || {
                    let pooled = pool.checkout().unwrap();
                    held.send(()).unwrap();
                    let _ = released.recv();
                    pooled.check_in();
                });
                holding.recv().unwrap();
                release
            })
            .collect()
    }

    #[test]
    fn past_the_cap_a_call_fails_after_the_pool_timeout_naming_it() {
        let pool = pool(16, 2, Duration::from_millis(50));
        thread::scope(|scope| {
            let held = hold(scope, &pool, 2);
            let err = pool.checkout().err().unwrap();
            assert!(err.is_pool_exhausted() && err.is_timeout(), "{err:?}");
            let text = err.to_string();
            for part in ["fake", "exhausted", "all 2 connections", "50ms"] {
                assert!(text.contains(part), "{part:?} not in {text}");
            }
            drop(held);
        });
        assert_eq!(pool.manager.most.load(Ordering::SeqCst), 2);
        pool.checkout().unwrap().check_in();
        assert_eq!(pool.manager.opened.load(Ordering::SeqCst), 2, "reused");
    }

    #[test]
    fn a_waiting_call_gets_the_connection_given_back() {
        for timeout in [Duration::from_secs(60), Duration::MAX] {
            let pool = pool(16, 1, timeout);
            thread::scope(|scope| {
                let mut held = hold(scope, &pool, 1);
                let waiter = scope.spawn(|| pool.checkout().map(Pooled::check_in));
                while pool.lock().waiting == 0 {
                    thread::yield_now();
                }
                held.pop().unwrap().send(()).unwrap();
                waiter.join().unwrap().unwrap();
            });
            assert_eq!(
                pool.manager.opened.load(Ordering::SeqCst),
                1,
                "the same one"
            );
        }
    }

    #[test]
    fn a_closed_idle_connection_is_replaced_in_its_place() {
        let pool = pool(4, 1, Duration::ZERO);
        pool.checkout().unwrap().check_in();
        pool.manager.stale.store(true, Ordering::SeqCst);
        pool.checkout().unwrap().check_in();
        assert_eq!(pool.manager.opened.load(Ordering::SeqCst), 2);
        assert_eq!(
            pool.manager.most.load(Ordering::SeqCst),
            1,
            "never two at once"
        );
        assert_eq!(pool.counts(), (1, 1));
    }

    /// Whatever ends a call (a panic, a dropped connection, a failed
    /// open), its place is free again afterwards.
    #[test]
    fn every_way_a_call_ends_frees_its_place() {
        let pool = pool(1, 1, Duration::ZERO);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            let _pooled = pool.checkout().unwrap();
            panic!("in the command");
        }));
        assert!(panicked.is_err());
        assert_eq!(
            (pool.counts().0, pool.manager.alive.load(Ordering::SeqCst)),
            (0, 0)
        );
        drop(pool.checkout().unwrap());
        assert_eq!(pool.counts(), (0, 0));
        pool.manager.failing.store(1, Ordering::SeqCst);
        assert!(pool.checkout().is_err());
        assert_eq!(pool.counts(), (0, 0));
        pool.checkout().unwrap().check_in();
        assert_eq!(pool.counts(), (1, 1));
        pool.clear_idle();
        assert_eq!(pool.counts(), (0, 0));
    }

    #[test]
    fn a_burst_never_opens_more_than_the_cap() {
        let pool = pool(2, 3, Duration::MAX);
        thread::scope(|scope| {
            for i in 0..32 {
                let pool = &pool;
                scope.spawn(move || {
                    for j in 0..50 {
                        let pooled = pool.checkout().unwrap();
                        if (i + j) % 7 == 0 {
                            drop(pooled);
                        } else {
                            thread::yield_now();
                            pooled.check_in();
                        }
                    }
                });
            }
        });
        assert!(pool.manager.most.load(Ordering::SeqCst) <= 3);
        let state = pool.lock();
        assert!(state.open <= 2 && state.open == state.idle.len() && state.waiting == 0);
        assert_eq!(pool.manager.alive.load(Ordering::SeqCst), state.open);
    }

    #[test]
    fn a_pool_of_no_connection_is_refused_naming_the_option() {
        let limits = PoolOptions {
            max_connections: 0,
            ..PoolOptions::default()
        };
        let err = limits.checked().unwrap_err();
        assert!(matches!(err, StoreError::InvalidOptions { .. }), "{err:?}");
        assert!(err.to_string().contains("max_connections"), "{err}");
    }
}
