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
use super::super::script::lease::{
    ACK, DEAD_LETTER, EXTEND, LEASE, LeaseReply, NACK, PURGE_DEAD, RECLAIM, REQUEUE_DEAD, SNAPSHOT,
    SnapshotReply, extended,
};
use super::super::{StoreError, wait_limit};
use super::Connector;
use super::build::block_seconds;

/// Runs `script` on the four keys with `args`.
fn invoke<C: Connector, T: redis::FromRedisValue>(
    store: &C,
    script: &Script,
    keys: &LeaseKeys,
    args: &[&[u8]],
) -> Result<T, StoreError> {
    let keys: Vec<&str> = keys.all().iter().map(String::as_str).collect();
    store.run(Wait::Response, |c| script.invoke(c, &keys, args))
}

/// The id and attempt pairs of `tags`, as the scripts take them.
fn tag_args(tags: &[DeliveryTag]) -> (Vec<String>, Vec<&str>) {
    let attempts: Vec<String> = tags.iter().map(|tag| tag.attempt.to_string()).collect();
    let ids = tags.iter().map(|tag| tag.id.as_str()).collect();
    (attempts, ids)
}

/// The lease script once, acking `tags` first.
fn lease_once<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
    count: usize,
    policy: LeasePolicy,
) -> Result<LeaseReply, StoreError> {
    let lease = lease_millis(policy.lease).max(1).to_string();
    let count = count.min(MAX_LEASE_BATCH).to_string();
    let max = policy.max_deliveries.to_string();
    let prefix = new_id_prefix();
    let (attempts, ids) = tag_args(tags);
    let mut args: Vec<&[u8]> = vec![
        lease.as_bytes(),
        count.as_bytes(),
        max.as_bytes(),
        prefix.as_bytes(),
    ];
    for (id, attempt) in ids.iter().zip(&attempts) {
        args.push(id.as_bytes());
        args.push(attempt.as_bytes());
    }
    invoke(store, &LEASE, keys, &args)
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
    let reply = lease_once(store, keys, tags, count, policy)?;
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
        let reply = lease_once(store, keys, &[], count, policy)?;
        if !reply.leased.is_empty() {
            return Ok(reply.leased);
        }
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(Vec::new());
        }
        let wait = lease_wait(left, reply.next_due).map(|wait| wait.max(Duration::from_millis(1)));
        let mut blmove = redis::cmd("BLMOVE");
        blmove
            .arg(keys.list())
            .arg(keys.list())
            .arg("LEFT")
            .arg("LEFT")
            .arg(block_seconds(wait));
        let _: Option<Vec<u8>> = store.run(Wait::Blocking(wait), |c| blmove.query(c))?;
    }
}

pub(in crate::store) fn ack<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
) -> Result<u64, StoreError> {
    if tags.is_empty() {
        return Ok(0);
    }
    let (attempts, ids) = tag_args(tags);
    let args: Vec<&[u8]> = ids
        .iter()
        .zip(&attempts)
        .flat_map(|(id, attempt)| [id.as_bytes(), attempt.as_bytes()])
        .collect();
    invoke(store, &ACK, keys, &args)
}

pub(in crate::store) fn nack<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    delay: Duration,
    max_deliveries: u32,
) -> Result<Nacked, StoreError> {
    let attempt = tag.attempt.to_string();
    let delay = lease_millis(delay).to_string();
    let max = max_deliveries.to_string();
    let args: [&[u8]; 4] = [
        tag.id.as_bytes(),
        attempt.as_bytes(),
        delay.as_bytes(),
        max.as_bytes(),
    ];
    let outcome: i64 = invoke(store, &NACK, keys, &args)?;
    Ok(match outcome {
        1 => Nacked::Retrying,
        2 => Nacked::DeadLettered,
        _ => Nacked::NotHeld,
    })
}

pub(in crate::store) fn extend<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    lease: Duration,
) -> Result<Option<SystemTime>, StoreError> {
    let attempt = tag.attempt.to_string();
    let lease = lease_millis(lease).max(1).to_string();
    let args: [&[u8]; 3] = [tag.id.as_bytes(), attempt.as_bytes(), lease.as_bytes()];
    let deadline: i64 = invoke(store, &EXTEND, keys, &args)?;
    Ok(extended(deadline))
}

pub(in crate::store) fn dead_letter<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
) -> Result<bool, StoreError> {
    let attempt = tag.attempt.to_string();
    let moved: i64 = invoke(
        store,
        &DEAD_LETTER,
        keys,
        &[tag.id.as_bytes(), attempt.as_bytes()],
    )?;
    Ok(moved == 1)
}

pub(in crate::store) fn reclaim<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    max_deliveries: u32,
) -> Result<u64, StoreError> {
    let max = max_deliveries.to_string();
    invoke(store, &RECLAIM, keys, &[max.as_bytes()])
}

pub(in crate::store) fn dead_letters<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    max: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let last = i64::try_from(max).map_or(-1, |max| max - 1);
    let mut lrange = redis::cmd("LRANGE");
    lrange.arg(keys.dead()).arg(0).arg(last);
    store.run(Wait::Response, |c| lrange.query(c))
}

pub(in crate::store) fn requeue_dead<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
    max: usize,
) -> Result<u64, StoreError> {
    if max == 0 {
        return Ok(0);
    }
    let max = max.min(MAX_LEASE_BATCH).to_string();
    invoke(store, &REQUEUE_DEAD, keys, &[max.as_bytes()])
}

pub(in crate::store) fn purge_dead<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
) -> Result<u64, StoreError> {
    invoke(store, &PURGE_DEAD, keys, &[])
}

pub(in crate::store) fn lease_snapshot<C: Connector>(
    store: &C,
    keys: &LeaseKeys,
) -> Result<LeaseSnapshot, StoreError> {
    let SnapshotReply(snapshot) = invoke(store, &SNAPSHOT, keys, &[])?;
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
