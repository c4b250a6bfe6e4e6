//! Time as a dependency: [`Clock`], [`SystemClock`] and [`ManualClock`].
//!
//! Every part of the crate that reads the time or sleeps (TTLs and blocking
//! timeouts in [`MemoryStore`](crate::MemoryStore), request signing, the
//! in-memory proxy, retry backoff) asks a [`Clock`]. Production code uses
//! [`SystemClock`]; tests use [`ManualClock`] and never wait on the wall clock.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use redisutil::{Clock, ManualClock};
//!
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
//! clock.advance(Duration::from_secs(5));
//! assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_005));
//!
//! // Sleeping on a manual clock moves it forward and returns at once.
//! clock.sleep(Duration::from_secs(60));
//! assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_065));
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
use std::time::{Duration, SystemTime};

/// A source of wall-clock time that can also sleep.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Sleeps for `duration` (a manual clock advances instead).
    fn sleep(&self, duration: Duration);

    /// How long a waiter may block on a real condition variable before it
    /// must read [`now`](Clock::now) again, when `remaining` is left until
    /// its deadline on this clock.
    ///
    /// The system clock answers `remaining`; a manual clock, whose time
    /// moves only when a test says so, answers a short tick.
    fn recheck_after(&self, remaining: Duration) -> Duration {
        remaining
    }

    /// Whether [`sleep`](Clock::sleep) waits in real time. Async code asks
    /// it before a pause: a clock that sleeps for real is waited on with
    /// the runtime's timer (never blocking a runtime thread), one that does
    /// not (a [`ManualClock`]) is simply told to sleep, which moves it
    /// forward at once. Default `true`.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::{Clock, ManualClock, SystemClock};
    ///
    /// assert!(SystemClock.sleeps_for_real());
    /// assert!(!ManualClock::default().sleeps_for_real());
    /// ```
    fn sleeps_for_real(&self) -> bool {
        true
    }

    /// Asks the clock to wake `waker` the next time it is moved, for an
    /// async wait on its time; `false` when it does not (its time moves by
    /// itself: a timer is the way to wait on it). The system clock answers
    /// `false`; a manual clock wakes every waker given since its last move
    /// when [`advance`](ManualClock::advance) or
    /// [`set`](ManualClock::set) moves it.
    fn wake_when_moved(&self, waker: &Waker) -> bool {
        let _ = waker;
        false
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock that moves only when told to: by [`advance`](ManualClock::advance),
/// [`set`](ManualClock::set), or a [`sleep`](Clock::sleep) on it.
///
/// Clones share the same time, so a test keeps one clone and hands another
/// to the component under test.
///
/// A blocking call on such a clock (a [`MemoryStore`](crate::MemoryStore)
/// pop with a timeout) waits until another thread pushes or moves the
/// clock. A single-threaded test, where nobody else can, uses
/// [`auto_advancing`](ManualClock::auto_advancing): like tokio's paused
/// time, a wait with a deadline then moves the clock to that deadline at
/// once.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
    /// The async waits to wake when the clock moves.
    wakers: Arc<Mutex<Vec<Waker>>>,
    auto_advance: bool,
}

impl ManualClock {
    /// A clock that reads `start` until it is moved.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
            wakers: Arc::new(Mutex::new(Vec::new())),
            auto_advance: false,
        }
    }

    /// A clock that reads `start`, and that a waiter with a deadline moves
    /// to its deadline at once instead of blocking: for single-threaded
    /// tests, where no other thread would ever move it. A wait without a
    /// deadline still waits for a push.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use redisutil::{Clock, ManualClock, MemoryStore, Peer, RedisChannel};
    ///
    /// let clock = ManualClock::auto_advancing(UNIX_EPOCH);
    /// let store = MemoryStore::with_clock(clock.clone());
    /// let chan = RedisChannel::new(store, "/jobs", Peer::Server)?;
    /// // No one sends: the receive times out at once, on the clock's time.
    /// assert_eq!(chan.brecv_msg::<u32>(Duration::from_secs(30))?, None);
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(30));
    /// # Ok::<(), redisutil::ChannelError>(())
    /// ```
    pub fn auto_advancing(start: SystemTime) -> Self {
        Self {
            auto_advance: true,
            ..Self::new(start)
        }
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Panics
    ///
    /// When the time would pass the end of what [`SystemTime`] holds.
    pub fn advance(&self, by: Duration) {
        {
            let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
            *now = now
                .checked_add(by)
                .expect("a ManualClock advanced past the end of SystemTime");
        }
        self.moved();
    }

    /// Sets the clock to `to` (which may be in its past).
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
        self.moved();
    }

    /// Wakes the async waits on this clock's time.
    fn moved(&self) {
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in wakers {
            waker.wake();
        }
    }
}

impl Default for ManualClock {
    /// A manual clock starting at 2020-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }

    fn sleeps_for_real(&self) -> bool {
        false
    }

    fn wake_when_moved(&self, waker: &Waker) -> bool {
        let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if !wakers.iter().any(|given| given.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        true
    }

    fn recheck_after(&self, remaining: Duration) -> Duration {
        if self.auto_advance {
            self.advance(remaining);
            return Duration::ZERO;
        }
        Duration::from_millis(1)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn sleep(&self, duration: Duration) {
        (**self).sleep(duration);
    }

    fn recheck_after(&self, remaining: Duration) -> Duration {
        (**self).recheck_after(remaining)
    }

    fn sleeps_for_real(&self) -> bool {
        (**self).sleeps_for_real()
    }

    fn wake_when_moved(&self, waker: &Waker) -> bool {
        (**self).wake_when_moved(waker)
    }
}
