//! `RedisStore`, `get_client` and `wait_serve` against private redis-servers.

use crate::support;

use std::thread;
use std::time::{Duration, Instant};

use redisutil::{
    ChannelError, ListStore, Peer, RedisChannel, RedisStore, RedisStoreOptions, StoreError,
    get_client, wait_serve,
};
use support::{RedisServer, free_port};

#[test]
fn get_client_returns_one_handle_per_address() {
    let server = RedisServer::start();
    let port = server.port();
    let first = get_client(port).unwrap();
    for again in [
        get_client(port).unwrap(),
        get_client(("127.0.0.1", port)).unwrap(),
        get_client(format!("127.0.0.1:{port}")).unwrap(),
        get_client(format!("redis://127.0.0.1:{port}/")).unwrap(),
        get_client(i32::from(port)).unwrap(),
    ] {
        assert!(first.ptr_eq(&again), "{again:?}");
    }
    let other = RedisServer::start();
    assert!(!first.ptr_eq(&get_client(other.port()).unwrap()));
    // Shared by threads, and working.
    let handles: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || get_client(port).unwrap()))
        .collect();
    for handle in handles {
        let store = handle.join().unwrap();
        assert!(first.ptr_eq(&store));
        store.ping().unwrap();
    }
}

#[test]
fn wait_serve_waits_for_a_server_that_starts_late() {
    let port = free_port();
    let starter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        RedisServer::start_on(port)
    });
    wait_serve(port, Duration::from_secs(10)).unwrap();
    let server = starter.join().unwrap();
    get_client(server.port()).unwrap().ping().unwrap();
}

#[test]
fn wait_serve_on_a_closed_port_fails_in_time_with_the_cause() {
    let port = free_port();
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = wait_serve(port, timeout).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout.mul_f32(0.9),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "overran its timeout: {elapsed:?}"
    );
    let text = err.to_string();
    assert!(matches!(err, StoreError::Connection { .. }), "{err:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("refused"), "names the last cause: {text}");
}

#[test]
fn a_closed_port_is_a_connection_error() {
    let store = RedisStore::open(free_port()).unwrap();
    let err = store.push("/k/client", &[b"1"], None).unwrap_err();
    assert!(err.is_connection(), "{err:?}");
    let chan = RedisChannel::new(store, "/k", Peer::Server).unwrap();
    assert!(matches!(
        chan.recv_msg::<i32>(),
        Err(ChannelError::Store(StoreError::Connection { .. }))
    ));
}

#[test]
fn reconnects_by_itself_after_a_restart() {
    let mut server = RedisServer::start();
    let store = server.store();
    let client = RedisChannel::new(store.clone(), "/restart", Peer::Client).unwrap();
    let serving = RedisChannel::new(store.clone(), "/restart", Peer::Server).unwrap();
    // Fill the pool with several connections.
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| store.ping().unwrap());
        }
    });
    client.send_msg(&1).unwrap();
    server.kill();
    let err = client.send_msg(&2).unwrap_err();
    assert!(
        matches!(err, ChannelError::Store(ref e) if e.is_connection()),
        "{err:?}"
    );
    server.restart();
    // The first call after the restart already works: the dead pooled
    // connections are replaced without the caller seeing them.
    client.send_msg(&3).unwrap();
    assert_eq!(
        serving.recv_msg::<i32>().unwrap(),
        Some(3),
        "no persistence: 1 is gone"
    );
}

#[test]
fn blocking_pop_is_not_cut_short_by_the_response_timeout() {
    let server = RedisServer::start();
    // The response timeout is the margin past its wait that the blocking
    // pop gives the server, and the limit of the ordinary calls after it:
    // long enough for a busy machine's stall of a few hundred ms.
    let options = RedisStoreOptions {
        response_timeout: Some(Duration::from_millis(500)),
        ..RedisStoreOptions::default()
    };
    let store = RedisStore::open_with(server.addr(), options).unwrap();
    let got = store.blocking_pop("/slow/client", Some(Duration::from_millis(1500)));
    assert_eq!(got.unwrap(), None, "a timeout, not an error");
    // And the connection it used still works for ordinary calls.
    store.push("/slow/client", &[b"x"], None).unwrap();
    assert_eq!(
        store.pop("/slow/client").unwrap().as_deref(),
        Some(&b"x"[..])
    );
}

#[test]
fn a_slow_server_is_a_timeout_error() {
    let server = RedisServer::start();
    let options = RedisStoreOptions {
        response_timeout: Some(Duration::from_millis(200)),
        ..RedisStoreOptions::default()
    };
    let store = RedisStore::open_with(server.addr(), options).unwrap();
    // A connection to pause: a busy machine may miss the short timeout
    // where nothing slows the server down, so tried until it answers.
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(err) = store.ping() {
        assert!(Instant::now() < deadline, "{err:?}");
    }
    let mut raw = server.raw();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1000)
        .query(&mut raw)
        .unwrap();
    let err = store.pop("/paused/client").unwrap_err();
    assert!(matches!(err, StoreError::Timeout { .. }), "{err:?}");
    // Once the pause ends, the store works again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.pop("/paused/client").is_err() {
        assert!(
            Instant::now() < deadline,
            "the store did not recover after the pause"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn errors_and_debug_never_show_the_password() {
    let port = free_port();
    let store = RedisStore::open(format!("redis://:s3cret-pw@127.0.0.1:{port}/")).unwrap();
    assert!(!format!("{store:?}").contains("s3cret-pw"));
    let err = store.ping().unwrap_err();
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret-pw"), "{err:?}");
}

/// A server that accepts connections and never answers.
fn silent_server() -> (u16, thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().take(8) {
            held.push(socket);
        }
    });
    (port, handle)
}

/// The connect timeout bounds the whole connect: resolving aside, the TCP
/// connect and the handshake (AUTH, SELECT) share one deadline. (redis-rs
/// alone waits the whole timeout once per handshake reply.)
#[test]
fn the_connect_timeout_bounds_the_handshake() {
    let (port, _server) = silent_server();
    let connect_timeout = Duration::from_millis(400);
    let options = RedisStoreOptions {
        connect_timeout,
        ..RedisStoreOptions::default()
    };
    for url in [
        format!("redis://:pw@127.0.0.1:{port}/3"),
        format!("redis://user:pw@localhost:{port}/1"),
    ] {
        // Generous against a loaded machine, well below the four timeouts
        // of a handshake that waits once per reply.
        support::within_three_tries(|| {
            let store = RedisStore::open_with(url.as_str(), options.clone()).unwrap();
            let start = Instant::now();
            let err = store.ping().unwrap_err();
            let took = start.elapsed();
            assert!(
                matches!(err, StoreError::Timeout { timeout, .. } if timeout == connect_timeout),
                "{url}: {err}"
            );
            support::over(took, connect_timeout * 5 / 2).map(|over| format!("{url}: {over}"))
        });
    }
}

/// Past `maxclients`, Redis says so before it closes the connection: the
/// error carries its words, as a connection error (a later call may pass).
#[test]
fn maxclients_reached_is_a_connection_error_in_the_servers_words() {
    let server = RedisServer::start_with(&["--maxclients", "1"]);
    let _only_client = server.raw();
    for url in [
        format!("127.0.0.1:{}", server.port()),
        format!("redis://:nopass@127.0.0.1:{}/2", server.port()),
    ] {
        for _ in 0..5 {
            let err = RedisStore::open(url.as_str()).unwrap().ping().unwrap_err();
            assert!(err.is_connection(), "{err}");
            assert!(
                err.to_string().contains("max number of clients reached"),
                "{err}"
            );
        }
    }
}

/// A name that does not resolve: nothing was sent, a connection error.
#[test]
fn an_unresolvable_host_is_a_connection_error() {
    let store = RedisStore::open("nonexistent.invalid:6379").unwrap();
    let err = store.ping().unwrap_err();
    assert!(matches!(err, StoreError::Connection { .. }), "{err}");
    assert!(err.to_string().contains("cannot resolve"), "{err}");
}

/// The ACL user the deployments guide gives (its `ACL SETUSER` line, read
/// from the guide) passes every conformance suite, leases included: the
/// line names every command the store sends and its scripts call.
#[cfg(feature = "conformance")]
#[test]
fn the_documented_acl_user_passes_every_suite() {
    let backend = support::RedisBackend::new();
    support::add_documented_user(&mut backend.server.raw(), &["on >password"]);
    let url = format!("redis://app:password@127.0.0.1:{}/", backend.server.port());
    let limited = support::RedisBackend {
        store: RedisStore::open(url.as_str()).unwrap(),
        ..backend
    };
    redisutil::conformance::run_all(&limited);
    redisutil::conformance::run_all_leases(&limited);
    // The async store too (its cancelled waits are cut with CLIENT UNBLOCK).
    #[cfg(feature = "tokio")]
    {
        use redisutil::conformance::AsyncHarness;
        let store = redisutil::aio::AsyncRedisStore::open(url.as_str()).unwrap();
        let harness = AsyncHarness::new(limited, store);
        redisutil::conformance::run_all(&harness);
        redisutil::conformance::run_all_leases(&harness);
    }
}

/// The same on a Cluster, with the guide's line for a Cluster's nodes
/// added on every node.
#[cfg(all(feature = "conformance", feature = "cluster"))]
#[test]
fn the_documented_acl_user_passes_every_suite_on_a_cluster() {
    let backend = support::ClusterBackend::new();
    for seed in backend.cluster.seeds() {
        let port: u16 = seed.rsplit(':').next().unwrap().parse().unwrap();
        support::add_documented_user(
            &mut backend.cluster.raw(port),
            &["on >password", "every node of a Cluster"],
        );
    }
    let options = redisutil::RedisClusterStoreOptions {
        auth: Some(redisutil::RedisAuth::user("app", "password")),
        ..Default::default()
    };
    let limited = support::ClusterBackend {
        store: redisutil::RedisClusterStore::open_with(backend.cluster.seeds(), options).unwrap(),
        ..backend
    };
    redisutil::conformance::run_all(&limited);
    redisutil::conformance::run_all_leases(&limited);
}

/// An ACL user without scripting: the operations that need a script fail
/// with the server's NOPERM, and nothing is lost or half-written.
#[test]
fn without_scripting_rights_nothing_is_lost_or_half_written() {
    let server = RedisServer::start();
    let mut admin = server.raw();
    redis::cmd("ACL")
        .arg(&[
            "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all", "-eval", "-evalsha",
        ])
        .exec(&mut admin)
        .unwrap();
    let url = format!("redis://limited:pw@127.0.0.1:{}/", server.port());
    let store = RedisStore::open(url.as_str()).unwrap();
    let options = redisutil::ChannelOptions {
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let client = RedisChannel::with_options(store.clone(), "/acl", Peer::Client, options).unwrap();
    let server_end = RedisChannel::new(store.clone(), "/acl", Peer::Server).unwrap();
    let plain_client = RedisChannel::new(store, "/acl", Peer::Client).unwrap();

    let err = client.send_msg(&1).unwrap_err();
    assert!(err.to_string().contains("NOPERM"), "{err}");
    assert_eq!(
        server_end.peek_msg::<i32>().unwrap(),
        None,
        "nothing pushed"
    );

    plain_client.send_msgs(["old", "new"]).unwrap();
    let err = server_end.recv_last_msg::<String>().unwrap_err();
    assert!(err.to_string().contains("NOPERM"), "{err}");
    let err = server_end
        .brecv_last_msg::<String>(Duration::from_secs(1))
        .unwrap_err();
    assert!(err.to_string().contains("NOPERM"), "{err}");
    assert_eq!(
        server_end.recv_msg::<String>().unwrap().as_deref(),
        Some("old")
    );
    assert_eq!(
        server_end.recv_msg::<String>().unwrap().as_deref(),
        Some("new")
    );
}

/// The extreme `Duration`s are timeouts like any other: no overflow on
/// connect, handshake or read.
#[test]
fn duration_max_timeouts_work() {
    let server = RedisServer::start();
    let options = RedisStoreOptions {
        connect_timeout: Duration::MAX,
        response_timeout: Some(Duration::MAX),
        ..RedisStoreOptions::default()
    };
    let url = format!("redis://127.0.0.1:{}/1", server.port());
    let store = RedisStore::open_with(url.as_str(), options).unwrap();
    store.ping().unwrap();
    store
        .push("k", &[b"v"], Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(
        store.blocking_pop("k", Some(Duration::MAX)).unwrap(),
        Some(b"v".to_vec())
    );
}

/// ACL users given in the options (in place of the address's): one with
/// the rights the channel needs works; a wrong password and a user
/// without the list commands fail with the server's own words, and no
/// password shows in any error or `Debug`.
#[test]
fn acl_users_in_the_options_work_or_fail_clearly_without_showing_passwords() {
    let server = RedisServer::start();
    let mut admin = server.raw();
    for rule in [
        [
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">app-pass-1",
            "~*",
            "&*",
            "+@all",
        ],
        [
            "ACL",
            "SETUSER",
            "reader",
            "on",
            ">reader-pass-2",
            "~*",
            "&*",
            "+get",
        ],
    ] {
        let mut command = redis::cmd(rule[0]);
        for arg in &rule[1..] {
            command.arg(*arg);
        }
        command.exec(&mut admin).unwrap();
    }
    let with = |auth: redisutil::RedisAuth| {
        let options = RedisStoreOptions {
            auth: Some(auth),
            ..RedisStoreOptions::default()
        };
        // A password in the address is replaced by the options' one.
        RedisStore::open_with(
            format!("redis://ignored:url-pass-3@{}", server.addr()),
            options,
        )
        .unwrap()
    };
    let app = with(redisutil::RedisAuth::user("app", "app-pass-1"));
    let client = RedisChannel::new(app.clone(), "/acl", Peer::Client).unwrap();
    let worker = RedisChannel::new(app.clone(), "/acl", Peer::Server).unwrap();
    client.send_msg(&1).unwrap();
    let delivery = worker
        .lease_msg::<u32>(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert!(worker.ack(&delivery).unwrap());

    let wrong = with(redisutil::RedisAuth::user("app", "not-the-pass-4"));
    let err = wrong.ping().unwrap_err();
    assert!(err.to_string().contains("WRONGPASS"), "{err}");
    let reader = with(redisutil::RedisAuth::user("reader", "reader-pass-2"));
    let err = RedisChannel::new(reader.clone(), "/acl", Peer::Client)
        .unwrap()
        .send_msg(&2)
        .unwrap_err();
    assert!(err.to_string().contains("NOPERM"), "{err}");
    for shown in [
        format!("{app:?}"),
        format!("{wrong:?}"),
        format!("{reader:?}"),
        err.to_string(),
        wrong.ping().unwrap_err().to_string(),
    ] {
        for secret in [
            "app-pass-1",
            "reader-pass-2",
            "url-pass-3",
            "not-the-pass-4",
        ] {
            assert!(!shown.contains(secret), "{secret} shows in {shown}");
        }
    }
}
