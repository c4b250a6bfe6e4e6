//! `-- instructions`: what a receive costs the server, counted in
//! instructions (`valgrind --tool=callgrind` on `redis-server`), which
//! repeat from run to run where times on this machine do not. Each
//! figure runs on a server of its own, counted only while the calls run
//! (not while the list is filled).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redisutil::{Delivery, Peer, RedisChannel, RedisStore, wait_serve};

use super::lease::Floors;
use super::support::free_port;
use super::{Msg, msg};

/// Calls counted for each figure.
const CALLS: usize = 1000;
const BATCH: usize = 100;

/// A `redis-server` under callgrind, its instrumentation off until asked.
struct Counted {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Counted {
    fn start(dir: &Path, name: &str) -> Self {
        let port = free_port();
        let out = dir.join(format!("{name}.callgrind"));
        let child = Command::new("valgrind")
            .args(["--tool=callgrind", "--instr-atstart=no"])
            .arg(format!("--callgrind-out-file={}", out.display()))
            .args(["redis-server", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("valgrind (apt-get install valgrind) and redis-server");
        wait_serve(port, Duration::from_secs(60)).expect("redis-server under valgrind");
        Self { child, port, out }
    }

    fn instrument(&self, on: bool) {
        let status = Command::new("callgrind_control")
            .args(["-i", if on { "on" } else { "off" }])
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("callgrind_control");
        assert!(status.success(), "callgrind_control -i");
    }

    /// Stops the server; the instructions it counted.
    fn finish(mut self, con: &mut redis::Connection) -> u64 {
        let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(con);
        self.child.wait().unwrap();
        let profile = std::fs::read_to_string(&self.out).unwrap();
        // `totals:` (the header's `summary:` stays 0 when instrumentation
        // starts off).
        let total = profile
            .lines()
            .find_map(|line| line.strip_prefix("totals: "))
            .expect("a callgrind total");
        total.trim().parse().unwrap()
    }
}

/// Instructions a call of `op` costs the server, over [`CALLS`] calls on
/// a list of `fill` messages.
fn count(
    dir: &Path,
    name: &str,
    fill: usize,
    op: &mut dyn FnMut(&RedisChannel<RedisStore>, &mut redis::Connection),
) -> u64 {
    let server = Counted::start(dir, name);
    let store = RedisStore::open(server.port).unwrap();
    let serving = RedisChannel::new(store, "/bench", Peer::Server).unwrap();
    let mut admin = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let encoded = serde_json::to_vec(&msg(1)).unwrap();
    let values: Vec<&[u8]> = (0..1000).map(|_| encoded.as_slice()).collect();
    for _ in 0..fill / 1000 {
        let _: () = redis::cmd("RPUSH")
            .arg(serving.recv_key())
            .arg(&values)
            .query(&mut admin)
            .unwrap();
    }
    server.instrument(true);
    for _ in 0..CALLS {
        op(&serving, &mut admin);
    }
    server.instrument(false);
    server.finish(&mut admin) / CALLS as u64
}

/// Acks the batch `held` and leases the next one (up to [`BATCH`]) into
/// it, in one call; how many it leased.
fn ack_and_lease(
    serving: &RedisChannel<RedisStore>,
    held: &mut Vec<Delivery<Msg>>,
    lease: Duration,
) -> usize {
    let (_, next) = serving
        .ack_and_lease_msgs::<_, Msg>(&*held, BATCH, lease)
        .unwrap();
    *held = next.into_iter().map(Result::unwrap).collect();
    held.len()
}

pub fn run() {
    let dir = std::env::temp_dir().join(format!("redisutil-callgrind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lease = Duration::from_secs(600);
    let plain = count(&dir, "plain", CALLS * BATCH, &mut |serving, _| {
        assert_eq!(serving.recv_msgs::<Msg>(BATCH).unwrap().len(), BATCH);
    });
    let mut held: Vec<Delivery<Msg>> = Vec::new();
    let looped = count(&dir, "loop", CALLS * BATCH, &mut |serving, _| {
        assert_eq!(ack_and_lease(serving, &mut held, lease), BATCH);
    });
    let two = count(&dir, "two", CALLS * BATCH, &mut |serving, _| {
        let batch: Vec<_> = serving
            .lease_msgs::<Msg>(BATCH, lease)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(serving.ack_all(&batch).unwrap(), BATCH as u64);
    });
    // The floors of a leased batch kept in Redis (`lease::Floors`): the
    // copy alone, and the copy with the least bookkeeping in one script.
    // (Each is made in its first counted call: its SCRIPT LOAD adds about
    // 0.1 % to the figure.)
    let mut floors = None;
    let copy = count(&dir, "copy", CALLS * BATCH, &mut |serving, raw| {
        let floors = floors.get_or_insert_with(|| Floors::new(serving, raw));
        assert_eq!(floors.copy(raw, BATCH).len(), BATCH);
    });
    let mut floors = None;
    let scripted = count(&dir, "least", CALLS * BATCH, &mut |serving, raw| {
        let floors = floors.get_or_insert_with(|| Floors::new(serving, raw));
        assert_eq!(floors.least(raw, BATCH).len(), BATCH);
    });
    let one = count(&dir, "one", CALLS * BATCH, &mut |serving, _| {
        assert!(serving.recv_msg::<Msg>().unwrap().is_some());
    });
    let mut held: Option<Delivery<Msg>> = None;
    let single = count(&dir, "single", CALLS * BATCH, &mut |serving, _| {
        let next = match held.take() {
            Some(done) => serving.ack_and_lease_msg::<_, Msg>(&done, lease).unwrap().1,
            None => serving.lease_msg::<Msg>(lease).unwrap(),
        };
        held = Some(next.unwrap());
    });
    // Keeping up: each call finds what was sent just before it, one
    // message (a trickle) or half a batch (the whole list), the send
    // counted in both.
    let sender = |serving: &RedisChannel<RedisStore>| {
        RedisChannel::new(serving.store().clone(), "/bench", Peer::Client).unwrap()
    };
    let mut kept_up = Vec::new();
    for found in [1, BATCH / 2] {
        let sent: Vec<Msg> = (0..found as u64).map(msg).collect();
        let mut client = None;
        let plain = count(&dir, &format!("plain-{found}"), 0, &mut |serving, _| {
            let client = client.get_or_insert_with(|| sender(serving));
            client.send_msgs(&sent).unwrap();
            assert_eq!(serving.recv_msgs::<Msg>(BATCH).unwrap().len(), found);
        });
        let mut client = None;
        let mut held: Vec<Delivery<Msg>> = Vec::new();
        let leased = count(&dir, &format!("loop-{found}"), 0, &mut |serving, _| {
            let client = client.get_or_insert_with(|| sender(serving));
            client.send_msgs(&sent).unwrap();
            assert_eq!(ack_and_lease(serving, &mut held, lease), found);
        });
        kept_up.push((found, plain, leased));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("## Server instructions per call (callgrind on redis-server, {CALLS} calls)\n");
    println!("| call | instructions | ratio to recv_msgs({BATCH}) |");
    println!("|---|---|---|");
    for (name, figure) in [
        (format!("recv_msgs({BATCH})"), plain),
        (format!("ack_and_lease_msgs({BATCH})"), looped),
        (format!("lease_msgs({BATCH}) + ack_all"), two),
        (
            format!(
                "the copy alone: MULTI, SORT … LIMIT 0 {BATCH} STORE, LTRIM, LRANGE, UNLINK, EXEC"
            ),
            copy,
        ),
        (
            "the copy and the least bookkeeping, in one script (`bench -- lease`)".to_owned(),
            scripted,
        ),
    ] {
        println!(
            "| {name} | {figure} | {:.2} |",
            figure as f64 / plain as f64
        );
    }
    println!(
        "\n| call, each finding the messages sent just before it | instructions | ratio to the \
         plain one |"
    );
    println!("|---|---|---|");
    for (found, plain, leased) in kept_up {
        let send = format!("send_msgs({found})");
        println!("| {send} + recv_msgs({BATCH}) | {plain} | 1.00 |");
        println!(
            "| {send} + ack_and_lease_msgs({BATCH}) | {leased} | {:.2} |",
            leased as f64 / plain as f64
        );
    }
    println!("\n| call | instructions | ratio to recv_msg |");
    println!("|---|---|---|");
    println!("| recv_msg | {one} | 1.00 |");
    println!(
        "| ack_and_lease_msg | {single} | {:.2} |",
        single as f64 / one as f64
    );
}
