//! The data of a [`MemoryStore`](super::MemoryStore) and Redis's rules on
//! it: lists and strings, TTLs, blocked pops served in order, and the
//! errors Redis gives.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::super::fault::{ADDR, Fault};
use super::super::lease::{DeadLetter, LeaseKeys, place_id};
use super::super::{StoreError, ttl_millis, wait_limit};

#[derive(Default)]
pub(super) struct State {
    pub(super) lists: HashMap<String, List>,
    /// Keys holding a string (SET), which list operations refuse.
    pub(super) strings: HashMap<String, Vec<u8>>,
    /// How many of the next calls fail, and how.
    pub(super) faults: u64,
    pub(super) fault: Option<Fault>,
    /// Blocked pops per key, by ticket and how many elements each takes,
    /// in the order they blocked.
    pub(super) waiters: HashMap<String, VecDeque<(u64, usize)>>,
    /// Elements a push handed to a blocked pop, by its ticket.
    pub(super) handed: HashMap<u64, Vec<Vec<u8>>>,
    pub(super) next_ticket: u64,
    /// The lease keys of each list that has any, by the list's key.
    pub(super) leases: HashMap<String, Leases>,
}

pub(super) struct List {
    pub(super) items: VecDeque<Vec<u8>>,
    pub(super) expires_at: Option<SystemTime>,
}

/// When a blocking wait from `now` ends: `None` without limit, as for a
/// timeout too long for the clock (saturating, never overflowing).
pub(super) fn deadline(now: SystemTime, timeout: Option<Duration>) -> Option<SystemTime> {
    wait_limit(timeout).and_then(|timeout| now.checked_add(timeout))
}

/// What is left from `now` of a wait that ends at `deadline` (`None`:
/// without limit); zero once it has passed.
pub(super) fn remaining(deadline: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    deadline.map(|deadline| deadline.duration_since(now).unwrap_or_default())
}

/// An error the server answered, as Redis words it.
pub(super) fn command_error(message: &str) -> StoreError {
    StoreError::Command {
        addr: ADDR.into(),
        message: message.into(),
    }
}

/// What Redis answers a list command on a key of another type.
pub(super) fn wrong_type() -> StoreError {
    command_error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

/// When a list given `ttl` at `now` expires, or the error Redis's PEXPIRE
/// gives for it: it refuses a deadline beyond `i64::MAX` milliseconds.
pub(super) fn expiry(now: SystemTime, ttl: Duration) -> Result<SystemTime, StoreError> {
    let millis = ttl_millis(ttl);
    let Ok(millis) = i64::try_from(millis) else {
        return Err(command_error("ERR value is not an integer or out of range"));
    };
    let now_millis = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    });
    if millis > i64::MAX - now_millis {
        return Err(command_error(
            "ERR invalid expire time in 'pexpire' command",
        ));
    }
    // Within i64 milliseconds of the epoch: representable.
    Ok(now + Duration::from_millis(millis.unsigned_abs()))
}

impl List {
    /// Redis keeps a key up to and including its expiry millisecond.
    pub(super) fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| now > at)
    }
}

impl State {
    /// The list at `key`, after dropping it if it has expired.
    pub(super) fn live(&mut self, key: &str, now: SystemTime) -> Option<&mut List> {
        if self.lists.get(key).is_some_and(|list| list.expired(now)) {
            self.lists.remove(key);
        }
        self.lists.get_mut(key)
    }

    /// Like Redis after a push: hands elements to the pops blocked on
    /// `key`, longest waiting first, before any other call can see them.
    pub(super) fn serve_waiters(&mut self, key: &str) {
        let (Some(waiters), Some(list)) = (self.waiters.get_mut(key), self.lists.get_mut(key))
        else {
            return;
        };
        while !list.items.is_empty() {
            let Some((ticket, count)) = waiters.pop_front() else {
                break;
            };
            let taken = count.min(list.items.len());
            self.handed
                .insert(ticket, list.items.drain(..taken).collect());
        }
        if waiters.is_empty() {
            self.waiters.remove(key);
        }
        if list.items.is_empty() {
            self.lists.remove(key);
        }
    }

    pub(super) fn take_last(&mut self, key: &str, now: SystemTime) -> Option<Vec<u8>> {
        self.live(key, now);
        self.lists
            .remove(key)
            .and_then(|mut list| list.items.pop_back())
    }

    /// Up to `count` elements from the head (LPOP with a count).
    pub(super) fn pop_front_many(
        &mut self,
        key: &str,
        count: usize,
        now: SystemTime,
    ) -> Vec<Vec<u8>> {
        let Some(list) = self.live(key, now) else {
            return Vec::new();
        };
        let taken = count.min(list.items.len());
        let items = list.items.drain(..taken).collect();
        if list.items.is_empty() {
            self.lists.remove(key);
        }
        items
    }

    pub(super) fn pop_front(&mut self, key: &str, now: SystemTime) -> Option<Vec<u8>> {
        let list = self.live(key, now)?;
        let item = list.items.pop_front();
        if list.items.is_empty() {
            self.lists.remove(key);
        }
        item
    }
}

/// A sorted set of members by a millisecond score, as Redis orders one.
#[derive(Default)]
pub(super) struct ZSet {
    pub(super) ordered: BTreeSet<(u64, String)>,
    pub(super) scores: HashMap<String, u64>,
}

impl ZSet {
    pub(super) fn add(&mut self, score: u64, member: String) {
        if let Some(old) = self.scores.insert(member.clone(), score) {
            self.ordered.remove(&(old, member.clone()));
        }
        self.ordered.insert((score, member));
    }

    pub(super) fn remove(&mut self, member: &str) -> Option<u64> {
        let score = self.scores.remove(member)?;
        self.ordered.remove(&(score, member.to_owned()));
        Some(score)
    }

    pub(super) fn score(&self, member: &str) -> Option<u64> {
        self.scores.get(member).copied()
    }

    /// The lowest member scored at most `max`.
    pub(super) fn first_due(&self, max: u64) -> Option<String> {
        self.ordered
            .iter()
            .next()
            .filter(|(score, _)| *score <= max)
            .map(|(_, member)| member.clone())
    }
}

/// The messages one leased receive took, as the scripts keep them.
pub(super) struct Unit {
    pub(super) bodies: Vec<Vec<u8>>,
    pub(super) attempts: Vec<u32>,
    pub(super) ids: Vec<String>,
    /// How many deliveries the call acked (for a call sent again).
    pub(super) acked: u64,
    pub(super) state: Vec<u8>,
}

impl Unit {
    pub(super) fn id(&self, name: &str, j: usize) -> String {
        match self.ids[j].as_str() {
            "" => place_id(name, j as u32 + 1),
            id => id.to_owned(),
        }
    }
}

/// The lease keys of one list: pending, records, dead letters.
#[derive(Default)]
pub(super) struct Leases {
    pub(super) pending: ZSet,
    pub(super) units: HashMap<String, Unit>,
    pub(super) dead: VecDeque<DeadLetter>,
    /// The last dead letter's stream id (ms, sequence).
    pub(super) last_dead: (u64, u64),
    /// Ack markers by unit: how many a call that leased nothing acked, and
    /// when the marker expires.
    pub(super) markers: HashMap<String, (u64, u64)>,
}

/// A list's lease state, as the lease operations reach it.
impl State {
    /// Deletes the lease key `key` (DEL, or SET over it), when it is one:
    /// the part of a list's lease state it holds is gone, as in Redis.
    /// Whether it existed.
    pub(super) fn drop_lease_key(&mut self, key: &str) -> bool {
        let mut existed = false;
        for (list, leases) in &mut self.leases {
            let Some(keys) = LeaseKeys::for_list(list) else {
                continue;
            };
            if key == keys.pending() {
                existed |= !leases.pending.scores.is_empty();
                leases.pending = ZSet::default();
            } else if key == keys.bodies() {
                existed |= !leases.units.is_empty();
                leases.units.clear();
            } else if key == keys.dead() {
                existed |= !leases.dead.is_empty();
                leases.dead.clear();
            } else if let Some(unit) = key.strip_prefix(&keys.ack_marker("")) {
                existed |= leases.markers.remove(unit).is_some();
            }
        }
        self.leases.retain(|_, leases| !leases.is_empty());
        existed
    }

    /// The lease state of `keys`' list, created empty.
    pub(super) fn leases_of(&mut self, keys: &LeaseKeys) -> &mut Leases {
        self.leases.entry(keys.list().to_owned()).or_default()
    }

    /// Drops the lease state of `keys`' list when it holds nothing, as
    /// Redis deletes an empty key.
    pub(super) fn tidy_leases(&mut self, keys: &LeaseKeys, now: u64) {
        if let Some(leases) = self.leases.get_mut(keys.list()) {
            leases.markers.retain(|_, (_, expires)| *expires > now);
            if leases.is_empty() {
                self.leases.remove(keys.list());
            }
        }
    }

    /// Appends `values` to the list `key`, serving its blocked pops.
    pub(super) fn append(&mut self, key: &str, values: Vec<Vec<u8>>, now: SystemTime) {
        self.live(key, now);
        let list = self.lists.entry(key.to_owned()).or_insert_with(|| List {
            items: VecDeque::new(),
            expires_at: None,
        });
        list.items.extend(values);
        self.serve_waiters(key);
    }
}
