//! Model test of leased receive: random sends, leased receives (single and
//! batch), acks (also of stale deliveries), nacks, extends, clock
//! advances, reclaims, requeues and purges of dead letters; after every
//! step the store's whole lease state, and its list, equal the model's.
//!
//! On the fake the clock is a `ManualClock`, so deadlines are compared to
//! the millisecond. On a real Redis, whose clock the test cannot move,
//! leases and delays are long or zero and times are not compared.

use crate::support;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redisutil::{
    ChannelOptions, Clock, Delivery, LeaseStore, ManualClock, MemoryStore, Nacked, Peer,
    RedisChannel, store::DeadReason,
};
use support::{RedisServer, unique};

#[derive(Debug, Clone)]
enum Op {
    Send(u8),
    Lease { count: u8, lease_ms: u16 },
    Ack(u8),
    AckAll,
    Nack { pick: u8, delay_ms: u16 },
    Extend { pick: u8, lease_ms: u16 },
    Advance(u16),
    Reclaim,
    RequeueDead(u8),
    PurgeDead,
}

/// Operations; `timed` draws leases, delays and advances that expire
/// within the test, else leases too long to expire and delays of 0.
fn op(timed: bool) -> BoxedStrategy<Op> {
    let lease = if timed {
        (1u16..60).boxed()
    } else {
        Just(60_000u16).boxed()
    };
    let delay = if timed {
        (0u16..40).boxed()
    } else {
        Just(0u16).boxed()
    };
    let mut ops = vec![
        (3, (1u8..4).prop_map(Op::Send).boxed()),
        (
            4,
            ((1u8..4), lease.clone())
                .prop_map(|(count, lease_ms)| Op::Lease { count, lease_ms })
                .boxed(),
        ),
        (2, any::<u8>().prop_map(Op::Ack).boxed()),
        (1, Just(Op::AckAll).boxed()),
        (
            2,
            (any::<u8>(), delay)
                .prop_map(|(pick, delay_ms)| Op::Nack { pick, delay_ms })
                .boxed(),
        ),
        (
            1,
            (any::<u8>(), lease)
                .prop_map(|(pick, lease_ms)| Op::Extend { pick, lease_ms })
                .boxed(),
        ),
        (1, Just(Op::Reclaim).boxed()),
        (1, (1u8..3).prop_map(Op::RequeueDead).boxed()),
        (1, Just(Op::PurgeDead).boxed()),
    ];
    if timed {
        ops.push((3, (0u16..80).prop_map(Op::Advance).boxed()));
    }
    proptest::strategy::Union::new_weighted(ops).boxed()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    InFlight(u64),
    Retry(u64),
}

#[derive(Debug, Clone)]
struct Record {
    body: Vec<u8>,
    attempt: u32,
    place: Place,
}

/// A dead letter as the model knows it: the message's id, its body, how
/// many deliveries it had and why it died.
type Dead = (String, Vec<u8>, u32, DeadReason);

/// What the store should hold: the list, the lease records, the dead letters.
///
/// Messages due at the same millisecond are taken in an order the model
/// does not follow (the store's, by leased receive): where that order
/// decides, the model checks the store's choice is one it allows and
/// adopts it; dead letters buried in one step are compared as a set.
struct Model {
    max: u32,
    now: u64,
    next_body: u32,
    queue: VecDeque<Vec<u8>>,
    records: HashMap<String, Record>,
    dead: VecDeque<Dead>,
    /// How many dead letters at the end of `dead` this step buried.
    buried_now: usize,
}

impl Model {
    /// The pending members, by (time, member): the order of the sorted set.
    fn pending(&self) -> Vec<(u64, String, String)> {
        let mut pending: Vec<(u64, String, String)> = self
            .records
            .iter()
            .map(|(id, record)| match record.place {
                Place::InFlight(at) => (at, format!("{id}#{}", record.attempt), id.clone()),
                Place::Retry(at) => (at, format!("{id}#{}+", record.attempt), id.clone()),
            })
            .collect();
        pending.sort();
        pending
    }

    /// Ids of one kind, in the sorted set's order.
    fn ordered(&self, in_flight: bool) -> Vec<(u64, String)> {
        self.pending()
            .into_iter()
            .filter(|(_, member, _)| member.ends_with('+') != in_flight)
            .map(|(at, _, id)| (at, id))
            .collect()
    }

    /// Ids due now, grouped by when they are due, earliest first.
    fn due_groups(&self) -> Vec<Vec<String>> {
        let mut groups: Vec<(u64, Vec<String>)> = Vec::new();
        for (at, _, id) in self.pending() {
            if at > self.now {
                continue;
            }
            match groups.last_mut() {
                Some((last, group)) if *last == at => group.push(id),
                _ => groups.push((at, vec![id])),
            }
        }
        groups.into_iter().map(|(_, group)| group).collect()
    }

    /// Buries a message: expired when it was in flight, else refused.
    fn bury(&mut self, id: &str) {
        let reason = match self.records[id].place {
            Place::InFlight(_) => DeadReason::Expired,
            Place::Retry(_) => DeadReason::Nacked,
        };
        self.bury_as(id, reason);
    }

    fn bury_as(&mut self, id: &str, reason: DeadReason) {
        let record = self.records.remove(id).unwrap();
        self.dead
            .push_back((id.to_owned(), record.body, record.attempt, reason));
        self.buried_now += 1;
    }

    /// Expired leases wait at their deadline, or are buried; how many.
    fn reclaim(&mut self) -> u64 {
        let expired: Vec<(u64, String)> = self
            .ordered(true)
            .into_iter()
            .filter(|(at, _)| *at <= self.now)
            .collect();
        for (at, id) in &expired {
            if self.records[id].attempt >= self.max {
                self.bury(id);
            } else {
                self.records.get_mut(id).unwrap().place = Place::Retry(*at);
            }
        }
        expired.len() as u64
    }

    fn holds(&self, delivery: &Delivery<u32>) -> Option<&Record> {
        self.records
            .get(delivery.tag().id())
            .filter(|record| record.attempt == delivery.attempt())
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Runs `ops` on `server` (and `client` to send), checking every step.
fn run<S: LeaseStore + Clone>(
    client: &RedisChannel<S>,
    server: &RedisChannel<S>,
    clock: Option<&ManualClock>,
    max: u32,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut model = Model {
        max,
        now: clock.map_or(0, |clock| millis(clock.now())),
        next_body: 0,
        queue: VecDeque::new(),
        records: HashMap::new(),
        dead: VecDeque::new(),
        buried_now: 0,
    };
    let mut held: Vec<Delivery<u32>> = Vec::new();
    let pick = |held: &Vec<Delivery<u32>>, pick: u8| -> Option<usize> {
        (!held.is_empty()).then(|| usize::from(pick) % held.len())
    };
    for op in ops {
        match *op {
            Op::Send(count) => {
                let bodies: Vec<u32> = (0..count)
                    .map(|_| {
                        model.next_body += 1;
                        model.next_body
                    })
                    .collect();
                client.send_msgs(&bodies).unwrap();
                model
                    .queue
                    .extend(bodies.iter().map(|body| body.to_string().into_bytes()));
            }
            Op::Lease { count, lease_ms } => {
                // The server orders due messages by its own clock, which
                // the untimed model does not follow: there, a lease takes
                // every due message, so that which are redelivered and
                // which buried does not depend on that order.
                let groups = model.due_groups();
                let count = match clock {
                    None => count.max(u8::try_from(groups.concat().len()).unwrap_or(u8::MAX)),
                    Some(_) => count,
                };
                let dead_before = model.dead.len();
                let got = server
                    .lease_msgs::<u32>(usize::from(count), Duration::from_millis(lease_ms.into()))
                    .unwrap();
                let deadline = model.now + u64::from(lease_ms);
                // Due messages first, a group (same due time) at a time;
                // those delivered `max` times are buried on the way. In
                // the group where the count runs out, which are taken and
                // which buried is the store's order: any is allowed.
                let mut redelivered: Vec<String> = Vec::new();
                let mut may_take: Vec<String> = Vec::new();
                let mut buried: Vec<String> = Vec::new();
                let mut may_bury: Vec<String> = Vec::new();
                let mut left = usize::from(count);
                for group in groups {
                    if left == 0 {
                        break;
                    }
                    let (live, spent): (Vec<String>, Vec<String>) = group
                        .into_iter()
                        .partition(|id| model.records[id].attempt < model.max);
                    if live.len() < left || (live.len() == left && spent.is_empty()) {
                        left -= live.len();
                        redelivered.extend(live);
                        buried.extend(spent);
                    } else {
                        may_take = live;
                        may_bury = spent;
                        break;
                    }
                }
                let taken = got
                    .iter()
                    .filter(|delivery| delivery.as_ref().unwrap().attempt() > 1)
                    .count();
                let chosen: Vec<String> = got[..taken]
                    .iter()
                    .map(|delivery| delivery.as_ref().unwrap().tag().id().to_owned())
                    .collect();
                let mut expected = redelivered.clone();
                expected.extend(chosen.iter().filter(|id| may_take.contains(id)).cloned());
                let mut sorted = chosen.clone();
                sorted.sort();
                expected.sort();
                prop_assert_eq!(sorted, expected);
                prop_assert!(
                    may_take.is_empty() || chosen.len() == redelivered.len() + left,
                    "the count runs out in the group where the choice is the store's"
                );
                // Which were buried: the store's dead letters say.
                let snapshot = server.lease_snapshot().unwrap();
                let new_dead: Vec<String> = snapshot.dead[dead_before.min(snapshot.dead.len())..]
                    .iter()
                    .map(|dead| dead.message_id.clone())
                    .collect();
                for id in &new_dead {
                    prop_assert!(
                        buried.contains(id) || may_bury.contains(id),
                        "{} was not due to be buried",
                        id
                    );
                }
                for id in &buried {
                    prop_assert!(new_dead.contains(id), "{} was due to be buried", id);
                }
                for id in &new_dead {
                    model.bury(id);
                }
                let fresh = usize::from(count) - chosen.len();
                let fresh: Vec<Vec<u8>> =
                    model.queue.drain(..fresh.min(model.queue.len())).collect();
                prop_assert_eq!(got.len(), chosen.len() + fresh.len());
                for (place, delivery) in got.into_iter().enumerate() {
                    let delivery = delivery.unwrap();
                    if clock.is_some() {
                        prop_assert_eq!(millis(delivery.deadline()), deadline);
                    }
                    if let Some(id) = chosen.get(place) {
                        prop_assert_eq!(delivery.tag().id(), id);
                        let record = model.records.get_mut(id).unwrap();
                        record.attempt += 1;
                        record.place = Place::InFlight(deadline);
                        prop_assert_eq!(delivery.attempt(), record.attempt);
                        prop_assert_eq!(
                            delivery.msg().to_string().into_bytes(),
                            record.body.clone()
                        );
                    } else {
                        let body = fresh[place - chosen.len()].clone();
                        prop_assert_eq!(delivery.attempt(), 1);
                        prop_assert_eq!(delivery.msg().to_string().into_bytes(), body.clone());
                        let id = delivery.tag().id().to_owned();
                        prop_assert!(!model.records.contains_key(&id), "a fresh id");
                        model.records.insert(
                            id,
                            Record {
                                body,
                                attempt: 1,
                                place: Place::InFlight(deadline),
                            },
                        );
                    }
                    held.push(delivery);
                }
            }
            Op::Ack(which) => {
                if let Some(index) = pick(&held, which) {
                    let delivery = held.remove(index);
                    let expected = model.holds(&delivery).is_some();
                    prop_assert_eq!(server.ack(&delivery).unwrap(), expected);
                    if expected {
                        model.records.remove(delivery.tag().id());
                    }
                }
            }
            Op::AckAll => {
                let expected = held.iter().filter(|d| model.holds(d).is_some()).count() as u64;
                prop_assert_eq!(server.ack_all(&held).unwrap(), expected);
                for delivery in held.drain(..) {
                    if model.holds(&delivery).is_some() {
                        model.records.remove(delivery.tag().id());
                    }
                }
            }
            Op::Nack {
                pick: which,
                delay_ms,
            } => {
                if let Some(index) = pick(&held, which) {
                    let delivery = &held[index];
                    let in_flight = model
                        .holds(delivery)
                        .is_some_and(|record| matches!(record.place, Place::InFlight(_)));
                    let id = delivery.tag().id().to_owned();
                    let expected = if !in_flight {
                        Nacked::NotHeld
                    } else if delivery.attempt() >= model.max {
                        model.bury_as(&id, DeadReason::Nacked);
                        Nacked::DeadLettered
                    } else {
                        model.records.get_mut(&id).unwrap().place =
                            Place::Retry(model.now + u64::from(delay_ms));
                        Nacked::Retrying
                    };
                    let got = server
                        .nack(delivery, Duration::from_millis(delay_ms.into()))
                        .unwrap();
                    prop_assert_eq!(got, expected);
                }
            }
            Op::Extend {
                pick: which,
                lease_ms,
            } => {
                if let Some(index) = pick(&held, which) {
                    let deadline = model.now + u64::from(lease_ms);
                    let delivery = &mut held[index];
                    let id = delivery.tag().id().to_owned();
                    let in_flight = model
                        .holds(delivery)
                        .is_some_and(|record| matches!(record.place, Place::InFlight(_)));
                    let got = server
                        .extend(delivery, Duration::from_millis(lease_ms.into()))
                        .unwrap();
                    prop_assert_eq!(got, in_flight);
                    if in_flight {
                        model.records.get_mut(&id).unwrap().place = Place::InFlight(deadline);
                        if clock.is_some() {
                            prop_assert_eq!(millis(delivery.deadline()), deadline);
                        }
                    }
                }
            }
            Op::Advance(by) => {
                let clock = clock.expect("time moves only on a manual clock");
                clock.advance(Duration::from_millis(by.into()));
                model.now += u64::from(by);
            }
            Op::Reclaim => {
                let expected = model.reclaim();
                prop_assert_eq!(server.reclaim().unwrap(), expected);
            }
            Op::RequeueDead(count) => {
                let moved: Vec<Vec<u8>> = model
                    .dead
                    .drain(..usize::from(count).min(model.dead.len()))
                    .map(|(_, body, _, _)| body)
                    .collect();
                prop_assert_eq!(
                    server.requeue_dead(count.into()).unwrap(),
                    moved.len() as u64
                );
                model.queue.extend(moved);
            }
            Op::PurgeDead => {
                prop_assert_eq!(server.purge_dead().unwrap(), model.dead.len() as u64);
                model.dead.clear();
            }
        }
        check(server, &mut model, clock.is_some())?;
    }
    Ok(())
}

/// The store's lease state and list equal the model's.
fn check<S: LeaseStore>(
    server: &RedisChannel<S>,
    model: &mut Model,
    timed: bool,
) -> Result<(), TestCaseError> {
    let snapshot = server.lease_snapshot().unwrap();
    for (entries, in_flight) in [(&snapshot.in_flight, true), (&snapshot.retrying, false)] {
        let mut got: Vec<(u64, String, u32, Vec<u8>)> = entries
            .iter()
            .map(|entry| {
                let at = if timed { millis(entry.at) } else { 0 };
                (
                    at,
                    entry.tag.id().to_owned(),
                    entry.tag.attempt,
                    entry.body.clone(),
                )
            })
            .collect();
        let mut expected: Vec<(u64, String, u32, Vec<u8>)> = model
            .ordered(in_flight)
            .into_iter()
            .map(|(at, id)| {
                let record = &model.records[&id];
                (
                    if timed { at } else { 0 },
                    id,
                    record.attempt,
                    record.body.clone(),
                )
            })
            .collect();
        // Entries due at the same time come in the store's order.
        got.sort();
        expected.sort();
        prop_assert_eq!(got, expected, "in flight: {}", in_flight);
    }
    let dead: Vec<Dead> = snapshot
        .dead
        .iter()
        .map(|dead| {
            (
                dead.message_id.clone(),
                dead.body.clone(),
                dead.deliveries,
                dead.reason.clone(),
            )
        })
        .collect();
    prop_assert_eq!(dead.len(), model.dead.len());
    // Those buried in this step, in the store's order.
    let settled = model.dead.len() - model.buried_now;
    let mut got_now = dead[settled..].to_vec();
    let mut expected_now = Vec::from(model.dead.clone())[settled..].to_vec();
    got_now.sort_by(|a, b| a.0.cmp(&b.0));
    expected_now.sort_by(|a, b| a.0.cmp(&b.0));
    prop_assert_eq!(&dead[..settled], &Vec::from(model.dead.clone())[..settled]);
    prop_assert_eq!(got_now, expected_now);
    model.dead = dead.into();
    model.buried_now = 0;
    let store = server.store();
    let queue: Vec<Vec<u8>> = (0..model.queue.len() as i64 + 1)
        .map_while(|index| store.index(server.recv_key(), index).unwrap())
        .collect();
    prop_assert_eq!(queue, Vec::from(model.queue.clone()));
    Ok(())
}

fn channels<S: LeaseStore + Clone>(store: S, max: u32) -> (RedisChannel<S>, RedisChannel<S>) {
    let name = unique("/lease-model");
    let options = ChannelOptions {
        max_deliveries: max,
        ..Default::default()
    };
    let client = RedisChannel::new(store.clone(), &name, Peer::Client).unwrap();
    let server = RedisChannel::with_options(store, &name, Peer::Server, options).unwrap();
    (client, server)
}

#[test]
fn the_fake_follows_the_model_to_the_millisecond() {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let strategy = (1u32..4, prop::collection::vec(op(true), 1..60));
    runner
        .run(&strategy, |(max, ops)| {
            let clock = ManualClock::default();
            let (client, server) = channels(MemoryStore::with_clock(clock.clone()), max);
            run(&client, &server, Some(&clock), max, &ops)
        })
        .unwrap();
}

#[test]
fn redis_follows_the_model() {
    let redis = RedisServer::start();
    let store = redis.store();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    let strategy = (1u32..4, prop::collection::vec(op(false), 1..40));
    runner
        .run(&strategy, |(max, ops)| {
            let (client, server) = channels(store.clone(), max);
            run(&client, &server, None, max, &ops)
        })
        .unwrap();
}
