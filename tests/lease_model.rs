//! Model test of leased receive: random sends, leased receives (single and
//! batch), acks (also of stale deliveries), nacks, extends, clock
//! advances, reclaims, requeues and purges of dead letters; after every
//! step the store's whole lease state, and its list, equal the model's.
//!
//! On the fake the clock is a `ManualClock`, so deadlines are compared to
//! the millisecond. On a real Redis, whose clock the test cannot move,
//! leases and delays are long or zero and times are not compared.

mod support;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redisutil::{
    ChannelOptions, Clock, Delivery, LeaseStore, ManualClock, MemoryStore, Nacked, Peer,
    RedisChannel,
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

/// What the store should hold: the list, the lease records, the dead letters.
struct Model {
    max: u32,
    now: u64,
    next_body: u32,
    queue: VecDeque<Vec<u8>>,
    records: HashMap<String, Record>,
    dead: VecDeque<Vec<u8>>,
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

    fn bury(&mut self, id: &str) {
        let record = self.records.remove(id).unwrap();
        self.dead.push_back(record.body);
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
            .get(&delivery.tag().id)
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
                let due_now = model
                    .pending()
                    .iter()
                    .filter(|(at, _, _)| *at <= model.now)
                    .count();
                let count = match clock {
                    None => count.max(u8::try_from(due_now).unwrap_or(u8::MAX)),
                    Some(_) => count,
                };
                let got = server
                    .lease_msgs::<u32>(usize::from(count), Duration::from_millis(lease_ms.into()))
                    .unwrap();
                let deadline = model.now + u64::from(lease_ms);
                // Due pending messages first, in the sorted set's order:
                // those delivered `max` times are buried on the way.
                let due: Vec<String> = model
                    .pending()
                    .into_iter()
                    .filter(|(at, _, _)| *at <= model.now)
                    .map(|(_, _, id)| id)
                    .collect();
                let mut redelivered = Vec::new();
                for id in due {
                    if redelivered.len() == usize::from(count) {
                        break;
                    }
                    if model.records[&id].attempt >= model.max {
                        model.bury(&id);
                    } else {
                        redelivered.push(id);
                    }
                }
                if clock.is_none() {
                    // The server orders retries by its own clock: any of
                    // the due ones may come first.
                    let chosen: Vec<String> = got
                        .iter()
                        .take(redelivered.len())
                        .map(|delivery| delivery.as_ref().unwrap().tag().id.clone())
                        .collect();
                    let mut sorted = chosen.clone();
                    sorted.sort();
                    let mut expected = redelivered.clone();
                    expected.sort();
                    prop_assert_eq!(sorted, expected);
                    redelivered = chosen;
                }
                let fresh = usize::from(count) - redelivered.len();
                let fresh: Vec<Vec<u8>> =
                    model.queue.drain(..fresh.min(model.queue.len())).collect();
                prop_assert_eq!(got.len(), redelivered.len() + fresh.len());
                for (place, delivery) in got.into_iter().enumerate() {
                    let delivery = delivery.unwrap();
                    if clock.is_some() {
                        prop_assert_eq!(millis(delivery.deadline()), deadline);
                    }
                    if let Some(id) = redelivered.get(place) {
                        prop_assert_eq!(&delivery.tag().id, id);
                        let record = model.records.get_mut(id).unwrap();
                        record.attempt += 1;
                        record.place = Place::InFlight(deadline);
                        prop_assert_eq!(delivery.attempt(), record.attempt);
                        prop_assert_eq!(
                            delivery.msg().to_string().into_bytes(),
                            record.body.clone()
                        );
                    } else {
                        let body = fresh[place - redelivered.len()].clone();
                        prop_assert_eq!(delivery.attempt(), 1);
                        prop_assert_eq!(delivery.msg().to_string().into_bytes(), body.clone());
                        let id = delivery.tag().id.clone();
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
                        model.records.remove(&delivery.tag().id);
                    }
                }
            }
            Op::AckAll => {
                let expected = held.iter().filter(|d| model.holds(d).is_some()).count() as u64;
                prop_assert_eq!(server.ack_all(&held).unwrap(), expected);
                for delivery in held.drain(..) {
                    if model.holds(&delivery).is_some() {
                        model.records.remove(&delivery.tag().id);
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
                    let id = delivery.tag().id.clone();
                    let expected = if !in_flight {
                        Nacked::NotHeld
                    } else if delivery.attempt() >= model.max {
                        model.bury(&id);
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
                    let id = delivery.tag().id.clone();
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
        check(server, &model, clock.is_some())?;
    }
    Ok(())
}

/// The store's lease state and list equal the model's.
fn check<S: LeaseStore>(
    server: &RedisChannel<S>,
    model: &Model,
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
                    entry.tag.id.clone(),
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
        if !timed {
            got.sort();
            expected.sort();
        }
        prop_assert_eq!(got, expected, "in flight: {}", in_flight);
    }
    prop_assert_eq!(&snapshot.dead, &Vec::from(model.dead.clone()));
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
