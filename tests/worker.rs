//! The worker runtime on the fake (with the system clock and with a
//! `ManualClock` that the test moves) and on a real Redis: every message
//! handled and acked once, retries after the backoff on the store's clock,
//! dead letters after `max_deliveries` or at once when refused, panics
//! survived, leases extended while a handler runs, handlers past their
//! time limit abandoned, undecodable messages never handed over.

#[cfg(feature = "redis")]
mod support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::store::DeadReason;
use redisutil::worker::{Backoff, Job, Outcome, Rate, Worker, WorkerOptions, WorkerStats};
use redisutil::{
    ChannelOptions, Clock, LeaseStore, ListStore, ManualClock, MemoryStore, Peer, RedisChannel,
};

fn channels<S: LeaseStore + Clone>(
    store: S,
    name: &str,
    max_deliveries: u32,
) -> (RedisChannel<S>, RedisChannel<S>) {
    let options = ChannelOptions {
        max_deliveries,
        ..ChannelOptions::default()
    };
    (
        RedisChannel::with_options(store.clone(), name, Peer::Client, options.clone()).unwrap(),
        RedisChannel::with_options(store, name, Peer::Server, options).unwrap(),
    )
}

/// Waits (real time) until `done` holds, at most 10 s.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Lets a worker that was told to shut down and waits on `clock` see it
/// stop: a thread past its look at the shutdown may begin its wait on the
/// clock after a move, so the clock moves until the worker stops.
fn stop_on(clock: &ManualClock, running: &thread::JoinHandle<WorkerStats>) {
    wait_for("the worker stops", || {
        clock.advance(Duration::from_secs(2));
        running.is_finished()
    });
}

/// Runs `worker` with `handler` on a thread of its own.
fn spawn<S, F>(worker: Worker<S>, handler: F) -> thread::JoinHandle<WorkerStats>
where
    S: LeaseStore + Send + Sync + 'static,
    F: Fn(&Job<'_, u64>) -> Outcome + Sync + Send + 'static,
{
    thread::spawn(move || worker.run(handler).unwrap())
}

fn every_message_once<S: LeaseStore + Clone + Send + Sync + 'static>(store: S, name: &str) {
    let (client, server) = channels(store, name, 5);
    let options = WorkerOptions {
        concurrency: 4,
        poll: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server.clone(), options).unwrap();
    let shutdown = worker.shutdown_handle();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let running = spawn(worker, {
        let seen = seen.clone();
        move |job| {
            seen.lock().unwrap().push(*job.msg());
            Outcome::Done
        }
    });
    client.send_msgs(0..300u64).unwrap();
    wait_for("300 handled", || seen.lock().unwrap().len() >= 300);
    shutdown.shutdown();
    let stats = running.join().unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..300).collect::<Vec<u64>>());
    assert_eq!(stats.processed, 300);
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.in_flight),
        (0, 0, 0)
    );
    let left = server.lease_stats().unwrap();
    assert_eq!((left.depth, left.in_flight, left.dead), (0, 0, 0));
}

#[test]
fn every_message_is_handled_and_acked_once_on_the_fake() {
    every_message_once(MemoryStore::new(), "/worker/once");
}

#[cfg(feature = "redis")]
#[test]
fn every_message_is_handled_and_acked_once_on_redis() {
    let server = support::RedisServer::start();
    every_message_once(server.store(), "/worker/once");
}

#[cfg(feature = "cluster")]
#[test]
fn every_message_is_handled_and_acked_once_on_a_cluster() {
    let cluster = support::RedisCluster::shared();
    every_message_once(cluster.store(), &support::unique("/worker/cluster"));
}

#[cfg(feature = "sentinel")]
#[test]
fn every_message_is_handled_and_acked_once_on_a_sentinel_master() {
    let set = support::SentinelSet::start(support::SentinelSetup {
        sentinels: 1,
        ..support::SentinelSetup::default()
    });
    let store = set.store_with(redisutil::RedisSentinelStoreOptions::default());
    every_message_once(store, "/worker/sentinel");
}

/// Retries wait the backoff on the store's clock: a test moves it.
#[test]
fn failures_are_retried_after_the_backoff_then_dead_letters() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let (client, server) = channels(store, "/worker/retry", 3);
    let options = WorkerOptions {
        poll: Duration::from_secs(1),
        backoff: Backoff {
            first: Duration::from_secs(10),
            factor: 3,
            max: Duration::from_secs(3600),
            jitter: 0.0,
        },
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server.clone(), options).unwrap();
    let shutdown = worker.shutdown_handle();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let running = spawn(worker, {
        let attempts = attempts.clone();
        move |job| {
            attempts.lock().unwrap().push(job.attempt());
            Outcome::Retry
        }
    });
    client.send_msg(&7u64).unwrap();
    for (attempt, delay) in [(1, 10), (2, 30)] {
        wait_for("a retry waiting", || {
            server.lease_snapshot().unwrap().retrying.len() == 1
        });
        let due = server.lease_snapshot().unwrap().retrying[0].at;
        let now = clock.now();
        assert_eq!(
            due.duration_since(now).unwrap(),
            Duration::from_secs(delay),
            "after delivery {attempt}"
        );
        clock.advance(Duration::from_secs(delay));
        wait_for("delivered again", || {
            attempts.lock().unwrap().len() > attempt
        });
    }
    wait_for("a dead letter", || server.lease_stats().unwrap().dead == 1);
    let dead = server.dead_letters(10).unwrap();
    assert_eq!(
        (dead[0].deliveries, &dead[0].reason),
        (3, &DeadReason::Nacked)
    );
    shutdown.shutdown();
    stop_on(&clock, &running);
    let stats = running.join().unwrap();
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.processed),
        (2, 1, 0)
    );
}

#[test]
fn a_panicking_handler_is_a_retry_and_the_worker_goes_on() {
    let (client, server) = channels(MemoryStore::new(), "/worker/panic", 5);
    let options = WorkerOptions {
        poll: Duration::from_millis(20),
        backoff: Backoff {
            first: Duration::from_millis(10),
            ..Backoff::default()
        },
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server, options).unwrap();
    let shutdown = worker.shutdown_handle();
    let done = Arc::new(AtomicU32::new(0));
    let running = spawn(worker, {
        let done = done.clone();
        move |job| {
            if job.attempt() == 1 {
                panic!("a handler's bug");
            }
            done.fetch_add(1, Ordering::SeqCst);
            Outcome::Done
        }
    });
    client.send_msgs([1u64, 2]).unwrap();
    wait_for("both done on their second delivery", || {
        done.load(Ordering::SeqCst) == 2
    });
    shutdown.shutdown();
    let stats = running.join().unwrap();
    assert_eq!((stats.panicked, stats.retried, stats.processed), (2, 2, 2));
}

#[test]
fn a_refused_message_is_a_dead_letter_at_once_and_one_that_does_not_decode_is_never_handed_over() {
    let store = MemoryStore::new();
    let (client, server) = channels(store.clone(), "/worker/refuse", 5);
    let worker = Worker::new(
        server.clone(),
        WorkerOptions {
            poll: Duration::from_millis(20),
            ..WorkerOptions::default()
        },
    )
    .unwrap();
    let shutdown = worker.shutdown_handle();
    let handed = Arc::new(AtomicU32::new(0));
    let running = spawn(worker, {
        let handed = handed.clone();
        move |_| {
            handed.fetch_add(1, Ordering::SeqCst);
            Outcome::Reject
        }
    });
    store.push(server.recv_key(), &[b"not json"], None).unwrap();
    client.send_msg(&1u64).unwrap();
    wait_for("two dead letters", || {
        server.lease_stats().unwrap().dead == 2
    });
    shutdown.shutdown();
    let stats = running.join().unwrap();
    assert_eq!(handed.load(Ordering::SeqCst), 1);
    assert_eq!(stats.dead_lettered, 2);
    let reasons: Vec<DeadReason> = server
        .dead_letters(10)
        .unwrap()
        .into_iter()
        .map(|letter| letter.reason)
        .collect();
    assert_eq!(reasons, [DeadReason::Undecodable, DeadReason::Refused]);
}

/// A handler longer than its lease keeps it: no other thread gets the
/// message; one past its time limit is abandoned, and the message comes
/// back when the lease it no longer extends runs out.
///
/// The margins allow a busy machine to stall a thread for most of a
/// second: the keeper extends a lease with two thirds of it (800 ms) left,
/// the handler within the limit ends 1 s before it, the one past it 800 ms
/// after it.
#[test]
fn leases_are_kept_while_a_handler_runs_and_dropped_past_its_time_limit() {
    let (client, server) = channels(MemoryStore::new(), "/worker/long", 5);
    let options = WorkerOptions {
        concurrency: 3,
        lease: Duration::from_millis(1200),
        poll: Duration::from_millis(20),
        time_limit: Some(Duration::from_millis(2800)),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server, options).unwrap();
    let shutdown = worker.shutdown_handle();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let told = Arc::new(Mutex::new(Vec::new()));
    let running = spawn(worker, {
        let (calls, told) = (calls.clone(), told.clone());
        move |job| {
            calls.lock().unwrap().push((*job.msg(), job.attempt()));
            match (*job.msg(), job.attempt()) {
                // One and a half leases long, within the time limit.
                (1, _) => thread::sleep(Duration::from_millis(1800)),
                // Past the time limit the first time.
                (2, 1) => thread::sleep(Duration::from_millis(3600)),
                _ => {}
            }
            told.lock()
                .unwrap()
                .push((*job.msg(), job.attempt(), job.is_lost()));
            Outcome::Done
        }
    });
    client.send_msgs([1u64, 2]).unwrap();
    wait_for("2 done on its second delivery", || {
        calls.lock().unwrap().contains(&(2, 2))
    });
    wait_for("1 done", || {
        running.is_finished() || calls.lock().unwrap().len() >= 3
    });
    thread::sleep(Duration::from_millis(800));
    shutdown.shutdown();
    let stats = running.join().unwrap();
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_unstable();
    assert_eq!(
        calls,
        [(1, 1), (2, 1), (2, 2)],
        "1 was never delivered twice"
    );
    assert_eq!(
        (stats.processed, stats.timed_out, stats.panicked),
        (2, 1, 0)
    );
    let mut told = told.lock().unwrap().clone();
    told.sort_unstable();
    assert_eq!(
        told,
        [(1, 1, false), (2, 1, true), (2, 2, false)],
        "the handler past its limit is told its result no longer counts"
    );
}

/// Shutting down gives running handlers `grace` on the store's clock;
/// past it they are abandoned like handlers past their time limit, and
/// `run` returns once they do.
#[test]
fn running_handlers_have_the_grace_then_are_abandoned() {
    let clock = ManualClock::default();
    let (client, server) = channels(MemoryStore::with_clock(clock.clone()), "/worker/grace", 5);
    client.send_msg(&1u64).unwrap();
    let options = WorkerOptions {
        grace: Duration::from_secs(5),
        lease: Duration::from_secs(60),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server.clone(), options).unwrap();
    let shutdown = worker.shutdown_handle();
    let started = Arc::new(AtomicBool::new(false));
    let running = spawn(worker, {
        let started = started.clone();
        move |job| {
            started.store(true, Ordering::SeqCst);
            while !job.is_lost() {
                thread::sleep(Duration::from_millis(2));
            }
            Outcome::Done
        }
    });
    wait_for("the handler runs", || started.load(Ordering::SeqCst));
    shutdown.shutdown();
    // The grace counts from when the worker sees the shutdown (its keeper
    // looks every 20 ms in real time; a busy machine may hold it up a few
    // hundred ms).
    thread::sleep(Duration::from_millis(1000));
    clock.advance(Duration::from_secs(4));
    thread::sleep(Duration::from_millis(200));
    assert!(!running.is_finished(), "within the grace");
    clock.advance(Duration::from_secs(2));
    let stats = running.join().unwrap();
    assert_eq!((stats.timed_out, stats.processed), (1, 0));
    assert_eq!(
        server.lease_stats().unwrap().in_flight,
        1,
        "its lease runs out"
    );
}

#[test]
fn options_that_cannot_work_are_refused() {
    let (_, server) = channels(MemoryStore::new(), "/worker/options", 5);
    for options in [
        WorkerOptions {
            concurrency: 0,
            ..WorkerOptions::default()
        },
        WorkerOptions {
            lease: Duration::ZERO,
            ..WorkerOptions::default()
        },
        WorkerOptions {
            poll: Duration::ZERO,
            ..WorkerOptions::default()
        },
    ] {
        let err = Worker::new(server.clone(), options).err().unwrap();
        assert!(err.to_string().contains("worker"), "{err}");
    }
}

/// With `prefetch`, a worker holds at most so many messages no handler
/// has started; their leases are kept alive while they wait (past two
/// leases here), and at shutdown they are handed back without spending a
/// delivery.
fn prefetched_messages_are_bounded_kept_and_handed_back<S>(store: S, name: &str)
where
    S: LeaseStore + Clone + Send + Sync + 'static,
{
    let (client, server) = channels(store, name, 5);
    client.send_msgs(0..10u64).unwrap();
    let options = WorkerOptions {
        concurrency: 2,
        prefetch: 3,
        lease: Duration::from_millis(450),
        poll: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server.clone(), options).unwrap();
    let shutdown = worker.shutdown_handle();
    let release = AtomicBool::new(false);
    let calls = Mutex::new(Vec::new());
    let stats = thread::scope(|scope| {
        let running = scope.spawn(|| {
            worker
                .run(|job: &Job<'_, u64>| {
                    calls.lock().unwrap().push(job.attempt());
                    while !release.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(5));
                    }
                    Outcome::Done
                })
                .unwrap()
        });
        // The first thread leases 1 + 3; the second takes one of those
        // three (or leases its own while the first is leasing): 2 or 3
        // wait, never more.
        let started = Instant::now();
        while worker.stats().in_flight < 2 || worker.stats().prefetched < 2 {
            if started.elapsed() > Duration::from_secs(10) {
                release.store(true, Ordering::SeqCst);
                panic!("never two running and two prefetched: {:?}", worker.stats());
            }
            thread::sleep(Duration::from_millis(2));
        }
        thread::sleep(Duration::from_millis(1000));
        let prefetched = worker.stats().prefetched;
        let held = server.lease_stats().unwrap();
        if prefetched > 3
            || (held.in_flight, held.depth, held.retrying) != (2 + prefetched, 8 - prefetched, 0)
        {
            release.store(true, Ordering::SeqCst);
            panic!("{prefetched} prefetched, at most 3, none lost past two leases: {held:?}");
        }
        shutdown.shutdown();
        release.store(true, Ordering::SeqCst);
        running.join().unwrap()
    });
    assert_eq!(
        (stats.processed, stats.prefetched, stats.in_flight),
        (2, 0, 0)
    );
    assert_eq!(*calls.lock().unwrap(), [1, 1]);
    let after = server.lease_stats().unwrap();
    assert_eq!((after.in_flight, after.depth + after.retrying), (0, 8));
    let again = server
        .lease_msgs::<u64>(10, Duration::from_secs(5))
        .unwrap();
    let attempts: Vec<u32> = again
        .iter()
        .map(|d| d.as_ref().unwrap().attempt())
        .collect();
    assert_eq!(attempts, [1; 8], "handed back without spending a delivery");
}

#[test]
fn prefetched_messages_are_bounded_kept_and_handed_back_on_the_fake() {
    prefetched_messages_are_bounded_kept_and_handed_back(MemoryStore::new(), "/worker/prefetch");
}

#[cfg(feature = "redis")]
#[test]
fn prefetched_messages_are_bounded_kept_and_handed_back_on_redis() {
    let server = support::RedisServer::start();
    prefetched_messages_are_bounded_kept_and_handed_back(server.store(), "/worker/prefetch");
}

/// A rate limit counts on the store's clock: on a `ManualClock`, the
/// first `messages` start at once, then one each time the test moves the
/// clock by `per / messages`.
#[test]
fn the_rate_limit_runs_on_the_stores_clock() {
    let clock = ManualClock::default();
    let (client, server) = channels(MemoryStore::with_clock(clock.clone()), "/worker/rate", 5);
    client.send_msgs(0..6u64).unwrap();
    let options = WorkerOptions {
        concurrency: 3,
        prefetch: 2,
        rate: Some(Rate::per_second(2)),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server, options).unwrap();
    let shutdown = worker.shutdown_handle();
    let handled = Arc::new(AtomicU32::new(0));
    let running = spawn(worker, {
        let handled = handled.clone();
        move |_job| {
            handled.fetch_add(1, Ordering::SeqCst);
            Outcome::Done
        }
    });
    let count = || handled.load(Ordering::SeqCst);
    wait_for("the first two at once", || count() == 2);
    for expected in 3..=6 {
        thread::sleep(Duration::from_millis(100));
        assert_eq!(count(), expected - 1, "no more before the clock moves");
        clock.advance(Duration::from_millis(500));
        wait_for("one more per half second", || count() == expected);
    }
    shutdown.shutdown();
    stop_on(&clock, &running);
    assert_eq!(running.join().unwrap().processed, 6);
}

/// Handler times are on the store's clock: handlers that move a
/// `ManualClock` by 10, 20, … 100 ms have a median of 50 ms and a 99th
/// percentile of 100 ms, each within one bucket (19 %).
#[test]
fn handler_times_give_the_median_and_the_99th_percentile() {
    let clock = ManualClock::default();
    let (client, server) = channels(MemoryStore::with_clock(clock.clone()), "/worker/times", 5);
    client.send_msgs(1..=10u64).unwrap();
    let worker = Worker::new(server, WorkerOptions::default()).unwrap();
    let shutdown = worker.shutdown_handle();
    let running = spawn(worker, {
        let clock = clock.clone();
        let shutdown = shutdown.clone();
        move |job| {
            clock.advance(Duration::from_millis(10 * *job.msg()));
            if *job.msg() == 10 {
                shutdown.shutdown();
            }
            Outcome::Done
        }
    });
    let stats = running.join().unwrap();
    assert_eq!(stats.processed, 10);
    let p50 = stats.handler_p50;
    assert!(
        p50 >= Duration::from_millis(50) && p50 <= Duration::from_millis(60),
        "{p50:?}"
    );
    assert_eq!(stats.handler_p99, Duration::from_millis(100));
}

/// SIGTERM stops a worker wired with `on_termination` gracefully.
#[cfg(all(feature = "signal", unix))]
#[test]
fn sigterm_shuts_a_worker_down() {
    let (client, server) = channels(MemoryStore::new(), "/worker/sigterm", 5);
    let options = WorkerOptions {
        poll: Duration::from_millis(20),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server, options).unwrap();
    let shutdown = worker.shutdown_handle();
    shutdown.on_termination().unwrap();
    let handled = Arc::new(AtomicBool::new(false));
    let running = spawn(worker, {
        let handled = handled.clone();
        move |_job| {
            handled.store(true, Ordering::SeqCst);
            Outcome::Done
        }
    });
    client.send_msg(&1u64).unwrap();
    wait_for("the message handled", || handled.load(Ordering::SeqCst));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for("the worker stopped", || running.is_finished());
    assert!(shutdown.is_shut_down());
    assert_eq!(running.join().unwrap().processed, 1);
}

/// The async worker: the same loop as tasks (feature `tokio`).
#[cfg(feature = "tokio")]
mod aio {
    use super::*;
    use redisutil::aio::{AsyncLeaseStore, AsyncRedisChannel};
    use redisutil::worker::{AsyncJob, AsyncWorker};

    /// Every message sent on `producer` (a sync store) is handled and
    /// acked once by an async worker on `consumer` (an async store on the
    /// same Redis, or the same fake).
    async fn every_message_once<P, S>(producer: P, consumer: S, name: &str)
    where
        P: ListStore,
        S: AsyncLeaseStore + Clone + Send + Sync + 'static,
    {
        let client = RedisChannel::new(producer, name, Peer::Client).unwrap();
        let server = AsyncRedisChannel::new(consumer, name, Peer::Server).unwrap();
        let options = WorkerOptions {
            concurrency: 8,
            prefetch: 16,
            poll: Duration::from_millis(50),
            ..WorkerOptions::default()
        };
        let worker = AsyncWorker::new(server.clone(), options).unwrap();
        let shutdown = worker.shutdown_handle();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let running = tokio::spawn({
            let seen = seen.clone();
            async move {
                worker
                    .run(move |job: AsyncJob<u64>| {
                        let seen = seen.clone();
                        async move {
                            tokio::task::yield_now().await;
                            seen.lock().unwrap().push(*job.msg());
                            Outcome::Done
                        }
                    })
                    .await
                    .unwrap()
            }
        });
        client.send_msgs(0..300u64).unwrap();
        let started = Instant::now();
        while seen.lock().unwrap().len() < 300 {
            assert!(started.elapsed() < Duration::from_secs(20), "never all 300");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.shutdown();
        let stats = tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("the worker stops")
            .unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..300).collect::<Vec<u64>>());
        assert_eq!(
            (
                stats.processed,
                stats.retried,
                stats.in_flight,
                stats.prefetched
            ),
            (300, 0, 0, 0)
        );
        let left = server.lease_stats().await.unwrap();
        assert_eq!((left.depth, left.in_flight, left.dead), (0, 0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_is_handled_and_acked_once_on_the_fake() {
        let store = MemoryStore::new();
        every_message_once(store.clone(), store, "/aworker/once").await;
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_is_handled_and_acked_once_on_redis() {
        let server = support::RedisServer::start();
        let store = redisutil::aio::AsyncRedisStore::open(server.port()).unwrap();
        every_message_once(server.store(), store, "/aworker/redis").await;
    }

    #[cfg(feature = "cluster")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_is_handled_and_acked_once_on_a_cluster() {
        let cluster = support::RedisCluster::shared();
        let store = redisutil::aio::AsyncRedisClusterStore::open(cluster.seeds()).unwrap();
        let name = support::unique("/aworker/cluster");
        every_message_once(cluster.store(), store, &name).await;
    }

    #[cfg(feature = "sentinel")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_is_handled_and_acked_once_on_a_sentinel_master() {
        let set = support::SentinelSet::start(support::SentinelSetup {
            sentinels: 1,
            ..support::SentinelSetup::default()
        });
        let options = redisutil::RedisSentinelStoreOptions::default();
        let producer = set.store_with(options.clone());
        let store = redisutil::aio::AsyncRedisSentinelStore::open_with(
            set.sentinel_addrs(),
            support::SERVICE,
            options,
        )
        .unwrap();
        every_message_once(producer, store, "/aworker/sentinel").await;
    }

    /// A panic is a retry; a handler past its time limit is cancelled and
    /// its message comes back when the lease it no longer extends runs out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn panics_are_retries_and_slow_handlers_are_cancelled() {
        let store = MemoryStore::new();
        let client = RedisChannel::new(store.clone(), "/aworker/bad", Peer::Client).unwrap();
        let channel = AsyncRedisChannel::new(store, "/aworker/bad", Peer::Server).unwrap();
        let options = WorkerOptions {
            concurrency: 2,
            lease: Duration::from_millis(300),
            poll: Duration::from_millis(20),
            time_limit: Some(Duration::from_millis(500)),
            backoff: Backoff {
                first: Duration::from_millis(10),
                ..Backoff::default()
            },
            ..WorkerOptions::default()
        };
        let worker = AsyncWorker::new(channel, options).unwrap();
        let shutdown = worker.shutdown_handle();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let running = tokio::spawn({
            let calls = calls.clone();
            async move {
                worker
                    .run(move |job: AsyncJob<u64>| {
                        let calls = calls.clone();
                        async move {
                            calls.lock().unwrap().push((*job.msg(), job.attempt()));
                            match (*job.msg(), job.attempt()) {
                                (1, 1) => panic!("a handler's bug"),
                                (2, 1) => tokio::time::sleep(Duration::from_secs(30)).await,
                                _ => {}
                            }
                            Outcome::Done
                        }
                    })
                    .await
                    .unwrap()
            }
        });
        client.send_msgs([1u64, 2]).unwrap();
        let start = Instant::now();
        while !(calls.lock().unwrap().contains(&(1, 2)) && calls.lock().unwrap().contains(&(2, 2)))
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{:?}",
                calls.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown.shutdown();
        let stats = running.await.unwrap();
        assert_eq!(
            (stats.panicked, stats.timed_out, stats.processed),
            (1, 1, 2),
            "{stats:?}"
        );
    }

    /// Dropping the future of `run` (a `select!` on a shutdown signal, a
    /// timeout) stops every task it started: a message sent afterwards
    /// stays in the channel, leased by nobody.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_run_future_stops_every_task() {
        let store = MemoryStore::new();
        let client = RedisChannel::new(store.clone(), "/aworker/drop", Peer::Client).unwrap();
        let channel = AsyncRedisChannel::new(store, "/aworker/drop", Peer::Server).unwrap();
        let worker = AsyncWorker::new(
            channel.clone(),
            WorkerOptions {
                concurrency: 3,
                poll: Duration::from_millis(20),
                ..WorkerOptions::default()
            },
        )
        .unwrap();
        let handled = Arc::new(AtomicU32::new(0));
        let run = worker.run({
            let handled = handled.clone();
            move |_job: AsyncJob<u64>| {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    Outcome::Done
                }
            }
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), run)
                .await
                .is_err(),
            "the worker runs until shut down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.send_msg(&1u64).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(handled.load(Ordering::SeqCst), 0);
        let left = channel.lease_stats().await.unwrap();
        assert_eq!((left.depth, left.in_flight), (1, 0));
    }

    /// The time limit runs on the store's clock: a handler that never
    /// returns is cancelled when the test moves a `ManualClock` past it,
    /// and prefetched messages are handed back at shutdown.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_time_limit_is_on_the_stores_clock_and_prefetched_messages_go_back() {
        let clock = ManualClock::default();
        let store = MemoryStore::with_clock(clock.clone());
        let client = RedisChannel::new(store.clone(), "/aworker/limit", Peer::Client).unwrap();
        let channel = AsyncRedisChannel::new(store, "/aworker/limit", Peer::Server).unwrap();
        client.send_msgs(0..5u64).unwrap();
        let options = WorkerOptions {
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            time_limit: Some(Duration::from_secs(10)),
            prefetch: 2,
            ..WorkerOptions::default()
        };
        let worker = Arc::new(AsyncWorker::new(channel.clone(), options).unwrap());
        let shutdown = worker.shutdown_handle();
        /// Set when the handler's future is dropped.
        struct Cancelled(Arc<AtomicBool>);
        impl Drop for Cancelled {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let running = tokio::spawn({
            let (worker, cancelled) = (worker.clone(), cancelled.clone());
            async move {
                worker
                    .run(move |job: AsyncJob<u64>| {
                        let guard = Cancelled(cancelled.clone());
                        async move {
                            if *job.msg() == 0 {
                                std::future::pending::<()>().await;
                            }
                            drop(guard);
                            Outcome::Done
                        }
                    })
                    .await
                    .unwrap()
            }
        });
        while (worker.stats().in_flight, worker.stats().prefetched) != (1, 2) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !cancelled.load(Ordering::SeqCst),
            "not before the clock moves"
        );
        // Shutting down waits for the running handler: until its limit.
        shutdown.shutdown();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!running.is_finished());
        clock.advance(Duration::from_secs(11));
        let stats = tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("stops once the handler is cancelled")
            .unwrap();
        assert!(
            cancelled.load(Ordering::SeqCst),
            "the handler was cancelled"
        );
        assert_eq!(
            (stats.timed_out, stats.processed, stats.prefetched),
            (1, 0, 0)
        );
        // The message past its limit is still leased (its lease runs out);
        // the two prefetched are back, their deliveries not spent.
        let left = channel.lease_stats().await.unwrap();
        assert_eq!((left.in_flight, left.depth + left.retrying), (1, 4));
        let again = channel
            .lease_msgs::<u64>(10, Duration::from_secs(5))
            .await
            .unwrap();
        let attempts: Vec<u32> = again
            .iter()
            .map(|d| d.as_ref().unwrap().attempt())
            .collect();
        assert_eq!(attempts, [1; 4]);
    }
}
