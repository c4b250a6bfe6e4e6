//! `UreqTransport` over real HTTP on loopback, against a small HTTP/1.1
//! server (tests/proxy_support) that serves `MemoryProxy::handle`: a closed
//! port, a host that never answers, a host that hangs up, a host answering
//! 503, keep-alive, the body bound, and the seed's synopsis end to end.

#![cfg(feature = "ureq")]

use crate::proxy_support;

use std::time::{Duration, Instant};

use proxy_support::{TestServer, closed_port, first_transport_failure, memory_server};
use redisutil::ManualClock;
use redisutil::proxy::{
    AttemptFailure, CallOptions, Credentials, Error, HttpTransport, MemoryProxy, ProxyConfig,
    ProxyHost, RedisProxyClient, SignatureVersion, Signer, TransportErrorKind, UreqConfig,
    UreqTransport,
};

/// Long enough for a healthy host a busy machine holds up a few hundred ms.
const TIMEOUT: Duration = Duration::from_secs(1);

fn config(hosts: Vec<ProxyHost>) -> ProxyConfig {
    ProxyConfig {
        proxy_hosts: vec![hosts],
        ..ProxyConfig::default()
    }
}

/// A client over real HTTP with [`TIMEOUT`].
fn connect(config: ProxyConfig) -> Result<RedisProxyClient<UreqTransport>, Error> {
    RedisProxyClient::connect_with(config, UreqConfig::with_timeout(TIMEOUT))
}

#[test]
fn a_closed_port_is_unreachable_and_skipped() {
    let dead = closed_port();
    let (server, _proxy) = memory_server();
    let alone = connect(config(vec![dead.clone()])).expect("client");
    let error = alone.get::<String>("k").expect_err("nothing listens");
    assert_eq!(
        first_transport_failure(&error),
        TransportErrorKind::Unreachable
    );

    let client = connect(config(vec![dead, server.host()])).expect("client");
    client.set("k", "v").expect("second host takes it");
    assert_eq!(client.get::<String>("k").expect("read back"), "v");
}

#[test]
fn a_silent_host_times_out_within_bounds() {
    let silent = TestServer::silent();
    let client = connect(config(vec![silent.host()])).expect("client");
    let started = Instant::now();
    let error = client.get::<String>("k").expect_err("no answer");
    let elapsed = started.elapsed();
    assert_eq!(
        first_transport_failure(&error),
        TransportErrorKind::TimedOut
    );
    assert!(
        elapsed < TIMEOUT * 3,
        "took {elapsed:?} for a {TIMEOUT:?} timeout"
    );
    assert_eq!(silent.connections(), 1);
}

#[test]
fn a_host_that_hangs_up_gave_no_response() {
    let rude = TestServer::hang_up();
    let (server, _proxy) = memory_server();
    let alone = connect(config(vec![rude.host()])).expect("client");
    let error = alone.get::<String>("k").expect_err("hung up");
    assert_eq!(
        first_transport_failure(&error),
        TransportErrorKind::NoResponse
    );
    let client = connect(config(vec![rude.host(), server.host()])).expect("client");
    client.set("k", &7).expect("failover");
    assert_eq!(client.get::<u8>("k").expect("read back"), 7);
}

#[test]
fn a_503_host_fails_over_to_the_next() {
    let busy = TestServer::serve(|_| {
        let mut response = http::Response::new(b"busy".to_vec());
        *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        response
    });
    let (server, _proxy) = memory_server();
    let client = connect(config(vec![busy.host(), server.host()])).expect("client");
    client.set("k", "v").expect("second host takes it");
    assert_eq!(client.get::<String>("k").expect("read back"), "v");
    assert_eq!(busy.requests(), 2);
    assert_eq!(server.requests(), 2);
    let alone = connect(config(vec![busy.host()])).expect("client");
    match alone.get::<String>("k") {
        Err(Error::SendRequest { attempts }) => assert_eq!(
            attempts[0].failure,
            AttemptFailure::Unavailable(http::StatusCode::SERVICE_UNAVAILABLE)
        ),
        other => panic!("expected SendRequest, got {other:?}"),
    }
}

#[test]
fn connections_are_kept_alive_and_reused() {
    let (server, _proxy) = memory_server();
    let client = connect(config(vec![server.host()])).expect("client");
    for index in 0..20 {
        client.set(&format!("k{index}"), &index).expect("set");
        assert_eq!(client.get::<u32>(&format!("k{index}")).expect("get"), index);
    }
    assert_eq!(server.requests(), 40);
    assert_eq!(server.connections(), 1);
}

#[test]
fn response_bodies_are_bounded() {
    let big = TestServer::serve(|_| http::Response::new(vec![b'x'; 64 * 1024]));
    let transport = UreqTransport::new(UreqConfig {
        max_response_body: 1024,
        ..UreqConfig::default()
    });
    let host = big.host();
    let request = http::Request::get(format!("http://{host}/redisproxy/v1/GET/k?n=3&w=2&r=2"))
        .header("host", host.to_string())
        .body(Vec::new())
        .expect("request");
    let error = transport.send(request.clone()).expect_err("over the bound");
    assert_eq!(error.kind(), TransportErrorKind::BadResponse);
    let roomy = UreqTransport::default();
    assert_eq!(
        roomy.send(request).expect("within the bound").body().len(),
        64 * 1024
    );
}

/// The seed's proxy synopsis, over HTTP, signed, on a manual clock.
#[test]
fn the_seed_synopsis_runs_end_to_end() {
    let clock = ManualClock::default();
    let credentials = Credentials::new("access-key", "secret-key");
    let proxy = MemoryProxy::builder()
        .clock(clock.clone())
        .signer(Signer::new(
            credentials.clone(),
            SignatureVersion::default(),
        ))
        .build();
    let served = proxy.clone();
    let server = TestServer::serve(move |request| served.handle(request));
    let dead = closed_port();
    let cli = connect(ProxyConfig {
        credentials: Some(credentials),
        ..config(vec![server.host(), dead])
    })
    .expect("client")
    .with_clock(clock.clone());
    let msec = Duration::from_millis;

    cli.set_with("k1", "v1", &CallOptions::new().retry(1))
        .expect("set k1");
    cli.set_with("k2", "v2", &CallOptions::new().expire(msec(1000)))
        .expect("set k2");
    assert_eq!(
        cli.get_with::<String>("k1", &CallOptions::new().retry(2))
            .expect("k1"),
        "v1"
    );
    assert_eq!(cli.get::<String>("k2").expect("k2"), "v2");
    clock.advance(msec(1000));
    assert!(cli.get::<String>("k2").unwrap_err().is_key_not_found());

    cli.hset("hashname1", "k3", "v3").expect("hset k3");
    cli.hset_with(
        "hashname2",
        "k4",
        "v4",
        &CallOptions::new().expire(msec(1000)),
    )
    .expect("hset k4");
    assert_eq!(cli.hget::<String>("hashname1", "k3").expect("k3"), "v3");
    assert_eq!(cli.hget::<String>("hashname2", "k4").expect("k4"), "v4");
    clock.advance(msec(1000));
    assert!(
        cli.hget::<String>("hashname2", "k4")
            .unwrap_err()
            .is_key_not_found()
    );

    // A client with the wrong secret is refused by the server.
    let intruder = connect(ProxyConfig {
        credentials: Some(Credentials::new("access-key", "guessed")),
        ..config(vec![server.host()])
    })
    .expect("client")
    .with_clock(clock);
    assert!(matches!(
        intruder.get::<String>("k1"),
        Err(Error::ServerResponse { status, .. }) if status == 403
    ));
}
