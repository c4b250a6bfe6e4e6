//! The worker runtime on the fake (with the system clock and with a
//! `ManualClock` that the test moves) and on a real Redis: every message
//! handled and acked once, retries after the backoff on the store's clock,
//! dead letters after `max_deliveries` or at once when refused, panics
//! survived, leases extended while a handler runs, handlers past their
//! time limit abandoned, undecodable messages never handed over.

#[cfg(feature = "redis")]
mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::store::DeadReason;
use redisutil::worker::{Backoff, Job, Outcome, Worker, WorkerOptions, WorkerStats};
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
    clock.advance(Duration::from_secs(2));
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
#[test]
fn leases_are_kept_while_a_handler_runs_and_dropped_past_its_time_limit() {
    let (client, server) = channels(MemoryStore::new(), "/worker/long", 5);
    let options = WorkerOptions {
        concurrency: 3,
        lease: Duration::from_millis(600),
        poll: Duration::from_millis(20),
        time_limit: Some(Duration::from_millis(2500)),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(server, options).unwrap();
    let shutdown = worker.shutdown_handle();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let running = spawn(worker, {
        let calls = calls.clone();
        move |job| {
            calls.lock().unwrap().push((*job.msg(), job.attempt()));
            match (*job.msg(), job.attempt()) {
                // Three leases long, within the time limit.
                (1, _) => thread::sleep(Duration::from_millis(1800)),
                // Past the time limit the first time.
                (2, 1) => {
                    thread::sleep(Duration::from_millis(3300));
                    assert!(job.is_lost(), "told its lease is gone");
                }
                _ => {}
            }
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
    assert_eq!((stats.processed, stats.timed_out), (2, 1));
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

/// The async worker: the same loop as tasks (feature `tokio`).
#[cfg(feature = "tokio")]
mod aio {
    use super::*;
    use redisutil::aio::{AsyncLeaseStore, AsyncRedisChannel};
    use redisutil::worker::{AsyncJob, AsyncWorker};

    async fn every_message_once<S>(store: S)
    where
        S: AsyncLeaseStore + LeaseStore + Clone + Send + Sync + 'static,
    {
        let client = RedisChannel::new(store.clone(), "/aworker/once", Peer::Client).unwrap();
        let server = AsyncRedisChannel::new(store, "/aworker/once", Peer::Server).unwrap();
        let options = WorkerOptions {
            concurrency: 8,
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
        while seen.lock().unwrap().len() < 300 {
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
            (stats.processed, stats.retried, stats.in_flight),
            (300, 0, 0)
        );
        let left = server.lease_stats().await.unwrap();
        assert_eq!((left.depth, left.in_flight, left.dead), (0, 0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_is_handled_and_acked_once_on_the_fake() {
        every_message_once(MemoryStore::new()).await;
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_is_handled_and_acked_once_on_redis() {
        let server = support::RedisServer::start();
        // A sync store for the producer, an async one for the worker.
        let store = redisutil::aio::AsyncRedisStore::open(server.port()).unwrap();
        let client = RedisChannel::new(server.store(), "/aworker/redis", Peer::Client).unwrap();
        let channel = AsyncRedisChannel::new(store, "/aworker/redis", Peer::Server).unwrap();
        let worker = AsyncWorker::new(
            channel.clone(),
            WorkerOptions {
                concurrency: 4,
                poll: Duration::from_millis(50),
                ..WorkerOptions::default()
            },
        )
        .unwrap();
        let shutdown = worker.shutdown_handle();
        let done = Arc::new(AtomicU32::new(0));
        let running = tokio::spawn({
            let done = done.clone();
            async move {
                worker
                    .run(move |_job: AsyncJob<u64>| {
                        let done = done.clone();
                        async move {
                            done.fetch_add(1, Ordering::SeqCst);
                            Outcome::Done
                        }
                    })
                    .await
                    .unwrap()
            }
        });
        client.send_msgs(0..200u64).unwrap();
        while done.load(Ordering::SeqCst) < 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.shutdown();
        let stats = running.await.unwrap();
        assert_eq!(stats.processed, 200);
        assert_eq!(channel.lease_stats().await.unwrap().in_flight, 0);
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
}
