//! The [`LeaseStore`] operations on Redis: each one lease script on the
//! [`LeaseKeys`] (`store/script/lease/`), the blocking lease's loop of
//! looks and waits; and both drivers' implementations of the lease traits,
//! one line each.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::list::{Nothing, wait_for_element};
use super::{Next, Operation, count, int, single, unexpected};
#[cfg(feature = "tokio")]
use crate::store::AsyncLeaseStore;
#[cfg(feature = "tokio")]
use crate::store::aio::AsyncStore;
use crate::store::blocking::BlockingStore;
use crate::store::lease::{
    DeadLetter, DeadReason, DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStats,
    LeaseStore, Leased, MAX_LEASE_BATCH, Nacked, Pick, lease_millis, lease_wait, new_unit_id,
};
use crate::store::policy::Op;
use crate::store::protocol::exchange::Call;
use crate::store::protocol::resp::Reply;
use crate::store::protocol::{Request, Route, Wait};
use crate::store::script::Script;
use crate::store::script::lease::{
    ACK, DEAD_LETTER, EXTEND, LEASE, LeaseReply, NACK, PURGE_DEAD, RECLAIM, RELEASE, REQUEUE_DEAD,
    SNAPSHOT, STATS, dead_letters as read_dead_letters, extended, snapshot as read_snapshot,
    stats as read_stats,
};
use crate::store::target::Target;
use crate::store::{StoreError, wait_limit};

mod blocking;
mod tags;
use blocking::*;
use tags::tag_args;

/// How long a blocking leased receive waits on the list, at most, while
/// something is pending: a message a nack makes due writes nothing to the
/// list, so the wait would not see it; looking again this often delivers
/// it within this time. (Every other way a message becomes due is seen:
/// a lease's deadline is in the look's answer, and a new lease needs a
/// message on the list, which wakes the wait.)
pub(crate) const LEASE_POLL: Duration = Duration::from_millis(50);

/// The call of `script` on `keys`.
fn script_call<A: AsRef<[u8]>>(
    op: Op,
    keys: &LeaseKeys,
    script: &'static Script,
    args: &[A],
) -> Call {
    on_list(op, keys, script_request(keys, &[], script, args))
}

/// `request`, a call of `op`, to the node of the list of `keys`.
fn on_list(op: Op, keys: &LeaseKeys, request: Request) -> Call {
    Call {
        op,
        route: Route::Key(keys.list().to_owned()),
        request,
        wait: Wait::Response,
    }
}

/// `script` on `keys`, and `extra` keys of the same slot.
fn script_request<A: AsRef<[u8]>>(
    keys: &LeaseKeys,
    extra: &[String],
    script: &'static Script,
    args: &[A],
) -> Request {
    let names: Vec<&str> = keys.all().iter().chain(extra).map(String::as_str).collect();
    Request::script(script, &names, args)
}

/// A reply read by `read`, or the error of a reply of another shape.
fn reading<T>(
    shown: &Arc<str>,
    reply: Reply,
    read: fn(Reply) -> Result<T, String>,
) -> Result<T, StoreError> {
    read(reply).map_err(|why| unexpected(shown, why))
}

/// Acks `tags`, then leases up to `count`, in one script under a fresh
/// call id (the same when sent again after a lost reply). A lease of more
/// than one message keeps their bodies in a list of its own, which the
/// script fills without reading them and an `LRANGE` in the same
/// transaction reads back.
fn lease_call(keys: &LeaseKeys, tags: &[DeliveryTag], count: usize, policy: LeasePolicy) -> Call {
    let unit = new_unit_id();
    let count = count.min(MAX_LEASE_BATCH);
    let mut args = vec![
        lease_millis(policy.lease).max(1).to_string(),
        count.to_string(),
        policy.max_deliveries.to_string(),
        unit.clone(),
    ];
    args.extend(tag_args(tags));
    let marker = keys.ack_marker(&unit);
    let request = match count > 1 {
        true => {
            let unit_list = keys.unit_list(&unit);
            let lease = script_request(keys, &[marker, unit_list.clone()], &LEASE, &args);
            Request::transaction(vec![
                lease,
                Request::new(&["LRANGE", &unit_list, "0", "-1"]),
            ])
        }
        // One message is never kept in a list of its own.
        false => script_request(keys, &[marker], &LEASE, &args),
    };
    on_list(Op::Lease, keys, request)
}

fn ack_and_lease(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
    count: usize,
    policy: LeasePolicy,
) -> impl Operation<Output = (u64, Vec<Leased>)> + use<> {
    let call = lease_call(keys, tags, count, policy);
    single(shown, call, |reply| {
        let reply = LeaseReply::read(reply)?;
        Ok((reply.acked, reply.leased))
    })
}

/// A script over `tags` whose reply is a count; nothing is asked for none.
fn over_tags(
    shown: &Arc<str>,
    op: Op,
    keys: &LeaseKeys,
    script: &'static Script,
    tags: &[DeliveryTag],
) -> impl Operation<Output = u64> + use<> {
    let call = script_call(op, keys, script, &tag_args(tags));
    Nothing::unless(!tags.is_empty(), single(shown, call, count))
}

fn ack(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
) -> impl Operation<Output = u64> + use<> {
    over_tags(shown, Op::Ack, keys, &ACK, tags)
}

fn release(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
) -> impl Operation<Output = u64> + use<> {
    over_tags(shown, Op::Release, keys, &RELEASE, tags)
}

fn nack(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    delay: Duration,
    max_deliveries: u32,
) -> impl Operation<Output = Nacked> + use<> {
    let args = [
        tag.unit.to_string(),
        tag.index.to_string(),
        lease_millis(delay).to_string(),
        max_deliveries.to_string(),
    ];
    let call = script_call(Op::Nack, keys, &NACK, &args);
    single(shown, call, |reply| {
        Ok(match int(reply)? {
            1 => Nacked::Retrying,
            2 => Nacked::DeadLettered,
            _ => Nacked::NotHeld,
        })
    })
}

fn extend(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    lease: Duration,
) -> impl Operation<Output = Option<SystemTime>> + use<> {
    let args = [
        tag.unit.to_string(),
        tag.index.to_string(),
        lease_millis(lease).max(1).to_string(),
    ];
    let call = script_call(Op::Extend, keys, &EXTEND, &args);
    single(shown, call, |reply| int(reply).map(extended))
}

fn dead_letter(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    reason: &DeadReason,
) -> impl Operation<Output = bool> + use<> {
    let args = [
        tag.unit.to_string(),
        tag.index.to_string(),
        reason.as_word().to_owned(),
    ];
    let call = script_call(Op::DeadLetter, keys, &DEAD_LETTER, &args);
    single(shown, call, |reply| Ok(int(reply)? == 1))
}

fn reclaim(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    max_deliveries: u32,
) -> impl Operation<Output = u64> + use<> {
    let call = script_call(Op::Reclaim, keys, &RECLAIM, &[max_deliveries.to_string()]);
    single(shown, call, count)
}

/// `XRANGE` of up to `max` dead letters (nothing asked for none).
fn dead_letters(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    max: usize,
) -> impl Operation<Output = Vec<DeadLetter>> + use<> {
    // COUNT takes a signed 64-bit number: more than that is all of them.
    let request = match i64::try_from(max) {
        Ok(max) => Request::new(&["XRANGE", keys.dead(), "-", "+", "COUNT", &max.to_string()]),
        Err(_) => Request::new(&["XRANGE", keys.dead(), "-", "+"]),
    };
    let call = Call::on_key(Op::DeadLetters, keys.list(), request);
    Nothing::unless(max > 0, single(shown, call, read_dead_letters))
}

/// The arguments of a pick: how many of the oldest, then ids.
fn pick_args(pick: Pick<'_>, all: &str) -> Vec<String> {
    match pick {
        Pick::Oldest(usize::MAX) => vec![all.to_owned()],
        Pick::Oldest(max) => vec![max.to_string()],
        Pick::Ids(ids) => std::iter::once("0".to_owned())
            .chain(ids.iter().cloned())
            .collect(),
    }
}

fn requeue_dead(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    pick: Pick<'_>,
) -> impl Operation<Output = u64> + use<> {
    let nothing = pick.is_empty();
    let oldest_all = i64::MAX.to_string();
    let call = script_call(
        Op::RequeueDead,
        keys,
        &REQUEUE_DEAD,
        &pick_args(pick, &oldest_all),
    );
    Nothing::unless(!nothing, single(shown, call, count))
}

fn purge_dead(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    pick: Pick<'_>,
) -> impl Operation<Output = u64> + use<> {
    let nothing = pick.is_empty();
    let call = script_call(Op::PurgeDead, keys, &PURGE_DEAD, &pick_args(pick, "all"));
    Nothing::unless(!nothing, single(shown, call, count))
}

fn snapshot(shown: &Arc<str>, keys: &LeaseKeys) -> impl Operation<Output = LeaseSnapshot> + use<> {
    let call = script_call(Op::Snapshot, keys, &SNAPSHOT, &[""; 0]);
    single(shown, call, read_snapshot)
}

fn stats(shown: &Arc<str>, keys: &LeaseKeys) -> impl Operation<Output = LeaseStats> + use<> {
    let call = script_call(Op::Snapshot, keys, &STATS, &[""; 0]);
    single(shown, call, read_stats)
}

impl<T: Target> LeaseStore for BlockingStore<T> {
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
        self.run(ack_and_lease(self.shown(), keys, tags, count, policy))
    }

    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        self.run(blocking_lease(self.shown(), keys, count, policy, timeout))
    }

    fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(ack(self.shown(), keys, tags))
    }

    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        self.run(nack(self.shown(), keys, tag, delay, max_deliveries))
    }

    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        self.run(extend(self.shown(), keys, tag, lease))
    }

    fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(release(self.shown(), keys, tags))
    }

    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        self.run(dead_letter(self.shown(), keys, tag, &reason))
    }

    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        self.run(reclaim(self.shown(), keys, max_deliveries))
    }

    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.run(dead_letters(self.shown(), keys, max))
    }

    fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(requeue_dead(self.shown(), keys, pick))
    }

    fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(purge_dead(self.shown(), keys, pick))
    }

    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(snapshot(self.shown(), keys))
    }

    fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        self.run(stats(self.shown(), keys))
    }
}

/// What a cancelled leased receive leased is handed back at once, without
/// spending a delivery.
#[cfg(feature = "tokio")]
fn hand_back<T: Target>(
    keys: &LeaseKeys,
) -> impl FnOnce(AsyncStore<T>, Vec<Leased>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
+ Send
+ 'static {
    let keys = keys.clone();
    move |store, leased| {
        Box::pin(async move {
            let tags: Vec<DeliveryTag> = leased.into_iter().map(|leased| leased.tag).collect();
            let shown = store.shown().clone();
            let handed_back = store.run(release(&shown, &keys, &tags), None).await;
            crate::trace::event!(
                WARN,
                addr = %shown,
                list = %keys.list(),
                messages = tags.len(),
                handed_back = handed_back.is_ok(),
                "a cancelled leased receive had leased messages; they are handed back"
            );
            let _ = handed_back;
        })
    }
}

#[cfg(feature = "tokio")]
impl<T: Target> AsyncLeaseStore for AsyncStore<T> {
    async fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        if count == 0 {
            return Ok((AsyncLeaseStore::ack(self, keys, tags).await?, Vec::new()));
        }
        let hand_back = hand_back(keys);
        let op = ack_and_lease(self.shown(), keys, tags, count, policy);
        self.receive(op, move |store, (_, leased)| hand_back(store, leased))
            .await
    }

    async fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        let op = blocking_lease(self.shown(), keys, count, policy, timeout);
        self.receive(op, hand_back(keys)).await
    }

    async fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(ack(self.shown(), keys, tags), None).await
    }

    async fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        self.run(nack(self.shown(), keys, tag, delay, max_deliveries), None)
            .await
    }

    async fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        self.run(extend(self.shown(), keys, tag, lease), None).await
    }

    async fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(release(self.shown(), keys, tags), None).await
    }

    async fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        self.run(dead_letter(self.shown(), keys, tag, &reason), None)
            .await
    }

    async fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        self.run(reclaim(self.shown(), keys, max_deliveries), None)
            .await
    }

    async fn dead_letters(
        &self,
        keys: &LeaseKeys,
        max: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.run(dead_letters(self.shown(), keys, max), None).await
    }

    async fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(requeue_dead(self.shown(), keys, pick), None).await
    }

    async fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(purge_dead(self.shown(), keys, pick), None).await
    }

    async fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(snapshot(self.shown(), keys), None).await
    }

    async fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        self.run(stats(self.shown(), keys), None).await
    }
}
