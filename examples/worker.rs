//! A worker on a leased channel: a producer sends jobs, four handler
//! threads take them, one job fails once and is retried after its backoff,
//! one is refused for good, and the worker stops when all are settled.
//!
//! ```text
//! cargo run --example worker                                # on the in-memory fake
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example worker  # on Redis
//! ```

use std::time::Duration;

use redisutil::worker::{Backoff, Job, Outcome, Worker, WorkerOptions};
use redisutil::{ChannelError, LeaseStore, MemoryStore, Peer, RedisChannel};

fn main() -> Result<(), ChannelError> {
    match std::env::var("REDIS_URL") {
        #[cfg(feature = "redis")]
        Ok(url) => run(redisutil::RedisStore::open(url.as_str())?),
        #[cfg(not(feature = "redis"))]
        Ok(_) => panic!("REDIS_URL needs the feature redis"),
        Err(_) => run(MemoryStore::new()),
    }
}

fn run<S: LeaseStore + Clone + Send + Sync + 'static>(store: S) -> Result<(), ChannelError> {
    let name = format!("/examples/worker/{}", std::process::id());
    let producer = RedisChannel::new(store.clone(), name.as_str(), Peer::Client)?;
    producer.send_msgs((1..=20u32).map(|n| format!("job-{n}")))?;

    let options = WorkerOptions {
        concurrency: 4,
        prefetch: 8,
        lease: Duration::from_secs(10),
        poll: Duration::from_millis(100),
        backoff: Backoff {
            first: Duration::from_millis(50),
            ..Backoff::default()
        },
        ..WorkerOptions::default()
    };
    let channel = RedisChannel::new(store, name.as_str(), Peer::Server)?;
    let worker = Worker::new(channel.clone(), options)?;
    let shutdown = worker.shutdown_handle();
    // With the feature `signal`, SIGTERM or Ctrl-C stops it gracefully too.
    #[cfg(all(feature = "signal", unix))]
    shutdown.on_termination().expect("the signal handlers");
    let watcher = std::thread::spawn(move || {
        // Stop once nothing is waiting, in flight or due again.
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let stats = channel.lease_stats().expect("the channel's statistics");
            if stats.depth == 0 && stats.in_flight == 0 && stats.retrying == 0 {
                shutdown.shutdown();
                return stats.dead;
            }
        }
    });
    let stats = worker.run(|job: &Job<'_, String>| match job.msg().as_str() {
        "job-7" if job.attempt() == 1 => Outcome::Retry,
        "job-13" => Outcome::Reject,
        _ => Outcome::Done,
    })?;
    let dead = watcher.join().expect("the watcher");
    println!(
        "processed {}, retried {}, dead letters {} ({} in the channel), handler time p50 {:?}, p99 {:?}",
        stats.processed,
        stats.retried,
        stats.dead_lettered,
        dead,
        stats.handler_p50,
        stats.handler_p99
    );
    assert_eq!(
        (stats.processed, stats.retried, stats.dead_lettered),
        (19, 1, 1)
    );
    Ok(())
}
