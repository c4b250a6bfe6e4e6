//! The worker's throughput on a real Redis, beside the simplest correct
//! hand-written loop (`blease_msg`, then `ack`, one message at a time on
//! one thread) in the same run, over 20,000 messages each.
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
    let mut by_hand = || {
        let mut done = 0;
        while done < N {
            let delivery = serving
                .blease_msg::<Msg>(lease, Duration::from_secs(1))
                .unwrap()
                .unwrap();
            assert!(serving.ack(&delivery).unwrap());
            done += 1;
        }
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
    println!("## Worker, {N} messages (msgs/s, best of {RUNS})\n");
    println!("| worker | msgs/s | hand-written loop | ratio |");
    println!("|---|---|---|---|");
    for (concurrency, prefetch) in [(1, 0), (4, 0), (4, 16), (8, 64)] {
        let mut best = (0.0f64, 0.0f64);
        for _ in 0..RUNS {
            best.0 = best
                .0
                .max(drain(&client, &mut || worker(concurrency, prefetch)));
            best.1 = best.1.max(drain(&client, &mut by_hand));
        }
        println!(
            "| concurrency {concurrency}, prefetch {prefetch} | {:.0} | {:.0} | {:.2} |",
            best.0,
            best.1,
            best.0 / best.1
        );
    }
}
