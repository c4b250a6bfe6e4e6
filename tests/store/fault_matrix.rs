//! The call policy under real faults: a proxy between the store and a
//! real `redis-server` drops the reply of a command after the server ran
//! it, resets the connection before the command reaches the server, or
//! stalls the reply past the response timeout; every channel and lease
//! operation is run under each, on the blocking and the async store, and
//! what Redis holds afterwards is what the Guarantees promise: an
//! operation sent again (a read, an extend, a lease under its call id)
//! succeeds and ran once in effect; one that is not gives `ReplyLost` or
//! `Timeout` (`may_have_run`) and ran at most once; nothing is lost.

#[cfg(feature = "sentinel")]
use crate::resp_support;
use crate::support;

use std::time::{Duration, Instant};

use redisutil::{
    ChannelError, ChannelOptions, Peer, PoolOptions, RedisChannel, RedisStore, RedisStoreOptions,
    StoreError,
};
use support::fault_proxy::{Fault, FaultProxy};
use support::{RedisServer, unique};

const LEASE: Duration = Duration::from_secs(60);

/// The response timeout of the stores through a proxy: a reply a busy
/// machine holds up a few hundred ms still comes in time.
const TIMEOUT: Duration = Duration::from_secs(1);

/// How long a stalled reply waits: a second past [`TIMEOUT`], so that a
/// client a busy machine holds up still sees the timeout first.
const STALL: Duration = Duration::from_secs(2);

/// A store through `proxy`, whose replies may wait [`TIMEOUT`].
fn options() -> RedisStoreOptions {
    RedisStoreOptions {
        response_timeout: Some(TIMEOUT),
        pool: PoolOptions {
            max_connections: 4,
            ..PoolOptions::default()
        },
        ..RedisStoreOptions::default()
    }
}

struct Rig {
    server: RedisServer,
    proxy: FaultProxy,
    client: RedisChannel<RedisStore>,
    worker: RedisChannel<RedisStore>,
}

impl Rig {
    fn new(server: RedisServer) -> Self {
        let proxy = FaultProxy::start(server.port());
        let store = RedisStore::open_with(proxy.port, options()).unwrap();
        let name = unique("/faults");
        let channel_options = ChannelOptions {
            max_deliveries: 3,
            ..ChannelOptions::default()
        };
        let client =
            RedisChannel::with_options(store.clone(), &name, Peer::Client, channel_options.clone())
                .unwrap();
        let worker =
            RedisChannel::with_options(store, &name, Peer::Server, channel_options).unwrap();
        Self {
            server,
            proxy,
            client,
            worker,
        }
    }

    /// The messages waiting in the worker's list, straight from Redis.
    fn queued(&self) -> Vec<u64> {
        let values: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(self.worker.recv_key())
            .arg(0)
            .arg(-1)
            .query(&mut self.server.raw())
            .unwrap();
        values
            .iter()
            .map(|v| serde_json::from_slice(v).unwrap())
            .collect()
    }

    fn send(&self, msgs: &[u64]) {
        for msg in msgs {
            self.client.send_msg(msg).unwrap();
        }
    }

    fn in_flight(&self) -> u64 {
        self.worker.lease_stats().unwrap().in_flight
    }
}

/// The error of a call the policy does not send again: the command may
/// have run.
fn assert_may_have_run(result: Result<impl std::fmt::Debug, ChannelError>, fault: Fault) {
    let err = result.expect_err("a call not sent again fails");
    assert!(err.may_have_run(), "{fault:?}: {err:?}");
    let ChannelError::Store(store) = &err else {
        panic!("{err:?}")
    };
    match fault {
        Fault::Stall(_) => assert!(matches!(store, StoreError::Timeout { .. }), "{err:?}"),
        _ => assert!(matches!(store, StoreError::ReplyLost { .. }), "{err:?}"),
    }
}

const FAULTS: [Fault; 3] = [Fault::DropReply, Fault::ResetBefore, Fault::Stall(STALL)];

/// After a call `fault` hit: a stalled reply lands (on a connection the
/// store must no longer read), a little after the stall ends.
fn after(fault: Fault) {
    if let Fault::Stall(pause) = fault {
        std::thread::sleep(pause.saturating_sub(TIMEOUT) + Duration::from_millis(100));
    }
}

/// Whether the server ran the command the fault hit.
fn ran(fault: Fault) -> bool {
    fault != Fault::ResetBefore
}

#[test]
fn plain_sends_and_receives_run_at_most_once_and_say_so() {
    let server = RedisServer::start();
    let mut rig = Rig::new(server);
    for fault in FAULTS {
        rig = Rig::new(rig.server);
        // A send: RPUSH is not sent again.
        rig.proxy.arm(&["RPUSH"], 0, fault);
        assert_may_have_run(rig.client.send_msg(&1u64), fault);
        assert!(rig.proxy.fired());
        after(fault);
        let expected: Vec<u64> = if ran(fault) { vec![1] } else { vec![] };
        assert_eq!(rig.queued(), expected, "send under {fault:?}");

        // Receives: LPOP, LPOP with a count, BLPOP take at most once.
        rig = Rig::new(rig.server);
        rig.send(&[1, 2, 3, 4, 5]);
        rig.proxy.arm(&["LPOP"], 0, fault);
        assert_may_have_run(rig.worker.recv_msg::<u64>(), fault);
        let left = if ran(fault) {
            vec![2, 3, 4, 5]
        } else {
            vec![1, 2, 3, 4, 5]
        };
        after(fault);
        assert_eq!(rig.queued(), left, "recv_msg under {fault:?}");
        rig.proxy.arm(&["LPOP"], 0, fault);
        assert_may_have_run(rig.worker.recv_msgs::<u64>(2), fault);
        after(fault);
        let left: Vec<u64> = if ran(fault) { left[2..].to_vec() } else { left };
        assert_eq!(rig.queued(), left, "recv_msgs under {fault:?}");
        // A short block: a stall outlasts its wait and the margin.
        rig.proxy.arm(&["BLPOP"], 0, fault);
        assert_may_have_run(
            rig.worker.brecv_msg::<u64>(Duration::from_millis(100)),
            fault,
        );
        after(fault);
        let left: Vec<u64> = if ran(fault) { left[1..].to_vec() } else { left };
        assert_eq!(rig.queued(), left, "brecv_msg under {fault:?}");

        // A peek is sent again (a lost reply) and answers.
        if fault != Fault::Stall(STALL) {
            rig.proxy.arm(&["LINDEX"], 0, fault);
            assert_eq!(rig.worker.peek_msg::<u64>().unwrap(), left.first().copied());
            assert!(rig.proxy.fired());
        }
    }
}

#[test]
fn a_lease_whose_reply_is_lost_is_answered_again_and_loses_nothing() {
    let mut rig = Rig::new(RedisServer::start());
    for fault in [Fault::DropReply, Fault::ResetBefore] {
        rig = Rig::new(rig.server);
        rig.send(&[1, 2, 3, 4]);
        // One message: the call is sent again under its id and answers
        // the message its first run leased; the next stays queued.
        rig.proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        let first = rig.worker.lease_msg::<u64>(LEASE).unwrap().unwrap();
        assert!(rig.proxy.fired());
        assert_eq!(*first.msg(), 1, "{fault:?}");
        assert_eq!(rig.in_flight(), 1, "{fault:?}");
        assert_eq!(rig.queued(), [2, 3, 4], "{fault:?}");
        // A batch alike.
        rig.proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        let batch = rig.worker.lease_msgs::<u64>(2, LEASE).unwrap();
        let got: Vec<u64> = batch.iter().map(|d| *d.as_ref().unwrap().msg()).collect();
        assert_eq!(got, [2, 3], "{fault:?}");
        assert_eq!(rig.in_flight(), 3, "{fault:?}");
        // An ack with the next lease, as one call.
        rig.proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        let (acked, next) = rig
            .worker
            .ack_and_lease_msg::<u64, u64>(&first, LEASE)
            .unwrap();
        assert!(acked, "{fault:?}");
        let next = next.unwrap();
        assert_eq!(*next.msg(), 4, "{fault:?}");
        assert_eq!(rig.in_flight(), 3, "{fault:?}");
        assert!(rig.queued().is_empty());
        // An extend is sent again: its deadline is set, not moved.
        let mut next = next;
        rig.proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        assert!(
            rig.worker.extend(&mut next, LEASE * 2).unwrap(),
            "{fault:?}"
        );
        // Every message is acked once, none lost or doubled.
        let acked = rig
            .worker
            .ack_all(batch.iter().map(|d| d.as_ref().unwrap()).chain([&next]))
            .unwrap();
        assert_eq!(acked, 3, "{fault:?}");
        assert_eq!(rig.in_flight(), 0, "{fault:?}");
        assert_eq!(rig.worker.lease_stats().unwrap().dead, 0);
    }
}

#[test]
fn settling_calls_are_reported_not_repeated_and_a_timed_out_lease_comes_back() {
    let mut rig = Rig::new(RedisServer::start());
    for fault in FAULTS {
        rig = Rig::new(rig.server);
        rig.send(&[1, 2]);
        let one = rig.worker.lease_msg::<u64>(LEASE).unwrap().unwrap();
        let two = rig.worker.lease_msg::<u64>(LEASE).unwrap().unwrap();
        assert_eq!(rig.in_flight(), 2);
        // An ack is not sent again: it may have run, and did once.
        rig.proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        assert_may_have_run(rig.worker.ack(&one), fault);
        assert!(rig.proxy.fired());
        after(fault);
        let held = if ran(fault) { 1 } else { 2 };
        assert_eq!(rig.in_flight(), held, "ack under {fault:?}");
        // A nack alike: the message is due again at most once.
        rig.proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        assert_may_have_run(rig.worker.nack(&two, Duration::ZERO), fault);
        after(fault);
        let again = rig.worker.lease_msgs::<u64>(10, LEASE).unwrap();
        let again: Vec<(u64, u32)> = again
            .iter()
            .map(|d| {
                let d = d.as_ref().unwrap();
                (*d.msg(), d.attempt())
            })
            .collect();
        let expected: Vec<(u64, u32)> = if ran(fault) { vec![(2, 2)] } else { vec![] };
        assert_eq!(again, expected, "nack under {fault:?}");
    }

    // A lease whose reply does not come in time is not sent again: the
    // message stays leased by the lost call and comes back when that
    // lease runs out, never lost.
    rig = Rig::new(rig.server);
    rig.send(&[7]);
    // Its lease outlasts the timeout by 1.5 s: held when the next lease
    // looks, run out about when the wait below ends (later when a busy
    // machine held the lease up on its way: then looked for again).
    rig.proxy.arm(&["EVALSHA", "EVAL"], 0, Fault::Stall(STALL));
    let err = rig
        .worker
        .lease_msg::<u64>(TIMEOUT + Duration::from_millis(1500))
        .unwrap_err();
    assert!(err.may_have_run(), "{err:?}");
    assert_eq!(
        rig.worker
            .lease_msg::<u64>(LEASE)
            .unwrap()
            .map(|d| *d.msg()),
        None
    );
    std::thread::sleep(Duration::from_millis(1600));
    let deadline = Instant::now() + Duration::from_secs(5);
    let back = loop {
        if let Some(back) = rig.worker.lease_msg::<u64>(LEASE).unwrap() {
            break back;
        }
        assert!(Instant::now() < deadline, "the message never came back");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((*back.msg(), back.attempt()), (7, 2));
}

#[cfg(feature = "tokio")]
mod aio {
    use super::*;
    use redisutil::aio::{AsyncRedisChannel, AsyncRedisStore};

    fn channels(
        proxy: &FaultProxy,
    ) -> (
        AsyncRedisChannel<AsyncRedisStore>,
        AsyncRedisChannel<AsyncRedisStore>,
    ) {
        let store = AsyncRedisStore::open_with(proxy.port, options()).unwrap();
        let name = unique("/faults-async");
        (
            AsyncRedisChannel::new(store.clone(), &name, Peer::Client).unwrap(),
            AsyncRedisChannel::new(store, &name, Peer::Server).unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_async_store_keeps_the_same_policy() {
        let server = RedisServer::start();
        for fault in [Fault::DropReply, Fault::ResetBefore] {
            let proxy = FaultProxy::start(server.port());
            let (client, worker) = channels(&proxy);
            proxy.arm(&["RPUSH"], 0, fault);
            let err = client.send_msg(&1u64).await.unwrap_err();
            assert!(err.may_have_run(), "{err:?}");
            client.send_msgs([2u64, 3, 4]).await.unwrap();
            // A lease under a lost reply answers its first run's message.
            proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
            let leased = worker.lease_msg::<u64>(LEASE).await.unwrap().unwrap();
            let first = if ran(fault) { 1 } else { 2 };
            assert_eq!(*leased.msg(), first, "{fault:?}");
            assert_eq!(worker.lease_stats().await.unwrap().in_flight, 1);
            // A receive is not sent again.
            proxy.arm(&["LPOP"], 0, fault);
            let err = worker.recv_msg::<u64>().await.unwrap_err();
            assert!(err.may_have_run(), "{err:?}");
            let rest: Vec<u64> = worker
                .recv_msgs::<u64>(10)
                .await
                .unwrap()
                .into_iter()
                .map(Result::unwrap)
                .collect();
            // Sent [1 if it ran, 2, 3, 4]; the lease took the first; the
            // LPOP took 2 if it ran, and else the lease had taken 2.
            assert_eq!(rest, [3, 4], "{fault:?}");
            assert!(worker.ack(&leased).await.unwrap());
        }
    }
}

/// Through a Sentinel service: the sentinel names the proxy as the
/// master, so the master's replies go through it; a lost reply to a lease
/// is answered again there too, and an ack is reported, not repeated.
#[cfg(feature = "sentinel")]
#[test]
fn a_sentinel_masters_store_keeps_the_same_policy() {
    use std::sync::Arc;

    use redisutil::{RedisSentinelStore, RedisSentinelStoreOptions};
    use resp_support::{FakeServer, Reply};

    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let master = proxy.port.to_string();
    let sentinel = FakeServer::start(Arc::new(move |command: &[Vec<u8>]| {
        if command
            .first()
            .is_some_and(|name| name.eq_ignore_ascii_case(b"SENTINEL"))
        {
            Reply::Bytes(
                format!("*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{master}\r\n", master.len()).into_bytes(),
            )
        } else {
            Reply::Bytes(b"+OK\r\n".to_vec())
        }
    }));
    let store = RedisSentinelStore::open_with(
        [("127.0.0.1", sentinel.port)],
        "svc",
        RedisSentinelStoreOptions {
            response_timeout: Some(TIMEOUT),
            ..RedisSentinelStoreOptions::default()
        },
    )
    .unwrap();
    let name = unique("/faults-sentinel");
    let client = RedisChannel::new(store.clone(), &name, Peer::Client).unwrap();
    let worker = RedisChannel::new(store, &name, Peer::Server).unwrap();
    for n in 1..=3u64 {
        client.send_msg(&n).unwrap();
    }
    lease_then_ack_under_each_fault(&proxy, &worker);
    let last = worker.lease_msg::<u64>(LEASE).unwrap().unwrap();
    assert_eq!(*last.msg(), 3);
    assert!(worker.ack(&last).unwrap());
    assert_eq!(worker.lease_stats().unwrap().depth, 0);
}

/// On a cluster: a proxy before each master, which makes the slot map and
/// the redirections name the proxies; the lease script and the receives
/// of a key whose master drops a reply behave as on one server.
#[cfg(feature = "cluster")]
#[test]
fn a_cluster_node_keeps_the_same_policy() {
    use redisutil::{RedisClusterStore, RedisClusterStoreOptions};
    use support::RedisCluster;

    let cluster = RedisCluster::shared();
    let masters = cluster.masters();
    let proxies: Vec<FaultProxy> = masters
        .iter()
        .map(|port| FaultProxy::start(*port))
        .collect();
    for proxy in &proxies {
        for (master, other) in masters.iter().zip(&proxies) {
            proxy.rename_port(*master, other.port);
        }
    }
    let store = RedisClusterStore::open_with(
        proxies.iter().map(|proxy| proxy.port).collect::<Vec<u16>>(),
        RedisClusterStoreOptions {
            response_timeout: Some(TIMEOUT),
            ..RedisClusterStoreOptions::default()
        },
    )
    .unwrap();
    let name = unique("/faults-cluster");
    let client = RedisChannel::new(store.clone(), &name, Peer::Client).unwrap();
    let worker = RedisChannel::new(store, &name, Peer::Server).unwrap();
    let at = masters
        .iter()
        .position(|port| *port == cluster.master_of(worker.recv_key()))
        .unwrap();
    let proxy = &proxies[at];
    for n in 1..=4u64 {
        client.send_msg(&n).unwrap();
    }
    lease_then_ack_under_each_fault(proxy, &worker);
    // A receive is reported, and took one message at most.
    proxy.arm(&["LPOP"], 0, Fault::DropReply);
    assert!(worker.recv_msg::<u64>().unwrap_err().may_have_run());
    let rest: Vec<u64> = worker
        .recv_msgs::<u64>(10)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rest,
        [4],
        "1 and 2 were leased and acked, 3 taken by the lost LPOP"
    );
}

/// Through `proxy`, under a lost reply and a reset: a lease is answered
/// again (one message in flight); an ack is reported, not repeated, and
/// ran once if the server had it.
#[cfg(any(feature = "sentinel", feature = "cluster"))]
fn lease_then_ack_under_each_fault<S: redisutil::LeaseStore>(
    proxy: &FaultProxy,
    worker: &RedisChannel<S>,
) {
    for fault in [Fault::DropReply, Fault::ResetBefore] {
        proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        let leased = worker.lease_msg::<u64>(LEASE).unwrap().unwrap();
        assert!(proxy.fired(), "{fault:?}");
        assert_eq!(worker.lease_stats().unwrap().in_flight, 1, "{fault:?}");
        proxy.arm(&["EVALSHA", "EVAL"], 0, fault);
        let err = worker.ack(&leased).unwrap_err();
        assert!(err.may_have_run(), "{fault:?}: {err:?}");
        let held = if ran(fault) { 0 } else { 1 };
        assert_eq!(worker.lease_stats().unwrap().in_flight, held, "{fault:?}");
        if held == 1 {
            assert!(worker.ack(&leased).unwrap());
        }
        assert_eq!(worker.lease_stats().unwrap().in_flight, 0, "{fault:?}");
    }
}
