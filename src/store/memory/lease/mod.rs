//! The lease state of a [`MemoryStore`](super::MemoryStore), with the rules
//! of the lease scripts the real stores run, step for step: units, their
//! states, a sorted set ordered by score then member, whole milliseconds,
//! a lease expired from its deadline on, dead letters in a stream whose ids
//! tell when, and the same keys checked for their type by the same
//! operations.

use std::sync::MutexGuard;
use std::time::{Duration, SystemTime};

use super::super::StoreError;
use super::super::lease::{
    DeadLetter, DeadReason, DeliveryTag, LeaseEntry, LeaseKeys, LeasePolicy, LeaseSnapshot,
    LeaseStats, LeaseStore, Leased, MAX_LEASE_BATCH, Nacked, Pick, epoch_millis, from_epoch_millis,
    lease_millis, lease_wait, new_unit_id, place_id,
};
use super::MemoryStore;
use super::state::{Leases, State, Unit, deadline, remaining, wrong_type};
#[cfg(feature = "tokio")]
use crate::store::AsyncLeaseStore;
use crate::store::policy::Op;

mod leases;

/// A lease call's answer, again: its deadline, its messages, how many it
/// acked.
type Replay = (u64, Vec<(DeliveryTag, Vec<u8>)>, u64);

/// The indexes of the keys in [`LeaseKeys::all`].
const LIST: usize = 0;
const PENDING: usize = 1;
const BODIES: usize = 2;
const DEAD: usize = 3;

/// A unit's message, held here.
const HELD: u8 = b'1';
/// Moved to a unit of its own, `unit.j`.
const MOVED: u8 = b'x';
/// Gone.
const GONE: u8 = b'0';

/// What a blocking lease does after a look that leased nothing.
pub(super) enum Look {
    /// Its time is up: it returns empty.
    Over,
    /// A pending message fell due since the look (the clock moved): look
    /// again at once.
    Again,
    /// Wait for a push, or this long for the next pending message to fall
    /// due or the time to be up (`None`: without limit); then look again.
    After(Option<Duration>),
}

/// [`Look`] after a look at `now` that leased nothing, with the call's
/// `deadline` and the next pending message due in `next_due` ms (from the
/// look), as the sync and async fakes both decide it.
pub(super) fn after_empty_look(
    deadline: Option<SystemTime>,
    now: SystemTime,
    next_due: Option<u64>,
) -> Look {
    let remaining = remaining(deadline, now);
    if remaining.is_some_and(|remaining| remaining.is_zero()) {
        return Look::Over;
    }
    match next_due.map(|due| due.saturating_sub(epoch_millis(now))) {
        Some(0) => Look::Again,
        next_due => Look::After(lease_wait(remaining, next_due)),
    }
}

/// How long an ack marker lives, as the lease script's `PX`.
const MARKER_MILLIS: u64 = 600_000;

/// The lease operations, each under one lock: one atomic step, like the
/// scripts of the real stores.
impl MemoryStore {
    /// Locks the state for a lease operation that touches the keys at
    /// `touched`, refusing one of another type: a string anywhere, a list
    /// where the sorted set, the hash or the stream belongs.
    fn begin_lease(
        &self,
        keys: &LeaseKeys,
        touched: &[usize],
    ) -> Result<MutexGuard<'_, State>, StoreError> {
        let state = self.lock();
        let foreign = touched.iter().any(|&index| {
            let key = &keys.all()[index];
            state.strings.contains_key(key)
                || (matches!(index, PENDING | BODIES | DEAD) && state.lists.contains_key(key))
        });
        if foreign {
            return Err(wrong_type());
        }
        Ok(state)
    }

    fn now_millis(&self) -> u64 {
        epoch_millis(self.shared.clock.now())
    }

    /// One ack-and-lease step under call id `unit`; how many were acked,
    /// the leased messages, when something may be due, whether anything
    /// is pending.
    fn lease_step(
        &self,
        state: &mut State,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
        unit: &str,
    ) -> (u64, Vec<Leased>, Option<u64>, bool) {
        let now = self.now_millis();
        let leases = state.leases_of(keys);
        if let Some((deadline, messages, acked)) = leases.replay(unit, now) {
            let leased = messages
                .into_iter()
                .map(|(tag, body)| Leased {
                    tag,
                    deadline: from_epoch_millis(deadline),
                    body,
                })
                .collect();
            return (acked, leased, None, !leases.pending.scores.is_empty());
        }
        let count = count.min(MAX_LEASE_BATCH);
        let deadline = now + lease_millis(policy.lease).max(1);
        let acked = leases.ack(tags);
        let mut taken = Vec::new();
        leases.lease_due(now, count, policy.max_deliveries, &mut taken);
        if taken.len() < count {
            let popped =
                state.pop_front_many(keys.list(), count - taken.len(), self.shared.clock.now());
            taken.extend(popped.into_iter().map(|body| (body, 1, String::new())));
        }
        let leases = state.leases_of(keys);
        let n = taken.len();
        let mut leased = Vec::with_capacity(n);
        if n > 0 {
            let mut record = Unit {
                bodies: Vec::with_capacity(n),
                attempts: Vec::with_capacity(n),
                ids: Vec::with_capacity(n),
                acked,
                state: vec![HELD; n],
            };
            for (j, (body, attempt, id)) in taken.into_iter().enumerate() {
                let id = match id.is_empty() {
                    true => place_id(unit, j as u32 + 1),
                    false => id,
                };
                leased.push(Leased {
                    tag: DeliveryTag::new(Some(id.clone()), attempt, unit.into(), j as u32 + 1),
                    deadline: from_epoch_millis(deadline),
                    body: body.clone(),
                });
                record.bodies.push(body);
                record.attempts.push(attempt);
                record.ids.push(id);
            }
            leases.units.insert(unit.to_owned(), record);
            leases.pending.add(deadline, unit.to_owned());
        } else if acked > 0 {
            leases
                .markers
                .insert(unit.to_owned(), (acked, now + MARKER_MILLIS));
        }
        // When (milliseconds since 1970) something is due: a waiter reads
        // the clock again, and waits from that reading.
        let next_due = match n {
            0 => leases.next_due(now).map(|wait| now.saturating_add(wait)),
            _ => None,
        };
        let pending = !leases.pending.scores.is_empty();
        state.tidy_leases(keys, now);
        (acked, leased, next_due, pending)
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
            let unit = new_unit_id();
            let (_, leased, next_due, _) =
                self.lease_step(&mut state, keys, &[], count, policy, &unit);
            if !leased.is_empty() {
                drop(state);
                self.notify_pushed();
                return Ok(leased);
            }
            match after_empty_look(deadline, clock.now(), next_due) {
                Look::Over => return Ok(Vec::new()),
                Look::Again => drop(state),
                Look::After(wait) => drop(self.wait(state, wait)),
            }
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
        let unit = new_unit_id();
        let (_, leased, next_due, _) = self.lease_step(&mut state, keys, &[], count, policy, &unit);
        drop(state);
        if !leased.is_empty() {
            self.notify_pushed();
        }
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
        state.tidy_leases(keys, now);
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
            return Ok((LeaseStore::ack(self, keys, tags)?, Vec::new()));
        }
        let unit = new_unit_id();
        let (acked, leased) = self.run(Op::Lease, || {
            let mut state = self.begin_lease(keys, &[LIST, PENDING, BODIES, DEAD])?;
            let (acked, leased, _, _) =
                self.lease_step(&mut state, keys, tags, count, policy, &unit);
            Ok((acked, leased))
        })?;
        if !leased.is_empty() {
            self.notify_pushed();
        }
        Ok((acked, leased))
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
        self.run(Op::Lease, || {
            self.exec_blocking_lease(keys, count, policy, timeout)
        })
    }

    fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        if tags.is_empty() {
            return Ok(0);
        }
        self.run(Op::Ack, || {
            self.with_leases(keys, &[PENDING, BODIES], |leases, _| leases.ack(tags))
        })
    }

    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        let nacked = self.run(Op::Nack, || {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, now| {
                leases.nack(tag, now + lease_millis(delay), max_deliveries, now)
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
        self.run(Op::Extend, || {
            self.with_leases(keys, &[PENDING, BODIES], |leases, now| {
                let deadline = now + lease_millis(lease).max(1);
                leases
                    .extend(tag, deadline)
                    .then(|| from_epoch_millis(deadline))
            })
        })
    }

    fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        if tags.is_empty() {
            return Ok(0);
        }
        let released = self.run(Op::Release, || {
            self.with_leases(keys, &[PENDING, BODIES], |leases, now| {
                leases.release(tags, now)
            })
        })?;
        self.notify_pushed();
        Ok(released)
    }

    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        self.run(Op::DeadLetter, || {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, now| {
                leases.dead_letter(tag, reason.clone(), now)
            })
        })
    }

    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        let moved = self.run(Op::Reclaim, || {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, now| {
                leases.reclaim(now, max_deliveries)
            })
        })?;
        self.notify_pushed();
        Ok(moved)
    }

    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.run(Op::DeadLetters, || {
            self.with_leases(keys, &[DEAD], |leases, _| {
                leases.dead.iter().take(max).cloned().collect()
            })
        })
    }

    fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        if pick.is_empty() {
            return Ok(0);
        }
        let moved = self.run(Op::RequeueDead, || {
            let now = self.now_millis();
            let mut state = self.begin_lease(keys, &[LIST, DEAD])?;
            let moved: Vec<Vec<u8>> = state
                .leases_of(keys)
                .take_dead(pick)
                .into_iter()
                .map(|letter| letter.body)
                .collect();
            let count = moved.len() as u64;
            if count > 0 {
                state.append(keys.list(), moved, self.shared.clock.now());
            }
            state.tidy_leases(keys, now);
            Ok(count)
        })?;
        self.notify_pushed();
        Ok(moved)
    }

    fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        if pick.is_empty() {
            return Ok(0);
        }
        self.run(Op::PurgeDead, || {
            self.with_leases(keys, &[DEAD], |leases, _| {
                leases.take_dead(pick).len() as u64
            })
        })
    }

    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(Op::Snapshot, || {
            self.with_leases(keys, &[PENDING, BODIES, DEAD], |leases, _| {
                leases.snapshot()
            })
        })
    }

    fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        self.run(Op::Snapshot, || {
            let now = self.now_millis();
            let mut state = self.begin_lease(keys, &[PENDING, BODIES])?;
            let depth = state
                .live(keys.list(), self.shared.clock.now())
                .map_or(0, |list| list.items.len() as u64);
            let (in_flight, retrying, dead, nearest) = state.leases_of(keys).stats();
            state.tidy_leases(keys, now);
            Ok(LeaseStats {
                depth,
                in_flight,
                retrying,
                dead,
                next_deadline: nearest.map(from_epoch_millis),
            })
        })
    }
}

/// The fake's lease operations that cannot block run as the sync ones
/// do, under its lock, on the first poll: atomic, and a future dropped
/// before that poll did nothing.
#[cfg(feature = "tokio")]
impl AsyncLeaseStore for MemoryStore {
    async fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        LeaseStore::ack_and_lease(self, keys, tags, count, policy)
    }

    async fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        self.async_blocking_lease(keys, count, policy, timeout)
            .await
    }

    async fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        LeaseStore::ack(self, keys, tags)
    }

    async fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        LeaseStore::nack(self, keys, tag, delay, max_deliveries)
    }

    async fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        LeaseStore::extend(self, keys, tag, lease)
    }

    async fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        LeaseStore::release(self, keys, tags)
    }

    async fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        LeaseStore::dead_letter(self, keys, tag, reason)
    }

    async fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        LeaseStore::reclaim(self, keys, max_deliveries)
    }

    async fn dead_letters(
        &self,
        keys: &LeaseKeys,
        max: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        LeaseStore::dead_letters(self, keys, max)
    }

    async fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        LeaseStore::requeue_dead(self, keys, pick)
    }

    async fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        LeaseStore::purge_dead(self, keys, pick)
    }

    async fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        LeaseStore::lease_snapshot(self, keys)
    }

    async fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        LeaseStore::lease_stats(self, keys)
    }
}
