//! End to end through one Redis: a producer process sending batches and a
//! consumer process receiving them, measured from the first send to the
//! last receive, beside Redis's own CPU time per message (`INFO
//! commandstats`): the physical limit of the path.
//!
//! ```text
//! cargo run --release --example bench -- e2e            # both paths, 3 runs each
//! cargo run --release --example bench -- e2e 1000000    # messages per run
//! ```
//!
//! The parent starts a private redis-server and runs this program again as
//! the producer (`e2e-producer`) and the consumer (`e2e-consumer`); each
//! prints the wall-clock time of its first send or last receive.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redisutil::{Peer, RedisChannel, RedisStore};

use super::support::RedisServer;
use super::{Msg, msg};

/// Messages per batch, on both sides.
const BATCH: usize = 1000;
const RUNS: usize = 3;

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// `bench -- e2e [messages]`: both paths, [`RUNS`] runs each.
pub fn run(args: &[String]) {
    let count: u64 = args
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    println!("## End to end: one producer process, one consumer process, one Redis\n");
    println!(
        "{count} messages of {} bytes, batches of {BATCH}; msgs/s from the first send to the \
         last receive; Redis µs/msg is `INFO commandstats` time over the run divided by the \
         messages (the server's own cost: 1 / it is the most one Redis core could do).\n",
        serde_json::to_vec(&msg(0)).unwrap().len()
    );
    println!("| path | run | msgs/s | Redis µs/msg | Redis-bound limit, msgs/s |");
    println!("|---|---|---|---|---|");
    for mode in ["plain", "leased"] {
        for run in 1..=RUNS {
            let server = RedisServer::start();
            let mut admin = server.raw();
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query(&mut admin)
                .unwrap();
            let name = format!("/e2e/{mode}/{run}");
            let spawn = |role: &str| {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        role,
                        &server.port().to_string(),
                        &name,
                        &count.to_string(),
                        mode,
                    ])
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            };
            let consumer = spawn("e2e-consumer");
            let producer = spawn("e2e-producer");
            let time = |child: std::process::Child| -> u128 {
                let output = child.wait_with_output().unwrap();
                assert!(output.status.success(), "a side failed");
                String::from_utf8(output.stdout)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            };
            let first_send = time(producer);
            let last_receive = time(consumer);
            let seconds = (last_receive - first_send) as f64 / 1e6;
            // The commands the two sides send: a script's own calls are
            // counted in its time and again under their names.
            let sent: &[&str] = match mode {
                "plain" => &["rpush", "blmpop", "lpop", "blpop"],
                _ => &["rpush", "evalsha", "eval", "blmove"],
            };
            let usec = redis_usec(&mut admin, sent);
            println!(
                "| {mode} | {run} | {:.0} | {:.3} | {:.0} |",
                count as f64 / seconds,
                usec / count as f64,
                count as f64 / usec * 1e6
            );
        }
    }
}

/// Redis's CPU time in µs over the commands `sent` since the last reset.
fn redis_usec(admin: &mut redis::Connection, sent: &[&str]) -> f64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(admin).unwrap();
    info.lines()
        .filter(|line| {
            let name = line
                .strip_prefix("cmdstat_")
                .and_then(|rest| rest.split(':').next());
            name.is_some_and(|name| sent.contains(&name))
        })
        .filter_map(|line| {
            let usec = line.split("usec=").nth(1)?.split(',').next()?;
            usec.parse::<f64>().ok()
        })
        .sum()
}

/// Threads on each side: while one waits for Redis, the other encodes or
/// decodes.
const THREADS: u64 = 2;

/// The producer: sends `count` messages in batches; prints when it began.
pub fn producer(args: &[String]) {
    let (port, name, count) = (&args[0], &args[1], args[2].parse::<u64>().unwrap());
    let store = RedisStore::open(port.parse::<u16>().unwrap()).unwrap();
    let client = RedisChannel::new(store, name.as_str(), Peer::Client).unwrap();
    let start = now_micros();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let client = &client;
            scope.spawn(move || {
                let (first, end) = (count * thread / THREADS, count * (thread + 1) / THREADS);
                let mut sent = first;
                while sent < end {
                    let batch = (end - sent).min(BATCH as u64);
                    client.send_msgs((sent..sent + batch).map(msg)).unwrap();
                    sent += batch;
                }
            });
        }
    });
    println!("{start}");
}

/// The consumer: receives `count` messages (plain, or leased and acked
/// with the next lease); prints when the last arrived.
pub fn consumer(args: &[String]) {
    let (port, name, count, mode) = (
        &args[0],
        &args[1],
        args[2].parse::<u64>().unwrap(),
        args[3].as_str(),
    );
    let store = RedisStore::open(port.parse::<u16>().unwrap()).unwrap();
    let server = RedisChannel::new(store, name.as_str(), Peer::Server).unwrap();
    let wait = Duration::from_secs(30);
    match mode {
        "plain" => {
            let total = std::sync::atomic::AtomicU64::new(0);
            let last = std::sync::Mutex::new(0);
            std::thread::scope(|scope| {
                for _ in 0..THREADS {
                    scope.spawn(|| {
                        use std::sync::atomic::Ordering::SeqCst;
                        while total.load(SeqCst) < count {
                            let batch = server
                                .brecv_msgs::<Msg>(BATCH, Duration::from_millis(20))
                                .unwrap();
                            let before = total.fetch_add(batch.len() as u64, SeqCst);
                            if before < count && before + batch.len() as u64 >= count {
                                *last.lock().unwrap() = now_micros();
                            }
                        }
                    });
                }
            });
            assert_eq!(total.into_inner(), count);
            println!("{}", last.into_inner().unwrap());
        }
        _ => {
            let lease = Duration::from_secs(60);
            let mut received = 0u64;
            let mut held = server.blease_msgs::<Msg>(BATCH, lease, wait).unwrap();
            while !held.is_empty() {
                received += held.len() as u64;
                if received >= count {
                    let done: Vec<_> = held.iter().filter_map(|d| d.as_ref().ok()).collect();
                    server.ack_all(done).unwrap();
                    break;
                }
                let done: Vec<_> = held.iter().filter_map(|d| d.as_ref().ok()).collect();
                let (acked, next) = server.ack_and_lease_msgs(done, BATCH, lease).unwrap();
                assert_eq!(acked as usize, held.len());
                held = match next.is_empty() {
                    true => server.blease_msgs::<Msg>(BATCH, lease, wait).unwrap(),
                    false => next,
                };
            }
            assert_eq!(received, count);
            println!("{}", now_micros());
        }
    }
}
