//! The lease state of a [`MemoryStore`](super::MemoryStore), with the rules
//! of the lease scripts the real stores run: sorted sets ordered by score,
//! then id; whole milliseconds; a lease expired from its deadline on.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::MutexGuard;
use std::time::{Duration, SystemTime};

use super::super::StoreError;
use super::super::lease::{
    DeliveryTag, LeaseEntry, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStore, Leased,
    MAX_LEASE_BATCH, Nacked, RECLAIM_PER_LEASE, epoch_millis, from_epoch_millis, lease_millis,
    new_id_prefix,
};
use super::MemoryStore;
use super::state::{List, State, deadline, wrong_type};

/// A sorted set of ids by a millisecond score, as Redis orders one.
#[derive(Default)]
pub(super) struct ZSet {
    ordered: BTreeSet<(u64, String)>,
    scores: HashMap<String, u64>,
}

impl ZSet {
    fn add(&mut self, score: u64, id: &str) {
        if let Some(old) = self.scores.insert(id.to_owned(), score) {
            self.ordered.remove(&(old, id.to_owned()));
        }
        self.ordered.insert((score, id.to_owned()));
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.scores.remove(id) {
            Some(score) => self.ordered.remove(&(score, id.to_owned())),
            None => false,
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.scores.contains_key(id)
    }

    /// Up to `limit` ids scored at most `max`, lowest first.
    fn up_to(&self, max: u64, limit: usize) -> Vec<String> {
        self.ordered
            .iter()
            .take_while(|(score, _)| *score <= max)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn first_score(&self) -> Option<u64> {
        self.ordered.first().map(|(score, _)| *score)
    }

    fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    fn entries(&self) -> impl Iterator<Item = &(u64, String)> {
        self.ordered.iter()
    }
}

/// The lease keys of one list.
#[derive(Default)]
pub(super) struct Leases {
    leased: ZSet,
    retry: ZSet,
    bodies: HashMap<String, Vec<u8>>,
    tries: HashMap<String, u32>,
    dead: VecDeque<Vec<u8>>,
}

impl Leases {
    /// The names of the keys that exist, as Redis would list them.
    pub(super) fn existing<'k>(&self, keys: &'k LeaseKeys) -> Vec<&'k str> {
        let present = [
            !self.leased.is_empty(),
            !self.retry.is_empty(),
            !self.bodies.is_empty(),
            !self.tries.is_empty(),
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
        self.leased.is_empty()
            && self.retry.is_empty()
            && self.bodies.is_empty()
            && self.dead.is_empty()
    }

    fn holds(&self, tag: &DeliveryTag) -> bool {
        self.tries.get(&tag.id) == Some(&tag.attempt)
    }

    /// Ends a delivery of `id`, already out of the leased set: due again
    /// at `at`, or a dead letter once delivered `max` times. Whether dead.
    fn release(&mut self, id: &str, at: u64, max: u32) -> bool {
        if self.tries.get(id).copied().unwrap_or(0) >= max {
            let body = self.bodies.remove(id).unwrap_or_default();
            self.dead.push_back(body);
            self.tries.remove(id);
            return true;
        }
        self.retry.add(at, id);
        false
    }

    /// Releases up to `limit` expired leases; how many.
    pub(super) fn reclaim(&mut self, now: u64, limit: usize, max: u32) -> u64 {
        let expired = self.leased.up_to(now, limit);
        for id in &expired {
            self.leased.remove(id);
            self.release(id, now, max);
        }
        expired.len() as u64
    }

    /// Leases up to `count` due retries, at `deadline`: (id, attempt, body).
    pub(super) fn lease_due(
        &mut self,
        now: u64,
        count: usize,
        deadline: u64,
    ) -> Vec<(String, u32, Vec<u8>)> {
        let due = self.retry.up_to(now, count);
        due.into_iter()
            .map(|id| {
                self.retry.remove(&id);
                self.leased.add(deadline, &id);
                let attempt = self.tries.entry(id.clone()).or_insert(0);
                *attempt += 1;
                let attempt = *attempt;
                let body = self.bodies.get(&id).cloned().unwrap_or_default();
                (id, attempt, body)
            })
            .collect()
    }

    /// Leases a message fresh from the list.
    pub(super) fn lease_new(&mut self, id: &str, body: Vec<u8>, deadline: u64) {
        self.bodies.insert(id.to_owned(), body);
        self.tries.insert(id.to_owned(), 1);
        self.leased.add(deadline, id);
    }

    /// Milliseconds from `now` until a lease expires or a retry is due.
    pub(super) fn next_due(&self, now: u64) -> Option<u64> {
        [self.leased.first_score(), self.retry.first_score()]
            .into_iter()
            .flatten()
            .min()
            .map(|first| first.saturating_sub(now))
    }

    pub(super) fn ack(&mut self, tag: &DeliveryTag) -> bool {
        if !self.holds(tag) {
            return false;
        }
        let held = self.leased.remove(&tag.id) | self.retry.remove(&tag.id);
        if held {
            self.bodies.remove(&tag.id);
            self.tries.remove(&tag.id);
        }
        held
    }

    /// `None` when not held, else whether it went to the dead letters.
    pub(super) fn nack(&mut self, tag: &DeliveryTag, at: u64, max: u32) -> Option<bool> {
        if !self.holds(tag) || !self.leased.remove(&tag.id) {
            return None;
        }
        Some(self.release(&tag.id, at, max))
    }

    pub(super) fn extend(&mut self, tag: &DeliveryTag, deadline: u64) -> bool {
        if !self.holds(tag) || !self.leased.contains(&tag.id) {
            return false;
        }
        self.leased.add(deadline, &tag.id);
        true
    }

    pub(super) fn dead_letter(&mut self, tag: &DeliveryTag, now: u64) -> bool {
        if !self.holds(tag) || !self.leased.remove(&tag.id) {
            return false;
        }
        self.release(&tag.id, now, 0);
        true
    }

    pub(super) fn dead(&self) -> &VecDeque<Vec<u8>> {
        &self.dead
    }

    pub(super) fn dead_mut(&mut self) -> &mut VecDeque<Vec<u8>> {
        &mut self.dead
    }

    pub(super) fn snapshot(&self) -> LeaseSnapshot {
        let entries = |set: &ZSet| {
            set.entries()
                .map(|(at, id)| LeaseEntry {
                    tag: DeliveryTag {
                        id: id.clone(),
                        attempt: self.tries.get(id).copied().unwrap_or(0),
                    },
                    at: from_epoch_millis(*at),
                    body: self.bodies.get(id).cloned().unwrap_or_default(),
                })
                .collect()
        };
        LeaseSnapshot {
            in_flight: entries(&self.leased),
            retrying: entries(&self.retry),
            dead: self.dead.iter().cloned().collect(),
        }
    }
}

impl State {
    /// The lease state of `keys`' list, created empty.
    pub(super) fn leases(&mut self, keys: &LeaseKeys) -> &mut Leases {
        self.leases.entry(keys.list().to_owned()).or_default()
    }

    /// Drops the lease state of `keys`' list when it holds nothing, as
    /// Redis deletes an empty key.
    pub(super) fn tidy_leases(&mut self, keys: &LeaseKeys) {
        if self.leases.get(keys.list()).is_some_and(Leases::is_empty) {
            self.leases.remove(keys.list());
        }
    }
}

/// The lease operations, each under one lock: one atomic step, like the
/// scripts of the real stores.
impl MemoryStore {
    /// Locks the state for a lease operation, refusing keys of another type:
    /// a string anywhere, or a list where a set or hash belongs.
    fn begin_lease(&self, keys: &LeaseKeys) -> Result<MutexGuard<'_, State>, StoreError> {
        let state = self.lock();
        let all = keys.all();
        if all.iter().any(|key| state.strings.contains_key(key))
            || all[1..5].iter().any(|key| state.lists.contains_key(key))
        {
            return Err(wrong_type());
        }
        Ok(state)
    }

    fn now_millis(&self) -> u64 {
        epoch_millis(self.shared.clock.now())
    }

    /// One lease step; the leased messages, or when something may be due.
    fn lease_step(
        &self,
        state: &mut State,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> (Vec<Leased>, Option<u64>) {
        let now = self.now_millis();
        let count = count.min(MAX_LEASE_BATCH);
        let deadline = now + lease_millis(policy.lease).max(1);
        let leases = state.leases(keys);
        leases.reclaim(now, RECLAIM_PER_LEASE as usize, policy.max_deliveries);
        let mut leased: Vec<(String, u32, Vec<u8>)> = leases.lease_due(now, count, deadline);
        let left = count - leased.len();
        if left > 0 {
            let popped = state.pop_front_many(keys.list(), left, self.shared.clock.now());
            let prefix = new_id_prefix();
            let leases = state.leases(keys);
            for (place, body) in popped.into_iter().enumerate() {
                let id = format!("{prefix}-{}", place + 1);
                leases.lease_new(&id, body.clone(), deadline);
                leased.push((id, 1, body));
            }
        }
        let next_due = state.leases(keys).next_due(now);
        state.tidy_leases(keys);
        let leased = leased
            .into_iter()
            .map(|(id, attempt, body)| Leased {
                tag: DeliveryTag { id, attempt },
                deadline: from_epoch_millis(deadline),
                body,
            })
            .collect();
        (leased, next_due)
    }

    fn exec_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> Result<Vec<Leased>, StoreError> {
        let mut state = self.begin_lease(keys)?;
        Ok(self.lease_step(&mut state, keys, count, policy).0)
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
        let mut state = self.begin_lease(keys)?;
        loop {
            let (leased, next_due) = self.lease_step(&mut state, keys, count, policy);
            if !leased.is_empty() {
                return Ok(leased);
            }
            let now = clock.now();
            let remaining =
                deadline.map(|deadline| deadline.duration_since(now).unwrap_or_default());
            if remaining.is_some_and(|remaining| remaining.is_zero()) {
                return Ok(Vec::new());
            }
            let due = next_due.map(|due| Duration::from_millis(due.max(1)));
            let wait = match (remaining, due) {
                (Some(remaining), Some(due)) => Some(remaining.min(due)),
                (remaining, due) => remaining.or(due),
            };
            state = self.wait(state, wait);
            drop(state);
            state = self.begin_lease(keys)?;
        }
    }

    /// Runs `step` on the list's lease state, then drops the state if it
    /// is left empty.
    fn with_leases<T>(
        &self,
        keys: &LeaseKeys,
        step: impl FnOnce(&mut Leases, u64) -> T,
    ) -> Result<T, StoreError> {
        let now = self.now_millis();
        let mut state = self.begin_lease(keys)?;
        let outcome = step(state.leases(keys), now);
        state.tidy_leases(keys);
        Ok(outcome)
    }
}

impl LeaseStore for MemoryStore {
    fn lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
    ) -> Result<Vec<Leased>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.run(|| self.exec_lease(keys, count, policy))
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
        self.run(|| {
            self.with_leases(keys, |leases, _| {
                tags.iter().filter(|tag| leases.ack(tag)).count() as u64
            })
        })
    }

    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        let nacked = self.run(|| {
            self.with_leases(keys, |leases, now| {
                match leases.nack(tag, now + lease_millis(delay), max_deliveries) {
                    None => Nacked::NotHeld,
                    Some(false) => Nacked::Retrying,
                    Some(true) => Nacked::DeadLettered,
                }
            })
        })?;
        self.shared.pushed.notify_all();
        Ok(nacked)
    }

    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        self.run(|| {
            self.with_leases(keys, |leases, now| {
                let deadline = now + lease_millis(lease).max(1);
                leases
                    .extend(tag, deadline)
                    .then(|| from_epoch_millis(deadline))
            })
        })
    }

    fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag) -> Result<bool, StoreError> {
        self.run(|| self.with_leases(keys, |leases, now| leases.dead_letter(tag, now)))
    }

    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        let moved = self.run(|| {
            self.with_leases(keys, |leases, now| {
                leases.reclaim(now, usize::MAX, max_deliveries)
            })
        })?;
        self.shared.pushed.notify_all();
        Ok(moved)
    }

    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.run(|| {
            self.with_leases(keys, |leases, _| {
                leases.dead().iter().take(max).cloned().collect()
            })
        })
    }

    fn requeue_dead(&self, keys: &LeaseKeys, max: usize) -> Result<u64, StoreError> {
        if max == 0 {
            return Ok(0);
        }
        let moved = self.run(|| {
            let now = self.shared.clock.now();
            let mut state = self.begin_lease(keys)?;
            let dead = state.leases(keys).dead_mut();
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
        self.shared.pushed.notify_all();
        Ok(moved)
    }

    fn purge_dead(&self, keys: &LeaseKeys) -> Result<u64, StoreError> {
        self.run(|| {
            self.with_leases(keys, |leases, _| {
                let dead = leases.dead_mut();
                let count = dead.len() as u64;
                dead.clear();
                count
            })
        })
    }

    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(|| self.with_leases(keys, |leases, _| leases.snapshot()))
    }
}
