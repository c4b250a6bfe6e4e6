//! The fake's list operations themselves, each under the store's lock.

use std::collections::VecDeque;
use std::time::Duration;

use super::state::{List, command_error, deadline, expiry, remaining, wrong_type};
use super::{MemoryStore, StoreError, glob};
use crate::store::LeaseKeys;

/// The operations themselves, without faults; [`ListStore`](crate::ListStore) runs them
/// through [`MemoryStore::run`].
impl MemoryStore {
    pub(super) fn exec_push(
        &self,
        key: &str,
        values: &[&[u8]],
        ttl: Option<Duration>,
    ) -> Result<u64, StoreError> {
        let now = self.shared.clock.now();
        let mut state = self.lock();
        // Redis checks the arguments before the key's type.
        if values.is_empty() {
            return Err(command_error(
                "ERR wrong number of arguments for 'rpush' command",
            ));
        }
        if state.strings.contains_key(key) {
            return Err(wrong_type());
        }
        // Checked before anything is written, as Redis does.
        let expires_at = ttl.map(|ttl| expiry(now, ttl)).transpose()?;
        state.live(key, now);
        let list = state.lists.entry(key.to_owned()).or_insert_with(|| List {
            items: VecDeque::new(),
            expires_at: None,
        });
        list.items.extend(values.iter().map(|value| value.to_vec()));
        let len = list.items.len() as u64;
        if let Some(expires_at) = expires_at {
            if expires_at <= now {
                // Like PEXPIRE with 0: the key is deleted at once.
                state.lists.remove(key);
            } else {
                list.expires_at = Some(expires_at);
            }
        }
        state.serve_waiters(key);
        drop(state);
        self.notify_pushed();
        Ok(len)
    }

    pub(super) fn exec_pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.shared.clock.now();
        Ok(self.begin_on(key)?.pop_front(key, now))
    }

    pub(super) fn exec_pop_many(
        &self,
        key: &str,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let now = self.shared.clock.now();
        Ok(self.begin_on(key)?.pop_front_many(key, count, now))
    }

    pub(super) fn exec_blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let popped = self.exec_blocking_pop_many(key, 1, timeout)?;
        Ok(popped.into_iter().next())
    }

    pub(super) fn exec_blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let clock = &self.shared.clock;
        let deadline = deadline(clock.now(), timeout);
        let mut state = self.begin_on(key)?;
        let popped = state.pop_front_many(key, count, clock.now());
        if !popped.is_empty() || count == 0 {
            return Ok(popped);
        }
        // Block: take a place in the key's queue; a push hands us elements.
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state
            .waiters
            .entry(key.to_owned())
            .or_default()
            .push_back((ticket, count));
        loop {
            if let Some(items) = state.handed.remove(&ticket) {
                return Ok(items);
            }
            let now = clock.now();
            let remaining = remaining(deadline, now);
            if remaining.is_some_and(|remaining| remaining.is_zero()) {
                if let Some(waiters) = state.waiters.get_mut(key) {
                    waiters.retain(|(waiting, _)| *waiting != ticket);
                    if waiters.is_empty() {
                        state.waiters.remove(key);
                    }
                }
                return Ok(Vec::new());
            }
            state = self.wait(state, remaining);
        }
    }

    pub(super) fn exec_index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.shared.clock.now();
        let mut state = self.begin_on(key)?;
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

    pub(super) fn exec_take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.shared.clock.now();
        Ok(self.begin_on(key)?.take_last(key, now))
    }

    pub(super) fn exec_blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let clock = &self.shared.clock;
        let deadline = deadline(clock.now(), timeout);
        let mut state = self.begin_on(key)?;
        loop {
            let now = clock.now();
            if let Some(last) = state.take_last(key, now) {
                return Ok(Some(last));
            }
            let remaining = remaining(deadline, now);
            if remaining.is_some_and(|remaining| remaining.is_zero()) {
                return Ok(None);
            }
            state = self.wait(state, remaining);
            if state.strings.contains_key(key) {
                return Err(wrong_type());
            }
        }
    }

    pub(super) fn exec_scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let now = self.shared.clock.now();
        let mut state = self.lock();
        state.lists.retain(|_, list| !list.expired(now));
        let mut keys: Vec<String> = state
            .lists
            .keys()
            .chain(state.strings.keys())
            .filter(|key| glob::matches(pattern, key))
            .cloned()
            .collect();
        for (list, leases) in &state.leases {
            if let Some(lease_keys) = LeaseKeys::for_list(list) {
                let millis = crate::store::lease::epoch_millis(now);
                keys.extend(
                    leases
                        .existing(&lease_keys, millis)
                        .into_iter()
                        .filter(|key| glob::matches(pattern, key)),
                );
            }
        }
        Ok(keys)
    }

    pub(super) fn exec_ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
