//! The lease operations' script calls: each is one script
//! ([`script::lease`](crate::store::script::lease)) on the four
//! [`LeaseKeys`], with its arguments, built once for both drivers.

use std::time::Duration;

use super::super::lease::{
    DeliveryTag, LeaseKeys, LeasePolicy, MAX_LEASE_BATCH, Nacked, lease_millis, lease_wait,
    new_id_prefix,
};
use super::super::script::Script;
pub(in crate::store) use super::super::script::lease::extended;
use super::super::script::lease::{
    ACK, DEAD_LETTER, EXTEND, LEASE, NACK, PURGE_DEAD, RECLAIM, REQUEUE_DEAD, SNAPSHOT,
};

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
