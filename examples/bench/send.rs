//! `send_msgs` by batches beside one raw RPUSH of the same messages:
//! encoded already, encoded in the baseline's loop, and, for messages
//! that are JSON already (`RawValue`), the same bytes.
//!
//! ```text
//! cargo run --release --example bench -- send
//! ```

use redisutil::{Peer, RedisChannel, RedisStore};
use serde_json::value::{RawValue, to_raw_value};

use super::support::RedisServer;
use super::{Msg, compare, msg, raw, row};

/// Messages sent in each timed run (by batches of 100 or 1,000).
const MSGS: u64 = 100_000;

/// `bench -- send`: these rows alone.
pub fn run() {
    let server = RedisServer::start();
    let client = RedisChannel::new(server.store(), "/bench", Peer::Client).unwrap();
    println!("| operation | redisutil | baseline | baseline is | ratio |");
    println!("|---|---|---|---|---|");
    batches(&server, &client);
}

/// The rows; `send_msgs(1000)`'s messages a second. The messages are
/// built before the clock starts, so each side's time is its encoding (or
/// none) and the push.
pub fn batches(server: &RedisServer, client: &RedisChannel<RedisStore>) -> f64 {
    let (mut admin, mut con) = (raw(server), raw(server));
    let key = client.send_key().to_owned();
    let mut empty = || {
        let _: () = redis::cmd("DEL").arg(&key).query(&mut admin).unwrap();
    };
    let msgs: Vec<Msg> = (0..1000).map(msg).collect();
    let encoded: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| serde_json::to_vec(m).unwrap())
        .collect();
    let mut push = |values: &[&[u8]]| {
        redis::cmd("RPUSH")
            .arg(&key)
            .arg(values)
            .exec(&mut con)
            .unwrap()
    };
    let mut batch_1000 = 0.0;
    for batch in [100, 1000] {
        let values: Vec<&[u8]> = encoded[..batch].iter().map(Vec::as_slice).collect();
        let (ours, baseline) = compare(
            MSGS / batch as u64,
            &mut empty,
            &mut |_| {
                client.send_msgs(&msgs[..batch]).unwrap();
            },
            &mut |_| push(&values),
        );
        let rates = (ours * batch as f64, baseline * batch as f64);
        row(
            &format!("send_msgs({batch}), msgs/s"),
            rates,
            "raw RPUSH of the same messages, encoded already",
        );
        batch_1000 = rates.0;
    }
    // The baseline encoding the same messages in its loop, as a caller of
    // raw RPUSH must: what is left is the crate's own cost.
    let (ours, baseline) = compare(
        MSGS / 1000,
        &mut empty,
        &mut |_| {
            client.send_msgs(&msgs).unwrap();
        },
        &mut |_| {
            let values: Vec<Vec<u8>> = msgs
                .iter()
                .map(|m| serde_json::to_vec(m).unwrap())
                .collect();
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            push(&values)
        },
    );
    row(
        "send_msgs(1000), msgs/s",
        (ours * 1000.0, baseline * 1000.0),
        "raw RPUSH, encoding the same messages",
    );
    // Messages encoded already (`RawValue`): both sides send the same
    // bytes, and neither encodes.
    let raws: Vec<Box<RawValue>> = msgs.iter().map(|m| to_raw_value(m).unwrap()).collect();
    let values: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    let (ours, baseline) = compare(
        MSGS / 1000,
        &mut empty,
        &mut |_| {
            client.send_msgs(&raws).unwrap();
        },
        &mut |_| push(&values),
    );
    row(
        "send_msgs(1000) of `RawValue`s, msgs/s",
        (ours * 1000.0, baseline * 1000.0),
        "raw RPUSH of the same bytes",
    );
    empty();
    batch_1000
}
