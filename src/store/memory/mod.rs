//! [`MemoryStore`]: an in-memory [`ListStore`] with Redis list semantics.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

#[cfg(feature = "tokio")]
mod aio;
mod lease;
mod list;
mod state;

#[cfg(feature = "tokio")]
use super::AsyncListStore;
use super::fault::Fault;
use super::policy::{AfterLostReply, Op, policy};
use super::{ListStore, StoreError, glob};
use crate::clock::{Clock, SystemClock};
use state::{State, wrong_type};

/// An in-memory [`ListStore`] that behaves like Redis, for tests.
///
/// - Lists follow Redis: pushing creates a list, popping its last element
///   deletes it (and its TTL), a TTL set on push is kept by later pushes
///   without one.
/// - TTLs and blocking timeouts follow an injectable [`Clock`]: with a
///   [`ManualClock`](crate::ManualClock), a test moves time forward instead
///   of sleeping.
/// - [`blocking_pop`](ListStore::blocking_pop) really blocks, and wakes when
///   another thread pushes. As in Redis, a push serves the blocked pops
///   first, longest waiting first: an element pushed while a pop is blocked
///   goes to that pop, never to a later `pop`.
/// - It refuses what Redis refuses, with the same [`StoreError`]: a list
///   operation on a key that holds a string
///   ([`set_string`](MemoryStore::set_string)) is `WRONGTYPE` and changes
///   nothing; a TTL whose deadline Redis cannot represent is refused before
///   anything is written.
/// - [`fail_next`](MemoryStore::fail_next) makes the next calls fail like a
///   lost connection; [`fail_next_with`](MemoryStore::fail_next_with) like a
///   timeout, a refused command, or an answer lost after the command ran
///   ([`Fault`]).
///
/// Clones share the same data, like clones of a client of one server.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use redisutil::{ListStore, ManualClock, MemoryStore};
///
/// let clock = ManualClock::default();
/// let store = MemoryStore::with_clock(clock.clone());
/// store.push("k", &[b"v"], Some(Duration::from_secs(10)))?;
/// clock.advance(Duration::from_secs(11));
/// assert_eq!(store.pop("k")?, None); // expired
///
/// store.fail_next(1);
/// assert!(store.pop("k").unwrap_err().is_connection());
/// assert_eq!(store.pop("k")?, None); // the fault has passed
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled on every push, so blocked pops wake up.
    pushed: Condvar,
    /// The async waits to wake on every push, by their ticket. Only ever
    /// locked after `state`, or alone.
    wakers: Mutex<HashMap<u64, Waker>>,
    /// How many times [`notify_pushed`](MemoryStore::notify_pushed) ran:
    /// an async wait that read it before looking knows whether it missed
    /// a push.
    pushes: std::sync::atomic::AtomicU64,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store whose TTLs and blocking timeouts follow `clock`.
    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                pushed: Condvar::new(),
                wakers: Mutex::new(HashMap::new()),
                pushes: std::sync::atomic::AtomicU64::new(0),
                clock: Arc::new(clock),
            }),
        }
    }

    /// Makes the next `calls` calls fail with [`StoreError::Connection`],
    /// as if the connection to Redis were lost; nothing changes in the store.
    /// The same as [`fail_next_with`](Self::fail_next_with) and
    /// [`Fault::Disconnect`].
    pub fn fail_next(&self, calls: u64) {
        self.fail_next_with(calls, Fault::Disconnect);
    }

    /// Makes the next `calls` calls fail as `fault` says: a lost
    /// connection, a timeout, an answer lost after the command ran, or a
    /// refused command. `calls` of 0 clears the faults.
    pub fn fail_next_with(&self, calls: u64, fault: Fault) {
        let mut state = self.lock();
        state.faults = calls;
        state.fault = Some(fault);
    }

    /// The fault the next call meets, counted as met; `None` for none.
    fn next_fault(&self) -> Option<Fault> {
        let mut state = self.lock();
        match state.faults {
            0 => None,
            _ => {
                state.faults -= 1;
                state.fault.clone()
            }
        }
    }

    /// Wakes every wait for a push: blocked threads and async waits.
    fn notify_pushed(&self) {
        self.shared
            .pushes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.shared.pushed.notify_all();
        let wakers = std::mem::take(&mut *self.wakers());
        for waker in wakers.into_values() {
            waker.wake();
        }
    }

    fn wakers(&self) -> MutexGuard<'_, HashMap<u64, Waker>> {
        self.shared
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `call`, the operation `op`, or fails it as the next injected
    /// fault says. A reply lost after `call` ran is met as the Redis
    /// stores' drivers meet one, by the call policy: an operation that may
    /// be sent again is (`call` runs twice), one sent again under its call
    /// id answers its first run's result (what the lease script's replay
    /// answers), and any other fails with [`StoreError::ReplyLost`].
    fn run<T>(&self, op: Op, call: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
        match self.next_fault() {
            None => call(),
            Some(Fault::ReplyLost) => {
                let first = call();
                match policy(op).after_lost_reply {
                    AfterLostReply::SendAgain => call(),
                    AfterLostReply::SendSameCallAgain => first,
                    AfterLostReply::Report => Err(Fault::ReplyLost.error()),
                }
            }
            Some(fault) => Err(fault.error()),
        }
    }

    /// Stores the string `value` at `key` (SET), replacing a list there:
    /// a key of another type, to test how code meets one. List operations
    /// on it fail with `WRONGTYPE`, as in Redis.
    ///
    /// ```
    /// use redisutil::{ListStore, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// store.set_string("k", "text");
    /// assert!(store.pop("k").unwrap_err().to_string().contains("WRONGTYPE"));
    /// assert_eq!(store.get_string("k").as_deref(), Some(&b"text"[..]));
    /// ```
    pub fn set_string(&self, key: &str, value: impl Into<Vec<u8>>) {
        let mut state = self.lock();
        state.lists.remove(key);
        state.drop_lease_key(key);
        state.strings.insert(key.to_owned(), value.into());
    }

    /// Deletes the key `key` (DEL): a list, a string, or a lease key;
    /// whether there was one.
    ///
    /// ```
    /// use redisutil::{ListStore, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// store.set_string("k", "text");
    /// assert!(store.delete("k"));
    /// assert!(!store.delete("k"));
    /// store.push("k", &[b"a list now"], None)?;
    /// # Ok::<(), redisutil::StoreError>(())
    /// ```
    pub fn delete(&self, key: &str) -> bool {
        let mut state = self.lock();
        let list = state.lists.remove(key).is_some();
        list | state.drop_lease_key(key) | state.strings.remove(key).is_some()
    }

    /// The string at `key` (GET); `None` when the key holds none.
    pub fn get_string(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().strings.get(key).cloned()
    }

    /// The number of elements in the list `key` (LLEN).
    pub fn len(&self, key: &str) -> usize {
        let now = self.shared.clock.now();
        let mut state = self.lock();
        state.live(key, now).map_or(0, |list| list.items.len())
    }

    /// Whether the store holds no list at all.
    pub fn is_empty(&self) -> bool {
        let now = self.shared.clock.now();
        let mut state = self.lock();
        state.lists.retain(|_, list| !list.expired(now));
        state.lists.is_empty() && state.strings.is_empty() && state.leases.is_empty()
    }

    /// The time left before the list `key` expires (PTTL): `None` when the
    /// list does not exist or has no TTL.
    pub fn ttl(&self, key: &str) -> Option<Duration> {
        let now = self.shared.clock.now();
        let mut state = self.lock();
        let expires_at = state.live(key, now)?.expires_at?;
        Some(expires_at.duration_since(now).unwrap_or_default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a push, at most `remaining` of the clock's time (`None`:
    /// without limit).
    fn wait<'a>(
        &self,
        state: MutexGuard<'a, State>,
        remaining: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        match remaining {
            None => self.shared.pushed.wait(state),
            Some(remaining) => {
                let wait = self.shared.clock.recheck_after(remaining);
                match self.shared.pushed.wait_timeout(state, wait) {
                    Ok((state, _)) => Ok(state),
                    Err(poisoned) => Err(PoisonError::new(poisoned.into_inner().0)),
                }
            }
        }
        .unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the state for a list operation on `key`, refusing a key of
    /// another type.
    fn begin_on(&self, key: &str) -> Result<MutexGuard<'_, State>, StoreError> {
        let state = self.lock();
        if state.strings.contains_key(key) {
            return Err(wrong_type());
        }
        Ok(state)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("lists", &state.lists.len())
            .field("faults", &state.faults)
            .field("clock", &self.shared.clock)
            .finish()
    }
}

impl ListStore for MemoryStore {
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        self.run(Op::Push, || self.exec_push(key, values, ttl))
    }

    fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(Op::Pop, || self.exec_pop(key))
    }

    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(Op::BlockingPop, || self.exec_blocking_pop(key, timeout))
    }

    fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.run(Op::PopMany, || self.exec_pop_many(key, count))
    }

    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.run(Op::BlockingPop, || {
            self.exec_blocking_pop_many(key, count, timeout)
        })
    }

    fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(Op::Index, || self.exec_index(key, index))
    }

    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(Op::TakeLast, || self.exec_take_last(key))
    }

    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(Op::TakeLast, || self.exec_blocking_take_last(key, timeout))
    }

    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.run(Op::Scan, || self.exec_scan(pattern))
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.run(Op::Ping, || self.exec_ping())
    }
}

/// The calls that cannot block run as the sync store runs them, on the
/// first poll; a blocked pop waits as a future.
#[cfg(feature = "tokio")]
impl AsyncListStore for MemoryStore {
    async fn push(
        &self,
        key: &str,
        values: &[&[u8]],
        ttl: Option<Duration>,
    ) -> Result<u64, StoreError> {
        ListStore::push(self, key, values, ttl)
    }

    async fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        ListStore::pop(self, key)
    }

    async fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let popped = self.blocked(key, aio::Want::Head(1), timeout).await?;
        Ok(popped.into_iter().next())
    }

    async fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        ListStore::pop_many(self, key, count)
    }

    async fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.blocked(key, aio::Want::Head(count), timeout).await
    }

    async fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        ListStore::index(self, key, index)
    }

    async fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        ListStore::take_last(self, key)
    }

    async fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let taken = self.blocked(key, aio::Want::Last, timeout).await?;
        Ok(taken.into_iter().next())
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        ListStore::scan(self, pattern)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        ListStore::ping(self)
    }

    fn clock(&self) -> std::sync::Arc<dyn crate::Clock> {
        ListStore::clock(self)
    }
}
