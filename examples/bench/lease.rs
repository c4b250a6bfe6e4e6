//! Leased receive against plain `recv_msg`, and batch receive, on the
//! channel and server of the main benchmark.

use redis::Connection;
use redisutil::{RedisChannel, RedisStore};

use super::support::RedisServer;
use super::{Msg, N, compare, raw, row};

/// The floors of a leased batch kept in Redis, in raw calls on the keys
/// of a channel's lease (and copies of their own): what any layout must
/// do, without what this crate's lease promises (type checks,
/// redeliveries first, a retry that finds its first run, dead letters).
/// Redis has no command that moves a range of one list to another: the
/// batch is copied into a list of its own (`SORT … BY nosort LIMIT …
/// STORE`, the cheapest way found), the head trimmed off the channel's
/// list, and the copy read back.
pub struct Floors {
    list: String,
    pending: String,
    records: String,
    /// The prefix of the copies' keys.
    copies: String,
    /// The least script, loaded.
    least: String,
    /// The last batch [`Floors::least`] leased.
    unit: u64,
}

/// KEYS: the list, pending, records, this batch's copy, the last one's;
/// ARGV: the batch's size, its unit, its deadline, the last unit.
const LEAST_SCRIPT: &str = "\
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('HDEL', KEYS[3], ARGV[4])
redis.call('UNLINK', KEYS[5])
local stored = redis.call('SORT', KEYS[1], 'BY', 'nosort', 'LIMIT', '0', ARGV[1], 'STORE', KEYS[4])
redis.call('LTRIM', KEYS[1], ARGV[1], '-1')
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return stored";

impl Floors {
    pub fn new(serving: &RedisChannel<RedisStore>, raw: &mut Connection) -> Self {
        let keys = serving.lease_keys().unwrap();
        Self {
            list: serving.recv_key().to_owned(),
            pending: keys.pending().to_owned(),
            records: keys.bodies().to_owned(),
            copies: format!("{{{}}}:copy", serving.recv_key()),
            least: redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(LEAST_SCRIPT)
                .query(raw)
                .unwrap(),
            unit: 0,
        }
    }

    /// The copy alone, dropped at once (the ack): `MULTI`, `SORT …
    /// STORE`, `LTRIM`, `LRANGE`, `UNLINK`, `EXEC`; the bodies.
    pub fn copy(&mut self, raw: &mut Connection, batch: usize) -> Vec<Vec<u8>> {
        let copy = &self.copies;
        let (bodies,): (Vec<Vec<u8>>,) = redis::pipe()
            .atomic()
            .cmd("SORT")
            .arg(&self.list)
            .arg(&["BY", "nosort", "LIMIT", "0"][..])
            .arg(batch)
            .arg("STORE")
            .arg(copy)
            .ignore()
            .cmd("LTRIM")
            .arg(&self.list)
            .arg(batch)
            .arg(-1)
            .ignore()
            .cmd("LRANGE")
            .arg(copy)
            .arg(0)
            .arg(-1)
            .cmd("UNLINK")
            .arg(copy)
            .ignore()
            .query(raw)
            .unwrap();
        bodies
    }

    /// The copy and the least bookkeeping a lease needs, in the least
    /// script: an entry in the pending set and a record for this batch,
    /// the last batch's removed with its copy (its ack); then `LRANGE`
    /// of the copy in the same `MULTI`. The bodies.
    pub fn least(&mut self, raw: &mut Connection, batch: usize) -> Vec<Vec<u8>> {
        self.unit += 1;
        let this = format!("{}:{}", self.copies, self.unit);
        let last = format!("{}:{}", self.copies, self.unit - 1);
        let keys = [&self.list, &self.pending, &self.records, &this, &last];
        let (bodies,): (Vec<Vec<u8>>,) = redis::pipe()
            .atomic()
            .cmd("EVALSHA")
            .arg(&self.least)
            .arg(keys.len())
            .arg(&keys[..])
            .arg(batch)
            .arg(&this)
            .arg(u64::MAX >> 12)
            .arg(&last)
            .ignore()
            .cmd("LRANGE")
            .arg(&this)
            .arg(0)
            .arg(-1)
            .query(raw)
            .unwrap();
        bodies
    }
}

/// Rates (msgs/s) of leased receive + ack, one at a time and by batches
/// of 100, against `recv_msg` in the same run; returns the rate of
/// `recv_msgs(100)` for the comparison with `redis-benchmark`.
pub fn run(
    serving: &RedisChannel<RedisStore>,
    server: &RedisServer,
    fill: &mut dyn FnMut(&mut Connection),
) -> f64 {
    let (admin, mut copier) = (&mut raw(server), raw(server));
    let lease = std::time::Duration::from_secs(60);
    let keys = serving.lease_keys().unwrap().clone();
    let mut refill = |admin: &mut Connection| {
        for key in [keys.pending(), keys.bodies(), keys.dead()] {
            let _: () = redis::cmd("DEL").arg(key).query(admin).unwrap();
        }
        fill(admin);
    };
    let recv = |_| drop(serving.recv_msg::<Msg>().unwrap().unwrap());

    let single = compare(
        N,
        &mut || refill(admin),
        &mut |_| {
            let delivery = serving.lease_msg::<Msg>(lease).unwrap().unwrap();
            assert!(serving.ack(&delivery).unwrap());
        },
        &mut recv.clone(),
    );
    row("lease_msg + ack (2 round trips)", single, "recv_msg");

    // A consumer's loop: ack what is done and lease the next, at once.
    let held = std::cell::RefCell::new(None);
    let looped = compare(
        N,
        &mut || {
            held.replace(None);
            refill(admin)
        },
        &mut |_| {
            let done = held.borrow_mut().take();
            let next = match done {
                None => serving.lease_msg::<Msg>(lease).unwrap(),
                Some(done) => {
                    let (acked, next) = serving.ack_and_lease_msg(&done, lease).unwrap();
                    assert!(acked);
                    next
                }
            };
            held.replace(Some(next.unwrap()));
        },
        &mut recv.clone(),
    );
    row("ack_and_lease_msg (1 round trip)", looped, "recv_msg");

    // Batches of 100 against `recv_msgs(100)` on the same list, in the
    // same run: what at-least-once costs over a plain batch receive.
    let batch = 100;
    let plain_batch = |_| assert_eq!(serving.recv_msgs::<Msg>(batch).unwrap().len(), batch);
    let (leased, plain) = compare(
        N / batch as u64,
        &mut || refill(admin),
        &mut |_| {
            let deliveries: Vec<_> = serving
                .lease_msgs::<Msg>(batch, lease)
                .unwrap()
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(serving.ack_all(&deliveries).unwrap(), batch as u64);
        },
        &mut plain_batch.clone(),
    );
    let per_batch = |(ours, baseline): (f64, f64)| (ours * batch as f64, baseline * batch as f64);
    row(
        "lease_msgs(100) + ack_all (2 round trips), msgs/s",
        per_batch((leased, plain)),
        "recv_msgs(100)",
    );

    let held = std::cell::RefCell::new(Vec::new());
    let (looped, plain) = compare(
        N / batch as u64,
        &mut || {
            held.replace(Vec::new());
            refill(admin)
        },
        &mut |_| {
            let done = held.take();
            let (acked, next) = serving
                .ack_and_lease_msgs::<_, Msg>(&done, batch, lease)
                .unwrap();
            assert_eq!(acked, done.len() as u64);
            held.replace(next.into_iter().map(Result::unwrap).collect());
        },
        &mut plain_batch.clone(),
    );
    row(
        "ack_and_lease_msgs(100) (1 round trip), msgs/s",
        per_batch((looped, plain)),
        "recv_msgs(100)",
    );

    // The floors of a leased batch kept in Redis (see [`Floors`]), the
    // bodies decoded as `recv_msgs` decodes them.
    let mut floors = Floors::new(serving, &mut copier);
    type Floor = fn(&mut Floors, &mut Connection, usize) -> Vec<Vec<u8>>;
    let rows: [(&str, Floor); 2] = [
        (
            "the copy alone (raw: MULTI, SORT … STORE, LTRIM, LRANGE, UNLINK, EXEC), msgs/s",
            Floors::copy,
        ),
        (
            "the copy and the least bookkeeping, in one script (raw: ZREM, HDEL, UNLINK of the \
             last batch; SORT … STORE, LTRIM, HSET, ZADD), msgs/s",
            Floors::least,
        ),
    ];
    for (name, floor) in rows {
        let rates = compare(
            N / batch as u64,
            &mut || refill(admin),
            &mut |_| {
                let bodies = floor(&mut floors, &mut copier, batch);
                let msgs: Vec<Msg> = bodies
                    .iter()
                    .map(|body| serde_json::from_slice(body).unwrap())
                    .collect();
                assert_eq!(msgs.len(), batch);
            },
            &mut plain_batch.clone(),
        );
        row(name, per_batch(rates), "recv_msgs(100)");
    }

    let (batched, plain) = compare(
        N / batch as u64,
        &mut || refill(admin),
        &mut plain_batch.clone(),
        &mut |_| {
            for _ in 0..batch {
                recv(0);
            }
        },
    );
    let batched = batched * batch as f64;
    row(
        "recv_msgs(100), msgs/s",
        (batched, plain * batch as f64),
        "recv_msg",
    );
    batched
}
