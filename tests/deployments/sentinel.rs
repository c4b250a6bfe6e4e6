//! `RedisSentinelStore` on private sentinels: the conformance suites, a
//! failover under a producer and a consumer (nothing acknowledged lost),
//! sentinels with a password, an unknown service, and sentinels that lie,
//! are dead or are silent.

use crate::resp_support;
use crate::support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::{
    ListStore, Peer, RedisAuth, RedisChannel, RedisSentinelStore, RedisSentinelStoreOptions,
    StoreError,
};
use support::{SERVICE, SentinelBackend, SentinelSet, SentinelSetup, over, within_three_tries};

fn backend() -> SentinelBackend {
    let set = SentinelSet::start(SentinelSetup {
        sentinels: 1,
        ..SentinelSetup::default()
    });
    let store = set.store_with(RedisSentinelStoreOptions::default());
    SentinelBackend { set, store }
}

#[test]
fn conformance_suite_passes() {
    let backend = backend();
    redisutil::conformance::run_all(&backend);
    // The process-wide store for these sentinels and service works too,
    // and is one handle.
    let shared = redisutil::get_sentinel_client(backend.set.sentinel_addrs(), SERVICE).unwrap();
    shared.push("/shared/client", &[b"1"], None).unwrap();
    assert_eq!(shared.pop("/shared/client").unwrap(), Some(b"1".to_vec()));
    let again = redisutil::get_sentinel_client(backend.set.sentinel_addrs(), SERVICE).unwrap();
    assert!(shared.ptr_eq(&again));
    // The same deployment named by one redis-sentinel:// address.
    let url = format!(
        "redis-sentinel://{}#{SERVICE}",
        backend.set.sentinel_addrs().join(",")
    );
    let by_url = RedisSentinelStore::open_url(&url, RedisSentinelStoreOptions::default()).unwrap();
    assert_eq!(by_url.pop("/shared/client").unwrap(), None);
    by_url.ping().unwrap();
}

#[test]
fn lease_conformance_suite_passes() {
    redisutil::conformance::run_all_leases(&backend());
}

/// Makes the master refuse writes while it has no replica
/// (`min-replicas-to-write 1`).
fn refuse_writes_without_a_replica(set: &SentinelSet) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg("1")
        .exec(&mut set.master.raw())
        .unwrap();
}

/// What `ROLE` says the server on `port` is: `master` or `slave`. Asked
/// again when the connection is reset: a failover closes the clients of
/// the servers whose role it changes.
fn role(port: u16) -> String {
    let ask = || -> redis::RedisResult<Vec<redis::Value>> {
        let mut raw =
            redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
        redis::cmd("ROLE").query(&mut raw)
    };
    let mut tries = 0;
    let reply = loop {
        match ask() {
            Ok(reply) => break reply,
            Err(err) if tries < 20 && (err.is_io_error() || err.is_connection_dropped()) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(err) => panic!("ROLE on port {port}: {err}"),
        }
    };
    redis::from_redis_value(reply[0].clone()).expect("a role name")
}

/// Runs `SENTINEL FAILOVER` on the first sentinel, retried while it has no
/// replica it can promote yet, then waits until it names another master.
///
/// Replication is asynchronous: a send the old master acknowledged but had
/// not passed on when the replica was promoted is lost, whatever the
/// client does. So the sends pause (`sends` held) from the moment the
/// replica has everything (`WAIT`) until it is master; before and after,
/// they go on, and those the old master takes after the promotion are the
/// store's to get right.
fn fail_over(set: &SentinelSet, sends: &Mutex<()>) -> (u16, u16) {
    let old = set.master_port(0);
    let paused = sends.lock().unwrap();
    let replicated: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut set.master.raw())
        .unwrap();
    assert_eq!(replicated, 1, "the replica did not catch up within 5 s");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(SERVICE)
            .exec(&mut set.raw_sentinel(0));
        match answer {
            Ok(()) => break,
            Err(err) if Instant::now() < deadline => {
                eprintln!("SENTINEL FAILOVER: {err}; again");
                thread::sleep(Duration::from_millis(200));
            }
            Err(err) => panic!("SENTINEL FAILOVER refused for 10 s: {err}"),
        }
    }
    let replica = set.replicas[0].port();
    let deadline = Instant::now() + Duration::from_secs(30);
    while role(replica) != "master" {
        assert!(
            Instant::now() < deadline,
            "the replica on {replica} is not master 30 s after SENTINEL FAILOVER"
        );
        thread::sleep(Duration::from_millis(20));
    }
    drop(paused);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = set.master_port(0);
        if now != old {
            return (old, now);
        }
        assert!(
            Instant::now() < deadline,
            "the sentinels still name the master on {old} 30 s after SENTINEL FAILOVER"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failover_loses_no_acknowledged_message_and_needs_no_new_store() {
    let started = Instant::now();
    let set = SentinelSet::start(SentinelSetup {
        replicas: 1,
        sentinels: 3,
        ..SentinelSetup::default()
    });
    // A master left without its replica refuses writes: without this, the
    // old master takes writes for seconds after the replica's promotion,
    // and they are lost when it becomes a replica in turn.
    refuse_writes_without_a_replica(&set);
    let store = set.store_with(RedisSentinelStoreOptions {
        response_timeout: Some(Duration::from_secs(2)),
        ..RedisSentinelStoreOptions::default()
    });
    let client = RedisChannel::new(store.clone(), "/failover", Peer::Client).unwrap();
    let server = RedisChannel::new(store.clone(), "/failover", Peer::Server).unwrap();

    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let received = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop_sending = Arc::new(AtomicBool::new(false));
    let stop_receiving = Arc::new(AtomicBool::new(false));
    let hold_receiving = Arc::new(AtomicBool::new(false));
    let sends = Arc::new(Mutex::new(()));
    let producer = {
        let (acked, stop, gate) = (acked.clone(), stop_sending.clone(), sends.clone());
        thread::spawn(move || {
            let mut errors = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let sending = gate.lock().unwrap();
                let sent = client.send_msg(&n);
                drop(sending);
                match sent {
                    Ok(()) => acked.lock().unwrap().push(n),
                    Err(err) => {
                        errors.push(err.to_string());
                        thread::sleep(Duration::from_millis(20));
                    }
                }
                n += 1;
                thread::sleep(Duration::from_micros(500));
            }
            (client, errors)
        })
    };
    let consumer = {
        let (received, stop) = (received.clone(), stop_receiving.clone());
        let hold = hold_receiving.clone();
        thread::spawn(move || {
            let mut errors = Vec::new();
            loop {
                if hold.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
                // Batches, so that the backlog of the failover drains fast.
                match server.brecv_msgs::<u64>(200, Duration::from_millis(100)) {
                    Ok(batch) if batch.is_empty() && stop.load(Ordering::Relaxed) => break,
                    Ok(batch) => received
                        .lock()
                        .unwrap()
                        .extend(batch.into_iter().map(|message| message.unwrap())),
                    Err(err) => {
                        errors.push(err.to_string());
                        thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            (server, errors)
        })
    };

    thread::sleep(Duration::from_millis(500));
    // What is sent during the failover stays in Redis until the old master
    // is a replica: so a send acknowledged by a master that then loses it
    // is seen missing, not received from the old master in time.
    hold_receiving.store(true, Ordering::Relaxed);
    let (old, new) = fail_over(&set, &sends);
    let switched = Instant::now();
    // The old master takes no part until the sentinels make it a replica of
    // the new one, which drops what it took after the promotion: wait for
    // that, so that a write acknowledged there would be missed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while role(old) != "slave" {
        assert!(
            Instant::now() < deadline,
            "the old master on {old} is not a replica 30 s after the failover"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let demoted = Instant::now();
    hold_receiving.store(false, Ordering::Relaxed);
    let acked_at_switch = acked.lock().unwrap().len();
    // Sends go on, now to the new master, through the same store.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < acked_at_switch + 300 {
        assert!(
            Instant::now() < deadline,
            "fewer than 300 sends acknowledged in the 20 s after the old master's demotion"
        );
        thread::sleep(Duration::from_millis(20));
    }
    stop_sending.store(true, Ordering::Relaxed);
    let (client, send_errors) = producer.join().unwrap();
    let acked: Vec<u64> = acked.lock().unwrap().clone();

    // Everything acknowledged arrives: wait while the consumer makes
    // progress, up to 5 s without any.
    let mut progress = (0, Instant::now());
    let missing = loop {
        let got: HashSet<u64> = received.lock().unwrap().iter().copied().collect();
        let missing: Vec<u64> = acked.iter().copied().filter(|n| !got.contains(n)).collect();
        if got.len() > progress.0 {
            progress = (got.len(), Instant::now());
        }
        if missing.is_empty() || progress.1.elapsed() >= Duration::from_secs(5) {
            break missing;
        }
        thread::sleep(Duration::from_millis(50));
    };
    stop_receiving.store(true, Ordering::Relaxed);
    let (server, receive_errors) = consumer.join().unwrap();
    let received = received.lock().unwrap().clone();
    let distinct: HashSet<u64> = received.iter().copied().collect();
    eprintln!(
        "failover {old} -> {new}: {} sends acknowledged, {} send errors, {} received \
         ({} distinct), {} receive errors, switch seen {:?} after start, old master a \
         replica {:?} later",
        acked.len(),
        send_errors.len(),
        received.len(),
        distinct.len(),
        receive_errors.len(),
        switched - started,
        demoted - switched,
    );
    for err in send_errors.iter().chain(&receive_errors).take(5) {
        eprintln!("  {err}");
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged sends never arrived: {:?}…",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(
        acked.len() >= acked_at_switch + 300,
        "sends went on after the failover"
    );

    // The same store, after the failover: on the new master.
    client.send_msg("after").unwrap();
    assert_eq!(
        server.recv_msg::<String>().unwrap().as_deref(),
        Some("after")
    );
    assert_eq!(store.master_addr().unwrap().1, new);
    for err in send_errors.iter().chain(&receive_errors) {
        assert!(
            err.contains("svc") || err.contains("127.0.0.1"),
            "an error that names neither the service nor a server: {err}"
        );
    }
}

const SENTINEL_PASSWORD: &str = "Quokkasentinel";
const MASTER_PASSWORD: &str = "Wombatmaster";

/// Fails the test when a password shows in `shown`.
fn assert_hidden(shown: &str) {
    for secret in [SENTINEL_PASSWORD, MASTER_PASSWORD] {
        assert!(!shown.contains(secret), "{secret} shows in: {shown}");
    }
}

fn assert_error_hides_passwords(err: &StoreError) {
    assert_hidden(&err.to_string());
    assert_hidden(&format!("{err:?}"));
    let mut source = std::error::Error::source(err);
    while let Some(err) = source {
        assert_hidden(&err.to_string());
        source = err.source();
    }
}

/// The deployments guide's ACL user, with its line for a Sentinel's
/// master added on the master, passes every suite through the sentinels
/// (which watch the master as the default user).
#[test]
fn the_documented_acl_user_passes_every_suite_through_sentinels() {
    let set = SentinelSet::start(SentinelSetup {
        sentinels: 1,
        ..SentinelSetup::default()
    });
    support::add_documented_user(
        &mut set.raw_master(),
        &["on >password", "a Sentinel's master"],
    );
    let store = set.store_with(RedisSentinelStoreOptions {
        auth: Some(RedisAuth::user("app", "password")),
        ..RedisSentinelStoreOptions::default()
    });
    let backend = SentinelBackend { set, store };
    redisutil::conformance::run_all(&backend);
    redisutil::conformance::run_all_leases(&backend);
}

#[test]
fn sentinels_with_a_password() {
    let set = SentinelSet::start(SentinelSetup {
        sentinels: 2,
        sentinel_password: Some(SENTINEL_PASSWORD),
        master_password: Some(MASTER_PASSWORD),
        ..SentinelSetup::default()
    });
    let both = RedisSentinelStoreOptions {
        sentinel_auth: Some(RedisAuth::password(SENTINEL_PASSWORD)),
        auth: Some(RedisAuth::password(MASTER_PASSWORD)),
        ..RedisSentinelStoreOptions::default()
    };
    let store = set.store_with(both.clone());
    assert_hidden(&format!("{store:?}"));
    assert_hidden(&format!("{:?}", store.options()));
    store.push("/pw/client", &[b"1"], None).unwrap();
    assert_eq!(store.pop("/pw/client").unwrap().as_deref(), Some(&b"1"[..]));
    store.ping().unwrap();

    // The sentinels' password in their URLs does as well.
    let urls: Vec<String> = set
        .sentinel_addrs()
        .iter()
        .map(|addr| format!("redis://:{SENTINEL_PASSWORD}@{addr}/"))
        .collect();
    let by_url = RedisSentinelStore::open_with(
        urls,
        SERVICE,
        RedisSentinelStoreOptions {
            auth: Some(RedisAuth::password(MASTER_PASSWORD)),
            ..RedisSentinelStoreOptions::default()
        },
    )
    .unwrap();
    assert_hidden(&format!("{by_url:?}"));
    by_url.ping().unwrap();

    // Without the sentinels' password: refused by every sentinel, saying so.
    let started = Instant::now();
    let err = set
        .store_with(RedisSentinelStoreOptions {
            sentinel_auth: None,
            ..both.clone()
        })
        .ping()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{err}");
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");
    assert!(err.to_string().contains("svc"), "{err}");
    assert_error_hides_passwords(&err);

    // A wrong sentinel password.
    let err = set
        .store_with(RedisSentinelStoreOptions {
            sentinel_auth: Some(RedisAuth::password("wrong")),
            ..both.clone()
        })
        .ping()
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGPASS"), "{err}");
    assert_error_hides_passwords(&err);

    // Without the master's password: the master refuses.
    let err = set
        .store_with(RedisSentinelStoreOptions {
            auth: None,
            ..both.clone()
        })
        .ping()
        .unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert_error_hides_passwords(&err);

    // A wrong master password.
    let err = set
        .store_with(RedisSentinelStoreOptions {
            auth: Some(RedisAuth::password("wrong")),
            ..both
        })
        .ping()
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGPASS"), "{err}");
    assert_error_hides_passwords(&err);
}

#[test]
fn an_unknown_service_is_a_clear_error_within_the_connect_timeout() {
    let set = SentinelSet::start(SentinelSetup {
        sentinels: 1,
        ..SentinelSetup::default()
    });
    let connect_timeout = Duration::from_millis(500);
    let options = RedisSentinelStoreOptions {
        connect_timeout,
        ..RedisSentinelStoreOptions::default()
    };
    // A dead sentinel first, then one that does not know the service.
    let mut sentinels = vec![format!("127.0.0.1:{}", support::free_port())];
    sentinels.extend(set.sentinel_addrs());
    within_three_tries(|| {
        let store =
            RedisSentinelStore::open_with(sentinels.clone(), "nosuchservice", options.clone())
                .unwrap();
        let started = Instant::now();
        let err = store.push("/k/client", &[b"x"], None).unwrap_err();
        let took = started.elapsed();
        assert!(err.is_connection(), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("no sentinel knows a master named \"nosuchservice\"")
                || shown.contains("knows no master named \"nosuchservice\""),
            "{shown}"
        );
        over(took, connect_timeout + Duration::from_millis(200))
    });

    // A silent sentinel first (it takes the connection, never answers):
    // it costs its share of the connect timeout, the next one answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sentinels = vec![silent.local_addr().unwrap().to_string()];
    sentinels.extend(set.sentinel_addrs());
    within_three_tries(|| {
        let store = RedisSentinelStore::open_with(
            sentinels.clone(),
            SERVICE,
            RedisSentinelStoreOptions {
                connect_timeout: Duration::from_millis(1000),
                ..RedisSentinelStoreOptions::default()
            },
        )
        .unwrap();
        let started = Instant::now();
        store.ping().unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        if let Some(over) = over(took, Duration::from_millis(1000)) {
            return Some(over);
        }
        // Then the one that answered is asked first: a second
        // connection (the first is busy with a blocking pop) opens at
        // once.
        let busy = {
            let store = store.clone();
            thread::spawn(move || store.blocking_pop("/k/none", Some(Duration::from_millis(500))))
        };
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        store.ping().unwrap();
        let second = started.elapsed();
        assert_eq!(busy.join().unwrap().unwrap(), None);
        over(second, Duration::from_millis(300))
    });

    // No sentinel at all: a connection error within the connect timeout.
    within_three_tries(|| {
        let store = RedisSentinelStore::open_with(
            [support::free_port(), support::free_port()],
            SERVICE,
            RedisSentinelStoreOptions {
                connect_timeout,
                ..RedisSentinelStoreOptions::default()
            },
        )
        .unwrap();
        let started = Instant::now();
        let err = store.ping().unwrap_err();
        let took = started.elapsed();
        assert!(err.is_connection(), "{err:?}");
        assert!(err.to_string().contains(SERVICE), "{err}");
        over(took, connect_timeout + Duration::from_millis(200))
    });
}

#[test]
fn a_master_turned_replica_is_left_and_never_written_to() {
    let set = SentinelSet::start(SentinelSetup {
        sentinels: 1,
        ..SentinelSetup::default()
    });
    let other = support::RedisServer::start();
    let store = set.store_with(RedisSentinelStoreOptions {
        connect_timeout: Duration::from_millis(500),
        ..RedisSentinelStoreOptions::default()
    });
    store.push("/demoted/client", &[b"before"], None).unwrap();
    let blocked = {
        let store = store.clone();
        thread::spawn(move || {
            let started = Instant::now();
            let popped = store.blocking_pop("/demoted/empty", Some(Duration::from_secs(20)));
            (popped, started.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(200));
    // Demoted behind the sentinels' back: the pooled connection stays open
    // and the server answers READONLY (the blocked pop, UNBLOCKED).
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(other.port())
        .exec(&mut set.master.raw())
        .unwrap();
    let started = Instant::now();
    let err = store
        .push("/demoted/client", &[b"after"], None)
        .unwrap_err();
    assert!(err.is_connection(), "{err:?}");
    assert!(err.to_string().contains("but it is a replica"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "{err}");
    let (popped, waited) = blocked.join().unwrap();
    let err = popped.unwrap_err();
    assert!(err.is_connection(), "{err:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}: {err}");

    // A master again: the same store writes there.
    redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .exec(&mut set.master.raw())
        .unwrap();
    store.push("/demoted/client", &[b"again"], None).unwrap();
    // Whatever the resync left, the refused write is not there.
    let left = store.pop_many("/demoted/client", 10).unwrap();
    assert_eq!(
        left.last().map(Vec::as_slice),
        Some(&b"again"[..]),
        "{left:?}"
    );
    assert!(!left.contains(&b"after".to_vec()), "{left:?}");
}

/// The async store on the sentinels' master (feature `tokio`): both
/// suites, and a failover under an async consumer that is blocked when it
/// happens, with nothing lost and no new store.
#[cfg(feature = "tokio")]
mod async_store {
    use std::sync::Mutex;
    use std::time::Duration;

    use redisutil::aio::{AsyncRedisChannel, AsyncRedisSentinelStore};
    use redisutil::conformance::{self, AsyncHarness};
    use redisutil::{Peer, RedisSentinelStoreOptions};

    use super::support::{SERVICE, SentinelSet, SentinelSetup};

    fn open(set: &SentinelSet) -> AsyncRedisSentinelStore {
        let options = RedisSentinelStoreOptions {
            response_timeout: Some(Duration::from_secs(2)),
            ..RedisSentinelStoreOptions::default()
        };
        AsyncRedisSentinelStore::open_with(set.sentinel_addrs(), SERVICE, options).unwrap()
    }

    #[test]
    fn the_conformance_suites_pass() {
        let backend = super::backend();
        let store = open(&backend.set);
        let harness = AsyncHarness::new(backend, store);
        conformance::run_all(&harness);
        conformance::run_all_leases(&harness);
    }

    #[test]
    fn a_failover_loses_nothing_and_needs_no_new_store() {
        let set = SentinelSet::start(SentinelSetup {
            replicas: 1,
            sentinels: 3,
            ..SentinelSetup::default()
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // As in the sync failover test: none go to the old master once the
        // replica is promoted.
        super::refuse_writes_without_a_replica(&set);
        let store = open(&set);
        let client = AsyncRedisChannel::new(store.clone(), "/afailover", Peer::Client).unwrap();
        let server = AsyncRedisChannel::new(store.clone(), "/afailover", Peer::Server).unwrap();
        runtime.block_on(client.send_msgs(0..1000u64)).unwrap();
        // Blocked on the old master while it turns into a replica.
        let empty = AsyncRedisChannel::new(store.clone(), "/afailover/idle", Peer::Server).unwrap();
        let blocked =
            runtime.spawn(async move { empty.brecv_msg::<u64>(Duration::from_secs(60)).await });
        let (old, new) = super::fail_over(&set, &Mutex::new(()));
        assert_ne!(old, new);
        let got: Vec<u64> = runtime
            .block_on(server.brecv_msgs(2000, Duration::from_secs(10)))
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        // Once the sentinels have turned the old master into a replica (it
        // refuses writes until then), the same store sends and receives on
        // the new master: commands refused by the old one went again there.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while super::role(old) != "slave" {
            assert!(
                std::time::Instant::now() < deadline,
                "{old} is still a master after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        runtime.block_on(client.send_msg(&1000u64)).unwrap();
        assert_eq!(
            runtime
                .block_on(server.brecv_msg::<u64>(Duration::from_secs(5)))
                .unwrap(),
            Some(1000)
        );
        // The receive that was blocked on the old master: its pop went again
        // to the new master, where a send ends it; or, if the sentinels were
        // still naming the old master when it tried, it failed as a lost
        // connection, and the message waits for the next receive.
        let idle = AsyncRedisChannel::new(store.clone(), "/afailover/idle", Peer::Client).unwrap();
        runtime.block_on(idle.send_msg(&7u64)).unwrap();
        match runtime.block_on(blocked).unwrap() {
            Ok(got) => assert_eq!(got, Some(7)),
            Err(err) => {
                assert!(err.is_connection(), "{err}");
                let again = AsyncRedisChannel::new(store, "/afailover/idle", Peer::Server).unwrap();
                assert_eq!(
                    runtime
                        .block_on(again.brecv_msg::<u64>(Duration::from_secs(5)))
                        .unwrap(),
                    Some(7)
                );
            }
        }
    }

    /// Demoted behind the sentinels' back, the master answers READONLY
    /// (a blocked pop, UNBLOCKED) on connections that stay open: the
    /// async store takes that for a lost connection, never writes there,
    /// and writes again once it is a master.
    #[test]
    fn a_master_turned_replica_is_left_and_never_written_to() {
        let set = SentinelSet::start(SentinelSetup {
            sentinels: 1,
            ..SentinelSetup::default()
        });
        let other = super::support::RedisServer::start();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let options = RedisSentinelStoreOptions {
            connect_timeout: Duration::from_millis(500),
            ..RedisSentinelStoreOptions::default()
        };
        let store =
            AsyncRedisSentinelStore::open_with(set.sentinel_addrs(), SERVICE, options).unwrap();
        use redisutil::aio::AsyncListStore;
        runtime
            .block_on(store.push("/demoted/client", &[b"before"], None))
            .unwrap();
        let blocked = {
            let store = store.clone();
            runtime.spawn(async move {
                store
                    .blocking_pop("/demoted/empty", Some(Duration::from_secs(20)))
                    .await
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(other.port())
            .exec(&mut set.master.raw())
            .unwrap();
        let err = runtime
            .block_on(store.push("/demoted/client", &[b"after"], None))
            .unwrap_err();
        assert!(err.is_connection(), "{err:?}");
        assert!(err.to_string().contains("but it is a replica"), "{err}");
        let err = runtime.block_on(blocked).unwrap().unwrap_err();
        assert!(err.is_connection(), "{err:?}");

        redis::cmd("REPLICAOF")
            .arg("NO")
            .arg("ONE")
            .exec(&mut set.master.raw())
            .unwrap();
        runtime
            .block_on(store.push("/demoted/client", &[b"again"], None))
            .unwrap();
        // Whatever the resync left, the refused write is not there.
        let left = runtime
            .block_on(store.pop_many("/demoted/client", 10))
            .unwrap();
        assert_eq!(
            left.last().map(Vec::as_slice),
            Some(&b"again"[..]),
            "{left:?}"
        );
        assert!(!left.contains(&b"after".to_vec()), "{left:?}");
    }
}

/// How a fake sentinel misbehaves.
#[derive(Clone, Copy, Debug)]
enum Bad {
    /// It names a replica as the master (a partitioned sentinel still
    /// naming the old master).
    NamesAReplica,
    /// It names an address where nothing listens.
    NamesADeadServer,
    /// Nothing listens where it should be.
    Dead,
    /// It accepts the connection and never answers.
    Silent,
    /// It knows no such service.
    Unknown,
}

/// A fake sentinel, at `port`, naming `named` (`None`: no such master)
/// after `delay`.
fn fake_sentinel(named: Option<u16>, delay: Duration) -> resp_support::FakeServer {
    resp_support::FakeServer::start(Arc::new(move |command: &[Vec<u8>]| {
        std::thread::sleep(delay);
        let asked = command
            .first()
            .is_some_and(|name| name.eq_ignore_ascii_case(b"SENTINEL"));
        match (asked, named) {
            (true, Some(port)) => {
                let port = port.to_string();
                resp_support::Reply::Bytes(
                    format!("*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{port}\r\n", port.len()).into_bytes(),
                )
            }
            (true, None) => resp_support::Reply::Bytes(b"*-1\r\n".to_vec()),
            (false, _) => resp_support::Reply::Bytes(b"+OK\r\n".to_vec()),
        }
    }))
}

/// Three sentinels: `bad` ones in every position but one, where an honest
/// one names the master; every store (sync and async) works through each
/// list, every call, within the connect timeout.
#[test]
fn a_stale_dead_or_silent_sentinel_is_passed_over_in_any_position() {
    let master = support::RedisServer::start();
    let replica =
        support::RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
    let dead = support::free_port();
    let options = RedisSentinelStoreOptions {
        connect_timeout: Duration::from_secs(2),
        ..RedisSentinelStoreOptions::default()
    };
    for bad in [
        Bad::NamesAReplica,
        Bad::NamesADeadServer,
        Bad::Dead,
        Bad::Silent,
        Bad::Unknown,
    ] {
        for honest_at in 0..3 {
            let honest = fake_sentinel(Some(master.port()), Duration::ZERO);
            let liars: Vec<Option<resp_support::FakeServer>> = (0..2)
                .map(|_| match bad {
                    Bad::NamesAReplica => Some(fake_sentinel(Some(replica.port()), Duration::ZERO)),
                    Bad::NamesADeadServer => Some(fake_sentinel(Some(dead), Duration::ZERO)),
                    Bad::Dead => None,
                    Bad::Silent => Some(fake_sentinel(None, Duration::from_secs(30))),
                    Bad::Unknown => Some(fake_sentinel(None, Duration::ZERO)),
                })
                .collect();
            let mut ports: Vec<u16> = liars
                .iter()
                .map(|liar| liar.as_ref().map_or(dead, |liar| liar.port))
                .collect();
            ports.insert(honest_at, honest.port);
            let sentinels: Vec<(&str, u16)> =
                ports.iter().map(|port| ("127.0.0.1", *port)).collect();
            let store =
                RedisSentinelStore::open_with(sentinels.clone(), "svc", options.clone()).unwrap();
            let key = format!("/stale/{bad:?}/{honest_at}/client");
            for i in 0..5u8 {
                store.push(&key, &[&[i]], None).unwrap_or_else(|err| {
                    panic!("{bad:?} with the honest one at {honest_at}: {err}")
                });
            }
            assert_eq!(store.master_addr().unwrap().1, master.port());
            #[cfg(feature = "tokio")]
            {
                use redisutil::aio::{AsyncListStore, AsyncRedisSentinelStore};
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let store =
                    AsyncRedisSentinelStore::open_with(sentinels, "svc", options.clone()).unwrap();
                runtime.block_on(async {
                    for i in 5..10u8 {
                        store.push(&key, &[&[i]], None).await.unwrap_or_else(|err| {
                            panic!("async, {bad:?} with the honest one at {honest_at}: {err}")
                        });
                    }
                });
            }
            let mut raw = master.raw();
            let len: usize = redis::cmd("LLEN").arg(&key).query(&mut raw).unwrap();
            let expected = if cfg!(feature = "tokio") { 10 } else { 5 };
            assert_eq!(len, expected, "{bad:?} at {honest_at}");
        }
    }
}
