//! The lease state of a [`MemoryStore`](super::MemoryStore), with the rules
//! of the lease scripts the real stores run: a sorted set ordered by score,
//! then member; whole milliseconds; a lease expired from its deadline on;
//! the same keys checked for their type by the same operations.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::MutexGuard;
use std::time::{Duration, SystemTime};

use super::super::StoreError;
use super::super::lease::{
    DeliveryTag, LeaseEntry, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStore, Leased,
    MAX_LEASE_BATCH, Nacked, epoch_millis, from_epoch_millis, lease_millis, lease_wait, member,
    new_id_prefix, parse_member,
};
use super::MemoryStore;
use super::state::{List, State, deadline, remaining, wrong_type};

/// The indexes of the keys in [`LeaseKeys::all`].
const LIST: usize = 0;
const PENDING: usize = 1;
const BODIES: usize = 2;
const DEAD: usize = 3;

/// A sorted set of members by a millisecond score, as Redis orders one.
#[derive(Default)]
struct ZSet {
    ordered: BTreeSet<(u64, String)>,
    scores: HashMap<String, u64>,
}

impl ZSet {
    fn add(&mut self, score: u64, member: String) {
        if let Some(old) = self.scores.insert(member.clone(), score) {
            self.ordered.remove(&(old, member.clone()));
        }
        self.ordered.insert((score, member));
    }

    fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(score) => self.ordered.remove(&(score, member.to_owned())),
            None => false,
        }
    }

    fn contains(&self, member: &str) -> bool {
        self.scores.contains_key(member)
    }

    /// Up to `limit` members scored at most `max`, lowest first.
    fn up_to(&self, max: u64, limit: usize) -> Vec<(u64, String)> {
        self.ordered
            .iter()
            .take_while(|(score, _)| *score <= max)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// The lease keys of one list: pending, bodies, dead letters.
#[derive(Default)]
pub(super) struct Leases {
    pending: ZSet,
    bodies: HashMap<String, Vec<u8>>,
    dead: VecDeque<Vec<u8>>,
}

impl Leases {
    /// The names of the keys that exist, as Redis would list them.
    pub(super) fn existing<'k>(&self, keys: &'k LeaseKeys) -> Vec<&'k str> {
        let present = [
            !self.pending.scores.is_empty(),
            !self.bodies.is_empty(),
            !self.dead.is_empty(),
        ];
        keys.all()[1..]
            .iter()
            .zip(present)
            .filter(|(_, present)| *present)
            .map(|(key, _)| key.as_str())
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.pending.scores.is_empty() && self.bodies.is_empty() && self.dead.is_empty()
    }

    /// Moves the bodies of `ids` to the dead letters, in order.
    fn bury(&mut self, ids: &[String]) {
        for id in ids {
            if let Some(body) = self.bodies.remove(id) {
                self.dead.push_back(body);
            }
        }
    }

    /// Deletes each message still held by its delivery; how many.
    fn ack(&mut self, tags: &[DeliveryTag]) -> u64 {
        let mut acked = 0;
        for tag in tags {
            let held = self.pending.remove(&member(&tag.id, tag.attempt, false))
                | self.pending.remove(&member(&tag.id, tag.attempt, true));
            if held {
                self.bodies.remove(&tag.id);
                acked += 1;
            }
        }
        acked
    }

    /// Leases up to `count` due pending messages at `deadline`, burying
    /// those delivered `max` times: (id, attempt, body).
    fn lease_due(
        &mut self,
        now: u64,
        count: usize,
        max: u32,
        deadline: u64,
    ) -> Vec<(String, u32, Vec<u8>)> {
        let mut leased = Vec::new();
        while leased.len() < count {
            let due = self.pending.up_to(now, count - leased.len());
            if due.is_empty() {
                break;
            }
            let mut exhausted = Vec::new();
            for (_, due_member) in &due {
                self.pending.remove(due_member);
                let Some((id, attempt, _)) = parse_member(due_member) else {
                    continue;
                };
                if attempt >= max {
                    exhausted.push(id.to_owned());
                } else if let Some(body) = self.bodies.get(id) {
                    // One whose body is gone cannot come back.
                    leased.push((id.to_owned(), attempt + 1, body.clone()));
                    self.pending.add(deadline, member(id, attempt + 1, false));
                }
            }
            self.bury(&exhausted);
        }
        leased
    }

    /// Milliseconds from `now` until the first pending message is due.
    fn next_due(&self, now: u64) -> Option<u64> {
        let (first, _) = self.pending.ordered.first()?;
        Some(first.saturating_sub(now))
    }

    /// `None` when not in flight, else whether it went to the dead letters.
    fn nack(&mut self, tag: &DeliveryTag, at: u64, max: u32) -> Option<bool> {
        if !self.pending.remove(&member(&tag.id, tag.attempt, false)) {
            return None;
        }
        if tag.attempt >= max {
            self.bury(std::slice::from_ref(&tag.id));
            return Some(true);
        }
        self.pending.add(at, member(&tag.id, tag.attempt, true));
        Some(false)
    }

    fn extend(&mut self, tag: &DeliveryTag, deadline: u64) -> bool {
        let in_flight = member(&tag.id, tag.attempt, false);
        if !self.pending.contains(&in_flight) {
            return false;
        }
        self.pending.add(deadline, in_flight);
        true
    }

    fn dead_letter(&mut self, tag: &DeliveryTag) -> bool {
        if !self.pending.remove(&member(&tag.id, tag.attempt, false)) {
            return false;
        }
        self.bury(std::slice::from_ref(&tag.id));
        true
    }

    /// Every expired lease waits (at its deadline) or is buried; how many.
    fn reclaim(&mut self, now: u64, max: u32) -> u64 {
        let mut expired = 0;
        let mut exhausted = Vec::new();
        for (at, due_member) in self.pending.up_to(now, usize::MAX) {
            let Some((id, attempt, false)) = parse_member(&due_member) else {
                continue;
            };
            let id = id.to_owned();
            self.pending.remove(&due_member);
            expired += 1;
            if attempt >= max {
                exhausted.push(id);
            } else {
                self.pending.add(at, member(&id, attempt, true));
            }
        }
        self.bury(&exhausted);
        expired
    }

    fn snapshot(&self) -> LeaseSnapshot {
        let mut snapshot = LeaseSnapshot {
            dead: self.dead.iter().cloned().collect(),
            ..LeaseSnapshot::default()
        };
        for (at, pending) in &self.pending.ordered {
            let Some((id, attempt, waiting)) = parse_member(pending) else {
                continue;
            };
            let entry = LeaseEntry {
                tag: DeliveryTag {
                    id: id.to_owned(),
                    attempt,
                },
                at: from_epoch_millis(*at),
                body: self.bodies.get(id).cloned().unwrap_or_default(),
            };
            if waiting {
                snapshot.retrying.push(entry);
            } else {
                snapshot.in_flight.push(entry);
            }
        }
        snapshot
    }
}

impl State {
    /// The lease state of `keys`' list, created empty.
    fn leases_of(&mut self, keys: &LeaseKeys) -> &mut Leases {
        self.leases.entry(keys.list().to_owned()).or_default()
    }

    /// Drops the lease state of `keys`' list when it holds nothing, as
    /// Redis deletes an empty key.
    fn tidy_leases(&mut self, keys: &LeaseKeys) {
        if self.leases.get(keys.list()).is_some_and(Leases::is_empty) {
            self.leases.remove(keys.list());
        }
    }
}

/// The lease operations, each under one lock: one atomic step, like the
/// scripts of the real stores.
impl MemoryStore {
    /// Locks the state for a lease operation that touches the keys at
    /// `touched`, refusing one of another type: a string anywhere, a list
    /// where the sorted set or the hash belongs.
    fn begin_lease(
        &self,
        keys: &LeaseKeys,
        touched: &[usize],
    ) -> Result<MutexGuard<'_, State>, StoreError> {
        let state = self.lock();
        let foreign = touched.iter().any(|&index| {
            let key = &keys.all()[index];
            state.strings.contains_key(key)
                || (matches!(index, PENDING | BODIES) && state.lists.contains_key(key))
        });
        if foreign {
            return Err(wrong_type());
        }
        Ok(state)
    }

    fn now_millis(&self) -> u64 {
        epoch_millis(self.shared.clock.now())
    }

    /// One ack-and-lease step; how many were acked, the leased messages,
    /// and when something may be due.
    fn lease_step(
        &self,
        state: &mut State,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> (u64, Vec<Leased>, Option<u64>) {
        let now = self.now_millis();
        let count = count.min(MAX_LEASE_BATCH);
        let deadline = now + lease_millis(policy.lease).max(1);
        let leases = state.leases_of(keys);
        let acked = leases.ack(tags);
        let mut leased = leases.lease_due(now, count, policy.max_deliveries, deadline);
        let left = count - leased.len();
        if left > 0 {
            let popped = state.pop_front_many(keys.list(), left, self.shared.clock.now());
            let prefix = new_id_prefix();
            let leases = state.leases_of(keys);
            for (place, body) in popped.into_iter().enumerate() {
                let id = format!("{prefix}-{}", place + 1);
                leases.bodies.insert(id.clone(), body.clone());
                leases.pending.add(deadline, member(&id, 1, false));
                leased.push((id, 1, body));
            }
        }
        let next_due = state.leases_of(keys).next_due(now);
        state.tidy_leases(keys);
        let leased = leased
            .into_iter()
            .map(|(id, attempt, body)| Leased {
                tag: DeliveryTag { id, attempt },
                deadline: from_epoch_millis(deadline),
                body,
            })
            .collect();
        (acked, leased, next_due)
    }

    fn exec_blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        let clock = &self.shared.clock;
        let deadline = deadline(clock.now(), timeout);
        let mut state = self.begin_lease(keys, &[LIST, PENDING, BODIES, DEAD])?;
        loop {
            let (_, leased, next_due) = self.lease_step(&mut state, keys, &[], count, policy);
            if !leased.is_empty() {
                return Ok(leased);
            }
            let now = clock.now();
            let remaining = remaining(deadline, now);
            if remaining.is_some_and(|remaining| remaining.is_zero()) {
                return Ok(Vec::new());
            }
            drop(self.wait(state, lease_wait(remaining, next_due)));
            state = self.begin_lease(keys, &[LIST, PENDING, BODIES, DEAD])?;
        }
    }

    /// One look of a blocking lease: what it leased, and in how many
    /// milliseconds a pending message is due (the wait before the next).
    #[cfg(feature = "tokio")]
    pub(super) fn try_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(Vec<Leased>, Option<u64>), StoreError> {
        let mut state = self.begin_lease(keys, &[LIST, PENDING, BODIES, DEAD])?;
        let (_, leased, next_due) = self.lease_step(&mut state, keys, &[], count, policy);
        Ok((leased, next_due))
    }

    /// Runs `step` on the list's lease state, after checking the keys at
    /// `touched`, then drops the state if it is left empty.
    fn with_leases<T>(
        &self,
        keys: &LeaseKeys,
        touched: &[usize],
        step: impl FnOnce(&mut Leases, u64) -> T,
    ) -> Result<T, StoreError> {
        let now = self.now_millis();
        let mut state = self.begin_lease(keys, touched)?;
        let outcome = step(state.leases_of(keys), now);
        state.tidy_leases(keys);
        Ok(outcome)
    }
}

impl LeaseStore for MemoryStore {
    fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        if count == 0 {
            return Ok((self.ack(keys, tags)?, Vec::new()));
        }
        self.run(|| {
            let mut state = self.begin_lease(keys, &[LIST, PENDING, BODIES, DEAD])?;
            let (acked, leased, _) = self.lease_step(&mut state, keys, tags, count, policy);
            Ok((acked, leased))
        })
    }

    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.run(|| self.exec_blocking_lease(keys, count, policy, timeout))
    }

    fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        if tags.is_empty() {
            return Ok(0);
        }
        self.run(|| self.with_leases(keys, &[PENDING, BODIES], |leases, _| leases.ack(tags)))
    }

    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        let nacked = self.run(|| {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, now| {
                match leases.nack(tag, now + lease_millis(delay), max_deliveries) {
                    None => Nacked::NotHeld,
                    Some(false) => Nacked::Retrying,
                    Some(true) => Nacked::DeadLettered,
                }
            })
        })?;
        self.notify_pushed();
        Ok(nacked)
    }

    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        self.run(|| {
            self.with_leases(keys, &[PENDING], |leases, now| {
                let deadline = now + lease_millis(lease).max(1);
                leases
                    .extend(tag, deadline)
                    .then(|| from_epoch_millis(deadline))
            })
        })
    }

    fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag) -> Result<bool, StoreError> {
        self.run(|| {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, _| {
                leases.dead_letter(tag)
            })
        })
    }

    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        let moved = self.run(|| {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, now| {
                leases.reclaim(now, max_deliveries)
            })
        })?;
        self.notify_pushed();
        Ok(moved)
    }

    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.run(|| {
            self.with_leases(keys, &[DEAD], |leases, _| {
                leases.dead.iter().take(max).cloned().collect()
            })
        })
    }

    fn requeue_dead(&self, keys: &LeaseKeys, max: usize) -> Result<u64, StoreError> {
        if max == 0 {
            return Ok(0);
        }
        let moved = self.run(|| {
            let now = self.shared.clock.now();
            let mut state = self.begin_lease(keys, &[LIST, DEAD])?;
            let dead = &mut state.leases_of(keys).dead;
            let moved: Vec<Vec<u8>> = dead.drain(..max.min(dead.len())).collect();
            state.tidy_leases(keys);
            if moved.is_empty() {
                return Ok(0);
            }
            state.live(keys.list(), now);
            let list = state
                .lists
                .entry(keys.list().to_owned())
                .or_insert_with(|| List {
                    items: VecDeque::new(),
                    expires_at: None,
                });
            let count = moved.len() as u64;
            list.items.extend(moved);
            state.serve_waiters(keys.list());
            Ok(count)
        })?;
        self.notify_pushed();
        Ok(moved)
    }

    fn purge_dead(&self, keys: &LeaseKeys) -> Result<u64, StoreError> {
        self.run(|| {
            self.with_leases(keys, &[DEAD], |leases, _| {
                let count = leases.dead.len() as u64;
                leases.dead.clear();
                count
            })
        })
    }

    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(|| {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, _| {
                leases.snapshot()
            })
        })
    }
}
