//! Benchmark: `RedisChannel` beside raw redis-rs calls on one connection and
//! beside `redis-benchmark`, on a private redis-server.
//!
//! ```text
//! cargo run --release --example bench
//! cargo run --release --example bench --features tls-rustls   # and over TLS
//! cargo run --release --example bench --features tokio        # and the async API
//! cargo run --release --example bench --features tokio -- aio # the async API alone
//! cargo run --release --example bench --features hyper        # and the async proxy client
//! cargo run --release --example bench --features hyper -- proxy   # the proxy tables only
//! cargo run --release --example bench -- e2e      # a producer and a consumer process
//! cargo run --release --example bench -- lease    # the leased-receive table alone
//! cargo run --release --example bench -- memory   # Redis memory per message, per state
//! cargo run --release --example bench -- send     # the batched send rows alone
//! cargo run --release --example bench -- instructions  # server instructions per receive (valgrind)
//! ```
//!
//! Each figure is the best of five runs, and the runs of `redisutil` and of
//! its baseline alternate, so both see the same machine. Ratios compare
//! figures measured in the same run against the same server.
//!
//! On a virtual machine whose loopback round trip swings, run it on one
//! core, its `redis-server` and `redis-benchmark` with it (they inherit the
//! affinity): `cargo build --release --example bench && taskset -c 0
//! target/release/examples/bench` (and any mode above). The round trip
//! then holds still; the figures are the work of both sides.

#[path = "../../tests/support/mod.rs"]
mod support;

#[cfg(feature = "tokio")]
mod aio;
#[cfg(feature = "hyper")]
mod async_proxy;
mod e2e;
mod instructions;
mod lease;
mod memory;
mod proxy;
mod send;
#[cfg(feature = "tls-rustls")]
mod tls;
mod worker;

use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redis::Connection;
use redisutil::{ChannelOptions, Peer, RedisChannel, RedisStore};
use serde::{Deserialize, Serialize};
use support::RedisServer;

#[derive(Serialize, Deserialize)]
struct Msg {
    id: u64,
    body: String,
}

fn msg(id: u64) -> Msg {
    Msg {
        id,
        body: "hello, channel".into(),
    }
}

const N: u64 = 20_000;
const RUNS: usize = 5;

/// Operations per second of `ours` and of `baseline`, each run `count`
/// times after `setup`, alternating, best of [`RUNS`] each.
fn compare(
    count: u64,
    setup: &mut dyn FnMut(),
    ours: &mut dyn FnMut(u64),
    baseline: &mut dyn FnMut(u64),
) -> (f64, f64) {
    let mut once = |op: &mut dyn FnMut(u64)| {
        setup();
        let start = Instant::now();
        for i in 0..count {
            op(i);
        }
        count as f64 / start.elapsed().as_secs_f64()
    };
    let mut best = (0.0f64, 0.0f64);
    for _ in 0..RUNS {
        best.0 = best.0.max(once(ours));
        best.1 = best.1.max(once(baseline));
    }
    best
}

/// A raw redis-rs connection, with TCP_NODELAY like the store's.
fn raw(server: &RedisServer) -> Connection {
    let info =
        redis::IntoConnectionInfo::into_connection_info(format!("redis://{}/", server.addr()))
            .unwrap()
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    redis::Client::open(info).unwrap().get_connection().unwrap()
}

/// Fills the list `key` with [`N`] copies of `encoded`, by batches.
fn fill_list(admin: &mut Connection, key: &str, encoded: &[u8]) {
    let _: () = redis::cmd("DEL").arg(key).query(admin).unwrap();
    let values: Vec<&[u8]> = (0..1000).map(|_| encoded).collect();
    for _ in 0..N / 1000 {
        let _: () = redis::cmd("RPUSH")
            .arg(key)
            .arg(&values)
            .query(admin)
            .unwrap();
    }
}

/// `-- lease`: the leased-receive table alone.
fn lease_only() {
    let server = RedisServer::start();
    let store = RedisStore::open(server.addr()).unwrap();
    let serving = RedisChannel::new(store, "/bench", Peer::Server).unwrap();
    let key = serving.recv_key().to_owned();
    let encoded = serde_json::to_vec(&msg(1)).unwrap();
    println!("## Leased receive, one connection (ops/s, best of {RUNS})\n");
    println!("| operation | redisutil | baseline | baseline is | ratio |");
    println!("|---|---|---|---|---|");
    lease::run(&serving, &server, &mut |admin| {
        fill_list(admin, &key, &encoded)
    });
}

fn row(name: &str, (ours, baseline): (f64, f64), baseline_name: &str) {
    println!(
        "| {name} | {ours:.0} | {baseline:.0} | {baseline_name} | {:.2} |",
        ours / baseline
    );
}

fn redis_benchmark(port: u16, extra: &[&str]) -> Vec<(String, f64)> {
    let output = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-n",
            "200000",
            "-t",
            "rpush,lpop",
            "--csv",
        ])
        .args(extra)
        .output()
        .expect("redis-benchmark (apt-get install redis-tools)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
            Some((fields.first()?.to_string(), fields.get(1)?.parse().ok()?))
        })
        .collect()
}

fn main() {
    // `-- e2e`: a producer and a consumer process through one Redis (and
    // the two sides it runs as).
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("e2e") => return e2e::run(&args[1..]),
        Some("e2e-producer") => return e2e::producer(&args[1..]),
        Some("e2e-consumer") => return e2e::consumer(&args[1..]),
        Some("lease") => return lease_only(),
        Some("instructions") => return instructions::run(),
        Some("memory") => return memory::run(),
        Some("send") => return send::run(),
        Some("worker") => return worker::run(),
        _ => {}
    }
    // `-- aio`: the async channel section alone; `-- proxy`: the proxy
    // tables alone.
    #[cfg(feature = "tokio")]
    if std::env::args().nth(1).as_deref() == Some("aio") {
        aio::run();
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("proxy") {
        proxy::run();
        #[cfg(feature = "hyper")]
        async_proxy::run();
        return;
    }
    let server = RedisServer::start();
    let store = RedisStore::open(server.addr()).unwrap();
    let client = RedisChannel::new(store.clone(), "/bench", Peer::Client).unwrap();
    let serving = RedisChannel::new(store.clone(), "/bench", Peer::Server).unwrap();
    let key = client.send_key().to_owned();
    let mut admin = raw(&server);
    let mut con = raw(&server);
    let encoded = serde_json::to_vec(&msg(1)).unwrap();
    let mut empty = || {
        let _: () = redis::cmd("DEL").arg(&key).query(&mut admin).unwrap();
    };

    println!("## Channel, one connection, {N} operations (ops/s, best of {RUNS})\n");
    println!("| operation | redisutil | baseline | baseline is | ratio |");
    println!("|---|---|---|---|---|");

    let send = compare(
        N,
        &mut empty,
        &mut |i| client.send_msg(&msg(i)).unwrap(),
        &mut |_| {
            redis::cmd("RPUSH")
                .arg(&key)
                .arg(&encoded)
                .exec(&mut con)
                .unwrap()
        },
    );
    row("send_msg", send, "raw RPUSH");

    // With a TTL: one checked script (EVALSHA) against the transaction a
    // hand-written client would send, which does not check before it writes.
    let options = ChannelOptions {
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let expiring =
        RedisChannel::with_options(store.clone(), "/bench", Peer::Client, options).unwrap();
    let send_ttl = compare(
        N,
        &mut empty,
        &mut |i| expiring.send_msg(&msg(i)).unwrap(),
        &mut |_| {
            redis::pipe()
                .atomic()
                .cmd("RPUSH")
                .arg(&key)
                .arg(&encoded)
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(60_000)
                .exec(&mut con)
                .unwrap()
        },
    );
    row(
        "send_msg with a TTL",
        send_ttl,
        "raw MULTI RPUSH PEXPIRE EXEC",
    );

    let mut admin = raw(&server);
    let mut fill = || {
        let _: () = redis::cmd("DEL").arg(&key).query(&mut admin).unwrap();
        for _ in 0..N / 1000 {
            let values: Vec<&[u8]> = (0..1000).map(|_| encoded.as_slice()).collect();
            let _: () = redis::cmd("RPUSH")
                .arg(&key)
                .arg(&values)
                .query(&mut admin)
                .unwrap();
        }
    };
    let recv = compare(
        N,
        &mut fill,
        &mut |_| drop(serving.recv_msg::<Msg>().unwrap().unwrap()),
        &mut |_| {
            let v: Option<Vec<u8>> = redis::cmd("LPOP").arg(&key).query(&mut con).unwrap();
            v.unwrap();
        },
    );
    row("recv_msg", recv, "raw LPOP");

    let brecv = compare(
        N,
        &mut fill,
        &mut |_| {
            drop(
                serving
                    .brecv_msg::<Msg>(Duration::from_secs(1))
                    .unwrap()
                    .unwrap(),
            )
        },
        &mut |_| {
            let v: Option<(Vec<u8>, Vec<u8>)> = redis::cmd("BLPOP")
                .arg(&key)
                .arg(1)
                .query(&mut con)
                .unwrap();
            v.unwrap();
        },
    );
    row("brecv_msg", brecv, "raw BLPOP");

    let batch_100 = lease::run(&serving, &server, &mut |admin| {
        fill_list(admin, &key, &encoded)
    });

    let batch_1000 = send::batches(&server, &client);

    // Latency: one thread sends, another waits in a blocking receive.
    let ours = latency(|| {
        let (sender, receiver) = (client.clone(), serving.clone());
        (
            Box::new(move |i| sender.send_msg(&i).unwrap()),
            Box::new(move || {
                receiver.brecv_msg::<u64>(Duration::ZERO).unwrap().unwrap();
            }),
        )
    });
    let baseline = latency(|| {
        let (mut tx, mut rx) = (raw(&server), raw(&server));
        let (k1, k2) = (key.clone(), key.clone());
        (
            Box::new(move |i: u64| redis::cmd("RPUSH").arg(&k1).arg(i).exec(&mut tx).unwrap()),
            Box::new(move || {
                let _: (String, u64) = redis::cmd("BLPOP").arg(&k2).arg(0).query(&mut rx).unwrap();
            }),
        )
    });
    println!(
        "| send → brecv latency p50 / p99 (µs) | {:.0} / {:.0} | {:.0} / {:.0} | raw RPUSH → BLPOP | {:.2} |",
        ours.0,
        ours.1,
        baseline.0,
        baseline.1,
        baseline.0 / ours.0
    );

    println!("\n## recv_last_msg over a backlog (µs per call, best of {RUNS})\n");
    println!("Control: `peek_msg` (one LINDEX) timed the same way, right after the same fill.\n");
    println!("| backlog | recv_last_msg | peek_msg (control) |");
    println!("|---|---|---|");
    for backlog in [10u64, 1_000, 100_000] {
        let mut admin = raw(&server);
        let values: Vec<&[u8]> = (0..backlog.min(10_000))
            .map(|_| encoded.as_slice())
            .collect();
        let mut timed = |op: &mut dyn FnMut()| {
            (0..RUNS)
                .map(|_| {
                    let _: () = redis::cmd("DEL").arg(&key).query(&mut admin).unwrap();
                    for _ in 0..backlog.div_ceil(10_000) {
                        let _: () = redis::cmd("RPUSH")
                            .arg(&key)
                            .arg(&values)
                            .query(&mut admin)
                            .unwrap();
                    }
                    let start = Instant::now();
                    op();
                    start.elapsed()
                })
                .min()
                .unwrap()
                .as_secs_f64()
                * 1e6
        };
        let last = timed(&mut || drop(serving.recv_last_msg::<Msg>().unwrap().unwrap()));
        let peek = timed(&mut || drop(serving.peek_msg::<Msg>().unwrap().unwrap()));
        println!("| {backlog} | {last:.0} | {peek:.0} |");
    }

    println!("\n## redis-benchmark on the same server (requests/s)\n");
    let single = redis_benchmark(server.port(), &["-c", "1"]);
    let pipelined = redis_benchmark(server.port(), &["-c", "1", "-P", "64"]);
    println!("| command | -c 1 | -c 1 -P 64 |");
    println!("|---|---|---|");
    for ((name, one), (_, many)) in single.iter().zip(&pipelined) {
        println!("| {name} | {one:.0} | {many:.0} |");
    }
    let rps = |list: &[(String, f64)], name: &str| {
        list.iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
            .unwrap_or(f64::NAN)
    };
    println!();
    println!("| ratio | value |");
    println!("|---|---|");
    println!(
        "| send_msg / redis-benchmark -c 1 RPUSH | {:.2} |",
        send.0 / rps(&single, "RPUSH")
    );
    println!(
        "| recv_msg / redis-benchmark -c 1 LPOP | {:.2} |",
        recv.0 / rps(&single, "LPOP")
    );
    println!(
        "| send_msgs(1000) msgs/s / redis-benchmark -c 1 -P 64 RPUSH | {:.2} |",
        batch_1000 / rps(&pipelined, "RPUSH")
    );
    println!(
        "| recv_msgs(100) msgs/s / redis-benchmark -c 1 -P 64 LPOP | {:.2} |",
        batch_100 / rps(&pipelined, "LPOP")
    );

    #[cfg(feature = "tls-rustls")]
    tls::run();
    #[cfg(feature = "tokio")]
    aio::run();
    proxy::run();
    #[cfg(feature = "hyper")]
    async_proxy::run();
}

type Ends = (Box<dyn FnMut(u64) + Send>, Box<dyn FnMut() + Send>);

/// p50 and p99 in µs of send → receive across two threads, one message in
/// flight at a time.
fn latency(make: impl FnOnce() -> Ends) -> (f64, f64) {
    const ROUNDS: u64 = 5_000;
    let (mut send, mut recv) = make();
    let (sent_tx, sent_rx) = mpsc::channel::<Instant>();
    let (done_tx, done_rx) = mpsc::channel::<Duration>();
    let receiver = thread::spawn(move || {
        for _ in 0..ROUNDS {
            recv();
            let sent: Instant = sent_rx.recv().unwrap();
            done_tx.send(sent.elapsed()).unwrap();
        }
    });
    let mut samples = Vec::with_capacity(ROUNDS as usize);
    for i in 0..ROUNDS {
        sent_tx.send(Instant::now()).unwrap();
        send(i);
        samples.push(done_rx.recv().unwrap());
    }
    receiver.join().unwrap();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}
