//! TLS redis-servers for the tests and the benchmark: certificates made
//! by `openssl` once per process (a CA, another CA, a server certificate
//! for `localhost`, an expired one, a client certificate), and a
//! redis-server serving TLS only.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redisutil::{ClientIdentity, RedisStore, RedisStoreOptions, TlsOptions};

use super::free_port;
use super::process::Guarded;

/// The certificates of the tests, made once per test process.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn get() -> &'static Certs {
        static CERTS: OnceLock<Certs> = OnceLock::new();
        CERTS.get_or_init(|| {
            let found = Command::new("openssl").arg("version").output();
            assert!(
                found.is_ok_and(|output| output.status.success()),
                "these tests make their certificates with openssl, which was not found on PATH: \
                 install it (Debian/Ubuntu: `apt-get install openssl`; macOS: `brew install openssl`)"
            );
            let dir = std::env::temp_dir().join(format!("redisutil-tls-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let certs = Certs { dir };
            certs.authority("ca");
            certs.authority("other-ca");
            certs.signed("server", "ca", "DNS:localhost", "serverAuth", 2);
            certs.signed("expired", "ca", "DNS:localhost", "serverAuth", 0);
            certs.signed("client", "ca", "DNS:client", "clientAuth", 2);
            certs.signed(
                "node",
                "ca",
                "DNS:localhost,IP:127.0.0.1",
                "serverAuth,clientAuth",
                2,
            );
            certs
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A self-signed CA: `<name>.pem`, `<name>.key`.
    fn authority(&self, name: &str) {
        let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
        let subject = format!("/CN=redisutil test {name}");
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subject,
        ]);
    }

    /// A certificate `ca` signed for `san`, valid `days` (0: expired from
    /// the next second on): `<name>.pem`, `<name>.key`.
    fn signed(&self, name: &str, ca: &str, san: &str, usage: &str, days: u32) {
        let (pem, key, csr, ext) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
        );
        std::fs::write(
            self.path(&ext),
            format!("subjectAltName={san}\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        let subject = format!("/CN={name}");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
        ]);
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            &days.to_string(),
            "-extfile",
            &ext,
        ]);
    }

    pub fn client(&self) -> ClientIdentity {
        ClientIdentity {
            cert_pem: self.pem("client.pem"),
            key_pem: self.pem("client.key"),
        }
    }
}

/// A redis-server serving TLS only, with the certificate `cert`.
pub struct TlsRedis {
    _process: Guarded,
    pub port: u16,
    dir: PathBuf,
}

impl TlsRedis {
    /// Starts it on a free port; on another if the port was taken before
    /// the server bound it.
    pub fn start(cert: &str, auth_clients: bool) -> Self {
        for _attempt in 0..5 {
            if let Some(server) = Self::start_on(free_port(), cert, auth_clients) {
                return server;
            }
        }
        panic!("the TLS redis-server did not start on a free port after 5 tries");
    }

    fn start_on(port: u16, cert: &str, auth_clients: bool) -> Option<Self> {
        let certs = Certs::get();
        let dir = std::env::temp_dir().join(format!("redisutil-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str| certs.path(name).display().to_string();
        let args: Vec<String> = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &file(&format!("{cert}.pem")),
            "--tls-key-file",
            &file(&format!("{cert}.key")),
            "--tls-ca-cert-file",
            &file("ca.pem"),
            "--tls-auth-clients",
            if auth_clients { "yes" } else { "no" },
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        let mut process = Guarded::spawn(&args, Some(&dir));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                process.kill();
                let _ = std::fs::remove_dir_all(&dir);
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self {
            _process: process,
            port,
            dir,
        })
    }

    pub fn url(&self, host: &str) -> String {
        format!("rediss://{host}:{}", self.port)
    }

    /// A store that trusts the test CA (and presents `client`).
    pub fn store(&self, client: Option<ClientIdentity>) -> RedisStore {
        RedisStore::open_with(self.url("localhost"), options(Some("ca.pem"), client)).unwrap()
    }

    /// A raw redis-rs connection over TLS, for checks the store does not offer.
    pub fn raw(&self) -> redis::Connection {
        let certs = Certs::get();
        let tls = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(certs.pem("ca.pem")),
        };
        redis::Client::build_with_tls(self.url("localhost"), tls)
            .and_then(|client| client.get_connection())
            .expect("a raw TLS connection")
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Store options that trust the CA file `ca` (none: the system's roots)
/// and present `client`.
pub fn options(ca: Option<&str>, client: Option<ClientIdentity>) -> RedisStoreOptions {
    RedisStoreOptions {
        tls: Some(TlsOptions {
            ca_pem: ca.map(|ca| Certs::get().pem(ca)),
            client,
        }),
        ..RedisStoreOptions::default()
    }
}

/// The rustls server settings of the certificate `cert` (`<cert>.pem`,
/// `<cert>.key`); with `clients_from`, only clients with a certificate
/// that CA signed get through.
pub fn server_config(cert: &str, clients_from: Option<&str>) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}
