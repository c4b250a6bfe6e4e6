//! Crash test of leased receive: consumer processes (hand-written loops,
//! and `Worker`s with prefetched messages, extended leases, handlers that
//! sometimes fail and sometimes outlast their lease) are SIGKILLed at
//! random points between receive and ack while a producer sends 100,000
//! numbered messages, once across a Redis restart (SIGKILL, then recovery
//! from an AOF written with `appendfsync always`) and once without; a
//! third run puts a proxy between the consumers and Redis that drops the
//! reply to one in 100 lease and ack scripts after Redis ran them. Every
//! number must end up processed (in the results list) or among the dead
//! letters; duplicates are expected (at-least-once), losses are not; and
//! every dead letter was delivered `MAX_DELIVERIES` times (a lease
//! answered again after a lost reply spends no delivery). A fourth, calm
//! run (Workers only, no kills, no failures, 20,000 messages) must have
//! no duplicates either.
//!
//! A `harness = false` test: `main` runs the orchestration, or, started as
//! `lease_crash --consumer <port> <seed> [calm]`, one consumer. Arguments cargo
//! passes (filters, `--nocapture`, `--test-threads`) are ignored, but for
//! `--list`, which lists the one test and runs nothing. The four runs take
//! about 75 s in the debug profile on two cores: sending is paced to 20 s
//! for each of the first three (see [`PACE`]).
//!
//! `LEASE_CRASH_SEED=<n>` fixes the seed of the random choices (timing
//! still differs from run to run).

mod support;

use std::collections::HashSet;
use std::error::Error;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redisutil::{ChannelOptions, Delivery, ListStore, Peer, RedisChannel, RedisStore};
use support::RedisServer;

/// The channel; the producer is its client end, consumers its server end.
const CHANNEL: &str = "/crash";
/// The list the producer's messages go to (the server end receives it).
const QUEUE: &str = "/crash/client";
/// Where consumers record each number they processed.
const DONE: &str = "crash:done";
/// How many numbered messages the producer sends.
const MESSAGES: u64 = 100_000;
/// How many one send carries.
const CHUNK: u64 = 500;
/// One send per this much time: 5,000 messages a second, about what the
/// consumers get through in the debug profile under the kills, so that
/// sending lasts as long as consuming and the kills and the restart fall
/// while both go on.
const PACE: Duration = Duration::from_millis(100);
/// How many consumers run at a time.
const CONSUMERS: usize = 4;
/// The lease each consumer takes.
const LEASE: Duration = Duration::from_millis(500);
/// How long one run may take before it fails.
const TIME_LIMIT: Duration = Duration::from_secs(300);
/// How long consumers are still killed after the last send.
const KILLING_AFTER_SENDS: Duration = Duration::from_secs(1);
/// Deliveries before a message whose lease runs out is a dead letter: low,
/// so that messages whose consumers were killed twice take that path.
const MAX_DELIVERIES: u32 = 2;
/// How long a consumer or the producer waits after an error.
const BACKOFF: Duration = Duration::from_millis(20);

/// The consumers' channel options.
fn options() -> ChannelOptions {
    ChannelOptions {
        max_deliveries: MAX_DELIVERIES,
        ..ChannelOptions::default()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--list") {
        println!("lease_crash: test");
        return;
    }
    if let Some(at) = args.iter().position(|arg| arg == "--consumer") {
        let port = args.get(at + 1).and_then(|port| port.parse().ok());
        let seed = args.get(at + 2).and_then(|seed| seed.parse().ok());
        let (Some(port), Some(seed)) = (port, seed) else {
            eprintln!("usage: lease_crash --consumer <port> <seed> [calm]");
            std::process::exit(2);
        };
        consume(
            port,
            seed,
            args.get(at + 3).is_some_and(|mode| mode == "calm"),
        );
    }
    let seed = std::env::var("LEASE_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64)
        });
    println!("lease_crash: seed {seed} (LEASE_CRASH_SEED={seed} to reuse it)");
    let start = Instant::now();
    let with_restart = run("with a Redis restart", true, false, seed);
    let without_restart = run(
        "without a Redis restart",
        false,
        false,
        seed.wrapping_add(1),
    );
    let lost_replies = run("with lost replies", false, true, seed.wrapping_add(2));
    let calm = run_calm(seed.wrapping_add(3));
    println!(
        "lease_crash: four runs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    for report in [&with_restart, &without_restart, &lost_replies, &calm] {
        assert_eq!(
            report.lost, 0,
            "run {}: {} messages lost (first: {:?})",
            report.label, report.lost, report.first_lost
        );
        assert!(
            report.dead_early.is_empty(),
            "run {}: dead letters delivered fewer than {MAX_DELIVERIES} times: {:?}",
            report.label,
            report.dead_early
        );
    }
    assert_eq!(
        calm.duplicates, 0,
        "run {}: duplicates without kills or failures",
        calm.label
    );
    println!("test lease_crash ... ok");
}

/// A small xorshift64* generator: enough to pick sizes and delays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Spread the seed (splitmix64), and never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

// ---------------------------------------------------------------------------
// The consumer process.

/// Leases, records and acks messages forever; exits when its parent closes
/// its stdin (which happens however the parent ends), so that no consumer
/// outlives the test.
fn consume(port: u16, seed: u64, calm: bool) -> ! {
    thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let mut rng = Rng::new(seed);
    let addr = format!("127.0.0.1:{port}");
    let store = loop {
        match RedisStore::open(addr.as_str()) {
            Ok(store) => break store,
            Err(_) => thread::sleep(BACKOFF),
        }
    };
    let chan = RedisChannel::with_options(store.clone(), CHANNEL, Peer::Server, options())
        .expect("the channel");
    if calm || rng.range(0, 1) == 0 {
        work(&store, chan, rng, calm);
    }
    loop {
        if consume_batch(&store, &chan, &mut rng).is_err() {
            thread::sleep(BACKOFF);
        }
    }
}

/// Half the consumers are a `Worker` (three threads, up to eight
/// prefetched, its leases extended while handlers run) whose handler
/// records the number, now and then after a pause, so that kills fall
/// while handlers run and messages wait prefetched.
fn work(store: &RedisStore, chan: RedisChannel<RedisStore>, rng: Rng, calm: bool) -> ! {
    use redisutil::worker::{Backoff, Job, Outcome, Worker, WorkerOptions};
    let options = WorkerOptions {
        concurrency: 3,
        prefetch: 8,
        // Calm: long enough that no lease runs out on a busy machine.
        lease: if calm { Duration::from_secs(10) } else { LEASE },
        poll: Duration::from_millis(50),
        backoff: Backoff {
            first: Duration::from_millis(100),
            ..Backoff::default()
        },
        ..WorkerOptions::default()
    };
    let worker = Worker::new(chan, options).expect("the worker");
    let rng = std::sync::Mutex::new(rng);
    let _ = worker.run(|job: &Job<'_, u64>| {
        let dice = rng.lock().unwrap().range(0, 999);
        match dice {
            _ if calm => {}
            // One in 100 fails (delivered again after the backoff, a dead
            // letter after its last delivery).
            0..10 => return Outcome::Retry,
            // One in 200 takes longer than a third of its lease, one in
            // 1,000 longer than its lease: kept by extensions.
            10..15 => thread::sleep(Duration::from_millis(200)),
            15 => thread::sleep(LEASE + Duration::from_millis(200)),
            _ => {}
        }
        let number = job.msg().to_string();
        match store.push(DONE, &[number.as_bytes()], None) {
            Ok(_) => Outcome::Done,
            Err(_) => Outcome::Retry,
        }
    });
    unreachable!("the worker runs until the process is killed")
}

/// One batch: lease (one message, a batch, or a batch with a wait), record
/// each number, ack (one by one, or all at once at the end).
fn consume_batch(
    store: &RedisStore,
    chan: &RedisChannel<RedisStore>,
    rng: &mut Rng,
) -> Result<(), Box<dyn Error>> {
    let max = rng.range(1, 50) as usize;
    let (leased, blocking) = match rng.range(0, 3) {
        0 => (
            chan.lease_msg::<u64>(LEASE)?.into_iter().map(Ok).collect(),
            false,
        ),
        1 => (
            chan.blease_msgs::<u64>(max, LEASE, Duration::from_millis(50))?,
            true,
        ),
        _ => (chan.lease_msgs::<u64>(max, LEASE)?, false),
    };
    let mut batch: Vec<Delivery<u64>> = Vec::with_capacity(leased.len());
    for delivery in leased {
        match delivery {
            Ok(delivery) => batch.push(delivery),
            // It is a dead letter now; the check will find it there.
            Err(err) => eprintln!("lease_crash consumer: a message did not decode: {err}"),
        }
    }
    if batch.is_empty() {
        if !blocking {
            thread::sleep(Duration::from_millis(5));
        }
        return Ok(());
    }
    let one_by_one = rng.range(0, 1) == 0;
    for delivery in &batch {
        let number = delivery.msg().to_string();
        store.push(DONE, &[number.as_bytes()], None)?;
        if one_by_one {
            chan.ack(delivery)?;
        }
    }
    if !one_by_one {
        chan.ack_all(&batch)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The orchestration.

/// The consumer processes of a run; every one is killed and reaped on drop.
struct Consumers {
    port: u16,
    children: Vec<Child>,
    rng: Rng,
    kills: u64,
    calm: bool,
}

impl Consumers {
    fn start(port: u16, seed: u64, calm: bool) -> Self {
        let mut consumers = Self {
            port,
            children: Vec::new(),
            rng: Rng::new(seed),
            kills: 0,
            calm,
        };
        for _ in 0..CONSUMERS {
            consumers.spawn();
        }
        consumers
    }

    fn spawn(&mut self) {
        let exe = std::env::current_exe().expect("the test binary's path");
        let child = Command::new(exe)
            .arg("--consumer")
            .arg(self.port.to_string())
            .arg(self.rng.next().to_string())
            .args(self.calm.then_some("calm"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a consumer");
        self.children.push(child);
    }

    /// SIGKILLs a random consumer and starts another in its place.
    fn kill_one(&mut self) {
        let at = self.rng.range(0, self.children.len() as u64 - 1) as usize;
        let mut child = self.children.swap_remove(at);
        if let Ok(Some(status)) = child.try_wait() {
            panic!("a consumer ended by itself: {status}");
        }
        child.kill().expect("kill a consumer");
        let _ = child.wait();
        self.kills += 1;
        self.spawn();
    }

    /// Kills and reaps every consumer.
    fn stop(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Consumers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a run saw.
struct Report {
    label: &'static str,
    lost: u64,
    first_lost: Vec<u64>,
    /// Dead letters delivered fewer than `MAX_DELIVERIES` times: a
    /// delivery spent that no consumer received (a lease answered twice).
    dead_early: Vec<(String, u32)>,
    /// Numbers processed more than once.
    duplicates: u64,
}

/// Sends `0..messages` in chunks, retrying a chunk until its send returns
/// Ok; returns how many messages were in sends that returned Ok, and how
/// many sends failed (a send that failed may have been applied all the
/// same: a duplicate, never a loss).
fn produce(addr: String, progress: Arc<AtomicU64>, deadline: Instant, messages: u64) -> (u64, u64) {
    let store = RedisStore::open(addr.as_str()).expect("the producer's store");
    let chan = RedisChannel::new(store, CHANNEL, Peer::Client).expect("the channel");
    let start = Instant::now();
    let (mut sent, mut failed) = (0, 0);
    let mut next = 0;
    while next < messages {
        let due = start + PACE * (next / CHUNK) as u32;
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let end = (next + CHUNK).min(messages);
        match chan.send_msgs(next..end) {
            Ok(count) => {
                sent += count as u64;
                next = end;
                progress.store(next, Ordering::Release);
            }
            Err(err) => {
                failed += 1;
                assert!(
                    Instant::now() < deadline,
                    "the producer still fails after {TIME_LIMIT:?}: {err}"
                );
                thread::sleep(BACKOFF);
            }
        }
    }
    (sent, failed)
}

/// One run; with `lost_replies`, the consumers reach Redis through a proxy
/// that drops the reply to one in 100 of their scripts (leases, acks)
/// after Redis ran them.
fn run(label: &'static str, restart: bool, lost_replies: bool, seed: u64) -> Report {
    run_with(label, restart, lost_replies, false, seed)
}

/// A run without kills, failures or lost replies, of Workers only, over
/// 20,000 messages: no duplicates either.
fn run_calm(seed: u64) -> Report {
    run_with("calm, Workers only", false, false, true, seed)
}

fn run_with(
    label: &'static str,
    restart: bool,
    lost_replies: bool,
    calm: bool,
    seed: u64,
) -> Report {
    let messages = if calm { 20_000 } else { MESSAGES };
    let start = Instant::now();
    let deadline = start + TIME_LIMIT;
    let within = |what: &str| {
        assert!(
            Instant::now() < deadline,
            "run {label}: {what} took longer than {TIME_LIMIT:?}"
        );
    };
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut rng = Rng::new(seed);
    let proxy = lost_replies.then(|| {
        let proxy = support::fault_proxy::FaultProxy::start(server.port());
        proxy.drop_at_random(&["EVALSHA", "EVAL"], 100, seed);
        proxy
    });
    let consumer_port = proxy.as_ref().map_or(server.port(), |proxy| proxy.port);
    let mut consumers = Consumers::start(consumer_port, rng.next(), calm);
    let mut restarts = 0;

    // Send, killing a consumer every 30 to 200 ms; restart Redis halfway.
    let progress = Arc::new(AtomicU64::new(0));
    let producer = {
        let (addr, progress) = (server.addr(), progress.clone());
        thread::spawn(move || produce(addr, progress, deadline, messages))
    };
    while !producer.is_finished() {
        thread::sleep(Duration::from_millis(rng.range(30, 200)));
        if !calm {
            consumers.kill_one();
        }
        if restart && restarts == 0 && progress.load(Ordering::Acquire) >= messages / 2 {
            let at = start.elapsed().as_secs_f64();
            server.restart();
            restarts += 1;
            println!(
                "lease_crash {label}: Redis restarted at {at:.1} s, {} sent by then, up again \
                 after {:.2} s",
                progress.load(Ordering::Acquire),
                start.elapsed().as_secs_f64() - at
            );
        }
        within("sending");
    }
    let (sent, failed_sends) = producer.join().expect("the producer");
    let sent_secs = start.elapsed().as_secs_f64();

    // Go on killing a while, then let the consumers drain everything.
    let killing_until = Instant::now() + KILLING_AFTER_SENDS;
    while !calm && Instant::now() < killing_until {
        thread::sleep(Duration::from_millis(rng.range(30, 200)));
        consumers.kill_one();
    }
    let watcher = RedisChannel::with_options(server.store(), CHANNEL, Peer::Server, options())
        .expect("the channel");
    let mut raw = server.raw();
    let mut last_word = Instant::now();
    loop {
        // The list first: nothing refills it, so if it is empty and then
        // nothing is leased or waiting, every message is settled.
        let queued: u64 = redis::cmd("LLEN").arg(QUEUE).query(&mut raw).expect("LLEN");
        let state = watcher.lease_snapshot().expect("a lease snapshot");
        if queued == 0 && state.in_flight.is_empty() && state.retrying.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "run {label}: not drained within {TIME_LIMIT:?}: {queued} queued, {} in flight, {} \
             waiting to be delivered again",
            state.in_flight.len(),
            state.retrying.len()
        );
        if last_word.elapsed() >= Duration::from_secs(5) {
            last_word = Instant::now();
            println!(
                "lease_crash {label}: still draining at {:.0} s: {queued} queued, {} in flight, \
                 {} waiting to be delivered again",
                start.elapsed().as_secs_f64(),
                state.in_flight.len(),
                state.retrying.len()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    let drained_secs = start.elapsed().as_secs_f64();
    consumers.stop();
    let kills = consumers.kills;
    // Nothing pending: no batch's list of bodies is left behind either.
    let unit_lists: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{QUEUE}}}:unit:*"))
        .query(&mut raw)
        .expect("KEYS");
    assert!(
        unit_lists.is_empty(),
        "run {label}: {} lists of settled batches left, {:?}…",
        unit_lists.len(),
        unit_lists.first()
    );

    // Check: every number processed or dead.
    let done: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(DONE)
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .expect("LRANGE");
    let number = |bytes: &[u8], what: &str| -> u64 {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .filter(|&number| number < messages)
            .unwrap_or_else(|| panic!("run {label}: not a number sent: {bytes:?} ({what})"))
    };
    let processed: HashSet<u64> = done.iter().map(|bytes| number(bytes, DONE)).collect();
    let dead_letters = watcher.dead_letters(usize::MAX).expect("the dead letters");
    let dead: HashSet<u64> = dead_letters
        .iter()
        .map(|letter| number(&letter.body, "a dead letter"))
        .collect();
    let lost: Vec<u64> = (0..messages)
        .filter(|number| !processed.contains(number) && !dead.contains(number))
        .collect();
    let report = Report {
        label,
        lost: lost.len() as u64,
        first_lost: lost.iter().copied().take(20).collect(),
        dead_early: dead_letters
            .iter()
            .filter(|letter| letter.deliveries < MAX_DELIVERIES)
            .map(|letter| (letter.message_id.clone(), letter.deliveries))
            .collect(),
        duplicates: (done.len() - processed.len()) as u64,
    };
    if let Some(proxy) = &proxy {
        println!(
            "lease_crash {label}: {} replies dropped after Redis ran the command",
            proxy.dropped()
        );
    }
    println!(
        "lease_crash {label}: sent {sent} ({failed_sends} sends failed and were \
         retried; all sent by {sent_secs:.1} s, drained by {drained_secs:.1} s), kills {kills}, \
         processed {}, unique processed {}, duplicates {}, dead letters {}, lost {}, \
         redis restarts {restarts}, elapsed {:.1} s",
        done.len(),
        processed.len(),
        done.len() - processed.len(),
        dead_letters.len(),
        report.lost,
        start.elapsed().as_secs_f64()
    );
    report
}
