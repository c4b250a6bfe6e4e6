//! Channel benchmark: `RedisChannel` beside raw redis-rs calls on one
//! connection and beside `redis-benchmark`, on a private redis-server.
//!
//! ```text
//! cargo run --release --example bench
//! ```
//!
//! Every figure is the best of three runs; ratios compare figures measured
//! in the same run against the same server.

#[path = "../../tests/support/mod.rs"]
mod support;

mod proxy;

use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redis::Connection;
use redisutil::{Peer, RedisChannel, RedisStore};
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
const RUNS: usize = 3;

/// Operations per second of `op` run `count` times, best of three.
fn rate(count: u64, mut setup: impl FnMut(), mut op: impl FnMut(u64)) -> f64 {
    (0..RUNS)
        .map(|_| {
            setup();
            let start = Instant::now();
            for i in 0..count {
                op(i);
            }
            count as f64 / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn raw(server: &RedisServer) -> Connection {
    server.raw()
}

fn del(con: &mut Connection, key: &str) {
    let _: () = redis::cmd("DEL").arg(key).query(con).unwrap();
}

fn row(name: &str, ours: f64, baseline: f64, baseline_name: &str) {
    println!(
        "| {name} | {ours:>10.0} | {baseline:>10.0} ({baseline_name}) | {:>5.2} |",
        ours / baseline
    );
}

fn redis_benchmark(port: u16, extra: &[&str]) -> Vec<(String, f64)> {
    let output = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-n",
            "100000",
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
    let server = RedisServer::start();
    let store = RedisStore::open(server.addr()).unwrap();
    let client = RedisChannel::new(store.clone(), "/bench", Peer::Client).unwrap();
    let serving = RedisChannel::new(store.clone(), "/bench", Peer::Server).unwrap();
    let key = client.send_key().to_owned();
    let mut con = raw(&server);
    let encoded = serde_json::to_vec(&msg(1)).unwrap();

    println!("one connection, {N} operations, best of {RUNS}; ops/s\n");
    println!("| operation | redisutil | baseline | ratio |");
    println!("|---|---|---|---|");

    let send = rate(
        N,
        || del(&mut con, &key),
        |i| client.send_msg(&msg(i)).unwrap(),
    );
    let mut raw_con = raw(&server);
    let raw_send = rate(
        N,
        || del(&mut con, &key),
        |_| {
            redis::cmd("RPUSH")
                .arg(&key)
                .arg(&encoded)
                .exec(&mut raw_con)
                .unwrap()
        },
    );
    row("send_msg", send, raw_send, "raw RPUSH");

    let fill = |con: &mut Connection| {
        del(con, &key);
        let values: Vec<&[u8]> = (0..N).map(|_| encoded.as_slice()).collect();
        for chunk in values.chunks(1000) {
            let _: () = redis::cmd("RPUSH").arg(&key).arg(chunk).query(con).unwrap();
        }
    };
    let recv = rate(
        N,
        || fill(&mut con),
        |_| {
            serving.recv_msg::<Msg>().unwrap().unwrap();
        },
    );
    let raw_recv = rate(
        N,
        || fill(&mut con),
        |_| {
            let v: Option<Vec<u8>> = redis::cmd("LPOP").arg(&key).query(&mut raw_con).unwrap();
            v.unwrap();
        },
    );
    row("recv_msg", recv, raw_recv, "raw LPOP");

    let brecv = rate(
        N,
        || fill(&mut con),
        |_| {
            serving
                .brecv_msg::<Msg>(Duration::from_secs(1))
                .unwrap()
                .unwrap();
        },
    );
    let raw_brecv = rate(
        N,
        || fill(&mut con),
        |_| {
            let v: Option<(Vec<u8>, Vec<u8>)> = redis::cmd("BLPOP")
                .arg(&key)
                .arg(1)
                .query(&mut raw_con)
                .unwrap();
            v.unwrap();
        },
    );
    row("brecv_msg", brecv, raw_brecv, "raw BLPOP");

    for batch in [100u64, 1000] {
        let batches = N / batch;
        let ours = rate(
            batches,
            || del(&mut con, &key),
            |i| {
                client
                    .send_msgs((0..batch).map(|j| msg(i * batch + j)))
                    .unwrap();
            },
        ) * batch as f64;
        let values: Vec<&[u8]> = (0..batch).map(|_| encoded.as_slice()).collect();
        let raw_batch = rate(
            batches,
            || del(&mut con, &key),
            |_| {
                redis::cmd("RPUSH")
                    .arg(&key)
                    .arg(&values)
                    .exec(&mut raw_con)
                    .unwrap();
            },
        ) * batch as f64;
        row(
            &format!("send_msgs({batch}) msgs/s"),
            ours,
            raw_batch,
            "raw RPUSH",
        );
    }
    del(&mut con, &key);

    // Latency: one thread sends, another waits in brecv_msg.
    let (ours_p50, ours_p99) = latency(|| {
        let sender = client.clone();
        let receiver = serving.clone();
        (
            Box::new(move |i| sender.send_msg(&i).unwrap()) as Box<dyn FnMut(u64) + Send>,
            Box::new(move || {
                receiver.brecv_msg::<u64>(Duration::ZERO).unwrap().unwrap();
            }) as Box<dyn FnMut() + Send>,
        )
    });
    let (raw_p50, raw_p99) = latency(|| {
        let mut tx = raw(&server);
        let mut rx = raw(&server);
        let key = key.clone();
        let key2 = key.clone();
        (
            Box::new(move |i: u64| redis::cmd("RPUSH").arg(&key).arg(i).exec(&mut tx).unwrap())
                as Box<dyn FnMut(u64) + Send>,
            Box::new(move || {
                let _: (String, u64) = redis::cmd("BLPOP")
                    .arg(&key2)
                    .arg(0)
                    .query(&mut rx)
                    .unwrap();
            }) as Box<dyn FnMut() + Send>,
        )
    });
    println!(
        "| send→brecv latency p50 / p99 (µs) | {ours_p50:.0} / {ours_p99:.0} | {raw_p50:.0} / {raw_p99:.0} (raw RPUSH→BLPOP) | {:>5.2} |",
        raw_p50 / ours_p50
    );

    println!("\nrecv_last_msg over a backlog (µs per call, best of {RUNS}):\n");
    println!("| backlog | recv_last_msg |");
    println!("|---|---|");
    for backlog in [10u64, 1_000, 100_000] {
        let best = (0..RUNS)
            .map(|_| {
                del(&mut con, &key);
                let values: Vec<&[u8]> = (0..backlog).map(|_| encoded.as_slice()).collect();
                for chunk in values.chunks(10_000) {
                    let _: () = redis::cmd("RPUSH")
                        .arg(&key)
                        .arg(chunk)
                        .query(&mut con)
                        .unwrap();
                }
                let start = Instant::now();
                serving.recv_last_msg::<Msg>().unwrap().unwrap();
                start.elapsed()
            })
            .min()
            .unwrap();
        println!("| {backlog} | {:.0} |", best.as_secs_f64() * 1e6);
    }

    println!("\nredis-benchmark on the same server (requests/s):\n");
    let single = redis_benchmark(server.port(), &["-c", "1"]);
    let pipelined = redis_benchmark(server.port(), &["-c", "1", "-P", "64"]);
    for (name, rps) in &single {
        println!("| {name} -c 1 | {rps:.0} |");
    }
    for (name, rps) in &pipelined {
        println!("| {name} -c 1 -P 64 | {rps:.0} |");
    }
    let rpush = |list: &[(String, f64)]| list.iter().find(|(n, _)| n == "RPUSH").map(|(_, r)| *r);
    if let (Some(c1), Some(p64)) = (rpush(&single), rpush(&pipelined)) {
        println!("\nsend_msg / redis-benchmark -c 1 RPUSH: {:.2}", send / c1);
        let batch_1000 = rate(
            N / 1000,
            || del(&mut con, &key),
            |i| {
                client
                    .send_msgs((0..1000).map(|j| msg(i * 1000 + j)))
                    .unwrap();
            },
        ) * 1000.0;
        println!(
            "send_msgs(1000) / redis-benchmark -P 64 RPUSH: {:.2}",
            batch_1000 / p64
        );
    }

    proxy::run();
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
        let start = Instant::now();
        sent_tx.send(start).unwrap();
        send(i);
        samples.push(done_rx.recv().unwrap());
    }
    receiver.join().unwrap();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}
