//! Leases: the [`LeaseStore`] trait behind at-least-once delivery, and the
//! keys it keeps beside a channel's list.
//!
//! A leased receive takes messages from the head of a list, as a pop does,
//! but keeps each one in the store under a delivery id until it is
//! acknowledged. A message whose lease runs out, or that is refused
//! ([`nack`](LeaseStore::nack)), waits to be delivered again; one that has
//! been delivered `max_deliveries` times without an ack goes to a list of
//! dead letters instead. The list itself stays as it is (the wire format of
//! the Python original); the lease state lives in three keys named after it
//! ([`LeaseKeys`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{ListStore, StoreError, WAITS_FOREVER, ttl_millis};

mod values;
pub use values::*;

/// The keys of a list's lease state, each in the list's Redis Cluster slot.
///
/// For a list `L` without a hash tag they are:
///
/// - `{L}:pending`, a sorted set of the leased receives whose messages are
///   not all settled: each receive's messages are one unit, `<unit>` while
///   in flight until its score (a deadline in ms since 1970), `<unit>+`
///   once they wait to be delivered again from its score on;
/// - `{L}:body`, a hash of each unit's record (its messages, their attempts
///   and ids) and state (which of them it still holds);
/// - `{L}:dead`, a stream of dead letters: each entry holds the message's
///   `id`, its `deliveries`, the `reason` it died and its `body`, and the
///   entry's id tells when.
///
/// `{L}` makes the cluster hash them by `L`, as it hashes `L` itself. When
/// `L` has a hash tag of its own (`/{jobs}/a/server`), they are
/// `L:pending` and so on, which keep it.
///
/// Channel lists end in `/client` or `/server`; these end in a `:` word,
/// so no channel list and no lease key share a name. A list that cannot
/// share its slot this way (one with a `}` but no hash tag, such as
/// `/a}b/server`) has no lease keys.
///
/// ```
/// use redisutil::store::LeaseKeys;
///
/// let keys = LeaseKeys::for_list("/jobs/server").unwrap();
/// assert_eq!(keys.pending(), "{/jobs/server}:pending");
/// assert_eq!(keys.dead(), "{/jobs/server}:dead");
/// let tagged = LeaseKeys::for_list("/{jobs}/a/server").unwrap();
/// assert_eq!(tagged.bodies(), "/{jobs}/a/server:body");
/// assert!(LeaseKeys::for_list("/a}b/server").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseKeys {
    keys: Arc<[String; 4]>,
}

impl LeaseKeys {
    /// The lease keys of the list `list`; `None` when they could not share
    /// its cluster slot.
    pub fn for_list(list: &str) -> Option<Self> {
        let stem = if hash_tag(list).is_some() {
            list.to_owned()
        } else if list.contains('}') {
            return None;
        } else {
            format!("{{{list}}}")
        };
        let key = |suffix: &str| format!("{stem}:{suffix}");
        Some(Self {
            keys: Arc::new([list.to_owned(), key("pending"), key("body"), key("dead")]),
        })
    }

    /// The list messages are leased from.
    pub fn list(&self) -> &str {
        &self.keys[0]
    }

    /// The sorted set of the units in flight and waiting to be delivered
    /// again.
    pub fn pending(&self) -> &str {
        &self.keys[1]
    }

    /// The hash of the units' records.
    pub fn bodies(&self) -> &str {
        &self.keys[2]
    }

    /// The stream of dead letters.
    pub fn dead(&self) -> &str {
        &self.keys[3]
    }

    /// The key that remembers, for a while, how many deliveries the lease
    /// call `unit` acked when it leased nothing (so that the call sent again
    /// answers the same).
    pub(crate) fn ack_marker(&self, unit: &str) -> String {
        let stem = self.keys[1]
            .strip_suffix(":pending")
            .unwrap_or(&self.keys[1]);
        format!("{stem}:acked:{unit}")
    }

    /// All four keys, the list first, in the order the scripts take them.
    pub(crate) fn all(&self) -> &[String; 4] {
        &self.keys
    }
}

/// The hash tag of `key`: what Redis Cluster hashes instead of the whole key.
pub(crate) fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = open + 1 + key[open + 1..].find('}')?;
    (close > open + 1).then(|| &key[open + 1..close])
}

/// The lease operations behind at-least-once delivery, each one atomic
/// step on the store, on the keys [`LeaseKeys`] names.
///
/// Time is the store's own: the server's clock for Redis (so consumers on
/// machines whose clocks disagree see the same deadlines), the injected
/// [`Clock`](crate::Clock) for [`MemoryStore`](crate::MemoryStore).
/// A lease whose deadline has come is *expired*: the message is due again,
/// like one waiting after a [`nack`](LeaseStore::nack) whose time has
/// come, and the next [`lease`](LeaseStore::lease) on the list takes it (or
/// moves it to the dead letters once delivered `max_deliveries` times),
/// without a daemon. A key of another type fails with `WRONGTYPE` and
/// changes nothing.
///
/// [`RedisChannel`](crate::RedisChannel)'s leased receive is the usual way
/// in; the trait is what it runs on:
///
/// ```
/// use redisutil::{LeaseStore, ListStore, MemoryStore};
/// use redisutil::store::{LeaseKeys, LeasePolicy};
/// use std::time::Duration;
///
/// let store = MemoryStore::new();
/// store.push("/jobs/server", &[b"\"a\""], None)?;
/// let keys = LeaseKeys::for_list("/jobs/server").unwrap();
/// let policy = LeasePolicy { lease: Duration::from_secs(30), max_deliveries: 5 };
///
/// let leased = store.lease(&keys, 10, policy)?;
/// assert_eq!(leased.len(), 1);
/// assert_eq!(leased[0].body, b"\"a\"");
/// assert_eq!(store.ack(&keys, &[leased[0].tag.clone()])?, 1);
/// assert!(store.lease(&keys, 10, policy)?.is_empty());
/// # Ok::<(), redisutil::StoreError>(())
/// ```
pub trait LeaseStore: ListStore {
    /// Leases up to `count` messages: first the pending ones that are due
    /// (expired leases and retries whose time has come), by when they
    /// became due, then the head of the list. Each is delivered with its
    /// attempt count raised and a deadline `policy.lease` from now; a due
    /// one already delivered `policy.max_deliveries` times goes to the dead
    /// letters instead. One round trip.
    fn lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> Result<Vec<Leased>, StoreError> {
        Ok(self.ack_and_lease(keys, &[], count, policy)?.1)
    }

    /// [`ack`](LeaseStore::ack)s `tags`, then [`lease`](LeaseStore::lease)s,
    /// in one atomic step and one round trip: a consumer's loop settles the
    /// message it has done and takes the next at once. Returns how many
    /// were acked, and the leased messages.
    fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError>;

    /// Like [`lease`](LeaseStore::lease), but waits up to `timeout`
    /// (`None`, or 100 years or more: without limit) for a message to send,
    /// to come back from an expired lease, or to be due again. Empty when
    /// the time passed.
    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError>;

    /// Settles deliveries for good: each message still held by its
    /// delivery (in flight, even past its deadline, or waiting to be
    /// delivered again after that delivery) is deleted. Returns how many
    /// were. One round trip for all.
    fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError>;

    /// Ends a delivery without an ack: the message may be delivered again
    /// `delay` from now, or becomes a dead letter when it has been
    /// delivered `max_deliveries` times.
    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError>;

    /// Moves the deadline of a lease still in flight (not yet reclaimed) to
    /// `lease` from now; `None` when the delivery no longer holds it.
    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError>;

    /// Hands deliveries still in flight back without counting them: each
    /// message waits to be delivered again from now, first in line (before
    /// the list's head), with its attempt as if this delivery had not
    /// happened, so a delivery nobody processed does not spend one of its
    /// `max_deliveries`. For a receive cancelled after it leased, and a
    /// consumer shutting down with messages it has not started. Returns
    /// how many were handed back.
    fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError>;

    /// Moves a message still in flight under `tag` to the dead letters at
    /// once, for `reason` (a message that does not decode, one a consumer
    /// refuses for good). Whether it was there.
    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError>;

    /// Moves every expired lease to wait to be delivered again, or to the
    /// dead letters after `max_deliveries`, and returns how many messages it
    /// moved. Leasing does this by itself for the messages it takes; this
    /// settles them all at once (one step, over every due message).
    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError>;

    /// Up to `max` dead letters, oldest first, left in place.
    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Moves the dead letters `pick` names back to the tail of the list, as
    /// new messages; returns how many.
    fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError>;

    /// Deletes the dead letters `pick` names; returns how many there were.
    fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError>;

    /// The whole lease state, in one atomic read (for tests and operators:
    /// its size is the state's).
    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError>;

    /// How many messages wait in the list, are in flight, wait to be
    /// delivered again and are dead, in one atomic read.
    fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError>;
}

/// A store behind a shared pointer or a reference is a lease store.
macro_rules! forward_lease_store {
    ($($pointer:ty),*) => {$(
        impl<S: LeaseStore + ?Sized> LeaseStore for $pointer {
            fn lease(&self, keys: &LeaseKeys, count: usize, policy: LeasePolicy) -> Result<Vec<Leased>, StoreError> {
                (**self).lease(keys, count, policy)
            }
            fn ack_and_lease(&self, keys: &LeaseKeys, tags: &[DeliveryTag], count: usize, policy: LeasePolicy) -> Result<(u64, Vec<Leased>), StoreError> {
                (**self).ack_and_lease(keys, tags, count, policy)
            }
            fn blocking_lease(&self, keys: &LeaseKeys, count: usize, policy: LeasePolicy, timeout: Option<Duration>) -> Result<Vec<Leased>, StoreError> {
                (**self).blocking_lease(keys, count, policy, timeout)
            }
            fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
                (**self).ack(keys, tags)
            }
            fn nack(&self, keys: &LeaseKeys, tag: &DeliveryTag, delay: Duration, max_deliveries: u32) -> Result<Nacked, StoreError> {
                (**self).nack(keys, tag, delay, max_deliveries)
            }
            fn extend(&self, keys: &LeaseKeys, tag: &DeliveryTag, lease: Duration) -> Result<Option<SystemTime>, StoreError> {
                (**self).extend(keys, tag, lease)
            }
            fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
                (**self).release(keys, tags)
            }
            fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag, reason: DeadReason) -> Result<bool, StoreError> {
                (**self).dead_letter(keys, tag, reason)
            }
            fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
                (**self).reclaim(keys, max_deliveries)
            }
            fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
                (**self).dead_letters(keys, max)
            }
            fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
                (**self).requeue_dead(keys, pick)
            }
            fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
                (**self).purge_dead(keys, pick)
            }
            fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
                (**self).lease_snapshot(keys)
            }
            fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
                (**self).lease_stats(keys)
            }
        }
    )*};
}

forward_lease_store!(&S, Arc<S>, Box<S>);

/// The largest batch one leased receive hands out: a receive asking for
/// more gets this many.
pub(crate) const MAX_LEASE_BATCH: usize = 4000;

/// Milliseconds of a lease, a delay or a deadline as the stores count them:
/// rounded up, at least 1 for a lease, at most 100 years.
pub(crate) fn lease_millis(duration: Duration) -> u64 {
    ttl_millis(duration.min(WAITS_FOREVER))
}

/// How long a blocking leased receive that found nothing waits before it
/// tries again: what is `left` of its timeout (`None`: no limit), but no
/// longer than until the first pending message is due, `next_due`
/// milliseconds from now (at least 1 ms: one due now still waits a moment,
/// never not at all). `None`: no limit, until a message is sent.
pub(crate) fn lease_wait(left: Option<Duration>, next_due: Option<u64>) -> Option<Duration> {
    let due = next_due.map(|due| Duration::from_millis(due.max(1)));
    match (left, due) {
        (Some(left), Some(due)) => Some(left.min(due)),
        (left, due) => left.or(due),
    }
}

/// Milliseconds since 1970 of `time` (0 before it).
pub(crate) fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The time `millis` after 1970.
pub(crate) fn from_epoch_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// A fresh id for one leased receive (its unit): 16 characters of
/// `[0-9A-Za-z]`, 95 bits from keyed SipHash over a process-wide counter,
/// the process id and the time, with keys std draws at random per
/// process: they never repeat, across processes too, but with negligible
/// odds. Its messages' ids are this id, `-`, and their place in it.
pub(crate) fn new_unit_id() -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let half = |salt: u8| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(salt);
        hasher.write_u64(count);
        hasher.write_u32(std::process::id());
        hasher.write_u128(nanos);
        hasher.finish()
    };
    let mut value = (u128::from(half(0)) << 64) | u128::from(half(1));
    (0..16)
        .map(|_| {
            let digit = DIGITS[(value % 62) as usize];
            value /= 62;
            char::from(digit)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_follow_redis_cluster() {
        assert_eq!(hash_tag("{user1000}.following"), Some("user1000"));
        assert_eq!(hash_tag("foo{}{bar}"), None);
        assert_eq!(hash_tag("foo{{bar}}zap"), Some("{bar"));
        assert_eq!(hash_tag("foo{bar}{zap}"), Some("bar"));
        assert_eq!(hash_tag("/a/{b"), None);
        assert_eq!(hash_tag("plain"), None);
    }

    #[test]
    fn lease_keys_hash_like_their_list() {
        for list in [
            "/a/server",
            "/{jobs}/a/client",
            "/a{/client",
            "/x{}y/server",
        ] {
            let keys = LeaseKeys::for_list(list);
            if list.contains('}') && hash_tag(list).is_none() {
                assert!(keys.is_none(), "{list}");
                continue;
            }
            let keys = keys.unwrap();
            let tag = hash_tag(list).unwrap_or(list);
            for key in &keys.all()[1..] {
                assert_eq!(hash_tag(key), Some(tag), "{key}");
                assert!(!key.ends_with("/client") && !key.ends_with("/server"));
            }
        }
    }

    #[test]
    fn a_leased_receive_waits_for_its_timeout_or_the_next_due_message() {
        let ms = Duration::from_millis;
        assert_eq!(lease_wait(None, None), None);
        assert_eq!(lease_wait(Some(ms(50)), None), Some(ms(50)));
        assert_eq!(lease_wait(None, Some(30)), Some(ms(30)));
        assert_eq!(lease_wait(Some(ms(50)), Some(30)), Some(ms(30)));
        assert_eq!(lease_wait(Some(ms(20)), Some(30)), Some(ms(20)));
        assert_eq!(lease_wait(None, Some(0)), Some(ms(1)), "due now");
        assert_eq!(
            lease_wait(Some(Duration::MAX), Some(u64::MAX)),
            Some(ms(u64::MAX))
        );
    }

    #[test]
    fn unit_ids_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_unit_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        );
    }
}
