//! The connection pool and call policy that [`RedisStore`](crate::RedisStore)
//! and `RedisClusterStore` share: at most `max_connections` connections per
//! process, idle ones kept for reuse, a caller past the cap waiting for one
//! to come back, a blocking call's read timeout stretched by its block time,
//! a dead pooled connection replaced once, and redis errors mapped to
//! [`StoreError`]. The commands themselves are in `commands.rs`.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind};

use super::commands::Connector;
use super::{StoreError, wait_limit};

/// A connection the pool can hold.
pub(super) trait PooledConnection: ConnectionLike {
    /// Sets how long a read may wait (`None`: without limit).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()>;
}

impl PooledConnection for redis::Connection {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        redis::Connection::set_read_timeout(self, timeout)
    }
}

#[cfg(feature = "cluster")]
impl PooledConnection for redis::cluster::ClusterConnection {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        redis::cluster::ClusterConnection::set_read_timeout(self, timeout)
    }
}

/// How a command waits for its answer.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    /// The response timeout.
    Response,
    /// A blocking command that may wait this long on the server (`None`:
    /// forever) before the response timeout starts.
    Blocking(Option<Duration>),
}

/// The bounds of a [`Pool`], from the store's options.
#[derive(Clone, Copy, Debug)]
pub(super) struct PoolLimits {
    /// How many connections are kept idle, at most `max_connections`.
    pub(super) max_idle: usize,
    /// How many connections may exist at once: idle, in use, being opened.
    pub(super) max_connections: usize,
    /// How long a caller past the cap waits for a connection to come back;
    /// 100 years and more waits without limit.
    pub(super) timeout: Duration,
}

/// The connections of one process: after `fork()`, the child finds the
/// pool belongs to another pid and forgets the parent's sockets and count.
pub(super) struct Pool<C> {
    limits: PoolLimits,
    state: Mutex<State<C>>,
    /// Signalled when a connection is checked in or its slot freed.
    returned: Condvar,
}

struct State<C> {
    /// The process these connections belong to.
    pid: u32,
    idle: Vec<Idle<C>>,
    /// Connections open or being opened, idle ones included: never more
    /// than `max_connections`.
    open: usize,
    /// Callers waiting for a connection to come back.
    waiting: usize,
}

/// A pooled connection and the read timeout its socket has now, so that a
/// run of calls of one kind sets it once, not twice per call.
struct Idle<C> {
    connection: C,
    read_timeout: Option<Duration>,
}

/// One of the pool's `max_connections` places, held by a call, with its
/// connection once it has one. Dropping it (an error, a panic in the
/// command) closes the connection and frees the place; [`Slot::check_in`]
/// gives the connection back for reuse instead.
struct Slot<'a, C> {
    pool: &'a Pool<C>,
    /// The process the place was counted in; `None` once given back.
    pid: Option<u32>,
    idle: Option<Idle<C>>,
}

impl<C> Slot<'_, C> {
    /// Gives the place back, keeping the connection idle when `reuse` and
    /// there is room, else closing it; wakes a waiting caller.
    fn give_back(&mut self, reuse: bool) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        let connection = self.idle.take();
        let mut state = self.pool.lock();
        if state.pid != pid {
            return;
        }
        if let Some(idle) = connection {
            if reuse && state.idle.len() < self.pool.limits.max_idle {
                state.idle.push(idle);
                if state.waiting > 0 {
                    self.pool.returned.notify_one();
                }
                return;
            }
            // Closed before its place is freed (and outside the lock): the
            // server never sees more than `max_connections`, even for a
            // moment.
            drop(state);
            drop(idle);
            state = self.pool.lock();
            if state.pid != pid {
                return;
            }
        }
        debug_assert!(state.open > 0, "a place given back twice");
        state.open = state.open.saturating_sub(1);
        if state.waiting > 0 {
            self.pool.returned.notify_one();
        }
    }

    /// Keeps the connection for reuse (when there is room) and frees the
    /// place.
    fn check_in(mut self) {
        self.give_back(true);
    }
}

impl<C> Drop for Slot<'_, C> {
    fn drop(&mut self) {
        self.give_back(false);
    }
}

impl<C> Pool<C> {
    /// The state, whatever the process: a slot given back checks the pid.
    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: PooledConnection> Pool<C> {
    /// A pool with `limits` (see [`pool_limits`]).
    pub(super) fn new(limits: PoolLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                pid: std::process::id(),
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// The state of this process: a child after `fork()` starts afresh,
    /// with no connection and none counted.
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

    /// Closes every idle connection, then frees their places (closed
    /// first, so that the server never sees more than the cap).
    fn clear_idle(&self) {
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

    /// A place in the pool: with an idle connection when there is one, else
    /// the right to open one; past the cap, waits up to the pool timeout for
    /// a connection to come back.
    fn acquire(&self, addr: impl FnOnce() -> String) -> Result<Slot<'_, C>, StoreError> {
        let PoolLimits {
            max_connections,
            timeout,
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
                // Another place may be free too (two came back at once):
                // pass the word on rather than leave a caller asleep.
                let free = !state.idle.is_empty() || state.open < max_connections;
                if state.waiting > 0 && free {
                    self.returned.notify_one();
                }
                return Ok(Slot {
                    pool: self,
                    pid: Some(state.pid),
                    idle,
                });
            }
            let left = match wait_limit(Some(timeout)) {
                None => None,
                Some(timeout) => {
                    let now = Instant::now();
                    let deadline = *deadline.get_or_insert_with(|| now.checked_add(timeout));
                    match deadline {
                        None => None,
                        Some(deadline) if deadline <= now => {
                            return Err(StoreError::PoolExhausted {
                                addr: addr(),
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

    /// Runs `command` on a pooled or new connection, in one of the pool's
    /// `max_connections` places: past the cap, it first waits up to the
    /// pool timeout for another call to give a connection back
    /// ([`StoreError::PoolExhausted`] if none does).
    ///
    /// A pooled connection that turns out lost (Redis restarted or killed
    /// it, a cluster node died) is dropped with the rest of the pool, whose
    /// connections most likely share its fate, and the command is sent once
    /// more on a fresh connection, in the same place: Redis closes
    /// connections only between commands, so the first attempt never ran.
    pub(super) fn run<T, S>(
        &self,
        store: &S,
        wait: Wait,
        mut command: impl FnMut(&mut C) -> RedisResult<T>,
    ) -> Result<T, StoreError>
    where
        S: Connector<Connection = C>,
    {
        let response_timeout = store.response_timeout();
        let (read_timeout, timeout_error) = match wait {
            Wait::Response => (response_timeout, response_timeout.unwrap_or_default()),
            Wait::Blocking(block) => {
                let limit =
                    block.and_then(|block| response_timeout.map(|t| block.saturating_add(t)));
                (limit, limit.unwrap_or_default())
            }
        };
        let mut slot = self.acquire(|| store.shown_addr())?;
        loop {
            let reused = slot.idle.is_some();
            let idle = match &mut slot.idle {
                Some(idle) => idle,
                empty => empty.insert(Idle {
                    connection: store.connect()?,
                    read_timeout: response_timeout,
                }),
            };
            if idle.read_timeout != read_timeout {
                idle.connection
                    .set_read_timeout(read_timeout)
                    .map_err(|err| to_store_error(err, store.shown_addr(), Duration::ZERO))?;
                idle.read_timeout = read_timeout;
            }
            let err = match command(&mut idle.connection) {
                Ok(value) => {
                    slot.check_in();
                    return Ok(value);
                }
                Err(err) => err,
            };
            if !is_lost(&err) && idle.connection.is_open() {
                slot.check_in();
                return Err(to_store_error(err, store.shown_addr(), timeout_error));
            }
            // Closed now; the place stays this call's, for a second attempt
            // or for asking the server why it closed the connection.
            slot.idle = None;
            if !is_lost(&err) || err.is_timeout() {
                return Err(to_store_error(err, store.shown_addr(), timeout_error));
            }
            if reused {
                crate::trace::event!(
                    INFO,
                    addr = %store.shown_addr(),
                    error = %err,
                    "pooled connection lost; the pool is dropped and the command sent again"
                );
                self.clear_idle();
                continue;
            }
            return Err(match store.refusal() {
                Some(said) => StoreError::Connection {
                    addr: store.shown_addr(),
                    message: format!("the server closed the connection, saying: {said}"),
                    source: Some(Box::new(err)),
                },
                None => to_store_error(err, store.shown_addr(), timeout_error),
            });
        }
    }
}

/// Whether the connection, or the node behind it, is gone.
pub(crate) fn is_lost(err: &RedisError) -> bool {
    err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal()
}

/// Whether the server answered that it cannot serve yet or for now (still
/// loading its data, a cluster or replica not ready): like a lost
/// connection, a later call may succeed.
fn is_unavailable(err: &RedisError) -> bool {
    // Redis answers a connection past `maxclients` with this, then closes it.
    err.detail() == Some("max number of clients reached")
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
            )
        )
}

/// The [`StoreError`] for a redis error at `addr`; `timeout` is the one in
/// force when the error is a timeout.
pub(crate) fn to_store_error(err: RedisError, addr: String, timeout: Duration) -> StoreError {
    if err.is_timeout() {
        StoreError::Timeout { addr, timeout }
    } else if is_lost(&err) || is_unavailable(&err) {
        StoreError::Connection {
            addr,
            message: server_words(&err),
            source: Some(Box::new(err)),
        }
    } else {
        StoreError::Command {
            addr,
            message: server_words(&err),
        }
    }
}

/// An error the server answered, in its own words (`NOPERM this user has
/// no permissions…`), not redis-rs's rendering of them (`NoPerm: …`).
fn server_words(err: &RedisError) -> String {
    let Some(code) = err.code() else {
        return err.to_string();
    };
    let words = format!("{code} {}", err.detail().unwrap_or_default());
    match words.trim() {
        "" => "an error reply with no text".into(),
        words => words.into(),
    }
}

/// The bounds of a store's pool from its options: a `max_connections` of
/// 0, which would let no call run, is refused; a `max_idle` above it keeps
/// at most `max_connections`.
pub(super) fn pool_limits(
    addr: String,
    max_idle: usize,
    max_connections: usize,
    timeout: Duration,
) -> Result<PoolLimits, StoreError> {
    if max_connections == 0 {
        return Err(StoreError::InvalidAddress {
            addr,
            message: "max_connections is 0: no call could ever get a connection; \
                      it must be at least 1"
                .into(),
        });
    }
    Ok(PoolLimits {
        max_idle: max_idle.min(max_connections),
        max_connections,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::thread;

    use redis::Value;

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

    impl ConnectionLike for Fake {
        fn req_packed_command(&mut self, _: &[u8]) -> RedisResult<Value> {
            Ok(Value::Okay)
        }
        fn req_packed_commands(&mut self, _: &[u8], _: usize, _: usize) -> RedisResult<Vec<Value>> {
            Ok(Vec::new())
        }
        fn get_db(&self) -> i64 {
            0
        }
        fn check_connection(&mut self) -> bool {
            true
        }
        fn is_open(&self) -> bool {
            true
        }
    }

    impl PooledConnection for Fake {
        fn set_read_timeout(&self, _: Option<Duration>) -> RedisResult<()> {
            Ok(())
        }
    }

    /// A store of fake connections: counts the connections opened and
    /// alive, the most alive at once, and fails the next `failing` opens.
    struct Store {
        pool: Pool<Fake>,
        alive: Arc<AtomicUsize>,
        opened: AtomicUsize,
        most: AtomicUsize,
        failing: AtomicUsize,
    }

    impl Store {
        fn new(max_idle: usize, max_connections: usize, timeout: Duration) -> Self {
            let limits = pool_limits("fake".into(), max_idle, max_connections, timeout).unwrap();
            Self {
                pool: Pool::new(limits),
                alive: Arc::default(),
                opened: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
                failing: AtomicUsize::new(0),
            }
        }

        fn open(&self) -> usize {
            self.pool.lock().open
        }

        fn call<T>(
            &self,
            command: impl FnMut(&mut Fake) -> RedisResult<T>,
        ) -> Result<T, StoreError> {
            self.run(Wait::Response, command)
        }
    }

    impl Connector for Store {
        type Connection = Fake;
        fn pool(&self) -> &Pool<Fake> {
            &self.pool
        }
        fn connect(&self) -> Result<Fake, StoreError> {
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
        fn response_timeout(&self) -> Option<Duration> {
            Some(Duration::from_secs(5))
        }
        fn shown_addr(&self) -> String {
            "fake".into()
        }
    }

    fn lost() -> RedisError {
        RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }

    /// Holds `n` connections of `store` in threads until the returned
    /// senders are dropped or sent to.
    fn hold<'s>(
        scope: &'s thread::Scope<'s, '_>,
        store: &'s Store,
        n: usize,
    ) -> Vec<(mpsc::Sender<()>, thread::ScopedJoinHandle<'s, ()>)> {
        (0..n)
            .map(|_| {
                let (release, released) = mpsc::channel::<()>();
                let (held, holding) = mpsc::channel::<()>();
                let handle = scope.spawn(move || {
                    store
                        .call(|_| {
                            held.send(()).unwrap();
                            let _ = released.recv();
                            Ok(())
                        })
                        .unwrap();
                });
                holding.recv().unwrap();
                (release, handle)
            })
            .collect()
    }

    #[test]
    fn past_the_cap_a_call_fails_after_the_pool_timeout_naming_it() {
        let store = Store::new(16, 2, Duration::from_millis(50));
        thread::scope(|scope| {
            let held = hold(scope, &store, 2);
            let err = store.call(|_| Ok(())).unwrap_err();
            assert!(err.is_pool_exhausted(), "{err:?}");
            assert!(err.is_timeout() && err.is_connection(), "{err:?}");
            let text = err.to_string();
            for part in ["fake", "exhausted", "all 2 connections", "50ms"] {
                assert!(text.contains(part), "{part:?} not in {text}");
            }
            assert!(matches!(
                err,
                StoreError::PoolExhausted { max_connections: 2, timeout, .. }
                    if timeout == Duration::from_millis(50)
            ));
            drop(held);
        });
        assert_eq!(store.most.load(Ordering::SeqCst), 2);
        store.call(|_| Ok(())).unwrap();
        assert_eq!(store.opened.load(Ordering::SeqCst), 2, "reused");
    }

    #[test]
    fn a_waiting_call_gets_the_connection_given_back() {
        for timeout in [Duration::from_secs(60), Duration::MAX] {
            let store = Store::new(16, 1, timeout);
            thread::scope(|scope| {
                let mut held = hold(scope, &store, 1);
                let waiter = scope.spawn(|| store.call(|_| Ok("served")));
                while store.pool.lock().waiting == 0 {
                    thread::yield_now();
                }
                let (release, handle) = held.pop().unwrap();
                release.send(()).unwrap();
                handle.join().unwrap();
                assert_eq!(waiter.join().unwrap().unwrap(), "served");
            });
            assert_eq!(store.opened.load(Ordering::SeqCst), 1, "the same one");
        }
    }

    #[test]
    fn a_zero_pool_timeout_fails_at_once_when_all_are_busy() {
        let store = Store::new(0, 1, Duration::ZERO);
        thread::scope(|scope| {
            let _held = hold(scope, &store, 1);
            assert!(store.call(|_| Ok(())).unwrap_err().is_pool_exhausted());
        });
        store.call(|_| Ok(())).unwrap();
    }

    /// Whatever ends a call (a panic, a lost connection, a failed connect,
    /// a refused command), its place is free again afterwards, and a
    /// broken connection is never reused.
    #[test]
    fn every_way_a_call_ends_frees_its_place() {
        let store = Store::new(1, 1, Duration::ZERO);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            store.call::<()>(|_| panic!("in the command"))
        }));
        assert!(panicked.is_err());
        assert_eq!((store.open(), store.alive.load(Ordering::SeqCst)), (0, 0));

        let err = store.call::<()>(|_| Err(lost())).unwrap_err();
        assert!(err.is_connection(), "{err:?}");
        assert_eq!((store.open(), store.alive.load(Ordering::SeqCst)), (0, 0));

        store.failing.store(1, Ordering::SeqCst);
        let err = store.call(|_| Ok(())).unwrap_err();
        assert!(matches!(err, StoreError::Connection { .. }), "{err:?}");
        assert_eq!(store.open(), 0);

        let refused =
            || RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "no"));
        store.call::<()>(|_| Err(refused())).unwrap_err();
        assert_eq!(store.open(), 1, "kept idle: a refusal leaves it usable");
        assert_eq!(store.pool.lock().idle.len(), 1);

        // A pooled connection found lost: replaced in the same place.
        let mut calls = 0;
        store
            .call(|_| {
                calls += 1;
                if calls == 1 { Err(lost()) } else { Ok(()) }
            })
            .unwrap();
        assert_eq!(calls, 2);
        assert_eq!((store.open(), store.alive.load(Ordering::SeqCst)), (1, 1));
        assert_eq!(store.most.load(Ordering::SeqCst), 1, "never two at once");
    }

    #[test]
    fn a_burst_never_opens_more_than_the_cap() {
        let store = Store::new(2, 3, Duration::MAX);
        thread::scope(|scope| {
            for i in 0..32 {
                let store = &store;
                scope.spawn(move || {
                    for j in 0..50 {
                        let result = store.call(|_| {
                            if (i + j) % 7 == 0 {
                                Err(lost())
                            } else {
                                thread::yield_now();
                                Ok(())
                            }
                        });
                        assert_eq!(result.is_ok(), (i + j) % 7 != 0);
                    }
                });
            }
        });
        assert!(store.most.load(Ordering::SeqCst) <= 3);
        let state = store.pool.lock();
        assert!(state.open <= 2 && state.open == state.idle.len() && state.waiting == 0);
        assert_eq!(store.alive.load(Ordering::SeqCst), state.open);
    }

    #[test]
    fn limits_refuse_no_connection_and_clamp_the_idle() {
        let err = pool_limits("here".into(), 16, 0, Duration::ZERO).unwrap_err();
        assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err:?}");
        assert!(err.to_string().contains("max_connections"), "{err}");
        let limits = pool_limits("here".into(), 16, 4, Duration::ZERO).unwrap();
        assert_eq!((limits.max_idle, limits.max_connections), (4, 4));
    }
}
