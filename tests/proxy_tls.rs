//! The proxy client over `https` (feature `tls-rustls`): a TLS front on
//! loopback (rustls, with certificates made by `openssl` when the tests
//! start) passes requests to an in-memory proxy server that checks their
//! signatures. A certificate the client does not trust makes a host
//! unreachable, so the next host is tried; mutual TLS needs the client's
//! certificate.

mod proxy_support;
mod support;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use proxy_support::{TestServer, first_transport_failure};
use redisutil::TlsOptions;
use redisutil::proxy::{
    Credentials, Error, MemoryProxy, ProxyConfig, ProxyHost, RedisProxyClient, SignatureVersion,
    Signer, TransportErrorKind, UreqConfig, UreqTransport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::tls::Certs;

/// A TLS server on loopback that passes the plaintext to `backend`.
struct TlsFront {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl TlsFront {
    /// Serves the certificate `cert` (`<cert>.pem`, `<cert>.key`); with
    /// `clients_from`, only clients with a certificate that CA signed.
    fn start(backend: SocketAddr, cert: &str, clients_from: Option<&str>) -> Self {
        let certs = Certs::get();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&certs.pem(&format!("{cert}.pem")))
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&certs.pem(&format!("{cert}.key"))).unwrap();
        let builder = rustls::ServerConfig::builder();
        let builder = match clients_from {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for root in CertificateDer::pem_slice_iter(&certs.pem(ca)) {
                    roots.add(root.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let (Ok(client), config, stop) =
                    (client, Arc::clone(&config), Arc::clone(&stopping))
                else {
                    continue;
                };
                thread::spawn(move || relay(client, backend, config, &stop));
            }
        });
        Self { port, stop }
    }

    fn host(&self) -> ProxyHost {
        ProxyHost::new("localhost", self.port)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Passes bytes both ways between a TLS client and the plain `backend`
/// until either side closes.
fn relay(
    client: TcpStream,
    backend: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    stop: &AtomicBool,
) {
    let tick = Some(Duration::from_millis(1));
    let Ok(mut plain) = TcpStream::connect(backend) else {
        return;
    };
    if client.set_read_timeout(tick).is_err() || plain.set_read_timeout(tick).is_err() {
        return;
    }
    let _ = (client.set_nodelay(true), plain.set_nodelay(true));
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), client);
    let mut buffer = vec![0; 64 * 1024];
    let waiting = |err: &io::Error| {
        matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        )
    };
    while !stop.load(Ordering::SeqCst) {
        match tls.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => {
                if plain.write_all(&buffer[..read]).is_err() {
                    return;
                }
            }
            Err(err) if waiting(&err) => {}
            Err(_) => return,
        }
        match plain.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => {
                if tls
                    .write_all(&buffer[..read])
                    .and_then(|()| tls.flush())
                    .is_err()
                {
                    return;
                }
            }
            Err(err) if waiting(&err) => {}
            Err(_) => return,
        }
    }
}

const SECRET: &str = "proxy-secret-key";

/// An in-memory proxy server that checks signatures, over plain HTTP.
fn signed_backend() -> (TestServer, MemoryProxy) {
    let proxy = MemoryProxy::builder()
        .signer(Signer::new(credentials(), SignatureVersion::default()))
        .build();
    let served = proxy.clone();
    (
        TestServer::serve(move |request| served.handle(request)),
        proxy,
    )
}

fn credentials() -> Credentials {
    Credentials::new("access", SECRET)
}

fn backend_addr(server: &TestServer) -> SocketAddr {
    let host = server.host();
    format!("{}:{}", host.ip(), host.port()).parse().unwrap()
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
    let (backend, data) = signed_backend();
    let front = TlsFront::start(backend_addr(&backend), "server", None);
    let client = client(vec![front.host()], trusting_the_test_ca());
    client.hset("h", "f", &[1, 2, 3]).unwrap();
    assert_eq!(client.hget::<Vec<u32>>("h", "f").unwrap(), [1, 2, 3]);
    client.delete("h").unwrap();
    assert!(client.get::<u32>("h").unwrap_err().is_key_not_found());
    let _ = data;
}

#[test]
fn a_certificate_not_trusted_makes_a_host_unreachable_and_the_next_answers() {
    let (backend, _data) = signed_backend();
    let expired = TlsFront::start(backend_addr(&backend), "expired", None);
    let good = TlsFront::start(backend_addr(&backend), "server", None);
    thread::sleep(Duration::from_millis(1100)); // the expired one's last second is over
    let alone = client(vec![expired.host()], trusting_the_test_ca());
    let err = alone.set("k", "v").unwrap_err();
    assert_eq!(
        first_transport_failure(&err),
        TransportErrorKind::Unreachable,
        "{err}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(!err.to_string().contains(SECRET), "{err}");

    let failing_over = client(vec![expired.host(), good.host()], trusting_the_test_ca());
    failing_over.set("k", "v").unwrap();
    assert_eq!(failing_over.get::<String>("k").unwrap(), "v");

    // Mozilla's roots do not hold the test CA.
    let public_roots = client(vec![good.host()], TlsOptions::default());
    let err = public_roots.get::<String>("k").unwrap_err();
    assert_eq!(
        first_transport_failure(&err),
        TransportErrorKind::Unreachable,
        "{err}"
    );
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let (backend, _data) = signed_backend();
    let front = TlsFront::start(backend_addr(&backend), "server", Some("ca.pem"));
    let with_identity = TlsOptions {
        client: Some(Certs::get().client()),
        ..trusting_the_test_ca()
    };
    let client_ok = client(vec![front.host()], with_identity);
    client_ok.set("k", &7).unwrap();
    assert_eq!(client_ok.get::<u32>("k").unwrap(), 7);
    let err = client(vec![front.host()], trusting_the_test_ca())
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
