//! Leased receive against plain `recv_msg`, and batch receive, on the
//! channel and server of the main benchmark.

use redis::Connection;
use redisutil::{RedisChannel, RedisStore};

use super::{Msg, N, compare, row};

/// Rates (msgs/s) of leased receive + ack, one at a time and by batches
/// of 100, against `recv_msg` in the same run; returns the rate of
/// `recv_msgs(100)` for the comparison with `redis-benchmark`.
pub fn run(
    serving: &RedisChannel<RedisStore>,
    admin: &mut Connection,
    fill: &mut dyn FnMut(&mut Connection),
) -> f64 {
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
