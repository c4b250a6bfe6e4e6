//! The proxy client over `https` (feature `tls-rustls`): the loopback
//! test server speaks TLS (rustls, with certificates made by `openssl`
//! when the tests start) before an in-memory proxy server that checks
//! signatures. A certificate the client does not trust makes a host
//! unreachable, so the next host is tried; mutual TLS needs the client's
//! certificate.

use crate::proxy_support;
use crate::support;

use std::thread;
use std::time::Duration;

use proxy_support::{TestServer, first_transport_failure};
use redisutil::TlsOptions;
use redisutil::proxy::{
    Credentials, Error, MemoryProxy, ProxyConfig, ProxyHost, RedisProxyClient, SignatureVersion,
    Signer, TransportErrorKind, UreqConfig, UreqTransport,
};
use support::tls::{Certs, server_config};

/// An in-memory proxy server that checks signatures, over https with the
/// certificate `cert`; its host by the name `localhost`.
fn https_server(cert: &str, clients_from: Option<&str>) -> (TestServer, ProxyHost) {
    let proxy = MemoryProxy::builder()
        .signer(Signer::new(credentials(), SignatureVersion::default()))
        .build();
    let server = TestServer::serve_tls(
        move |request| proxy.handle(request),
        server_config(cert, clients_from),
    );
    let host = ProxyHost::new("localhost", server.host().port());
    (server, host)
}

const SECRET: &str = "proxy-secret-key";

fn credentials() -> Credentials {
    Credentials::new("access", SECRET)
}

/// A client over https to `hosts` (one cluster) trusting the test CA.
fn client(hosts: Vec<ProxyHost>, tls: TlsOptions) -> RedisProxyClient<UreqTransport> {
    let config = ProxyConfig {
        proxy_hosts: vec![hosts],
        credentials: Some(credentials()),
        https: true,
        ..ProxyConfig::default()
    };
    let transport =
        UreqTransport::with_tls(UreqConfig::with_timeout(Duration::from_secs(2)), &tls).unwrap();
    RedisProxyClient::new(transport, config).unwrap()
}

fn trusting_the_test_ca() -> TlsOptions {
    TlsOptions {
        ca_pem: Some(Certs::get().pem("ca.pem")),
        client: None,
    }
}

#[test]
fn signed_requests_verify_over_https() {
    let (_server, host) = https_server("server", None);
    let client = client(vec![host], trusting_the_test_ca());
    client.hset("h", "f", &[1, 2, 3]).unwrap();
    assert_eq!(client.hget::<Vec<u32>>("h", "f").unwrap(), [1, 2, 3]);
    client.delete("h").unwrap();
    assert!(client.get::<u32>("h").unwrap_err().is_key_not_found());
}

#[test]
fn a_certificate_not_trusted_makes_a_host_unreachable_and_the_next_answers() {
    let (_expired_server, expired) = https_server("expired", None);
    let (_good_server, good) = https_server("server", None);
    thread::sleep(Duration::from_millis(1100)); // the expired one's last second is over
    let alone = client(vec![expired.clone()], trusting_the_test_ca());
    let err = alone.set("k", "v").unwrap_err();
    assert_eq!(
        first_transport_failure(&err),
        TransportErrorKind::Unreachable,
        "{err}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(!err.to_string().contains(SECRET), "{err}");

    let failing_over = client(vec![expired, good.clone()], trusting_the_test_ca());
    failing_over.set("k", "v").unwrap();
    assert_eq!(failing_over.get::<String>("k").unwrap(), "v");

    // Mozilla's roots do not hold the test CA.
    let public_roots = client(vec![good], TlsOptions::default());
    let err = public_roots.get::<String>("k").unwrap_err();
    assert_eq!(
        first_transport_failure(&err),
        TransportErrorKind::Unreachable,
        "{err}"
    );
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let (_server, host) = https_server("server", Some("ca.pem"));
    let with_identity = TlsOptions {
        client: Some(Certs::get().client()),
        ..trusting_the_test_ca()
    };
    let client_ok = client(vec![host.clone()], with_identity);
    client_ok.set("k", &7).unwrap();
    assert_eq!(client_ok.get::<u32>("k").unwrap(), 7);
    let err = client(vec![host], trusting_the_test_ca())
        .get::<u32>("k")
        .unwrap_err();
    assert!(matches!(err, Error::SendRequest { .. }), "{err}");
}

#[test]
fn unusable_certificates_are_refused_when_the_transport_is_built() {
    for tls in [
        TlsOptions {
            ca_pem: Some(b"not PEM".to_vec()),
            client: None,
        },
        TlsOptions {
            ca_pem: None,
            client: Some(redisutil::ClientIdentity {
                cert_pem: Certs::get().pem("client.pem"),
                key_pem: b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"
                    .to_vec(),
            }),
        },
    ] {
        let err = UreqTransport::with_tls(UreqConfig::default(), &tls).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    }
}
