//! The [`LeaseStore`] operations on Redis: each a lease script on the
//! four [`LeaseKeys`] (built by `commands::lease`), the blocking lease's
//! loop of looks and waits; and the blocking driver's implementation of
//! the trait, one line each.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::list::wait_for_element;
use super::{Next, Operation, bulks, count, int, single, unexpected};
#[cfg(feature = "tokio")]
use crate::aio::AsyncLeaseStore;
#[cfg(feature = "tokio")]
use crate::store::aio::AsyncStore;
use crate::store::blocking::BlockingStore;
use crate::store::commands::lease::{
    self as calls, ScriptCall, extended, key_names, lease_pause, nacked,
};
use crate::store::lease::{
    DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, LeaseStore, Leased, Nacked,
};
use crate::store::policy::Op;
use crate::store::protocol::exchange::Call;
use crate::store::protocol::resp::Reply;
use crate::store::protocol::{Request, Route, Wait};
use crate::store::script::lease::{LeaseReply, SnapshotReply};
use crate::store::target::Target;
use crate::store::{StoreError, wait_limit};

/// The call of a lease script on `keys`.
fn script_call(op: Op, keys: &LeaseKeys, call: &ScriptCall) -> Call {
    Call {
        op,
        route: Route::Key(keys.list().to_owned()),
        request: Request::script(call.script, &key_names(keys), &call.args()),
        wait: Wait::Response,
    }
}

/// A reply as redis-rs holds it, for the replies' readers written on its
/// types.
fn to_value(reply: Reply) -> redis::Value {
    match reply {
        Reply::Nil => redis::Value::Nil,
        Reply::Status(status) => redis::Value::SimpleString(status),
        Reply::Int(value) => redis::Value::Int(value),
        Reply::Bulk(bytes) => redis::Value::BulkString(bytes),
        Reply::Array(items) => redis::Value::Array(items.into_iter().map(to_value).collect()),
        Reply::Error(message) => redis::Value::SimpleString(message),
    }
}

/// A reply read by its redis-rs reader.
fn read_as<V: redis::FromRedisValue>(reply: Reply) -> Result<V, String> {
    redis::from_redis_value(to_value(reply)).map_err(|err| err.to_string())
}

/// Acks `tags`, then leases up to `count`, in one script.
fn ack_and_lease(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tags: &[DeliveryTag],
    count: usize,
    policy: LeasePolicy,
) -> impl Operation<Output = (u64, Vec<Leased>)> + use<> {
    let call = script_call(Op::Lease, keys, &calls::lease_call(tags, count, policy));
    single(shown, call, |reply| {
        let reply: LeaseReply = read_as(reply)?;
        Ok((reply.acked, reply.leased))
    })
}

/// The lease script; when it leased nothing, a wait on the list that
/// takes nothing (`BLMOVE` of the head onto itself), bounded by when a
/// pending message is due, then the script again.
pub(crate) struct BlockingLease {
    shown: Arc<str>,
    keys: LeaseKeys,
    count: usize,
    policy: LeasePolicy,
    deadline: Option<Instant>,
    waiting: bool,
}

impl Operation for BlockingLease {
    type Output = Vec<Leased>;

    fn next(&mut self, reply: Option<Reply>) -> Result<Next<Self::Output>, StoreError> {
        if self.count == 0 {
            return Ok(Next::Done(Vec::new()));
        }
        let look = || {
            let call = calls::lease_call(&[], self.count, self.policy);
            Ok(Next::Call(script_call(Op::Lease, &self.keys, &call)))
        };
        let reply = match reply {
            None => return look(),
            Some(_) if self.waiting => {
                self.waiting = false;
                return look();
            }
            Some(reply) => reply,
        };
        let reply: LeaseReply = read_as(reply).map_err(|why| unexpected(&self.shown, why))?;
        if !reply.leased.is_empty() {
            return Ok(Next::Done(reply.leased));
        }
        let left = self
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(Next::Done(Vec::new()));
        }
        self.waiting = true;
        let wait = lease_pause(left, reply.next_due);
        Ok(Next::Call(wait_for_element(self.keys.list(), "LEFT", wait)))
    }

    fn stop(&mut self) -> Option<Self::Output> {
        Some(Vec::new())
    }
}

fn blocking_lease(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    count: usize,
    policy: LeasePolicy,
    timeout: Option<Duration>,
) -> BlockingLease {
    BlockingLease {
        shown: shown.clone(),
        keys: keys.clone(),
        count,
        policy,
        deadline: wait_limit(timeout).and_then(|timeout| Instant::now().checked_add(timeout)),
        waiting: false,
    }
}

/// A script call whose reply is a count; nothing is asked without a call.
fn counted(
    shown: &Arc<str>,
    op: Op,
    keys: &LeaseKeys,
    call: Option<ScriptCall>,
) -> impl Operation<Output = u64> + use<> {
    let call = call.map(|call| script_call(op, keys, &call));
    super::list::Nothing::unless(
        call.is_some(),
        single(
            shown,
            call.unwrap_or_else(|| script_call(op, keys, &calls::purge_dead_call())),
            count,
        ),
    )
}

/// LRANGE of up to `max` dead letters (nothing asked for none).
fn dead_letters(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    max: usize,
) -> impl Operation<Output = Vec<Vec<u8>>> + use<> {
    let last = i64::try_from(max).map_or(-1, |max| max - 1);
    let request = Request::new(&["LRANGE", keys.dead(), "0", &last.to_string()]);
    let call = Call::on_key(Op::DeadLetters, keys.list(), request);
    super::list::Nothing::unless(max > 0, single(shown, call, bulks))
}

/// The snapshot script.
fn snapshot(shown: &Arc<str>, keys: &LeaseKeys) -> impl Operation<Output = LeaseSnapshot> + use<> {
    let call = script_call(Op::Snapshot, keys, &calls::snapshot_call());
    single(shown, call, |reply| {
        let SnapshotReply(snapshot) = read_as(reply)?;
        Ok(snapshot)
    })
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
        self.run(counted(self.shown(), Op::Ack, keys, calls::ack_call(tags)))
    }

    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        let call = script_call(
            Op::Nack,
            keys,
            &calls::nack_call(tag, delay, max_deliveries),
        );
        self.run(single(self.shown(), call, |reply| int(reply).map(nacked)))
    }

    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        let call = script_call(Op::Extend, keys, &calls::extend_call(tag, lease));
        self.run(single(self.shown(), call, |reply| int(reply).map(extended)))
    }

    fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag) -> Result<bool, StoreError> {
        let call = script_call(Op::DeadLetter, keys, &calls::dead_letter_call(tag));
        self.run(single(self.shown(), call, |reply| Ok(int(reply)? == 1)))
    }

    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        let call = calls::reclaim_call(max_deliveries);
        self.run(counted(self.shown(), Op::Reclaim, keys, Some(call)))
    }

    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(dead_letters(self.shown(), keys, max))
    }

    fn requeue_dead(&self, keys: &LeaseKeys, max: usize) -> Result<u64, StoreError> {
        let call = calls::requeue_dead_call(max);
        self.run(counted(self.shown(), Op::RequeueDead, keys, call))
    }

    fn purge_dead(&self, keys: &LeaseKeys) -> Result<u64, StoreError> {
        let call = calls::purge_dead_call();
        self.run(counted(self.shown(), Op::PurgeDead, keys, Some(call)))
    }

    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(snapshot(self.shown(), keys))
    }
}

/// What a cancelled leased receive leased is handed back at once.
#[cfg(feature = "tokio")]
fn hand_back<T: Target>(
    keys: &LeaseKeys,
    max_deliveries: u32,
) -> impl FnOnce(AsyncStore<T>, Vec<Leased>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
+ Send
+ 'static {
    let keys = keys.clone();
    move |store, leased| {
        Box::pin(async move {
            for leased in leased {
                let call = calls::nack_call(&leased.tag, Duration::ZERO, max_deliveries);
                let call = script_call(Op::Nack, &keys, &call);
                let handed_back = store.call(call, None).await;
                crate::trace::event!(
                    WARN,
                    addr = %store.shown(),
                    list = %keys.list(),
                    handed_back = handed_back.is_ok(),
                    "a cancelled leased receive had leased a message; it is handed back"
                );
                let _ = handed_back;
            }
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
        let hand_back = hand_back(keys, policy.max_deliveries);
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
        self.receive(op, hand_back(keys, policy.max_deliveries))
            .await
    }

    async fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(
            counted(self.shown(), Op::Ack, keys, calls::ack_call(tags)),
            None,
        )
        .await
    }

    async fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        let call = script_call(
            Op::Nack,
            keys,
            &calls::nack_call(tag, delay, max_deliveries),
        );
        self.run(
            single(self.shown(), call, |reply| int(reply).map(nacked)),
            None,
        )
        .await
    }

    async fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        let call = script_call(Op::Extend, keys, &calls::extend_call(tag, lease));
        self.run(
            single(self.shown(), call, |reply| int(reply).map(extended)),
            None,
        )
        .await
    }

    async fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag) -> Result<bool, StoreError> {
        let call = script_call(Op::DeadLetter, keys, &calls::dead_letter_call(tag));
        self.run(
            single(self.shown(), call, |reply| Ok(int(reply)? == 1)),
            None,
        )
        .await
    }

    async fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        let call = calls::reclaim_call(max_deliveries);
        self.run(counted(self.shown(), Op::Reclaim, keys, Some(call)), None)
            .await
    }

    async fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(dead_letters(self.shown(), keys, max), None).await
    }

    async fn requeue_dead(&self, keys: &LeaseKeys, max: usize) -> Result<u64, StoreError> {
        let call = calls::requeue_dead_call(max);
        self.run(counted(self.shown(), Op::RequeueDead, keys, call), None)
            .await
    }

    async fn purge_dead(&self, keys: &LeaseKeys) -> Result<u64, StoreError> {
        let call = calls::purge_dead_call();
        self.run(counted(self.shown(), Op::PurgeDead, keys, Some(call)), None)
            .await
    }

    async fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(snapshot(self.shown(), keys), None).await
    }
}
