//! Redis memory per message in each state of a leased channel, beside a
//! plain list's, read from `INFO memory` (`used_memory`) over 100,000
//! messages of about 100 bytes.
//!
//! ```text
//! cargo run --release --example bench -- memory
//! ```

use std::time::Duration;

use redis::Connection;
use redisutil::{Peer, RedisChannel};

use super::support::RedisServer;

const COUNT: usize = 100_000;
const BATCH: usize = 1000;

/// `used_memory` of the server now.
fn used(admin: &mut Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(admin).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

/// A message of about 100 bytes as JSON.
fn body(n: usize) -> String {
    format!("{n:08}-{}", "x".repeat(88))
}

/// `bench -- memory`.
pub fn run() {
    let server = RedisServer::start();
    let mut admin = server.raw();
    let client = RedisChannel::new(server.store(), "/mem", Peer::Client).unwrap();
    let worker = RedisChannel::new(server.store(), "/mem", Peer::Server).unwrap();
    let per = |delta: i64| delta as f64 / COUNT as f64;
    let empty = used(&mut admin);
    let msgs: Vec<String> = (0..COUNT).map(body).collect();
    for chunk in msgs.chunks(BATCH) {
        client.send_msgs(chunk).unwrap();
    }
    let waiting = used(&mut admin);
    let mut held = Vec::with_capacity(COUNT);
    while held.len() < COUNT {
        let batch = worker
            .lease_msgs::<String>(BATCH, Duration::from_secs(3600))
            .unwrap();
        held.extend(batch.into_iter().map(Result::unwrap));
    }
    let in_flight = used(&mut admin);
    let mut single = Vec::with_capacity(COUNT);
    worker.ack_all(&held).unwrap();
    let settled = used(&mut admin);
    for chunk in msgs.chunks(BATCH) {
        client.send_msgs(chunk).unwrap();
    }
    while single.len() < COUNT {
        match worker
            .lease_msg::<String>(Duration::from_secs(3600))
            .unwrap()
        {
            Some(delivery) => single.push(delivery),
            None => break,
        }
    }
    let in_flight_single = used(&mut admin);
    for delivery in &single {
        worker.nack(delivery, Duration::from_secs(3600)).unwrap();
    }
    let retrying = used(&mut admin);
    // The least a message leased on its own can add to its body: an
    // entry in a sorted set by deadline (its member as long as a unit's
    // id), whatever else a layout keeps.
    let _: () = redis::cmd("FLUSHALL").query(&mut admin).unwrap();
    let flushed = used(&mut admin);
    for first in (0..COUNT).step_by(BATCH) {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg("deadlines");
        for n in first..first + BATCH {
            zadd.arg(1_800_000_000_000u64 + n as u64)
                .arg(format!("{n:016}"));
        }
        let _: () = zadd.query(&mut admin).unwrap();
    }
    let deadline_entry = used(&mut admin) - flushed;
    println!(
        "## Redis memory per message ({COUNT} messages of {} bytes)\n",
        msgs[0].len() + 2
    );
    println!(
        "`used_memory` of `INFO memory` before and after each step, divided by the messages.\n"
    );
    println!("| state | bytes per message | ratio to waiting in a plain list |");
    println!("|---|---|---|");
    let base = per(waiting - empty);
    for (state, bytes) in [
        (
            "waiting (the plain list, as the Python original sees it)",
            base,
        ),
        (
            "in flight, leased by batches of 1,000",
            per(in_flight - settled),
        ),
        (
            "in flight, leased one at a time",
            per(in_flight_single - settled),
        ),
        (
            "waiting for a retry (nacked one at a time)",
            per(retrying - settled),
        ),
        (
            "a sorted-set entry alone (a 16-character member, as a unit's id): the index of \
             deadlines one lease at a time needs, beside its body",
            per(deadline_entry),
        ),
    ] {
        println!("| {state} | {bytes:.0} | {:.2} |", bytes / base);
    }
    println!(
        "\n(After every message was acked the server held {} bytes more than when empty.)",
        settled - empty
    );
}
