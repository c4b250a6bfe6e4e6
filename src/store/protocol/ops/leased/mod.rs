//! The [`LeaseStore`] operations on Redis: each one lease script on the
//! [`LeaseKeys`] (`store/script/lease.rs`), the blocking lease's loop of
//! looks and waits; and both drivers' implementations of the lease traits,
//! one line each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::list::{Nothing, wait_for_element};
use super::{Next, Operation, count, int, single, unexpected};
#[cfg(feature = "tokio")]
use crate::store::aio::AsyncStore;
#[cfg(feature = "tokio")]
use crate::store::aio_traits::AsyncLeaseStore;
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

mod drivers;

/// How long a blocking leased receive waits on the list, at most, while
/// something is pending: a message a nack makes due writes nothing to the
/// list, so the wait would not see it; looking again this often delivers
/// it within this time. (Every other way a message becomes due is seen:
/// a lease's deadline is in the look's answer, and a new lease needs a
/// message on the list, which wakes the wait.)
pub(crate) const LEASE_POLL: Duration = Duration::from_millis(50);

/// The call of `script` on `keys` (and `extra` keys of the same slot).
fn script_call<A: AsRef<[u8]>>(
    op: Op,
    keys: &LeaseKeys,
    extra: Option<String>,
    script: &'static Script,
    args: &[A],
) -> Call {
    let mut names: Vec<&str> = keys.all().iter().map(String::as_str).collect();
    if let Some(extra) = &extra {
        names.push(extra);
    }
    Call {
        op,
        route: Route::Key(keys.list().to_owned()),
        request: Request::script(script, &names, args),
        wait: Wait::Response,
    }
}

/// The (unit, places) pairs of `tags`, as the scripts take them: places
/// in runs (`1-40,42`).
fn tag_args(tags: &[DeliveryTag]) -> Vec<String> {
    let mut units: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for tag in tags {
        units.entry(&tag.unit).or_default().push(tag.index);
    }
    let mut args = Vec::with_capacity(units.len() * 2);
    for (unit, mut places) in units {
        places.sort_unstable();
        places.dedup();
        let mut runs = String::new();
        let mut i = 0;
        while i < places.len() {
            let start = places[i];
            while i + 1 < places.len() && places[i + 1] == places[i] + 1 {
                i += 1;
            }
            if !runs.is_empty() {
                runs.push(',');
            }
            match places[i] == start {
                true => runs.push_str(&start.to_string()),
                false => runs.push_str(&format!("{start}-{}", places[i])),
            }
            i += 1;
        }
        args.push(unit.to_owned());
        args.push(runs);
    }
    args
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
/// call id (the same when sent again after a lost reply).
fn lease_call(keys: &LeaseKeys, tags: &[DeliveryTag], count: usize, policy: LeasePolicy) -> Call {
    let unit = new_unit_id();
    let mut args = vec![
        lease_millis(policy.lease).max(1).to_string(),
        count.min(MAX_LEASE_BATCH).to_string(),
        policy.max_deliveries.to_string(),
        unit.clone(),
    ];
    args.extend(tag_args(tags));
    script_call(Op::Lease, keys, Some(keys.ack_marker(&unit)), &LEASE, &args)
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

/// The lease script; when it leased nothing, a wait on the list that
/// takes nothing (`BLMOVE` of the head onto itself), bounded by when a
/// pending message is due (and by [`LEASE_POLL`] while anything is
/// pending), then the script again.
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
        let look = |this: &Self| {
            Ok(Next::Call(lease_call(
                &this.keys,
                &[],
                this.count,
                this.policy,
            )))
        };
        let reply = match reply {
            None => return look(self),
            Some(_) if self.waiting => {
                self.waiting = false;
                return look(self);
            }
            Some(reply) => reading(&self.shown, reply, LeaseReply::read)?,
        };
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
        let mut wait =
            lease_wait(left, reply.next_due).map(|wait| wait.max(Duration::from_millis(1)));
        if reply.pending {
            wait = Some(wait.map_or(LEASE_POLL, |wait| wait.min(LEASE_POLL)));
        }
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

/// A script over `tags` whose reply is a count; nothing is asked for none.
fn over_tags(
    shown: &Arc<str>,
    op: Op,
    keys: &LeaseKeys,
    script: &'static Script,
    tags: &[DeliveryTag],
) -> impl Operation<Output = u64> + use<> {
    let call = script_call(op, keys, None, script, &tag_args(tags));
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
        tag.unit.clone(),
        tag.index.to_string(),
        lease_millis(delay).to_string(),
        max_deliveries.to_string(),
    ];
    let call = script_call(Op::Nack, keys, None, &NACK, &args);
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
        tag.unit.clone(),
        tag.index.to_string(),
        lease_millis(lease).max(1).to_string(),
    ];
    let call = script_call(Op::Extend, keys, None, &EXTEND, &args);
    single(shown, call, |reply| int(reply).map(extended))
}

fn dead_letter(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    tag: &DeliveryTag,
    reason: &DeadReason,
) -> impl Operation<Output = bool> + use<> {
    let args = [
        tag.unit.clone(),
        tag.index.to_string(),
        reason.as_word().to_owned(),
    ];
    let call = script_call(Op::DeadLetter, keys, None, &DEAD_LETTER, &args);
    single(shown, call, |reply| Ok(int(reply)? == 1))
}

fn reclaim(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    max_deliveries: u32,
) -> impl Operation<Output = u64> + use<> {
    let call = script_call(
        Op::Reclaim,
        keys,
        None,
        &RECLAIM,
        &[max_deliveries.to_string()],
    );
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
        None,
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
    let call = script_call(
        Op::PurgeDead,
        keys,
        None,
        &PURGE_DEAD,
        &pick_args(pick, "all"),
    );
    Nothing::unless(!nothing, single(shown, call, count))
}

fn snapshot(shown: &Arc<str>, keys: &LeaseKeys) -> impl Operation<Output = LeaseSnapshot> + use<> {
    let call = script_call(Op::Snapshot, keys, None, &SNAPSHOT, &[""; 0]);
    single(shown, call, read_snapshot)
}

fn stats(shown: &Arc<str>, keys: &LeaseKeys) -> impl Operation<Output = LeaseStats> + use<> {
    let call = script_call(Op::Snapshot, keys, None, &STATS, &[""; 0]);
    single(shown, call, read_stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(unit: &str, index: u32) -> DeliveryTag {
        DeliveryTag::new(format!("{unit}-{index}"), 1, unit.into(), index)
    }

    #[test]
    fn tags_go_by_unit_with_their_places_in_runs() {
        let tags = [
            tag("B", 1),
            tag("A", 3),
            tag("A", 1),
            tag("A", 2),
            tag("A", 7),
            tag("A", 2),
        ];
        assert_eq!(tag_args(&tags), ["A", "1-3,7", "B", "1"]);
        assert!(tag_args(&[]).is_empty());
    }
}
