//! Wire compatibility with the Python `k3redisutil` 0.1.9, both ways, on a
//! private redis-server. Needs a Python with k3redisutil 0.1.9:
//! `scripts/setup` makes a private venv with it, which the test finds
//! (see `tests/python_support/`). Without it the test fails.

use crate::python_support;
use crate::support;

use python_support::SETUP;
use std::process::Command;

use redisutil::{Peer, RedisChannel, list_channels};
use serde_json::{Value, json};
use support::RedisServer;

/// Runs `script` in Python with `port` bound to the server's port, and
/// returns what it printed.
fn python(port: u16, script: &str) -> String {
    let program = format!("import json, k3redisutil\nport = {port}\n{script}\n");
    let interpreter = python_support::interpreter();
    let output = Command::new(&interpreter)
        .arg("-c")
        .arg(program)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {interpreter:?} ({err}): {SETUP}"));
    assert!(
        output.status.success(),
        "{interpreter:?} failed (is k3redisutil 0.1.9 installed? {SETUP}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn rust_and_python_peers_talk_both_ways() {
    let server = RedisServer::start();
    let store = server.store();
    let rust_client = RedisChannel::new(store.clone(), "/interop/job", Peer::Client).unwrap();
    rust_client
        .send_msg(&json!({"text": "中文 ünï", "n": [1, 2.5, null]}))
        .unwrap();
    rust_client.send_msgs(["a", "b"]).unwrap();

    let printed = python(
        server.port(),
        r#"
s = k3redisutil.RedisChannel(port, '/interop/job', 'server')
first = s.recv_msg()
last = s.recv_last_msg()
s.send_msg({'reply': first['text'], 'last': last, 'zero': 0})
s.send_msg(None)
print(json.dumps({'first': first, 'last': last, 'channels': [c.decode() for c in s.list_channel('/interop/')]}))
"#,
    );
    let seen: Value = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(
        seen["first"],
        json!({"text": "中文 ünï", "n": [1, 2.5, null]})
    );
    assert_eq!(seen["last"], "b");
    assert_eq!(seen["channels"], json!(["/interop/job"]));

    let reply: Value = rust_client.recv_msg().unwrap().unwrap();
    assert_eq!(reply, json!({"reply": "中文 ünï", "last": "b", "zero": 0}));
    assert_eq!(rust_client.recv_msg::<Value>().unwrap(), Some(Value::Null));
    assert_eq!(rust_client.recv_msg::<Value>().unwrap(), None);
}

#[test]
fn channels_made_by_either_side_are_listed_by_the_other() {
    let server = RedisServer::start();
    let store = server.store();
    RedisChannel::new(store.clone(), ["svc", "from-rust"], Peer::Server)
        .unwrap()
        .send_msg(&1)
        .unwrap();
    let printed = python(
        server.port(),
        r#"
k3redisutil.RedisChannel(port, ('svc', 'from-python'), 'client').send_msg([1, 'ü'])
print(json.dumps(sorted(c.decode() for c in k3redisutil.RedisChannel(port, '/x', 'client').list_channel('/svc/'))))
"#,
    );
    let python_sees: Vec<String> = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(python_sees, ["/svc/from-python", "/svc/from-rust"]);
    assert_eq!(
        list_channels(&store, "/svc/").unwrap(),
        ["/svc/from-python", "/svc/from-rust"]
    );
    let server_end = RedisChannel::new(store, "/svc/from-python", Peer::Server).unwrap();
    assert_eq!(
        server_end.recv_msg::<Value>().unwrap(),
        Some(json!([1, "ü"]))
    );
}

/// Python's integers have no bound: one beyond 64 bits is refused with its
/// bytes, never received as a float with other digits; the 64-bit extremes
/// arrive exactly, and what Rust cannot send (NaN) never reaches Python.
#[test]
fn python_integers_arrive_exactly_or_as_decode_errors() {
    let server = RedisServer::start();
    let store = server.store();
    python(
        server.port(),
        r#"
c = k3redisutil.RedisChannel(port, '/interop/big', 'client')
for n in [2**64, 2**64 + 1, 2**70, -2**63 - 1, {'id': 2**64}, 2**64 - 1, -2**63, 0.1]:
    c.send_msg(n)
"#,
    );
    let rust_server = RedisChannel::new(store, "/interop/big", Peer::Server).unwrap();
    for raw in [
        "18446744073709551616",
        "18446744073709551617",
        "1180591620717411303424",
        "-9223372036854775809",
        "{\"id\": 18446744073709551616}",
    ] {
        match rust_server.recv_msg::<Value>() {
            Err(redisutil::ChannelError::Decode(err)) => {
                assert_eq!(err.raw(), raw.as_bytes());
                // The bytes are Python's, and Python reads back its number.
                let printed = python(
                    server.port(),
                    &format!(
                        "print(json.loads({raw:?}) == json.loads('{}'))",
                        raw.replace('"', "\\\"")
                    ),
                );
                assert_eq!(printed.trim(), "True");
            }
            other => panic!("{raw}: expected a decode error, got {other:?}"),
        }
    }
    assert_eq!(rust_server.recv_msg::<u64>().unwrap(), Some(u64::MAX));
    assert_eq!(rust_server.recv_msg::<i64>().unwrap(), Some(i64::MIN));
    assert_eq!(rust_server.recv_msg::<f64>().unwrap(), Some(0.1));
    assert!(rust_server.send_msg(&f64::NAN).is_err());
    let printed = python(
        server.port(),
        "print(k3redisutil.RedisChannel(port, '/interop/big', 'client').recv_msg())",
    );
    assert_eq!(printed.trim(), "None", "nothing reached Python");

    // A 128-bit integer type holds what Python sent exactly, in a struct too.
    python(
        server.port(),
        r#"
c = k3redisutil.RedisChannel(port, '/interop/big128', 'client')
for n in [2**64, 2**70, -2**63 - 1, {'id': 2**64 + 1}]:
    c.send_msg(n)
"#,
    );
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Job {
        id: u128,
    }
    let rust_server = RedisChannel::new(server.store(), "/interop/big128", Peer::Server).unwrap();
    assert_eq!(rust_server.recv_msg::<u128>().unwrap(), Some(1 << 64));
    assert_eq!(rust_server.recv_msg::<u128>().unwrap(), Some(1 << 70));
    assert_eq!(
        rust_server.recv_msg::<i128>().unwrap(),
        Some(-(1 << 63) - 1)
    );
    assert_eq!(
        rust_server.recv_msg::<Job>().unwrap(),
        Some(Job { id: (1 << 64) + 1 })
    );
}

/// Messages the Python original sends are received with leases, and a
/// Python consumer with a plain receive works beside a Rust consumer with
/// leases on the same channel: each message reaches exactly one of them,
/// and Python's list_channel does not see the lease keys.
#[test]
fn python_senders_and_plain_receivers_work_beside_leased_receivers() {
    let server = RedisServer::start();
    let store = server.store();
    python(
        server.port(),
        r#"
c = k3redisutil.RedisChannel(port, '/interop/lease', 'client')
for i in range(10):
    c.send_msg({'n': i})
"#,
    );
    let worker = RedisChannel::new(store.clone(), "/interop/lease", Peer::Server).unwrap();
    let lease = std::time::Duration::from_secs(60);
    let leased: Vec<_> = worker
        .lease_msgs::<Value>(4, lease)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let printed = python(
        server.port(),
        r#"
s = k3redisutil.RedisChannel(port, '/interop/lease', 'server')
before = [c.decode() for c in s.list_channel('/')]
got = []
while True:
    m = s.recv_msg()
    if m is None:
        break
    got.append(m['n'])
print(json.dumps({'got': got, 'before': before, 'after': [c.decode() for c in s.list_channel('/')]}))
"#,
    );
    let seen: Value = serde_json::from_str(printed.trim()).unwrap();
    let rust: Vec<Value> = leased.iter().map(|d| d.msg()["n"].clone()).collect();
    assert_eq!(rust, [json!(0), json!(1), json!(2), json!(3)]);
    assert_eq!(seen["got"], json!([4, 5, 6, 7, 8, 9]), "the rest, once");
    assert_eq!(seen["before"], json!(["/interop/lease"]));
    assert_eq!(
        seen["after"],
        json!([]),
        "the lists are empty: the lease keys are no channel"
    );
    assert_eq!(worker.ack_all(&leased).unwrap(), 4);
    assert!(worker.lease_msg::<Value>(lease).unwrap().is_none());
}

/// A Python producer feeds a Rust worker: every message handled and acked
/// once, the channel empty afterwards.
#[test]
fn a_python_producer_feeds_a_rust_worker() {
    use redisutil::worker::{Job, Outcome, Worker, WorkerOptions};
    use std::sync::Mutex;
    use std::time::Duration;

    let server = RedisServer::start();
    python(
        server.port(),
        r#"
c = k3redisutil.RedisChannel(port, '/interop/worker', 'client')
for i in range(200):
    c.send_msg({'n': i, 'text': 'job %d' % i})
"#,
    );
    let channel = RedisChannel::new(server.store(), "/interop/worker", Peer::Server).unwrap();
    let options = WorkerOptions {
        concurrency: 3,
        prefetch: 8,
        poll: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(channel.clone(), options).unwrap();
    let shutdown = worker.shutdown_handle();
    let seen = Mutex::new(Vec::new());
    let stats = worker
        .run(|job: &Job<'_, Value>| {
            let mut seen = seen.lock().unwrap();
            let n = job.msg()["n"].as_u64().unwrap();
            assert_eq!(job.msg()["text"], format!("job {n}"));
            seen.push(n);
            if seen.len() == 200 {
                shutdown.shutdown();
            }
            Outcome::Done
        })
        .unwrap();
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<u64>>());
    assert_eq!((stats.processed, stats.retried), (200, 0));
    let left = channel.lease_stats().unwrap();
    assert_eq!((left.depth, left.in_flight, left.retrying), (0, 0, 0));
}
