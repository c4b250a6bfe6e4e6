//! `UreqTransport`'s choices over real HTTP on loopback: a redirect is
//! never followed (it is a `ServerResponse` carrying its status and its
//! scrubbed `Location`), a proxy named in the environment is ignored, and a
//! name that does not resolve is unreachable (nothing sent).

#![cfg(feature = "ureq")]

use crate::proxy_support;

use std::time::Duration;

use proxy_support::{TestServer, first_transport_failure, memory_server};
use redisutil::proxy::{
    Credentials, Error, ProxyConfig, ProxyHost, RedisProxyClient, TransportErrorKind, UreqConfig,
    UreqTransport,
};

fn config(hosts: Vec<ProxyHost>) -> ProxyConfig {
    ProxyConfig {
        proxy_hosts: vec![hosts],
        credentials: Some(Credentials::new("access", "secret")),
        ..ProxyConfig::default()
    }
}

/// A client over real HTTP with a 2 s timeout: no host here is waited
/// out, and a busy machine may hold one up a few hundred ms.
fn connect(config: ProxyConfig) -> Result<RedisProxyClient<UreqTransport>, Error> {
    RedisProxyClient::connect_with(config, UreqConfig::with_timeout(Duration::from_secs(2)))
}

/// A host answering `status` with a `Location` on `target`, same path and
/// query (so the signature would be valid there).
fn redirecting(status: u16, target: &ProxyHost) -> TestServer {
    let target = target.clone();
    TestServer::serve(move |request| {
        let location = format!(
            "http://{target}{}",
            request.uri().path_and_query().map_or("/", |pq| pq.as_str())
        );
        http::Response::builder()
            .status(status)
            .header("location", location)
            .body(b"moved".to_vec())
            .expect("response")
    })
}

#[test]
fn redirects_are_errors_and_never_followed() {
    let (target, _proxy) = memory_server();
    for status in [301u16, 302, 303, 307, 308] {
        let server = redirecting(status, &target.host());
        let client = connect(config(vec![server.host()])).expect("client");
        let results = [
            ("get", client.get::<String>("k").map(drop)),
            ("set", client.set("k", "v")),
            ("delete", client.delete("k")),
        ];
        for (op, result) in results {
            match result {
                Err(
                    ref error @ Error::ServerResponse {
                        status: answered,
                        ref host,
                        ref location,
                        ..
                    },
                ) => {
                    assert_eq!(answered.as_u16(), status, "{op}");
                    assert_eq!(host, &server.host(), "{op}");
                    let location = location.as_deref().expect("location kept");
                    assert!(location.contains(&target.host().to_string()), "{op}");
                    assert!(location.contains("X-Amz-Signature=REDACTED"), "{location}");
                    let message = error.to_string();
                    assert!(message.contains(&status.to_string()), "{message}");
                    assert!(message.contains("X-Amz-Signature=REDACTED"), "{message}");
                }
                other => panic!("{op} after {status}: expected ServerResponse, got {other:?}"),
            }
        }
        assert_eq!(server.requests(), 3, "one request per call, for {status}");
        assert_eq!(
            target.requests(),
            0,
            "the location was requested after {status}"
        );
    }
}

#[test]
fn a_redirect_is_not_a_reason_to_try_the_next_host() {
    let (target, _proxy) = memory_server();
    let server = redirecting(307, &target.host());
    let (next, _next_proxy) = memory_server();
    let client = connect(config(vec![server.host(), next.host()])).expect("client");
    let error = client.set("k", "v").expect_err("redirected");
    assert!(matches!(error, Error::ServerResponse { status, .. } if status.as_u16() == 307));
    assert_eq!(next.requests(), 0);
    assert_eq!(target.requests(), 0);
}

#[test]
fn a_name_that_does_not_resolve_is_unreachable() {
    let client =
        connect(config(vec![ProxyHost::new("nonexistent.invalid", 2222)])).expect("client");
    for error in [
        client.get::<String>("k").expect_err("no such name"),
        client.set("k", "v").expect_err("no such name"),
    ] {
        assert_eq!(
            first_transport_failure(&error),
            TransportErrorKind::Unreachable,
            "{error}"
        );
    }
}

/// Set in the child process of the environment-proxy test.
const CHILD: &str = "REDISUTIL_PROXY_ENV_CHILD";

#[test]
fn a_proxy_named_in_the_environment_is_not_used() {
    let interloper = TestServer::serve(|_| {
        http::Response::builder()
            .status(200)
            .body(br#""from the proxy""#.to_vec())
            .expect("response")
    });
    let url = format!("http://{}", interloper.host());
    // The variables are set in a child process: setting them here would
    // race with the other tests' threads.
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([&child_test_name(), "--exact", "--nocapture"])
        .env(CHILD, "1")
        .env("ALL_PROXY", &url)
        .env("HTTP_PROXY", &url)
        .env("http_proxy", &url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .status()
        .expect("run the child");
    assert!(status.success(), "the child failed");
    assert_eq!(interloper.requests(), 0, "a request went to the proxy");
}

/// The child of [`a_proxy_named_in_the_environment_is_not_used`]: does
/// nothing unless run by it.
#[test]
fn env_proxy_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let (server, _proxy) = memory_server();
    let client = connect(config(vec![server.host()])).expect("client");
    let error = client.get::<String>("k").expect_err("nothing stored");
    assert!(error.is_key_not_found(), "{error}");
}

/// `env_proxy_child`'s name as the test harness knows it (its module path
/// without the crate's name).
fn child_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    format!("{module}::env_proxy_child")
}
