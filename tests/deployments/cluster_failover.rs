//! A channel on a Redis Cluster survives the death of a master: once the
//! master's replica has taken over, sends and receives work again on the
//! same store, with every replicated message still there, in order.

use crate::support;

use std::thread;
use std::time::{Duration, Instant};

use redisutil::{ChannelError, Peer, RedisChannel, list_channels};
use support::RedisCluster;

/// How long the cluster may take to promote a replica, and the store to
/// find it.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);

/// Polls `attempt` until it returns `Some`, at most `FAILOVER_BOUND`.
fn within_bound<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + FAILOVER_BOUND;
    loop {
        if let Some(done) = attempt() {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {FAILOVER_BOUND:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a channel call until it succeeds; every failure on the way must be
/// a connection failure (a dead node), never anything else.
fn retry<T>(what: &str, mut call: impl FnMut() -> Result<T, ChannelError>) -> T {
    within_bound(what, || match call() {
        Ok(value) => Some(value),
        Err(ChannelError::Store(err)) if err.is_connection() => None,
        Err(err) => panic!("{what}: not a connection failure: {err:?}"),
    })
}

#[test]
fn channel_works_again_after_its_master_fails_over() {
    let mut cluster = RedisCluster::start(3, 1, Duration::from_millis(1000));
    let store = cluster.store();
    let name = "/failover/jobs";
    let client = RedisChannel::new(store.clone(), name, Peer::Client).unwrap();
    let server = RedisChannel::new(store.clone(), name, Peer::Server).unwrap();

    // In use: both directions carry messages, some still queued.
    client.send_msgs(0..10).unwrap();
    for i in 0..5 {
        assert_eq!(server.recv_msg::<i32>().unwrap(), Some(i));
    }
    // A blocked receive, so the pool holds more than one connection.
    thread::scope(|scope| {
        let blocked = scope.spawn(|| client.brecv_msg::<String>(Duration::from_secs(5)));
        thread::sleep(Duration::from_millis(50));
        server.send_msg("woken").unwrap();
        assert_eq!(blocked.join().unwrap().unwrap().as_deref(), Some("woken"));
    });
    server.send_msg("hello").unwrap();

    // The master of the list the client sends to, and its replica, which
    // must hold the five queued messages before the master dies.
    let key = client.send_key().to_owned();
    let master = cluster.master_of(&key);
    let replicas = cluster.replicas_of(master);
    assert_eq!(replicas.len(), 1, "one replica per master");
    let mut replica = cluster.raw(replicas[0]);
    redis::cmd("READONLY").exec(&mut replica).unwrap();
    within_bound("replication of the queued messages", || {
        let len: u64 = redis::cmd("LLEN").arg(&key).query(&mut replica).ok()?;
        (len == 5).then_some(())
    });

    cluster.kill(master);
    // During the outage a call fails cleanly (or, once the replica has
    // taken over, already works); it never hangs or panics.
    match server.peek_msg::<i32>() {
        Ok(first) => assert_eq!(first, Some(5)),
        Err(ChannelError::Store(err)) => {
            assert!(err.is_connection(), "{err:?}")
        }
        Err(err) => panic!("not a store failure: {err:?}"),
    }
    within_bound("the replica taking over the slot", || {
        (cluster.master_of(&key) == replicas[0] && cluster.is_ok()).then_some(())
    });

    // The same channel objects, on the same store, recover by themselves.
    assert_eq!(
        retry("receive after failover", || server.recv_msg::<i32>()),
        Some(5)
    );
    for i in 6..10 {
        assert_eq!(server.recv_msg::<i32>().unwrap(), Some(i));
    }
    assert_eq!(server.recv_msg::<i32>().unwrap(), None);
    retry("send after failover", || client.send_msg(&100));
    client.send_msgs(101..110).unwrap();
    for i in 100..110 {
        assert_eq!(server.recv_msg::<i32>().unwrap(), Some(i));
    }
    assert_eq!(server.recv_msg::<i32>().unwrap(), None);

    // The other direction, blocking receives and listing work as well.
    assert_eq!(
        retry("the other list", || client.recv_msg::<String>()).as_deref(),
        Some("hello")
    );
    thread::scope(|scope| {
        let blocked = scope.spawn(|| server.brecv_msg::<i32>(Duration::from_secs(5)));
        thread::sleep(Duration::from_millis(50));
        client.send_msg(&7).unwrap();
        assert_eq!(blocked.join().unwrap().unwrap(), Some(7));
    });
    client.send_msg(&8).unwrap();
    assert_eq!(list_channels(&store, "/failover/").unwrap(), [name]);
    assert_eq!(server.recv_last_msg::<i32>().unwrap(), Some(8));
}
