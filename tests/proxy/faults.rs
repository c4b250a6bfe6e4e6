//! Hostile and broken proxy servers over real HTTP on loopback: garbage,
//! truncated and stalled responses, resets, 200 with invalid JSON, enormous
//! bodies, and backup clusters partly down during writes.

#![cfg(feature = "ureq")]

use crate::proxy_support;

use std::time::{Duration, Instant};

use proxy_support::{AfterReply, TestServer, closed_port, first_transport_failure, memory_server};
use redisutil::proxy::{
    Error, ProxyConfig, ProxyHost, RedisProxyClient, TransportErrorKind, UreqConfig,
};

/// Long enough for a healthy host a busy machine holds up a few hundred ms.
const TIMEOUT: Duration = Duration::from_secs(1);

fn client(clusters: Vec<Vec<ProxyHost>>) -> RedisProxyClient<redisutil::proxy::UreqTransport> {
    RedisProxyClient::connect_with(
        ProxyConfig {
            proxy_hosts: clusters,
            ..ProxyConfig::default()
        },
        UreqConfig {
            max_response_body: 64 * 1024,
            ..UreqConfig::with_timeout(TIMEOUT)
        },
    )
    .expect("client")
}

/// A broken host alone fails with a transport error of `kind` and without
/// panic; in front of a healthy host, the call fails over and succeeds.
fn broken_host_fails_over(broken: TestServer, kinds: &[TransportErrorKind]) {
    let alone = client(vec![vec![broken.host()]]);
    let error = alone.get::<String>("k").expect_err("a broken host");
    let kind = first_transport_failure(&error);
    assert!(kinds.contains(&kind), "{kind:?} not in {kinds:?}: {error}");
    let (good, proxy) = memory_server();
    let both = client(vec![vec![broken.host(), good.host()]]);
    both.set("k", "v")
        .expect("the healthy host takes the write");
    assert_eq!(both.get::<String>("k").expect("read"), "v");
    assert_eq!(proxy.requests_handled(), 2);
}

#[test]
fn garbage_instead_of_http_is_a_bad_response() {
    let garbage = TestServer::raw(&b"\x00\xffSSH-2.0-not-http\r\n\r\n"[..], AfterReply::Close);
    broken_host_fails_over(
        garbage,
        &[
            TransportErrorKind::BadResponse,
            TransportErrorKind::NoResponse,
        ],
    );
}

#[test]
fn a_truncated_response_is_an_error() {
    let truncated = TestServer::raw(
        &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n\"only part"[..],
        AfterReply::Close,
    );
    broken_host_fails_over(
        truncated,
        &[
            TransportErrorKind::BadResponse,
            TransportErrorKind::NoResponse,
        ],
    );
}

#[test]
fn a_host_stalling_mid_body_times_out_within_bounds() {
    let stalled = TestServer::raw(
        &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n\"ten bytes"[..],
        AfterReply::Stall,
    );
    let started = Instant::now();
    let alone = client(vec![vec![stalled.host()]]);
    let error = alone.get::<String>("k").expect_err("a stalled body");
    assert_eq!(
        first_transport_failure(&error),
        TransportErrorKind::TimedOut,
        "{error}"
    );
    assert!(
        started.elapsed() < TIMEOUT * 3,
        "the timeout held: {:?}",
        started.elapsed()
    );
    broken_host_fails_over(stalled, &[TransportErrorKind::TimedOut]);
}

#[test]
fn a_reset_connection_is_an_error_and_failover() {
    broken_host_fails_over(
        TestServer::reset(),
        &[
            TransportErrorKind::NoResponse,
            TransportErrorKind::Unreachable,
        ],
    );
}

#[test]
fn ok_with_invalid_json_is_a_decode_error_holding_the_body() {
    let liar = TestServer::serve(|_| http::Response::new(b"{not json".to_vec()));
    let error = client(vec![vec![liar.host()]])
        .get::<String>("k")
        .expect_err("not json");
    match error {
        Error::Decode { ref body, .. } => assert_eq!(body, b"{not json"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn an_enormous_body_is_refused_without_reading_it_all() {
    let huge = TestServer::serve(|_| http::Response::new(vec![b'7'; 8 << 20]));
    let error = client(vec![vec![huge.host()]])
        .get::<u64>("k")
        .expect_err("over the bound");
    assert_eq!(
        first_transport_failure(&error),
        TransportErrorKind::BadResponse,
        "{error}"
    );
}

#[test]
fn writes_to_partly_down_backup_clusters_name_who_took_them() {
    let (first, first_proxy) = memory_server();
    let (third, third_proxy) = memory_server();
    let clusters = vec![vec![first.host()], vec![closed_port()], vec![third.host()]];
    let error = client(clusters)
        .set("k", "v")
        .expect_err("cluster 1 is down");
    let text = error.to_string();
    match &error {
        Error::PartialWrite { written, failed } => {
            assert_eq!(written, &[0, 2]);
            assert_eq!(failed.iter().map(|f| f.cluster).collect::<Vec<_>>(), [1]);
        }
        other => panic!("expected a partial write, got {other:?}"),
    }
    println!("{text}");
    assert!(
        text.contains("cluster 1") && text.contains("0, 2"),
        "{text}"
    );
    // The clusters that took the write have it.
    for proxy in [&first_proxy, &third_proxy] {
        let one = proxy.clone();
        let reader =
            RedisProxyClient::new(one, ProxyConfig::with_hosts([("127.0.0.1", 1)])).unwrap();
        assert_eq!(reader.get::<String>("k").expect("written"), "v");
    }
}
