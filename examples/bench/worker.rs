//! The worker's throughput on a real Redis with a no-op handler, beside
//! the hand-written loop it replaces (`ack_and_lease_msgs`: the done
//! messages acked and the next leased in one round trip, one at a time or
//! by batches) in the same run, over 20,000 messages each.
//!
//! ```text
//! cargo run --release --example bench -- worker
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redisutil::worker::{Job, Outcome, Worker, WorkerOptions};
use redisutil::{Peer, RedisChannel, RedisStore};

use super::support::RedisServer;
use super::{Msg, N, RUNS, msg};

/// Messages a second of `consume` draining `N` messages sent just before.
fn drain(client: &RedisChannel<RedisStore>, consume: &mut dyn FnMut() -> u64) -> f64 {
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        client.send_msgs(chunk.iter().map(|&i| msg(i))).unwrap();
    }
    let start = Instant::now();
    let done = consume();
    assert_eq!(done, N);
    N as f64 / start.elapsed().as_secs_f64()
}

/// `bench -- worker`.
pub fn run() {
    let server = RedisServer::start();
    let client = RedisChannel::new(server.store(), "/bench/worker", Peer::Client).unwrap();
    let serving = RedisChannel::new(server.store(), "/bench/worker", Peer::Server).unwrap();
    let lease = Duration::from_secs(60);
    // The hand-written loops a worker replaces: ack what is done and
    // lease the next (one message, or a batch of `max`) in one round trip.
    let by_hand = |max: usize| {
        let mut done = 0;
        let mut held: Vec<redisutil::Delivery<Msg>> = Vec::new();
        while done < N {
            let (acked, batch) = serving.ack_and_lease_msgs(&held, max, lease).unwrap();
            assert_eq!(acked, held.len() as u64);
            held = batch.into_iter().map(Result::unwrap).collect();
            // The work: none.
            done += held.len() as u64;
        }
        assert_eq!(serving.ack_all(&held).unwrap(), held.len() as u64);
        done
    };
    let worker = |concurrency: usize, prefetch: usize| {
        let options = WorkerOptions {
            concurrency,
            prefetch,
            lease,
            poll: Duration::from_millis(20),
            ..WorkerOptions::default()
        };
        let worker = Worker::new(serving.clone(), options).unwrap();
        let shutdown = worker.shutdown_handle();
        let handled = Arc::new(AtomicU64::new(0));
        worker
            .run(|_job: &Job<'_, Msg>| {
                if handled.fetch_add(1, Ordering::Relaxed) + 1 == N {
                    shutdown.shutdown();
                }
                Outcome::Done
            })
            .unwrap()
            .processed
    };
    println!("## Worker, {N} messages, no-op handler (msgs/s, best of {RUNS})\n");
    println!("| worker | msgs/s | hand-written loop | msgs/s | ratio |");
    println!("|---|---|---|---|---|");
    for (concurrency, prefetch, max) in [(1, 0, 1), (1, 100, 100), (8, 100, 100), (64, 100, 100)] {
        let mut best = (0.0f64, 0.0f64);
        for _ in 0..RUNS {
            best.0 = best
                .0
                .max(drain(&client, &mut || worker(concurrency, prefetch)));
            best.1 = best.1.max(drain(&client, &mut || by_hand(max)));
        }
        println!(
            "| concurrency {concurrency}, prefetch {prefetch} | {:.0} | `ack_and_lease_msgs(…, {max})` | {:.0} | {:.2} |",
            best.0,
            best.1,
            best.0 / best.1
        );
    }
}
