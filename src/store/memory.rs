//! [`MemoryStore`]: an in-memory [`ListStore`] with Redis list semantics.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::{ListStore, StoreError, glob, ttl_millis};
use crate::clock::{Clock, SystemClock};

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
/// - [`fail_next`](MemoryStore::fail_next) makes the next calls fail like a
///   lost connection.
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
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct State {
    lists: HashMap<String, List>,
    faults: u64,
    /// Blocked pops per key, by ticket, in the order they blocked.
    waiters: HashMap<String, VecDeque<u64>>,
    /// Elements a push handed to a blocked pop, by its ticket.
    handed: HashMap<u64, Vec<u8>>,
    next_ticket: u64,
}

struct List {
    items: VecDeque<Vec<u8>>,
    expires_at: Option<SystemTime>,
}

/// The address the in-memory store reports in its errors.
const ADDR: &str = "memory";

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
                clock: Arc::new(clock),
            }),
        }
    }

    /// Makes the next `calls` calls fail with [`StoreError::Connection`],
    /// as if the connection to Redis were lost; nothing changes in the store.
    pub fn fail_next(&self, calls: u64) {
        self.lock().faults = calls;
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
        state.lists.is_empty()
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

    /// Locks the state, first spending one injected fault if any is left.
    fn begin(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let mut state = self.lock();
        if state.faults > 0 {
            state.faults -= 1;
            return Err(StoreError::Connection {
                addr: ADDR.into(),
                message: "injected fault: connection lost".into(),
                source: None,
            });
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

impl List {
    /// Redis keeps a key up to and including its expiry millisecond.
    fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| now > at)
    }
}

impl State {
    /// The list at `key`, after dropping it if it has expired.
    fn live(&mut self, key: &str, now: SystemTime) -> Option<&mut List> {
        if self.lists.get(key).is_some_and(|list| list.expired(now)) {
            self.lists.remove(key);
        }
        self.lists.get_mut(key)
    }

    /// Like Redis after a push: hands elements to the pops blocked on
    /// `key`, longest waiting first, before any other call can see them.
    fn serve_waiters(&mut self, key: &str) {
        let (Some(waiters), Some(list)) = (self.waiters.get_mut(key), self.lists.get_mut(key))
        else {
            return;
        };
        while !waiters.is_empty() && !list.items.is_empty() {
            if let (Some(ticket), Some(item)) = (waiters.pop_front(), list.items.pop_front()) {
                self.handed.insert(ticket, item);
            }
        }
        if waiters.is_empty() {
            self.waiters.remove(key);
        }
        if list.items.is_empty() {
            self.lists.remove(key);
        }
    }

    fn pop_front(&mut self, key: &str, now: SystemTime) -> Option<Vec<u8>> {
        let list = self.live(key, now)?;
        let item = list.items.pop_front();
        if list.items.is_empty() {
            self.lists.remove(key);
        }
        item
    }
}

impl ListStore for MemoryStore {
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        let now = self.shared.clock.now();
        let mut state = self.begin()?;
        if values.is_empty() {
            return Err(StoreError::Command {
                addr: ADDR.into(),
                message: "ERR wrong number of arguments for 'rpush' command".into(),
            });
        }
        state.live(key, now);
        let list = state.lists.entry(key.to_owned()).or_insert_with(|| List {
            items: VecDeque::new(),
            expires_at: None,
        });
        list.items.extend(values.iter().map(|value| value.to_vec()));
        let len = list.items.len() as u64;
        if let Some(ttl) = ttl {
            let millis = ttl_millis(ttl);
            if millis == 0 {
                // Like PEXPIRE with 0: the key is deleted at once.
                state.lists.remove(key);
            } else {
                list.expires_at = Some(now + Duration::from_millis(millis));
            }
        }
        state.serve_waiters(key);
        drop(state);
        self.shared.pushed.notify_all();
        Ok(len)
    }

    fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.shared.clock.now();
        Ok(self.begin()?.pop_front(key, now))
    }

    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let clock = &self.shared.clock;
        let deadline = timeout.map(|timeout| clock.now() + timeout);
        let mut state = self.begin()?;
        if let Some(item) = state.pop_front(key, clock.now()) {
            return Ok(Some(item));
        }
        // Block: take a place in the key's queue; a push hands us an element.
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state
            .waiters
            .entry(key.to_owned())
            .or_default()
            .push_back(ticket);
        loop {
            if let Some(item) = state.handed.remove(&ticket) {
                return Ok(Some(item));
            }
            let now = clock.now();
            let remaining =
                deadline.map(|deadline| deadline.duration_since(now).unwrap_or_default());
            if remaining.is_some_and(|remaining| remaining.is_zero()) {
                if let Some(waiters) = state.waiters.get_mut(key) {
                    waiters.retain(|waiting| *waiting != ticket);
                    if waiters.is_empty() {
                        state.waiters.remove(key);
                    }
                }
                return Ok(None);
            }
            state = match remaining {
                None => self.shared.pushed.wait(state),
                Some(remaining) => {
                    let wait = clock.recheck_after(remaining);
                    match self.shared.pushed.wait_timeout(state, wait) {
                        Ok((state, _)) => Ok(state),
                        Err(poisoned) => Err(PoisonError::new(poisoned.into_inner().0)),
                    }
                }
            }
            .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.shared.clock.now();
        let mut state = self.begin()?;
        let Some(list) = state.live(key, now) else {
            return Ok(None);
        };
        let len = list.items.len() as i64;
        let position = if index < 0 { len + index } else { index };
        Ok(usize::try_from(position)
            .ok()
            .and_then(|position| list.items.get(position))
            .cloned())
    }

    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.shared.clock.now();
        let mut state = self.begin()?;
        state.live(key, now);
        Ok(state
            .lists
            .remove(key)
            .and_then(|mut list| list.items.pop_back()))
    }

    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let now = self.shared.clock.now();
        let mut state = self.begin()?;
        state.lists.retain(|_, list| !list.expired(now));
        Ok(state
            .lists
            .keys()
            .filter(|key| glob::matches(pattern, key))
            .cloned()
            .collect())
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.begin().map(drop)
    }
}
