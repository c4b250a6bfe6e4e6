//! Failure behaviour of channels on a real redis-server the tests control:
//! restarts with and without persistence, a dead server under a blocked
//! receive, paused and sleeping servers, killed connections, and many
//! producers and consumers (threads and a separate Python process).
//!
//! `REDISUTIL_SOAK=<messages>` makes the concurrency runs bigger (default
//! 100,000 messages).

use crate::python_support;
use crate::support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::{
    ChannelError, ListStore, MemoryStore, Peer, RedisChannel, RedisStore, RedisStoreOptions,
};
use serde::{Deserialize, Serialize};
use support::{RedisServer, unique};

fn options(response_timeout: Duration) -> RedisStoreOptions {
    RedisStoreOptions {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Some(response_timeout),
        ..RedisStoreOptions::default()
    }
}

fn store(server: &RedisServer, response_timeout: Duration) -> RedisStore {
    RedisStore::open_with(server.addr(), options(response_timeout)).unwrap()
}

/// Retries `op` until it succeeds, at most `within`.
fn until_ok<T, E: std::fmt::Debug>(within: Duration, mut op: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match op() {
            Ok(value) => return value,
            Err(err) if Instant::now() >= deadline => {
                panic!("still failing after {within:?}: {err:?}")
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn producer_and_consumer_survive_a_restart_with_appendfsync_always() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = store(&server, Duration::from_secs(1));
    let name = unique("/restart");
    let producer = RedisChannel::new(store.clone(), &name, Peer::Client).unwrap();
    let consumer = RedisChannel::new(store.clone(), &name, Peer::Server).unwrap();
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(Vec::<u64>::new());
    let received = Mutex::new(Vec::<u64>::new());
    let send_errors = AtomicU64::new(0);
    let recv_errors = AtomicU64::new(0);

    thread::scope(|scope| {
        scope.spawn(|| {
            let mut next = 0u64;
            while !stop.load(Ordering::Acquire) {
                match producer.send_msg(&next) {
                    Ok(()) => acked.lock().unwrap().push(next),
                    Err(err) => {
                        assert!(
                            matches!(err, ChannelError::Store(ref e) if e.is_connection()),
                            "{err}"
                        );
                        send_errors.fetch_add(1, Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(5));
                    }
                }
                next += 1;
            }
        });
        scope.spawn(|| {
            loop {
                match consumer.brecv_msg::<u64>(Duration::from_millis(100)) {
                    Ok(Some(msg)) => received.lock().unwrap().push(msg),
                    Ok(None) if stop.load(Ordering::Acquire) => break,
                    Ok(None) => {}
                    Err(err) => {
                        assert!(
                            matches!(err, ChannelError::Store(ref e) if e.is_connection()),
                            "{err}"
                        );
                        recv_errors.fetch_add(1, Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        });
        for _ in 0..2 {
            thread::sleep(Duration::from_millis(300));
            // A call during the outage fails within its timeout.
            server.kill();
            let started = Instant::now();
            let err = store.ping().unwrap_err();
            assert!(err.is_connection(), "{err}");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );
            thread::sleep(Duration::from_millis(200));
            server.restart();
        }
        thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Release);
    });

    let acked = acked.into_inner().unwrap();
    let received: Vec<u64> = received.into_inner().unwrap();
    let unique_received: HashSet<u64> = received.iter().copied().collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|m| !unique_received.contains(m))
        .collect();
    let (send_errors, recv_errors) = (send_errors.into_inner(), recv_errors.into_inner());
    println!(
        "appendfsync always: acked {} received {} duplicated {} lost {} (send errors {send_errors}, receive errors {recv_errors})",
        acked.len(),
        received.len(),
        received.len() - unique_received.len(),
        lost.len()
    );
    assert!(
        acked.len() > 100,
        "the producer made progress: {}",
        acked.len()
    );
    assert!(send_errors > 0 && recv_errors > 0, "the outages were seen");
    // A receive that failed may have popped a message whose reply was lost
    // (plain receive is at-most-once); nothing else may go missing.
    assert!(
        lost.len() as u64 <= recv_errors,
        "lost {lost:?} with {recv_errors} receive errors"
    );
    assert_eq!(
        received.len(),
        unique_received.len(),
        "a message was received twice"
    );
}

#[test]
fn without_persistence_a_restart_empties_the_channel_and_both_ends_go_on() {
    let mut server = RedisServer::start();
    let store = store(&server, Duration::from_secs(1));
    let name = unique("/volatile");
    let producer = RedisChannel::new(store.clone(), &name, Peer::Client).unwrap();
    let consumer = RedisChannel::new(store, &name, Peer::Server).unwrap();
    producer.send_msgs(0..10).unwrap();
    server.restart();
    assert_eq!(
        consumer.recv_msg::<u64>().unwrap(),
        None,
        "nothing survives without persistence"
    );
    producer.send_msg(&10).unwrap();
    assert_eq!(consumer.recv_msg::<u64>().unwrap(), Some(10));
}

#[test]
fn a_blocked_receive_returns_an_error_when_the_server_dies() {
    let mut server = RedisServer::start();
    let store = store(&server, Duration::from_secs(1));
    let consumer = RedisChannel::new(store, unique("/dies"), Peer::Server).unwrap();
    let blocked = thread::spawn(move || consumer.brecv_msg::<u64>(Duration::ZERO));
    thread::sleep(Duration::from_millis(200));
    assert!(!blocked.is_finished());
    server.kill();
    let result = blocked.join().unwrap();
    assert!(
        matches!(result, Err(ChannelError::Store(ref e)) if e.is_connection()),
        "{result:?}"
    );
}

#[test]
fn client_pause_and_debug_sleep_hit_the_timeout_then_calls_recover() {
    let server = RedisServer::start_with(&["--enable-debug-command", "local"]);
    let timeout = Duration::from_millis(200);
    let store = store(&server, timeout);
    let chan = RedisChannel::new(store.clone(), unique("/slow"), Peer::Client).unwrap();
    // A busy machine may miss the short timeout where nothing slows the
    // server down: tried again until it passes.
    until_ok(Duration::from_secs(5), || chan.send_msg(&1));
    for (command, arg) in [("CLIENT", "PAUSE"), ("DEBUG", "SLEEP")] {
        // A send answered within the timeout came before the server slowed
        // down (a busy machine may hold up the slowing command): the round
        // is made again. One answered later than the timeout fails.
        for round in 1.. {
            let mut raw = server.raw();
            let sleeper = thread::spawn(move || {
                let value = if command == "CLIENT" { "1000" } else { "1" };
                redis::cmd(command).arg(arg).arg(value).exec(&mut raw)
            });
            thread::sleep(Duration::from_millis(100));
            let started = Instant::now();
            let sent = chan.send_msg(&2);
            let elapsed = started.elapsed();
            sleeper.join().unwrap().unwrap();
            until_ok(Duration::from_secs(5), || chan.send_msg(&3));
            let Err(err) = sent else {
                support::answered_before_the_slowdown(round, elapsed, timeout, command);
                continue;
            };
            assert!(
                matches!(
                    err,
                    ChannelError::Store(redisutil::StoreError::Timeout { .. })
                ),
                "{command}: {err}"
            );
            assert!(
                elapsed < timeout * 5,
                "{command}: the timeout was not honoured: {elapsed:?}"
            );
            break;
        }
    }
}

#[test]
fn killed_connections_are_replaced_on_the_next_call() {
    let server = RedisServer::start();
    let store = store(&server, Duration::from_secs(1));
    let client = RedisChannel::new(store.clone(), unique("/kill"), Peer::Client).unwrap();
    let serving = RedisChannel::new(store.clone(), client.name(), Peer::Server).unwrap();
    thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| store.ping().unwrap());
        }
    });
    client.send_msg(&1).unwrap();
    let mut raw = server.raw();
    let killed: u64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query(&mut raw)
        .unwrap();
    assert!(killed >= 1, "the store's connections were killed");
    // The very next calls work.
    client.send_msg(&2).unwrap();
    assert_eq!(serving.recv_msg::<u64>().unwrap(), Some(1));
    assert_eq!(serving.recv_msg::<u64>().unwrap(), Some(2));
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Hash, Clone, Copy)]
struct Tagged {
    p: u64,
    i: u64,
}

fn soak_size() -> u64 {
    std::env::var("REDISUTIL_SOAK")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// `producers` threads send `per_producer` messages each (half one by one,
/// half in batches), `consumers` threads receive until `total` arrived;
/// checks each message arrived exactly once.
fn exactly_once<S: ListStore + Clone + 'static>(
    store: S,
    name: &str,
    producers: u64,
    per_producer: u64,
    extra_sent: u64,
    extra: impl FnOnce() + Send,
) {
    let total = producers * per_producer + extra_sent;
    let received = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let count = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    thread::scope(|scope| {
        for p in 0..producers {
            let chan = RedisChannel::new(store.clone(), name, Peer::Client).unwrap();
            scope.spawn(move || {
                if p % 2 == 0 {
                    for i in 0..per_producer {
                        chan.send_msg(&Tagged { p, i }).unwrap();
                    }
                } else {
                    let all: Vec<u64> = (0..per_producer).collect();
                    for batch in all.chunks(100) {
                        chan.send_msgs(batch.iter().map(|&i| Tagged { p, i }))
                            .unwrap();
                    }
                }
            });
        }
        scope.spawn(extra);
        for _ in 0..4 {
            let chan = RedisChannel::new(store.clone(), name, Peer::Server).unwrap();
            let (received, count) = (received.clone(), &count);
            scope.spawn(move || {
                let mut mine = Vec::new();
                while count.load(Ordering::Acquire) < total && Instant::now() < deadline {
                    if let Some(msg) = chan.brecv_msg::<Tagged>(Duration::from_millis(50)).unwrap()
                    {
                        mine.push(msg);
                        count.fetch_add(1, Ordering::AcqRel);
                    }
                }
                received.lock().unwrap().extend(mine);
            });
        }
    });
    let received = received.lock().unwrap();
    let distinct: HashSet<Tagged> = received.iter().copied().collect();
    println!(
        "exactly once: sent {total} received {} duplicated {} lost {}",
        received.len(),
        received.len() - distinct.len(),
        total as usize - distinct.len()
    );
    assert_eq!(received.len() as u64, total, "every message received once");
    assert_eq!(distinct.len() as u64, total, "no duplicates");
}

#[test]
fn many_producers_and_consumers_on_redis_with_a_separate_process() {
    let server = RedisServer::start();
    let name = unique("/soak");
    let total = soak_size();
    let python_sends = (total / 10).min(20_000);
    let per_producer = (total - python_sends) / 4;
    let python_sends = total - per_producer * 4;
    let port = server.port();
    let python_name = name.clone();
    exactly_once(
        server.store(),
        &name,
        4,
        per_producer,
        python_sends,
        move || {
            let script = format!(
                "import k3redisutil\nc = k3redisutil.RedisChannel({port}, {python_name:?}, 'client')\n\
             for i in range({python_sends}):\n    c.send_msg({{'p': 99, 'i': i}})\n"
            );
            let status = Command::new(python_support::interpreter())
                .arg("-c")
                .arg(script)
                .stdout(Stdio::null())
                .status()
                .unwrap_or_else(|err| {
                    panic!("cannot run Python ({err}): {}", python_support::SETUP)
                });
            assert!(
                status.success(),
                "the Python producer failed (k3redisutil missing?): {}",
                python_support::SETUP
            );
        },
    );
}

#[test]
fn many_producers_and_consumers_on_memory() {
    exactly_once(MemoryStore::new(), "/soak", 4, soak_size() / 4, 0, || {});
}

#[test]
fn a_16_mib_message_round_trips() {
    let server = RedisServer::start();
    let big = "ü".repeat(8 << 20); // 16 MiB of UTF-8
    for store in [
        Box::new(server.store()) as Box<dyn ListStore>,
        Box::new(MemoryStore::new()),
    ] {
        let client = RedisChannel::new(&*store, "/big", Peer::Client).unwrap();
        let serving = RedisChannel::new(&*store, "/big", Peer::Server).unwrap();
        client.send_msg(&big).unwrap();
        assert_eq!(
            serving.recv_msg::<String>().unwrap().as_deref(),
            Some(big.as_str())
        );
    }
}
