//! The async API against the sync one and `redis-benchmark`, on one
//! private redis-server (feature `tokio`).

use std::time::{Duration, Instant};

use redisutil::aio::{AsyncRedisChannel, AsyncRedisStore};
use redisutil::{Peer, RedisChannel, RedisStore, RedisStoreOptions};

use super::support::RedisServer;
use super::{Msg, N, RUNS, msg, redis_benchmark};

/// Operations per second of `a` and of `b`, each given how many
/// operations to run and answering how long they took: `count` operations
/// each, in 40 short rounds alternating between the two, best round of
/// each. Loopback round trips on a virtual machine swing by several times
/// from one moment to the next; short alternating rounds let both see the
/// same moments.
fn alternate(
    count: u64,
    a: &mut dyn FnMut(u64) -> Duration,
    b: &mut dyn FnMut(u64) -> Duration,
) -> (f64, f64) {
    const ROUNDS: u64 = 40;
    let round = count / ROUNDS;
    let mut best = (0.0f64, 0.0f64);
    for _ in 0..ROUNDS {
        best.0 = best.0.max(round as f64 / a(round).as_secs_f64());
        best.1 = best.1.max(round as f64 / b(round).as_secs_f64());
    }
    best
}

/// [`alternate`] between the async `run` (run in a task, as async code
/// runs: not on the thread that waits) and the sync `sync`.
fn compare_async(
    count: u64,
    runtime: &tokio::runtime::Runtime,
    sync: &mut dyn FnMut(u64),
    run: &dyn Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
) -> (f64, f64) {
    alternate(
        count,
        &mut |round| {
            let start = Instant::now();
            runtime.block_on(runtime.spawn(run(round))).unwrap();
            start.elapsed()
        },
        &mut |round| {
            let start = Instant::now();
            for i in 0..round {
                sync(i);
            }
            start.elapsed()
        },
    )
}

/// `send_msg` one message at a time on `client`, in a task on `runtime`,
/// against the sync `baseline`'s.
fn sends(
    runtime: &tokio::runtime::Runtime,
    client: &AsyncRedisChannel<AsyncRedisStore>,
    baseline: &RedisChannel<RedisStore>,
) -> (f64, f64) {
    compare_async(
        N,
        runtime,
        &mut |i| baseline.send_msg(&msg(i)).unwrap(),
        &|count| {
            let client = client.clone();
            Box::pin(async move {
                for i in 0..count {
                    client.send_msg(&msg(i)).await.unwrap();
                }
            })
        },
    )
}

pub fn run() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = AsyncRedisStore::open(server.addr()).unwrap();
    let client = AsyncRedisChannel::new(store.clone(), "/aio-bench", Peer::Client).unwrap();
    let serving = AsyncRedisChannel::new(store.clone(), "/aio-bench", Peer::Server).unwrap();
    let sync_store = RedisStore::open(server.addr()).unwrap();
    let sync_client = RedisChannel::new(sync_store.clone(), "/sync-bench", Peer::Client).unwrap();
    let sync_serving = RedisChannel::new(sync_store, "/sync-bench", Peer::Server).unwrap();

    println!("\n## The async API ({N} operations, ops/s, best of 40 alternating rounds)\n");
    println!("| operation | async | baseline | baseline is | ratio |");
    println!("|---|---|---|---|---|");
    let send = sends(&runtime, &client, &sync_client);
    super::row("send_msg, one at a time", send, "sync send_msg");
    // The same on connections of their own (not multiplexed): for a task
    // that makes one call at a time.
    let own = redisutil::RedisStoreOptions {
        pool: redisutil::PoolOptions {
            multiplexed: false,
            ..Default::default()
        },
        ..Default::default()
    };
    // A client on a store of its own, for the runtime it is used on.
    let own_client = || {
        AsyncRedisChannel::new(
            AsyncRedisStore::open_with(server.addr(), own.clone()).unwrap(),
            "/aio-bench",
            Peer::Client,
        )
        .unwrap()
    };
    let send_own = sends(&runtime, &own_client(), &sync_client);
    super::row(
        "send_msg, one at a time, not multiplexed",
        send_own,
        "sync send_msg",
    );
    let recv = compare_async(
        N,
        &runtime,
        &mut |_| drop(sync_serving.recv_msg::<Msg>().unwrap().unwrap()),
        &|count| {
            let serving = serving.clone();
            Box::pin(async move {
                for _ in 0..count {
                    drop(serving.recv_msg::<Msg>().await.unwrap().unwrap());
                }
            })
        },
    );
    super::row("recv_msg, one at a time", recv, "sync recv_msg");

    // The same on a current-thread runtime: the task and the connection's
    // driver on one thread, no wake-up crossing threads.
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local_store = AsyncRedisStore::open(server.addr()).unwrap();
    let local_client =
        AsyncRedisChannel::new(local_store.clone(), "/aio-bench", Peer::Client).unwrap();
    let local_serving = AsyncRedisChannel::new(local_store, "/aio-bench", Peer::Server).unwrap();
    let send = sends(&local, &local_client, &sync_client);
    super::row(
        "send_msg, one at a time, current-thread runtime",
        send,
        "sync send_msg",
    );
    let send = sends(&local, &own_client(), &sync_client);
    super::row(
        "send_msg, one at a time, current-thread runtime, not multiplexed",
        send,
        "sync send_msg",
    );
    let recv = compare_async(
        N,
        &local,
        &mut |_| drop(sync_serving.recv_msg::<Msg>().unwrap().unwrap()),
        &|count| {
            let serving = local_serving.clone();
            Box::pin(async move {
                for _ in 0..count {
                    drop(serving.recv_msg::<Msg>().await.unwrap().unwrap());
                }
            })
        },
    );
    super::row(
        "recv_msg, one at a time, current-thread runtime",
        recv,
        "sync recv_msg",
    );

    // What redis-rs's multiplexed connection itself does one call at a
    // time: the ceiling of an async client on it.
    let raw = local
        .block_on(
            redis::Client::open(format!("redis://{}/", server.addr()))
                .unwrap()
                .get_multiplexed_async_connection(),
        )
        .unwrap();
    let encoded = serde_json::to_vec(&msg(1)).unwrap();
    let timed = |round: u64, ours: bool| {
        let (client, mut raw, encoded) = (local_client.clone(), raw.clone(), encoded.clone());
        let start = Instant::now();
        local.block_on(async move {
            for i in 0..round {
                if ours {
                    client.send_msg(&msg(i)).await.unwrap();
                } else {
                    let _: u64 = redis::cmd("RPUSH")
                        .arg("/aio-bench/raw")
                        .arg(&encoded)
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                }
            }
        });
        start.elapsed()
    };
    let raw_send = alternate(N, &mut |round| timed(round, true), &mut |round| {
        timed(round, false)
    });
    super::row(
        "send_msg, one at a time, current-thread runtime",
        raw_send,
        "redis-rs multiplexed RPUSH, one at a time",
    );

    // 64 tasks on the one multiplexed connection, against redis-benchmark's
    // 50 connections.
    const TASKS: u64 = 64;
    let concurrent = |count: u64, receive: bool| {
        let start = Instant::now();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let client = client.clone();
                    let serving = serving.clone();
                    tokio::spawn(async move {
                        for i in 0..count / TASKS {
                            if receive {
                                drop(serving.recv_msg::<Msg>().await.unwrap().unwrap());
                            } else {
                                client.send_msg(&msg(i)).await.unwrap();
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        (count / TASKS * TASKS) as f64 / start.elapsed().as_secs_f64()
    };
    let many = N * 10;
    let mut best = (0.0f64, 0.0f64);
    for _ in 0..RUNS {
        best.0 = best.0.max(concurrent(many, false));
        best.1 = best.1.max(concurrent(many, true));
    }
    let benchmark = redis_benchmark(server.port(), &["-c", "50"]);
    let rps = |name: &str| {
        benchmark
            .iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, r)| *r)
    };
    super::row(
        "send_msg, 64 tasks, one connection",
        (best.0, rps("RPUSH")),
        "redis-benchmark -c 50 RPUSH",
    );
    super::row(
        "recv_msg, 64 tasks, one connection",
        (best.1, rps("LPOP")),
        "redis-benchmark -c 50 LPOP",
    );
    drop((client, serving, store));

    blocked_consumers(&server, &runtime);
}

/// Threads and memory of 1,000 consumers blocked on 1,000 channels: tasks
/// on the async store, threads on the sync one.
fn blocked_consumers(server: &RedisServer, runtime: &tokio::runtime::Runtime) {
    const CONSUMERS: usize = 1000;
    let options = RedisStoreOptions {
        pool: redisutil::PoolOptions {
            max_connections: CONSUMERS + 16,
            max_idle: CONSUMERS + 16,
            ..redisutil::PoolOptions::default()
        },
        ..Default::default()
    };
    println!("\n## {CONSUMERS} consumers blocked on {CONSUMERS} channels\n");
    println!("| API | threads | memory (RSS) added | all woken and received in |");
    println!("|---|---|---|---|");
    let before = usage();

    let store = AsyncRedisStore::open_with(server.addr(), options.clone()).unwrap();
    let waiting: Vec<_> = (0..CONSUMERS)
        .map(|n| {
            let chan =
                AsyncRedisChannel::new(store.clone(), format!("/blocked/async/{n}"), Peer::Server)
                    .unwrap();
            runtime.spawn(async move { chan.brecv_msg::<u64>(Duration::ZERO).await })
        })
        .collect();
    wait_for_blocked(server, CONSUMERS);
    let blocked = usage();
    let sender = RedisChannel::new(
        RedisStore::open(server.addr()).unwrap(),
        "/blocked/x",
        Peer::Client,
    )
    .unwrap();
    let start = Instant::now();
    for n in 0..CONSUMERS {
        let client = RedisChannel::new(
            sender.store().clone(),
            format!("/blocked/async/{n}"),
            Peer::Client,
        )
        .unwrap();
        client.send_msg(&n).unwrap();
    }
    for task in waiting {
        assert!(runtime.block_on(task).unwrap().unwrap().is_some());
    }
    let woken = start.elapsed();
    println!(
        "| async (tasks, 2 runtime workers) | {} | {:.1} MiB | {:.0} ms |",
        blocked.0,
        (blocked.1 - before.1) as f64 / 1024.0,
        woken.as_secs_f64() * 1e3
    );
    drop(store);
    std::thread::sleep(Duration::from_millis(300));

    let before = usage();
    let store = RedisStore::open_with(server.addr(), options).unwrap();
    let waiting: Vec<_> = (0..CONSUMERS)
        .map(|n| {
            let chan = RedisChannel::new(store.clone(), format!("/blocked/sync/{n}"), Peer::Server)
                .unwrap();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || chan.brecv_msg::<u64>(Duration::ZERO))
                .unwrap()
        })
        .collect();
    wait_for_blocked(server, CONSUMERS);
    let blocked = usage();
    let start = Instant::now();
    for n in 0..CONSUMERS {
        let client = RedisChannel::new(
            sender.store().clone(),
            format!("/blocked/sync/{n}"),
            Peer::Client,
        )
        .unwrap();
        client.send_msg(&n).unwrap();
    }
    for thread in waiting {
        assert!(thread.join().unwrap().unwrap().is_some());
    }
    let woken = start.elapsed();
    println!(
        "| sync (a thread each, 256 KiB stacks) | {} | {:.1} MiB | {:.0} ms |",
        blocked.0,
        (blocked.1 - before.1) as f64 / 1024.0,
        woken.as_secs_f64() * 1e3
    );
}

/// Waits until `count` clients are blocked on the server.
fn wait_for_blocked(server: &RedisServer, count: usize) {
    let mut admin = server.raw();
    for _ in 0..1000 {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut admin).unwrap();
        let blocked = info
            .lines()
            .find_map(|line| line.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if blocked >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{count} clients never blocked");
}

/// This process's threads and resident memory in KiB.
fn usage() -> (usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("Threads:") as usize, field("VmRSS:"))
}
