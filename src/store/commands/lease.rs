//! The lease operations both real stores send the same way: each is one
//! script ([`script::lease`](crate::store::script::lease)) on the four
//! [`LeaseKeys`], run through the store's pool.

use std::time::{Duration, Instant, SystemTime};

use super::super::lease::{
    DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, Leased, MAX_LEASE_BATCH, Nacked,
    lease_millis, lease_wait, new_id_prefix,
};
use super::super::pool::Wait;
use super::super::script::Script;
pub(in crate::store) use super::super::script::lease::extended;
use super::super::script::lease::{
    ACK, DEAD_LETTER, EXTEND, LEASE, LeaseReply, NACK, PURGE_DEAD, RECLAIM, REQUEUE_DEAD, SNAPSHOT,
    SnapshotReply,
};
use super::super::{StoreError, wait_limit};
use super::{Connector, build};

/// One lease script to run on the four [`LeaseKeys`], with its arguments:
/// built once for the sync stores and the async one.
pub(in crate::store) struct ScriptCall {
    pub(in crate::store) script: &'static Script,
    args: Vec<Vec<u8>>,
}

impl ScriptCall {
    fn new<A: Into<Vec<u8>>>(script: &'static Script, args: impl IntoIterator<Item = A>) -> Self {
        Self {
            script,
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The arguments, as the script takes them.
    pub(in crate::store) fn args(&self) -> Vec<&[u8]> {
        self.args.iter().map(Vec::as_slice).collect()
    }
}

/// The names of the four keys, as the scripts take them.
pub(in crate::store) fn key_names(keys: &LeaseKeys) -> Vec<&str> {
    keys.all().iter().map(String::as_str).collect()
}

/// Runs `call` through the store's pool.
fn invoke<C: Connector, T: redis::FromRedisValue>(
    store: &C,
    keys: &LeaseKeys,
    call: &ScriptCall,
) -> Result<T, StoreError> {
    let (names, args) = (key_names(keys), call.args());
    store.run(Wait::Response, |c| call.script.invoke(c, &names, &args))
}

/// The id and attempt of each of `tags`, in turn, as the scripts take them.
fn tag_args(tags: &[DeliveryTag]) -> impl Iterator<Item = String> + '_ {
    tags.iter()
        .flat_map(|tag| [tag.id.clone(), tag.attempt.to_string()])
}

/// The lease script: acks `tags`, then leases up to `count`.
pub(in crate::store) fn lease_call(
    tags: &[DeliveryTag],
    count: usize,
    policy: LeasePolicy,
) -> ScriptCall {
    let head = [
        lease_millis(policy.lease).max(1).to_string(),
        count.min(MAX_LEASE_BATCH).to_string(),
        policy.max_deliveries.to_string(),
        new_id_prefix(),
    ];
    ScriptCall::new(&LEASE, head.into_iter().chain(tag_args(tags)))
}

/// The ack script for `tags`; `None` for no tags, which acks nothing.
pub(in crate::store) fn ack_call(tags: &[DeliveryTag]) -> Option<ScriptCall> {
    (!tags.is_empty()).then(|| ScriptCall::new(&ACK, tag_args(tags)))
}

/// The nack script, and how its answer reads ([`nacked`]).
pub(in crate::store) fn nack_call(tag: &DeliveryTag, delay: Duration, max: u32) -> ScriptCall {
    let args = [
        tag.id.clone(),
        tag.attempt.to_string(),
        lease_millis(delay).to_string(),
        max.to_string(),
    ];
    ScriptCall::new(&NACK, args)
}

/// What the nack script's answer says.
pub(in crate::store) fn nacked(outcome: i64) -> Nacked {
    match outcome {
        1 => Nacked::Retrying,
        2 => Nacked::DeadLettered,
        _ => Nacked::NotHeld,
    }
}

/// The extend script; its answer reads with [`extended`].
pub(in crate::store) fn extend_call(tag: &DeliveryTag, lease: Duration) -> ScriptCall {
    let args = [
        tag.id.clone(),
        tag.attempt.to_string(),
        lease_millis(lease).max(1).to_string(),
    ];
    ScriptCall::new(&EXTEND, args)
}

/// The dead-letter script; it answers 1 when it moved the message.
pub(in crate::store) fn dead_letter_call(tag: &DeliveryTag) -> ScriptCall {
    ScriptCall::new(&DEAD_LETTER, [tag.id.clone(), tag.attempt.to_string()])
}

/// The reclaim script.
pub(in crate::store) fn reclaim_call(max_deliveries: u32) -> ScriptCall {
    ScriptCall::new(&RECLAIM, [max_deliveries.to_string()])
}

/// `LRANGE` of up to `max` dead letters; `None` for none.
pub(in crate::store) fn dead_letters_command(keys: &LeaseKeys, max: usize) -> Option<redis::Cmd> {
    if max == 0 {
        return None;
    }
    let last = i64::try_from(max).map_or(-1, |max| max - 1);
    let mut lrange = redis::cmd("LRANGE");
    lrange.arg(keys.dead()).arg(0).arg(last);
    Some(lrange)
}

/// The requeue script for up to `max` dead letters; `None` for none.
pub(in crate::store) fn requeue_dead_call(max: usize) -> Option<ScriptCall> {
    (max > 0).then(|| ScriptCall::new(&REQUEUE_DEAD, [max.min(MAX_LEASE_BATCH).to_string()]))
}

/// The purge script.
pub(in crate::store) fn purge_dead_call() -> ScriptCall {
    ScriptCall::new(&PURGE_DEAD, [""; 0])
}

/// The snapshot script; its answer reads as a [`SnapshotReply`].
pub(in crate::store) fn snapshot_call() -> ScriptCall {
    ScriptCall::new(&SNAPSHOT, [""; 0])
}

/// How long a blocking lease that leased nothing waits before it looks
/// again, from the time `left` and the lease script's `next_due`: at
/// least 1 ms, which Redis would read as no limit otherwise.
pub(in crate::store) fn lease_pause(
    left: Option<Duration>,
    next_due: Option<u64>,
) -> Option<Duration> {
    lease_wait(left, next_due).map(|wait| wait.max(Duration::from_millis(1)))
}

pub(in crate::store) fn ack_and_lease<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
    count: usize,
    policy: LeasePolicy,
) -> Result<(u64, Vec<Leased>), StoreError> {
    if count == 0 {
        return Ok((ack(store, keys, tags)?, Vec::new()));
    }
    let reply: LeaseReply = invoke(store, keys, &lease_call(tags, count, policy))?;
    Ok((reply.acked, reply.leased))
}

/// The lease script; when it leased nothing, a wait on the list that takes
/// nothing (`BLMOVE` of the head onto itself), bounded by when a lease
/// expires or a retry is due, then the script again.
pub(in crate::store) fn blocking_lease<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    count: usize,
    policy: LeasePolicy,
    timeout: Option<Duration>,
) -> Result<Vec<Leased>, StoreError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let timeout = wait_limit(timeout);
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    loop {
        let reply: LeaseReply = invoke(store, keys, &lease_call(&[], count, policy))?;
        if !reply.leased.is_empty() {
            return Ok(reply.leased);
        }
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(Vec::new());
        }
        let wait = lease_pause(left, reply.next_due);
        let blmove = build::blmove_head(keys.list(), wait);
        let _: Option<Vec<u8>> = store.run(Wait::Blocking(wait), |c| blmove.query(c))?;
    }
}

pub(in crate::store) fn ack<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
) -> Result<u64, StoreError> {
    match ack_call(tags) {
        None => Ok(0),
        Some(call) => invoke(store, keys, &call),
    }
}

pub(in crate::store) fn nack<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    delay: Duration,
    max_deliveries: u32,
) -> Result<Nacked, StoreError> {
    invoke(store, keys, &nack_call(tag, delay, max_deliveries)).map(nacked)
}

pub(in crate::store) fn extend<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    lease: Duration,
) -> Result<Option<SystemTime>, StoreError> {
    invoke(store, keys, &extend_call(tag, lease)).map(extended)
}

pub(in crate::store) fn dead_letter<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
) -> Result<bool, StoreError> {
    invoke(store, keys, &dead_letter_call(tag)).map(|moved: i64| moved == 1)
}

pub(in crate::store) fn reclaim<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    max_deliveries: u32,
) -> Result<u64, StoreError> {
    invoke(store, keys, &reclaim_call(max_deliveries))
}

pub(in crate::store) fn dead_letters<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    max: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    match dead_letters_command(keys, max) {
        None => Ok(Vec::new()),
        Some(lrange) => store.run(Wait::Response, |c| lrange.query(c)),
    }
}

pub(in crate::store) fn requeue_dead<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    max: usize,
) -> Result<u64, StoreError> {
    match requeue_dead_call(max) {
        None => Ok(0),
        Some(call) => invoke(store, keys, &call),
    }
}

pub(in crate::store) fn purge_dead<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
) -> Result<u64, StoreError> {
    invoke(store, keys, &purge_dead_call())
}

pub(in crate::store) fn lease_snapshot<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
) -> Result<LeaseSnapshot, StoreError> {
    let SnapshotReply(snapshot) = invoke(store, keys, &snapshot_call())?;
    Ok(snapshot)
}

/// The [`LeaseStore`](crate::LeaseStore) impl of a real store, through its
/// [`Connector`].
macro_rules! connector_lease_store {
    ($store:ty) => {
        impl $crate::LeaseStore for $store {
            fn ack_and_lease(
                &self,
                keys: &$crate::LeaseKeys,
                tags: &[$crate::DeliveryTag],
                count: usize,
                policy: $crate::LeasePolicy,
            ) -> Result<(u64, Vec<$crate::Leased>), $crate::StoreError> {
                $crate::store::commands::lease::ack_and_lease(self, keys, tags, count, policy)
            }
            fn blocking_lease(
                &self,
                keys: &$crate::LeaseKeys,
                count: usize,
                policy: $crate::LeasePolicy,
                timeout: Option<std::time::Duration>,
            ) -> Result<Vec<$crate::Leased>, $crate::StoreError> {
                $crate::store::commands::lease::blocking_lease(self, keys, count, policy, timeout)
            }
            fn ack(
                &self,
                keys: &$crate::LeaseKeys,
                tags: &[$crate::DeliveryTag],
            ) -> Result<u64, $crate::StoreError> {
                $crate::store::commands::lease::ack(self, keys, tags)
            }
            fn nack(
                &self,
                keys: &$crate::LeaseKeys,
                tag: &$crate::DeliveryTag,
                delay: std::time::Duration,
                max_deliveries: u32,
            ) -> Result<$crate::Nacked, $crate::StoreError> {
                $crate::store::commands::lease::nack(self, keys, tag, delay, max_deliveries)
            }
            fn extend(
                &self,
                keys: &$crate::LeaseKeys,
                tag: &$crate::DeliveryTag,
                lease: std::time::Duration,
            ) -> Result<Option<std::time::SystemTime>, $crate::StoreError> {
                $crate::store::commands::lease::extend(self, keys, tag, lease)
            }
            fn dead_letter(
                &self,
                keys: &$crate::LeaseKeys,
                tag: &$crate::DeliveryTag,
            ) -> Result<bool, $crate::StoreError> {
                $crate::store::commands::lease::dead_letter(self, keys, tag)
            }
            fn reclaim(
                &self,
                keys: &$crate::LeaseKeys,
                max_deliveries: u32,
            ) -> Result<u64, $crate::StoreError> {
                $crate::store::commands::lease::reclaim(self, keys, max_deliveries)
            }
            fn dead_letters(
                &self,
                keys: &$crate::LeaseKeys,
                max: usize,
            ) -> Result<Vec<Vec<u8>>, $crate::StoreError> {
                $crate::store::commands::lease::dead_letters(self, keys, max)
            }
            fn requeue_dead(
                &self,
                keys: &$crate::LeaseKeys,
                max: usize,
            ) -> Result<u64, $crate::StoreError> {
                $crate::store::commands::lease::requeue_dead(self, keys, max)
            }
            fn purge_dead(&self, keys: &$crate::LeaseKeys) -> Result<u64, $crate::StoreError> {
                $crate::store::commands::lease::purge_dead(self, keys)
            }
            fn lease_snapshot(
                &self,
                keys: &$crate::LeaseKeys,
            ) -> Result<$crate::LeaseSnapshot, $crate::StoreError> {
                $crate::store::commands::lease::lease_snapshot(self, keys)
            }
        }
    };
}

pub(in crate::store) use connector_lease_store;
