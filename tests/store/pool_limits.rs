//! The pool's cap on a real redis-server: `max_connections` bounds what the
//! server sees from a store, blocked receives included; a call past the cap
//! waits for a connection to come back, or fails after `pool_timeout`
//! naming the cap; broken connections free their places; and
//! `get_client_with` keeps one store per address and options.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::{
    ListStore, PoolOptions, RedisStore, RedisStoreOptions, StoreError, get_client, get_client_with,
};
use support::{RedisServer, unique};

/// A field of `INFO clients`.
fn info_clients(raw: &mut redis::Connection, field: &str) -> usize {
    let info: String = redis::cmd("INFO").arg("clients").query(raw).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// The connections the server has from everything but the `raws` raw
/// connections of the test: the store's.
fn store_clients(raw: &mut redis::Connection, raws: usize) -> usize {
    info_clients(raw, "connected_clients") - raws
}

/// Waits until `done` holds, at most 10 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "still waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A server, and a raw connection once the server has forgotten the
/// connections of its start (`wait_serve`'s).
fn server_and_raw(extra: &[&str]) -> (RedisServer, redis::Connection) {
    let server = RedisServer::start_with(extra);
    let mut raw = server.raw();
    wait_until("the start's connections to close", || {
        store_clients(&mut raw, 1) == 0
    });
    (server, raw)
}

fn options(max_connections: usize, pool_timeout: Duration) -> RedisStoreOptions {
    RedisStoreOptions {
        pool: PoolOptions {
            max_connections,
            pool_timeout,
            ..PoolOptions::default()
        },
        ..RedisStoreOptions::default()
    }
}

fn push(raw: &mut redis::Connection, key: &str, value: &str) {
    redis::cmd("RPUSH").arg(key).arg(value).exec(raw).unwrap();
}

const LONG: Duration = Duration::from_secs(60);

/// Two receives blocked on a store of two connections take both: a third
/// call waits, and runs as soon as one of them returns.
#[test]
fn a_call_past_the_cap_waits_for_a_blocked_receive_to_return() {
    let (server, mut raw) = server_and_raw(&[]);
    let store = RedisStore::open_with(server.addr(), options(2, LONG)).unwrap();
    let (a, b, c) = (unique("/a"), unique("/b"), unique("/c"));
    thread::scope(|scope| {
        let first = scope.spawn(|| store.blocking_pop(&a, Some(LONG)));
        let second = scope.spawn(|| store.blocking_pop(&b, Some(LONG)));
        wait_until("two blocked receives", || {
            info_clients(&mut raw, "blocked_clients") == 2
        });
        let third = scope.spawn(|| store.push(&c, &[b"third"], None));
        // It cannot get a connection while both receives block: the server
        // still sees two, both blocked, and the push has not happened.
        thread::sleep(Duration::from_millis(200));
        assert!(!third.is_finished(), "the third call ran past the cap");
        assert_eq!(store_clients(&mut raw, 1), 2);
        let len: usize = redis::cmd("LLEN").arg(&c).query(&mut raw).unwrap();
        assert_eq!(len, 0, "the push ran past the cap");

        push(&mut raw, &a, "wake");
        assert_eq!(
            first.join().unwrap().unwrap().as_deref(),
            Some(&b"wake"[..])
        );
        assert_eq!(
            third.join().unwrap().unwrap(),
            1,
            "ran once a connection came back"
        );
        assert!(!second.is_finished());
        assert!(store_clients(&mut raw, 1) <= 2);
        push(&mut raw, &b, "wake");
        assert_eq!(
            second.join().unwrap().unwrap().as_deref(),
            Some(&b"wake"[..])
        );
    });
    assert!(store_clients(&mut raw, 1) <= 2);
}

/// With a short pool timeout, the call past the cap fails, saying the pool
/// is exhausted, its size and the timeout; nothing was sent.
#[test]
fn past_the_cap_a_call_fails_after_the_pool_timeout_naming_the_cap() {
    let (server, mut raw) = server_and_raw(&[]);
    let pool_timeout = Duration::from_millis(300);
    let store = RedisStore::open_with(server.addr(), options(2, pool_timeout)).unwrap();
    let (a, b, c) = (unique("/a"), unique("/b"), unique("/c"));
    thread::scope(|scope| {
        let first = scope.spawn(|| store.blocking_pop(&a, Some(LONG)));
        let second = scope.spawn(|| store.blocking_pop(&b, Some(LONG)));
        wait_until("two blocked receives", || {
            info_clients(&mut raw, "blocked_clients") == 2
        });
        let err = store.push(&c, &[b"third"], None).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::PoolExhausted { max_connections: 2, timeout, .. } if timeout == pool_timeout
            ),
            "{err:?}"
        );
        assert!(err.is_pool_exhausted() && err.is_timeout() && err.is_connection());
        let text = err.to_string();
        for part in [
            server.addr().as_str(),
            "exhausted",
            "all 2 connections",
            "max_connections",
            "300ms",
        ] {
            assert!(text.contains(part), "{part:?} not in: {text}");
        }
        let len: usize = redis::cmd("LLEN").arg(&c).query(&mut raw).unwrap();
        assert_eq!(len, 0, "nothing sent");
        assert_eq!(store_clients(&mut raw, 1), 2);
        push(&mut raw, &a, "1");
        push(&mut raw, &b, "2");
        assert!(first.join().unwrap().unwrap().is_some());
        assert!(second.join().unwrap().unwrap().is_some());
    });
    // Free again.
    store.push(&c, &[b"later"], None).unwrap();
}

/// A burst of 50 threads sending and receiving on a store of 4
/// connections: everything arrives, and the server never sees more than 4
/// connections from the store.
#[test]
fn a_burst_of_fifty_threads_stays_within_the_cap() {
    const THREADS: usize = 50;
    const ROUNDS: usize = 20;
    let (server, _raw) = server_and_raw(&[]);
    let store = RedisStore::open_with(server.addr(), options(4, LONG)).unwrap();
    let key = unique("/burst");
    let received = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let (most, samples) = thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut sampling = server.raw();
            let (mut most, mut samples) = (0, 0);
            while !done.load(Ordering::Acquire) {
                // Two raw connections: this one and the one of the start.
                most = most.max(store_clients(&mut sampling, 2));
                samples += 1;
            }
            (most, samples)
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (store, key, received) = (&store, &key, &received);
                scope.spawn(move || {
                    for round in 0..ROUNDS {
                        let message = format!("{i}-{round}");
                        store.push(key, &[message.as_bytes()], None).unwrap();
                        let got = if round % 2 == 0 {
                            store.pop(key).unwrap()
                        } else {
                            store.blocking_pop(key, Some(LONG)).unwrap()
                        };
                        if got.is_some() {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Release);
        sampler.join().unwrap()
    });
    let left = store.pop_many(&key, THREADS * ROUNDS).unwrap().len();
    assert_eq!(
        received.into_inner() + left,
        THREADS * ROUNDS,
        "all arrived"
    );
    assert!(samples > 0);
    assert!(
        most <= 4,
        "the server saw {most} connections from the store"
    );
    assert!(most >= 1, "the sampler saw the burst");
}

/// Holds all `n` places of `store` in blocked receives, checks the server
/// sees them blocked, then wakes them: every place is usable.
fn all_places_usable(store: &RedisStore, raw: &mut redis::Connection, n: usize) {
    let key = unique("/all");
    thread::scope(|scope| {
        let receivers: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| store.blocking_pop(&key, Some(LONG))))
            .collect();
        wait_until("every place in a blocked receive", || {
            info_clients(raw, "blocked_clients") == n
        });
        assert_eq!(store_clients(raw, 1), n);
        for i in 0..n {
            push(raw, &key, &i.to_string());
        }
        for receiver in receivers {
            assert!(receiver.join().unwrap().unwrap().is_some());
        }
    });
}

/// Receives blocked when the server dies fail, and free their places: once
/// the server is back, all of them are usable again.
#[test]
fn connections_lost_to_a_dead_server_free_their_places() {
    let (mut server, mut raw) = server_and_raw(&[]);
    let store = RedisStore::open_with(server.addr(), options(3, Duration::from_secs(2))).unwrap();
    let key = unique("/dies");
    thread::scope(|scope| {
        let receivers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| store.blocking_pop(&key, Some(LONG))))
            .collect();
        wait_until("three blocked receives", || {
            info_clients(&mut raw, "blocked_clients") == 3
        });
        server.kill();
        for receiver in receivers {
            let err = receiver.join().unwrap().unwrap_err();
            assert!(err.is_connection() && !err.is_pool_exhausted(), "{err:?}");
        }
    });
    server.restart();
    let mut raw = server.raw();
    all_places_usable(&store, &mut raw, 3);
}

/// Receives whose connections the server kills (`CLIENT KILL`) fail once
/// their second attempt is killed too, and free their places.
#[test]
fn killed_connections_free_their_places() {
    let (server, mut raw) = server_and_raw(&[]);
    let store = RedisStore::open_with(server.addr(), options(3, Duration::from_secs(2))).unwrap();
    let key = unique("/killed");
    thread::scope(|scope| {
        let receivers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| store.blocking_pop(&key, Some(LONG))))
            .collect();
        wait_until("three blocked receives", || {
            info_clients(&mut raw, "blocked_clients") == 3
        });
        // A pooled connection found lost is replaced once: kill until
        // every receive has given up.
        wait_until("every receive to fail", || {
            let _: usize = redis::cmd("CLIENT")
                .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
                .query(&mut raw)
                .unwrap();
            receivers.iter().all(|receiver| receiver.is_finished())
        });
        for receiver in receivers {
            let err = receiver.join().unwrap().unwrap_err();
            assert!(err.is_connection() && !err.is_pool_exhausted(), "{err:?}");
        }
    });
    all_places_usable(&store, &mut raw, 3);
}

/// A `pool_timeout` of `Duration::MAX` waits without limit, without
/// overflow.
#[test]
fn a_pool_timeout_of_duration_max_waits_without_limit() {
    let (server, mut raw) = server_and_raw(&[]);
    let store = RedisStore::open_with(server.addr(), options(1, Duration::MAX)).unwrap();
    store.ping().unwrap();
    let (a, b) = (unique("/a"), unique("/b"));
    thread::scope(|scope| {
        let blocked = scope.spawn(|| store.blocking_pop(&a, Some(LONG)));
        wait_until("a blocked receive", || {
            info_clients(&mut raw, "blocked_clients") == 1
        });
        let waiting = scope.spawn(|| store.push(&b, &[b"x"], None));
        thread::sleep(Duration::from_millis(100));
        assert!(!waiting.is_finished());
        push(&mut raw, &a, "wake");
        assert!(blocked.join().unwrap().unwrap().is_some());
        assert_eq!(waiting.join().unwrap().unwrap(), 1);
    });
    assert_eq!(store_clients(&mut raw, 1), 1);
}

/// A pool of no connection is refused before anything connects, as an
/// option that is wrong (not an address).
#[test]
fn max_connections_zero_is_refused() {
    let server = RedisServer::start();
    let err = RedisStore::open_with(server.port(), options(0, LONG)).unwrap_err();
    assert!(matches!(err, StoreError::InvalidOptions { .. }), "{err:?}");
    assert!(!err.to_string().contains("address"), "{err}");
    assert!(err.to_string().contains("max_connections"), "{err}");
    let err = get_client_with(server.port(), options(0, LONG)).unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");
}

/// `get_client_with` hands out one store per address and options: the
/// same options give the same store, whatever the address's form; other
/// options another store, never one with options not asked for.
#[test]
fn get_client_with_keeps_one_store_per_address_and_options() {
    let (server, mut raw) = server_and_raw(&[]);
    let port = server.port();
    let small = options(1, Duration::from_millis(200));
    let store = get_client_with(port, small.clone()).unwrap();
    assert_eq!(store.options(), &small);
    for again in [
        get_client_with(("127.0.0.1", port), small.clone()).unwrap(),
        get_client_with(format!("redis://127.0.0.1:{port}/"), small.clone()).unwrap(),
    ] {
        assert!(store.ptr_eq(&again));
    }
    let other = options(2, Duration::from_millis(200));
    let bigger = get_client_with(port, other.clone()).unwrap();
    assert!(!store.ptr_eq(&bigger));
    assert_eq!(bigger.options(), &other);
    let default = get_client(port).unwrap();
    assert!(!default.ptr_eq(&store) && !default.ptr_eq(&bigger));
    assert_eq!(default.options(), &RedisStoreOptions::default());
    assert!(default.ptr_eq(&get_client_with(port, RedisStoreOptions::default()).unwrap()));

    // The options are in force: one connection, held by a blocked receive.
    let key = unique("/registry");
    thread::scope(|scope| {
        let blocked = scope.spawn(|| store.blocking_pop(&key, Some(LONG)));
        wait_until("a blocked receive", || {
            info_clients(&mut raw, "blocked_clients") == 1
        });
        let err = store.ping().unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::PoolExhausted {
                    max_connections: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        // Another store's pool is its own.
        bigger.ping().unwrap();
        push(&mut raw, &key, "wake");
        assert!(blocked.join().unwrap().unwrap().is_some());
    });
}

#[cfg(feature = "cluster")]
#[test]
fn get_cluster_client_with_keeps_one_store_per_seeds_and_options() {
    use redisutil::{
        RedisClusterStore, RedisClusterStoreOptions, get_cluster_client, get_cluster_client_with,
    };

    let small = RedisClusterStoreOptions {
        pool: PoolOptions {
            max_connections: 2,
            pool_timeout: Duration::MAX,
            ..PoolOptions::default()
        },
        ..RedisClusterStoreOptions::default()
    };
    let store = get_cluster_client_with([7100, 7101], small.clone()).unwrap();
    assert_eq!(store.options(), &small);
    assert!(
        store
            .ptr_eq(&get_cluster_client_with(["127.0.0.1:7101", "127.0.0.1:7100"], small).unwrap())
    );
    let default = get_cluster_client([7100, 7101]).unwrap();
    assert!(!default.ptr_eq(&store));
    assert_eq!(default.options(), &RedisClusterStoreOptions::default());
    let none = RedisClusterStoreOptions {
        pool: PoolOptions {
            max_connections: 0,
            ..PoolOptions::default()
        },
        ..RedisClusterStoreOptions::default()
    };
    let err = RedisClusterStore::open_with([7100], none.clone()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidOptions { .. }), "{err:?}");
    assert!(err.to_string().contains("max_connections"), "{err}");
    assert!(get_cluster_client_with([7100], none).is_err());
}
