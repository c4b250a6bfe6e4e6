//! The async API (feature `tokio`): the channel suite on the async stores,
//! receives cancelled at random points while sync producers send 100,000
//! messages (none lost, none twice), and a downstream-style test on the
//! fakes with a manual clock.

use crate::support;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use redisutil::aio::{AsyncListStore, AsyncRedisChannel, AsyncRedisStore};
use redisutil::conformance::{self, AsyncHarness, Harness, MemoryHarness};
use redisutil::{Clock, ListStore, ManualClock, MemoryStore, Peer, RedisChannel};

use support::{RedisBackend, RedisServer, unique};

#[test]
fn memory_store_passes_the_channel_suite_through_its_async_api() {
    let harness = MemoryHarness::new();
    let store = harness.store();
    conformance::run_all(&AsyncHarness::new(harness, store));
}

#[test]
fn async_redis_store_passes_the_channel_suite() {
    let backend = RedisBackend::new();
    let store = AsyncRedisStore::open(backend.server.addr()).unwrap();
    conformance::run_all(&AsyncHarness::new(backend, store));
}

#[test]
fn memory_store_passes_the_lease_suite_through_its_async_api() {
    let harness = MemoryHarness::new();
    let store = harness.store();
    conformance::run_all_leases(&AsyncHarness::new(harness, store));
}

#[test]
fn async_redis_store_passes_the_lease_suite() {
    let backend = RedisBackend::new();
    let store = AsyncRedisStore::open(backend.server.addr()).unwrap();
    conformance::run_all_leases(&AsyncHarness::new(backend, store));
}

/// Without the shared connection: every call on a connection of its own.
#[test]
fn async_redis_store_not_multiplexed_passes_both_suites() {
    let backend = RedisBackend::new();
    let options = redisutil::RedisStoreOptions {
        pool: redisutil::PoolOptions {
            multiplexed: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let store = AsyncRedisStore::open_with(backend.server.addr(), options).unwrap();
    let harness = AsyncHarness::new(backend, store);
    conformance::run_all(&harness);
    conformance::run_all_leases(&harness);
}

#[cfg(feature = "cluster")]
mod cluster {
    use redisutil::aio::AsyncRedisClusterStore;
    use redisutil::conformance::{self, AsyncHarness};

    use super::support::{ClusterBackend, RedisCluster};

    fn store() -> AsyncRedisClusterStore {
        AsyncRedisClusterStore::open(RedisCluster::shared().seeds()).unwrap()
    }

    #[test]
    fn async_cluster_store_passes_the_channel_suite() {
        conformance::run_all(&AsyncHarness::new(ClusterBackend::new(), store()));
    }

    #[test]
    fn async_cluster_store_passes_the_lease_suite() {
        conformance::run_all_leases(&AsyncHarness::new(ClusterBackend::new(), store()));
    }

    /// Both lists of a channel, on different masters, and scans and pings
    /// of every master.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channels_span_masters() {
        use redisutil::aio::AsyncRedisChannel;
        use redisutil::{ListStore, Peer};
        let store = store();
        let cluster = RedisCluster::shared();
        let base = super::unique("/aio/cluster");
        let name = (0..)
            .map(|n| format!("{base}/{n}"))
            .find(|name| {
                cluster.master_of(&format!("{name}/client"))
                    != cluster.master_of(&format!("{name}/server"))
            })
            .unwrap();
        let client = AsyncRedisChannel::new(store.clone(), name.as_str(), Peer::Client).unwrap();
        let server = AsyncRedisChannel::new(store.clone(), name.as_str(), Peer::Server).unwrap();
        client.send_msgs(0..100u32).await.unwrap();
        server.send_msg("back").await.unwrap();
        let got: Vec<u32> = server
            .brecv_msgs(1000, std::time::Duration::from_secs(1))
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(
            client.recv_msg::<String>().await.unwrap().as_deref(),
            Some("back")
        );
        let sync = RedisCluster::shared().store();
        sync.push(&format!("{name}/client"), &[b"1"], None).unwrap();
        let listed = client.list_channel("/aio/").await.unwrap();
        assert!(listed.contains(&name), "{listed:?}");
        AsyncListStore::ping(&store).await.unwrap();
    }

    #[test]
    fn cancelled_receives_on_a_cluster_lose_and_repeat_nothing() {
        super::cancelled_receives_lose_and_repeat_nothing(
            RedisCluster::shared().store(),
            store(),
            std::time::Duration::from_micros(200),
        );
    }

    use redisutil::aio::AsyncListStore;
}

/// How many messages the cancellation test sends.
const MESSAGES: u64 = 100_000;

/// Sync producers send `MESSAGES` numbered messages while async consumers
/// receive with timeouts that cancel receives at random points (before
/// their request left, while blocked, after the server popped); at the end
/// every message arrived exactly once.
fn cancelled_receives_lose_and_repeat_nothing<S>(
    sync: impl ListStore + Clone + 'static,
    store: S,
    pause: Duration,
) where
    S: AsyncListStore + Clone + 'static,
{
    let name = unique("/aio/cancel");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let producers: Vec<_> = (0..2)
        .map(|half| {
            let chan = RedisChannel::new(sync.clone(), name.as_str(), Peer::Client).unwrap();
            std::thread::spawn(move || {
                let mine: Vec<u64> = (0..MESSAGES).filter(|n| n % 2 == half).collect();
                for batch in mine.chunks(50) {
                    chan.send_msgs(batch).unwrap();
                    std::thread::sleep(pause);
                }
            })
        })
        .collect();
    let received = Arc::new(std::sync::Mutex::new(Vec::with_capacity(MESSAGES as usize)));
    let cancelled = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        let consumers: Vec<_> = (0..16u64)
            .map(|seed| {
                let chan = AsyncRedisChannel::new(store.clone(), name.as_str(), Peer::Server)
                    .unwrap();
                let received = received.clone();
                let cancelled = cancelled.clone();
                tokio::spawn(async move {
                    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let mut idle = 0;
                    while idle < 40 {
                        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let cut = Duration::from_micros((rng >> 33) % 1500);
                        let got: Vec<u64> = match (rng >> 20) % 3 {
                            0 => match tokio::time::timeout(cut, chan.brecv_msg::<u64>(Duration::from_millis(50))).await {
                                Ok(got) => got.unwrap().into_iter().collect(),
                                Err(_) => { cancelled.fetch_add(1, Ordering::Relaxed); Vec::new() }
                            },
                            1 => tokio::select! {
                                got = chan.brecv_msgs::<u64>(7, Duration::from_millis(50)) => {
                                    got.unwrap().into_iter().map(Result::unwrap).collect()
                                }
                                () = tokio::time::sleep(cut) => { cancelled.fetch_add(1, Ordering::Relaxed); Vec::new() }
                            },
                            _ => match tokio::time::timeout(cut, chan.recv_msg::<u64>()).await {
                                Ok(got) => got.unwrap().into_iter().collect(),
                                Err(_) => { cancelled.fetch_add(1, Ordering::Relaxed); Vec::new() }
                            },
                        };
                        if got.is_empty() { idle += 1 } else { idle = 0 }
                        received.lock().unwrap().extend(got);
                    }
                })
            })
            .collect();
        for producer in producers {
            tokio::task::spawn_blocking(move || producer.join().unwrap()).await.unwrap();
        }
        for consumer in consumers {
            consumer.await.unwrap();
        }
        // What the last cancelled receives put back, once their tasks end
        // (tasks of their own, which a busy machine may hold up): while
        // messages are missing, up to 10 s after the last one came.
        let chan = AsyncRedisChannel::new(store.clone(), name.as_str(), Peer::Server).unwrap();
        let mut last = std::time::Instant::now();
        loop {
            match chan.brecv_msg::<u64>(Duration::from_millis(500)).await.unwrap() {
                Some(n) => {
                    received.lock().unwrap().push(n);
                    last = std::time::Instant::now();
                }
                None if received.lock().unwrap().len() < MESSAGES as usize
                    && last.elapsed() < Duration::from_secs(10) => {}
                None => break,
            }
        }
    });
    let received = received.lock().unwrap();
    let distinct: HashSet<u64> = received.iter().copied().collect();
    let cancelled = cancelled.load(Ordering::Relaxed);
    println!(
        "sent {MESSAGES}, received {}, distinct {}, receives cancelled {cancelled}",
        received.len(),
        distinct.len()
    );
    assert_eq!(distinct.len() as u64, MESSAGES, "messages lost");
    assert_eq!(received.len() as u64, MESSAGES, "messages received twice");
    assert!(
        cancelled >= 1000,
        "only {cancelled} receives were cancelled"
    );
}

#[test]
fn cancelled_receives_on_memory_lose_and_repeat_nothing() {
    let store = MemoryStore::new();
    // The fake answers at once: only waits are cancelled, so the
    // producers leave it waiting more often.
    cancelled_receives_lose_and_repeat_nothing(store.clone(), store, Duration::from_millis(1));
}

#[test]
fn cancelled_receives_on_redis_lose_and_repeat_nothing() {
    let server = RedisServer::start();
    let store = AsyncRedisStore::open(server.addr()).unwrap();
    cancelled_receives_lose_and_repeat_nothing(server.store(), store, Duration::from_micros(200));
}

/// A consumer of one's own, tested on the fake with a manual clock: no
/// network, no sleeping for the timeouts it waits.
#[tokio::test]
async fn a_consumer_on_the_fake_sees_its_timeout_on_the_manual_clock() {
    let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let clock = ManualClock::new(start);
    let store = MemoryStore::with_clock(clock.clone());
    let consumer = AsyncRedisChannel::new(store.clone(), "/jobs", Peer::Server).unwrap();
    let producer = RedisChannel::new(store.clone(), "/jobs", Peer::Client).unwrap();

    // A wait of an hour ends when the clock says so.
    let waiting = tokio::spawn({
        let consumer = consumer.clone();
        async move {
            consumer
                .brecv_msg::<String>(Duration::from_secs(3600))
                .await
        }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    clock.advance(Duration::from_secs(3600));
    assert_eq!(waiting.await.unwrap().unwrap(), None);
    assert_eq!(clock.now(), start + Duration::from_secs(3600));

    // A wait without limit ends when a sync producer sends.
    let waiting = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.brecv_msg::<String>(Duration::ZERO).await }
    });
    tokio::task::yield_now().await;
    producer.send_msg("resize").unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().as_deref(), Some("resize"));

    // Dropped while blocked after a push served it: the message stays.
    let blocked = consumer.brecv_msg::<String>(Duration::ZERO);
    let dropped = tokio::time::timeout(Duration::from_millis(1), blocked).await;
    assert!(dropped.is_err());
    producer.send_msg("kept").unwrap();
    assert_eq!(
        consumer.recv_msg::<String>().await.unwrap().as_deref(),
        Some("kept")
    );
    assert_eq!(store.len("/jobs/client"), 0);
}

/// A blocked future is served by a push, then dropped before it is polled
/// again: what it was handed goes back to the head of the list.
#[tokio::test]
async fn a_served_but_dropped_wait_on_the_fake_puts_its_message_back() {
    let store = MemoryStore::new();
    let mut first = Box::pin(AsyncListStore::blocking_pop(&store, "k", None));
    assert!(futures_poll_once(first.as_mut()).is_none());
    ListStore::push(&store, "k", &[b"a", b"b"], None).unwrap();
    // A sync pop would now see "b": "a" was handed to the blocked future.
    drop(first);
    assert_eq!(
        ListStore::pop(&store, "k").unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(
        ListStore::pop(&store, "k").unwrap().as_deref(),
        Some(&b"b"[..])
    );
}

/// Polls `future` once with a no-op waker: its output, if it is ready.
fn futures_poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match future.poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// Redis side: a BLPOP that the server completes after its future was
/// dropped does not vanish; the message is back at the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_pop_dropped_on_redis_puts_back_what_the_server_gave_it() {
    let server = RedisServer::start();
    let store = AsyncRedisStore::open(server.addr()).unwrap();
    let key = unique("/aio/dropped");
    for round in 0..50 {
        let blocked = store.blocking_pop(&key, None);
        // Cancelled at once, or as the push arrives.
        let push = async {
            tokio::time::sleep(Duration::from_micros(round * 40)).await;
            AsyncListStore::push(&store, &key, &[format!("{round}").as_bytes()], None)
                .await
                .unwrap()
        };
        let (_, cut) = tokio::join!(
            push,
            tokio::time::timeout(Duration::from_micros(round * 40), blocked)
        );
        let expected = format!("{round}").into_bytes();
        let popped = match cut {
            Ok(popped) => popped.unwrap(),
            Err(_) => AsyncListStore::blocking_pop(&store, &key, Some(Duration::from_secs(2)))
                .await
                .unwrap(),
        };
        assert_eq!(popped, Some(expected), "round {round}");
        assert_eq!(AsyncListStore::pop(&store, &key).await.unwrap(), None);
    }
}

/// After a restart of Redis, the next call opens a new connection by
/// itself; a call while Redis is down fails as a lost connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_store_reconnects_after_a_restart() {
    let mut server = RedisServer::start();
    let store = AsyncRedisStore::open(server.addr()).unwrap();
    let key = unique("/aio/restart");
    AsyncListStore::push(&store, &key, &[b"1"], None)
        .await
        .unwrap();
    server.kill();
    let down = AsyncListStore::pop(&store, &key).await.unwrap_err();
    assert!(down.is_connection(), "{down}");
    server.restart();
    AsyncListStore::push(&store, &key, &[b"2"], None)
        .await
        .unwrap();
    assert_eq!(
        AsyncListStore::blocking_pop(&store, &key, Some(Duration::from_secs(1)))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );
}

/// A store goes on serving after the runtime it was first used on is
/// gone: its connections, and their timers, belonged to that runtime and
/// are opened again on the next one. Both kinds of connection.
#[test]
fn a_store_outlives_the_runtime_it_was_first_used_on() {
    let server = RedisServer::start();
    for multiplexed in [true, false] {
        let options = redisutil::RedisStoreOptions {
            pool: redisutil::PoolOptions {
                multiplexed,
                ..Default::default()
            },
            ..Default::default()
        };
        let store = AsyncRedisStore::open_with(server.addr(), options).unwrap();
        let key = unique("/aio/runtimes");
        for round in 0..3u8 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let popped = runtime.block_on(async {
                AsyncListStore::push(&store, &key, &[&[round]], None)
                    .await
                    .unwrap();
                AsyncListStore::blocking_pop(&store, &key, Some(Duration::from_secs(5)))
                    .await
                    .unwrap()
            });
            assert_eq!(popped.as_deref(), Some(&[round][..]), "{multiplexed}");
        }
    }
}

/// How many clients the server has blocked (INFO clients).
fn blocked_clients(admin: &mut redis::Connection) -> usize {
    let info: String = redis::cmd("INFO").arg("clients").query(admin).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Blocked pops past `max_connections` wait the pool timeout, then fail
/// naming the cap; nothing was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_pops_past_the_cap_fail_with_pool_exhausted() {
    let server = RedisServer::start();
    let options = redisutil::RedisStoreOptions {
        pool: redisutil::PoolOptions {
            max_connections: 2,
            pool_timeout: Duration::from_millis(100),
            ..Default::default()
        },
        ..Default::default()
    };
    let store = AsyncRedisStore::open_with(server.addr(), options).unwrap();
    let key = unique("/aio/cap");
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                store
                    .blocking_pop(&key, Some(Duration::from_secs(30)))
                    .await
            })
        })
        .collect();
    // Both hold their place once the server has them blocked.
    let mut admin = server.raw();
    while blocked_clients(&mut admin) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = AsyncListStore::blocking_pop(&store, &key, Some(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(err.is_pool_exhausted(), "{err}");
    // Calls that cannot block are not held up by the blocked ones.
    AsyncListStore::push(&store, &key, &[b"a", b"b"], None)
        .await
        .unwrap();
    for holder in holders {
        assert!(holder.await.unwrap().unwrap().is_some());
    }
}

/// A wait on a manual clock is woken by the clock's moves, not by polling
/// on a timer: no runtime is needed, and nothing happens until the test
/// moves the clock.
#[test]
fn moving_a_manual_clock_wakes_a_wait_on_it() {
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);

    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let mut wait = Box::pin(AsyncListStore::blocking_pop(
        &store,
        "k",
        Some(Duration::from_secs(60)),
    ));
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "woken with no move");
    clock.advance(Duration::from_secs(30));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(wait.as_mut().poll(&mut cx).is_pending(), "30 s are left");
    clock.advance(Duration::from_secs(30));
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    match wait.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(popped) => assert_eq!(popped.unwrap(), None),
        std::task::Poll::Pending => panic!("still waiting at its deadline"),
    }
}

/// The fake's injected faults fail async calls as they fail sync ones:
/// a lost connection or a refusal changes nothing, a lost answer comes
/// after the call took effect; blocked pops and leases included.
#[tokio::test]
async fn injected_faults_fail_async_calls_as_they_fail_sync_ones() {
    use redisutil::aio::AsyncLeaseStore;
    use redisutil::store::{Fault, LeaseKeys, LeasePolicy};
    let store = MemoryStore::new();
    AsyncListStore::push(&store, "k", &[b"a", b"b", b"c"], None)
        .await
        .unwrap();

    store.fail_next(1);
    let err = AsyncListStore::pop(&store, "k").await.unwrap_err();
    assert!(err.is_connection(), "{err}");
    assert_eq!(store.len("k"), 3, "nothing changed");

    store.fail_next_with(1, Fault::Refused("NOPERM no".into()));
    let err = AsyncListStore::blocking_pop(&store, "k", Some(Duration::MAX))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"));
    assert_eq!(store.len("k"), 3, "nothing changed");

    // The answer is lost after the pop ran: the element is gone.
    store.fail_next_with(1, Fault::ReplyLost);
    let err = AsyncListStore::blocking_pop(&store, "k", Some(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(err.may_have_run() && !err.is_timeout(), "{err}");
    assert_eq!(store.len("k"), 2);

    let keys = LeaseKeys::for_list("k").unwrap();
    let policy = LeasePolicy {
        lease: Duration::from_secs(30),
        max_deliveries: 5,
    };
    store.fail_next_with(1, Fault::Timeout);
    let err = AsyncLeaseStore::blocking_lease(&store, &keys, 1, policy, None)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        AsyncLeaseStore::lease_snapshot(&store, &keys)
            .await
            .unwrap()
            .in_flight
            .is_empty()
    );
    // The answer of a lease is lost: sent again under its call id, it
    // answers what it leased.
    store.fail_next_with(1, Fault::ReplyLost);
    let leased = AsyncLeaseStore::blocking_lease(&store, &keys, 1, policy, None)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let snapshot = AsyncLeaseStore::lease_snapshot(&store, &keys)
        .await
        .unwrap();
    assert_eq!(snapshot.in_flight.len(), 1);
    assert_eq!(snapshot.in_flight[0].tag, leased[0].tag, "the one leased");
}

/// A server slower than the response timeout (`CLIENT PAUSE`, `DEBUG
/// SLEEP`): the async call fails with `Timeout` in time, and calls work
/// again afterwards on the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_hits_the_response_timeout_then_calls_recover() {
    let server = RedisServer::start_with(&["--enable-debug-command", "local"]);
    let timeout = Duration::from_millis(200);
    let options = redisutil::RedisStoreOptions {
        response_timeout: Some(timeout),
        ..Default::default()
    };
    let store = AsyncRedisStore::open_with(server.addr(), options).unwrap();
    let key = unique("/aio/slow");
    AsyncListStore::push(&store, &key, &[b"1"], None)
        .await
        .unwrap();
    for (command, arg, value) in [("CLIENT", "PAUSE", "1000"), ("DEBUG", "SLEEP", "1")] {
        // A push answered within the timeout came before the server slowed
        // down (a busy machine may hold up the slowing command): the round
        // is made again. One answered later than the timeout fails.
        for round in 1.. {
            let mut raw = server.raw();
            let sleeper =
                std::thread::spawn(move || redis::cmd(command).arg(arg).arg(value).exec(&mut raw));
            tokio::time::sleep(Duration::from_millis(100)).await;
            let started = std::time::Instant::now();
            let pushed = AsyncListStore::push(&store, &key, &[b"2"], None).await;
            let took = started.elapsed();
            tokio::task::spawn_blocking(move || sleeper.join().unwrap().unwrap())
                .await
                .unwrap();
            // The timed-out push was applied once the server woke up: as
            // with a sync store, a call that timed out may have taken effect.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while let Err(err) = AsyncListStore::ping(&store).await {
                assert!(std::time::Instant::now() < deadline, "{err}");
            }
            match pushed {
                Err(err) => {
                    assert!(
                        matches!(err, redisutil::StoreError::Timeout { .. }),
                        "{command}: {err}"
                    );
                    break;
                }
                Ok(_) => support::answered_before_the_slowdown(round, took, timeout, command),
            }
        }
    }
    let all = AsyncListStore::pop_many(&store, &key, 10).await.unwrap();
    assert_eq!(all[0], b"1");
}

/// Extreme options: no response timeout and a pool timeout of
/// `Duration::MAX` work as "without limit", never overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_timeouts_never_overflow() {
    let server = RedisServer::start();
    let options = redisutil::RedisStoreOptions {
        response_timeout: None,
        pool: redisutil::PoolOptions {
            pool_timeout: Duration::MAX,
            ..Default::default()
        },
        connect_timeout: Duration::from_secs(3600 * 24 * 365 * 200),
        ..Default::default()
    };
    let store = AsyncRedisStore::open_with(server.addr(), options).unwrap();
    let key = unique("/aio/unlimited");
    AsyncListStore::push(&store, &key, &[b"1"], Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    let popped = AsyncListStore::blocking_pop(&store, &key, Some(Duration::MAX))
        .await
        .unwrap();
    assert_eq!(popped.as_deref(), Some(&b"1"[..]));
    assert_eq!(
        AsyncListStore::blocking_pop(&store, &key, Some(Duration::from_millis(1)))
            .await
            .unwrap(),
        None
    );
}

/// A password in any address form, or in the options, shows nowhere: not
/// in `Debug`, not in errors.
#[tokio::test]
async fn secrets_never_show_in_the_async_stores() {
    let port = support::free_port();
    for addr in [
        format!("redis://:s3cret-1@127.0.0.1:{port}/"),
        format!("redis://user:s3cret-1@127.0.0.1:{port}/2"),
        format!("redis://user:s3cret%2D1@127.0.0.1:{port}"),
    ] {
        let store = AsyncRedisStore::open(addr.as_str()).unwrap();
        let err = AsyncListStore::ping(&store).await.unwrap_err();
        for shown in [format!("{store:?}"), err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }
    let options = redisutil::RedisStoreOptions {
        auth: Some(redisutil::RedisAuth::user("user", "s3cret-2")),
        ..Default::default()
    };
    let store = AsyncRedisStore::open_with(("127.0.0.1", port), options).unwrap();
    let err = AsyncListStore::ping(&store).await.unwrap_err();
    for shown in [format!("{store:?}"), err.to_string()] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    #[cfg(feature = "cluster")]
    {
        let store = redisutil::aio::AsyncRedisClusterStore::open([format!(
            "redis://:s3cret-6@127.0.0.1:{port}"
        )])
        .unwrap();
        let err = AsyncListStore::ping(&store).await.unwrap_err();
        for shown in [format!("{store:?}"), err.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }
    #[cfg(feature = "sentinel")]
    {
        let options = redisutil::RedisSentinelStoreOptions {
            sentinel_auth: Some(redisutil::RedisAuth::password("s3cret-3")),
            auth: Some(redisutil::RedisAuth::password("s3cret-4")),
            ..Default::default()
        };
        let store = redisutil::aio::AsyncRedisSentinelStore::open_url(
            &format!("redis-sentinel://:s3cret-5@127.0.0.1:{port}#svc"),
            options,
        )
        .unwrap();
        let err = AsyncListStore::ping(&store).await.unwrap_err();
        for shown in [format!("{store:?}"), err.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }
}

/// Waits until the server has `level` blocked clients, 30 s at most.
async fn blocked_clients_return_to(server: &RedisServer, level: usize) {
    let mut admin = server.raw();
    for _ in 0..3000 {
        if blocked_clients(&mut admin) == level {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the server still has {} blocked clients, not {level}",
        blocked_clients(&mut admin)
    );
}

/// The loop every worker writes: a receive that waits long, cut by a
/// tick. Each cut receive stops waiting at once and gives its connection
/// back: 100 ticks on a pool of 4 never exhaust it, the server's blocked
/// clients come back to none, and nothing is lost or wrongly spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receives_cut_by_a_tick_give_their_connections_back() {
    let server = RedisServer::start();
    let options = redisutil::RedisStoreOptions {
        pool: redisutil::PoolOptions {
            max_connections: 4,
            // Cut receives give their places back in tasks of their own,
            // which a busy machine may hold up: a wait for a place is cut
            // by the tick long before this; a place never given back fails
            // the receives after the ticks.
            pool_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        ..Default::default()
    };
    let store = AsyncRedisStore::open_with(server.addr(), options).unwrap();
    let name = unique("/aio/ticks");
    let consumer = AsyncRedisChannel::new(store.clone(), &name, Peer::Server).unwrap();
    let producer = AsyncRedisChannel::new(store.clone(), &name, Peer::Client).unwrap();
    let lease = Duration::from_secs(600);
    for wait in [Duration::from_secs(600), Duration::ZERO] {
        for tick in 0..50 {
            tokio::select! {
                got = consumer.brecv_msg::<u32>(wait) => panic!("nothing was sent: {got:?}"),
                () = tokio::time::sleep(Duration::from_millis(2 + tick % 5)) => {}
            }
            tokio::select! {
                got = consumer.blease_msg::<u32>(lease, wait) => panic!("nothing was sent: {got:?}"),
                () = tokio::time::sleep(Duration::from_millis(2 + tick % 5)) => {}
            }
        }
        blocked_clients_return_to(&server, 0).await;
        producer.send_msgs([1u32, 2]).await.unwrap();
        assert_eq!(consumer.brecv_msg::<u32>(wait).await.unwrap(), Some(1));
        let leased = consumer
            .blease_msg::<u32>(lease, wait)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (*leased.msg(), leased.attempt()),
            (2, 1),
            "no delivery spent"
        );
        assert!(consumer.ack(&leased).await.unwrap());
        let snapshot = consumer.lease_snapshot().await.unwrap();
        assert!(
            snapshot.dead.is_empty() && snapshot.in_flight.is_empty(),
            "{snapshot:?}"
        );
    }
}

/// A test that moves a `ManualClock` from another thread while an async
/// wait on it is being set up never hangs it: a blocked lease waiting for
/// a message nacked for a second ends once the clock passes that second,
/// however the move and the wait's registration interleave. (Blocked pops
/// wait on the clock through the same code; their own deadline is read
/// when they start, so a move before that start is no miss.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_clock_moved_while_waits_begin_never_hangs_them() {
    use redisutil::aio::AsyncRedisChannel;
    for run in 0..2000u32 {
        let clock = ManualClock::default();
        let store = MemoryStore::with_clock(clock.clone());
        let client = AsyncRedisChannel::new(store.clone(), "/c", Peer::Client).unwrap();
        let worker = AsyncRedisChannel::new(store.clone(), "/c", Peer::Server).unwrap();
        client.send_msg(&run).await.unwrap();
        let first = worker
            .lease_msg::<u32>(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        worker.nack(&first, Duration::from_secs(1)).await.unwrap();
        let lease = tokio::spawn(async move {
            worker
                .blease_msg::<u32>(Duration::from_secs(60), Duration::from_secs(3600))
                .await
        });
        // The move, from another thread, at a moment that varies per run.
        let mover = {
            let clock = clock.clone();
            std::thread::spawn(move || {
                for _ in 0..(run % 64) * 8 {
                    std::hint::spin_loop();
                }
                clock.advance(Duration::from_secs(2));
            })
        };
        mover.join().unwrap();
        let leased = tokio::time::timeout(Duration::from_secs(10), lease)
            .await
            .unwrap_or_else(|_| {
                panic!("run {run}: a blocked lease hung after its message came due")
            })
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((*leased.msg(), leased.attempt()), (run, 2));
    }
}

/// The same on the blocking API: a blocked lease on a `ManualClock` moved
/// from another thread while the wait begins ends once its message is due.
#[test]
fn a_manual_clock_moved_while_a_blocking_wait_begins_never_hangs_it() {
    for run in 0..500u32 {
        let clock = ManualClock::default();
        let store = MemoryStore::with_clock(clock.clone());
        let client = RedisChannel::new(store.clone(), "/c", Peer::Client).unwrap();
        let worker = RedisChannel::new(store, "/c", Peer::Server).unwrap();
        client.send_msg(&run).unwrap();
        let first = worker
            .lease_msg::<u32>(Duration::from_secs(60))
            .unwrap()
            .unwrap();
        worker.nack(&first, Duration::from_secs(1)).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let leased =
                worker.blease_msg::<u32>(Duration::from_secs(60), Duration::from_secs(3600));
            let _ = done.send(leased.map(|d| d.map(|d| (*d.msg(), d.attempt()))));
        });
        for _ in 0..(run % 64) * 8 {
            std::hint::spin_loop();
        }
        clock.advance(Duration::from_secs(2));
        let leased = finished
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!("run {run}: a blocked lease hung after its message came due")
            });
        assert_eq!(leased.unwrap(), Some((run, 2)));
    }
}
