//! The lease transitions of one list, as the lease scripts make them:
//! lease, ack, nack, extend, release, reclaim, dead letters.

use super::*;

impl Leases {
    /// The names of the keys that exist, as Redis would list them.
    pub(in crate::store::memory) fn existing(&self, keys: &LeaseKeys, now: u64) -> Vec<String> {
        let mut existing = Vec::new();
        if !self.pending.scores.is_empty() {
            existing.push(keys.pending().to_owned());
        }
        if !self.units.is_empty() {
            existing.push(keys.bodies().to_owned());
        }
        if !self.dead.is_empty() {
            existing.push(keys.dead().to_owned());
        }
        for (unit, record) in &self.units {
            if record.bodies.len() > 1 {
                existing.push(keys.unit_list(unit));
            }
        }
        for (unit, (_, expires)) in &self.markers {
            if *expires > now {
                existing.push(keys.ack_marker(unit));
            }
        }
        existing
    }

    pub(in crate::store::memory) fn is_empty(&self) -> bool {
        self.pending.scores.is_empty()
            && self.units.is_empty()
            && self.dead.is_empty()
            && self.markers.is_empty()
    }

    /// The member of `unit` in pending, and whether it waits.
    pub(in crate::store::memory) fn member_of(&self, unit: &str) -> Option<(String, bool)> {
        if self.pending.score(unit).is_some() {
            return Some((unit.to_owned(), false));
        }
        let waiting = format!("{unit}+");
        self.pending.score(&waiting).map(|_| (waiting, true))
    }

    /// Drops the unit once it holds nothing.
    pub(in crate::store::memory) fn settle(&mut self, unit: &str, member: &str) {
        if self
            .units
            .get(unit)
            .is_some_and(|unit| !unit.state.contains(&HELD))
        {
            self.units.remove(unit);
            self.pending.remove(member);
        }
    }

    /// Where delivery (unit, place j, 1-based) is held: holder, 0-based
    /// index there, member, whether it waits.
    pub(in crate::store::memory) fn find(
        &self,
        unit: &str,
        j: u32,
    ) -> Option<(String, usize, String, bool)> {
        let index = usize::try_from(j).ok()?.checked_sub(1)?;
        if let Some(record) = self.units.get(unit) {
            match record.state.get(index) {
                Some(&HELD) => {
                    let (member, waiting) = self.member_of(unit)?;
                    return Some((unit.to_owned(), index, member, waiting));
                }
                Some(&MOVED) => {}
                _ => return None,
            }
        }
        let sub = format!("{unit}.{j}");
        self.units.get(&sub)?;
        let (member, waiting) = self.member_of(&sub)?;
        Some((sub, 0, member, waiting))
    }

    pub(in crate::store::memory) fn bury(
        &mut self,
        unit: &str,
        index: usize,
        reason: DeadReason,
        now: u64,
    ) {
        let Some(record) = self.units.get(unit) else {
            return;
        };
        self.last_dead = if now > self.last_dead.0 {
            (now, 0)
        } else {
            (self.last_dead.0, self.last_dead.1 + 1)
        };
        self.dead.push_back(DeadLetter {
            id: format!("{}-{}", self.last_dead.0, self.last_dead.1),
            message_id: record.id(unit, index),
            deliveries: record.attempts[index],
            reason,
            at: from_epoch_millis(self.last_dead.0),
            body: record.bodies[index].clone(),
        });
    }

    /// Marks message `index` of `holder` with `mark`, and drops the unit
    /// once it holds nothing.
    pub(in crate::store::memory) fn take_out(
        &mut self,
        holder: &str,
        index: usize,
        member: &str,
        mark: u8,
    ) {
        if let Some(record) = self.units.get_mut(holder) {
            record.state[index] = mark;
        }
        self.settle(holder, member);
    }

    /// Moves message `index` of a unit to a unit of its own.
    pub(in crate::store::memory) fn extract(
        &mut self,
        holder: &str,
        index: usize,
        member: &str,
        attempt: u32,
        waiting: bool,
        score: u64,
    ) {
        let Some(record) = self.units.get(holder) else {
            return;
        };
        let sub = format!("{holder}.{}", index + 1);
        let single = Unit {
            bodies: vec![record.bodies[index].clone()],
            attempts: vec![attempt],
            ids: vec![record.id(holder, index)],
            acked: 0,
            state: vec![HELD],
        };
        self.pending.add(
            score,
            if waiting {
                format!("{sub}+")
            } else {
                sub.clone()
            },
        );
        self.units.insert(sub, single);
        self.take_out(holder, index, member, MOVED);
    }

    /// Acks each delivery still held; how many.
    pub(in crate::store::memory) fn ack(&mut self, tags: &[DeliveryTag]) -> u64 {
        let mut acked = 0;
        for tag in tags {
            if let Some((holder, index, member, _)) = self.find(&tag.unit, tag.index) {
                if *holder == *tag.unit {
                    self.take_out(&holder, index, &member, GONE);
                } else {
                    self.units.remove(&holder);
                    self.pending.remove(&member);
                    if let Some(parent) = self.units.get_mut(&*tag.unit) {
                        parent.state[tag.index as usize - 1] = GONE;
                    }
                    let parent_member = self.member_of(&tag.unit).map(|(member, _)| member);
                    if let Some(parent_member) = parent_member {
                        self.settle(&tag.unit, &parent_member);
                    }
                }
                acked += 1;
            }
        }
        acked
    }

    /// What a call under `unit` answers when sent again: its unit's
    /// messages, or what it acked when it leased nothing.
    pub(in crate::store::memory) fn replay(&self, unit: &str, now: u64) -> Option<Replay> {
        if let Some(record) = self.units.get(unit) {
            let deadline = self
                .pending
                .score(unit)
                .or_else(|| self.pending.score(&format!("{unit}+")))
                .unwrap_or(0);
            let messages = (0..record.bodies.len())
                .map(|j| {
                    let tag = DeliveryTag::new(
                        Some(record.id(unit, j)),
                        record.attempts[j],
                        unit.into(),
                        j as u32 + 1,
                    );
                    (tag, record.bodies[j].clone())
                })
                .collect();
            return Some((deadline, messages, record.acked));
        }
        let (acked, expires) = self.markers.get(unit)?;
        (*expires > now).then_some((0, Vec::new(), *acked))
    }

    /// Leases up to `count` due messages into `taken`, burying those
    /// delivered `max` times.
    pub(in crate::store::memory) fn lease_due(
        &mut self,
        now: u64,
        count: usize,
        max: u32,
        taken: &mut Vec<(Vec<u8>, u32, String)>,
    ) {
        while taken.len() < count {
            let Some(member) = self.pending.first_due(now) else {
                break;
            };
            let waiting = member.ends_with('+');
            let from = member.strip_suffix('+').unwrap_or(&member).to_owned();
            let Some(record) = self.units.get(&from) else {
                self.pending.remove(&member);
                continue;
            };
            let mut buried = Vec::new();
            let mut took = Vec::new();
            for j in 0..record.bodies.len() {
                if taken.len() + took.len() >= count {
                    break;
                }
                if record.state[j] != HELD {
                    continue;
                }
                if record.attempts[j] >= max {
                    buried.push(j);
                } else {
                    took.push(j);
                }
            }
            let reason = if waiting {
                DeadReason::Nacked
            } else {
                DeadReason::Expired
            };
            for &j in &buried {
                self.bury(&from, j, reason.clone(), now);
            }
            let record = self
                .units
                .get_mut(&from)
                .expect("the unit being leased from");
            for &j in &took {
                taken.push((
                    record.bodies[j].clone(),
                    record.attempts[j] + 1,
                    record.id(&from, j),
                ));
            }
            for j in buried.into_iter().chain(took) {
                record.state[j] = GONE;
            }
            self.settle(&from, &member);
        }
    }

    /// Milliseconds from `now` until the first pending unit is due.
    pub(in crate::store::memory) fn next_due(&self, now: u64) -> Option<u64> {
        let (first, _) = self.pending.ordered.first()?;
        Some(first.saturating_sub(now))
    }

    pub(in crate::store::memory) fn nack(
        &mut self,
        tag: &DeliveryTag,
        due: u64,
        max: u32,
        now: u64,
    ) -> Nacked {
        let Some((holder, index, member, false)) = self.find(&tag.unit, tag.index) else {
            return Nacked::NotHeld;
        };
        let record = &self.units[&holder];
        let attempt = record.attempts[index];
        if attempt >= max {
            self.bury(&holder, index, DeadReason::Nacked, now);
            self.take_out(&holder, index, &member, GONE);
            return Nacked::DeadLettered;
        }
        if record.bodies.len() == 1 {
            self.pending.remove(&member);
            self.pending.add(due, format!("{holder}+"));
        } else {
            self.extract(&holder, index, &member, attempt, true, due);
        }
        Nacked::Retrying
    }

    pub(in crate::store::memory) fn extend(&mut self, tag: &DeliveryTag, deadline: u64) -> bool {
        let Some((holder, index, member, false)) = self.find(&tag.unit, tag.index) else {
            return false;
        };
        let record = &self.units[&holder];
        if record.bodies.len() == 1 {
            self.pending.add(deadline, member);
        } else {
            let attempt = record.attempts[index];
            self.extract(&holder, index, &member, attempt, false, deadline);
        }
        true
    }

    pub(in crate::store::memory) fn release(&mut self, tags: &[DeliveryTag], now: u64) -> u64 {
        let mut released = 0;
        for tag in tags {
            let Some((holder, index, member, false)) = self.find(&tag.unit, tag.index) else {
                continue;
            };
            let record = self.units.get_mut(&holder).expect("the unit holding it");
            let attempt = record.attempts[index].saturating_sub(1);
            if record.bodies.len() == 1 {
                record.attempts[0] = attempt;
                let id = record.id(&holder, 0);
                record.ids[0] = id;
                self.pending.remove(&member);
                self.pending.add(now, format!("{holder}+"));
            } else {
                self.extract(&holder, index, &member, attempt, true, now);
            }
            released += 1;
        }
        released
    }

    pub(in crate::store::memory) fn dead_letter(
        &mut self,
        tag: &DeliveryTag,
        reason: DeadReason,
        now: u64,
    ) -> bool {
        let Some((holder, index, member, false)) = self.find(&tag.unit, tag.index) else {
            return false;
        };
        self.bury(&holder, index, reason, now);
        self.take_out(&holder, index, &member, GONE);
        true
    }

    /// Every expired lease waits (at its deadline) or is buried; how many
    /// messages moved.
    pub(in crate::store::memory) fn reclaim(&mut self, now: u64, max: u32) -> u64 {
        let due: Vec<(u64, String)> = self
            .pending
            .ordered
            .iter()
            .take_while(|(score, _)| *score <= now)
            .filter(|(_, member)| !member.ends_with('+'))
            .cloned()
            .collect();
        let mut moved = 0;
        for (score, unit) in due {
            let Some(record) = self.units.get(&unit) else {
                self.pending.remove(&unit);
                continue;
            };
            let held: Vec<usize> = (0..record.bodies.len())
                .filter(|&j| record.state[j] == HELD)
                .collect();
            moved += held.len() as u64;
            for j in held {
                if self.units[&unit].attempts[j] >= max {
                    self.bury(&unit, j, DeadReason::Expired, now);
                    self.units.get_mut(&unit).expect("the unit").state[j] = GONE;
                }
            }
            self.settle(&unit, &unit);
            if self.pending.remove(&unit).is_some() {
                self.pending.add(score, format!("{unit}+"));
            }
        }
        moved
    }

    /// The dead letters `pick` names, taken out.
    pub(in crate::store::memory) fn take_dead(&mut self, pick: Pick<'_>) -> Vec<DeadLetter> {
        match pick {
            Pick::Oldest(max) => {
                let count = max.min(self.dead.len());
                self.dead.drain(..count).collect()
            }
            Pick::Ids(ids) => {
                let mut taken = Vec::new();
                for id in ids {
                    if let Some(at) = self.dead.iter().position(|letter| &letter.id == id) {
                        taken.extend(self.dead.remove(at));
                    }
                }
                taken
            }
        }
    }

    pub(in crate::store::memory) fn snapshot(&self) -> LeaseSnapshot {
        let mut snapshot = LeaseSnapshot {
            dead: self.dead.iter().cloned().collect(),
            ..LeaseSnapshot::default()
        };
        for (at, member) in &self.pending.ordered {
            let waiting = member.ends_with('+');
            let unit = member.strip_suffix('+').unwrap_or(member);
            let Some(record) = self.units.get(unit) else {
                continue;
            };
            for j in 0..record.bodies.len() {
                if record.state[j] != HELD {
                    continue;
                }
                let entry = LeaseEntry {
                    tag: DeliveryTag::new(
                        Some(record.id(unit, j)),
                        record.attempts[j],
                        unit.into(),
                        j as u32 + 1,
                    ),
                    at: from_epoch_millis(*at),
                    body: record.bodies[j].clone(),
                };
                match waiting {
                    true => snapshot.retrying.push(entry),
                    false => snapshot.in_flight.push(entry),
                }
            }
        }
        snapshot
    }

    pub(in crate::store::memory) fn stats(&self) -> (u64, u64, u64, Option<u64>) {
        let (mut in_flight, mut retrying, mut nearest) = (0, 0, None);
        for (at, member) in &self.pending.ordered {
            let waiting = member.ends_with('+');
            let unit = member.strip_suffix('+').unwrap_or(member);
            let held = self.units.get(unit).map_or(0, |record| {
                record.state.iter().filter(|&&c| c == HELD).count() as u64
            });
            if waiting {
                retrying += held;
            } else if held > 0 {
                in_flight += held;
                nearest.get_or_insert(*at);
            }
        }
        (in_flight, retrying, self.dead.len() as u64, nearest)
    }
}
