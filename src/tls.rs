//! TLS to Redis (feature `tls-rustls`): [`TlsOptions`], the certificates
//! a `rediss://` connection trusts and presents.

use std::fmt;

/// The certificates of TLS connections to Redis (`rediss://` addresses).
///
/// `Default` verifies the server against the system's root certificates
/// and presents no client certificate. Verification is never skipped but
/// by the address: `rediss://host:port/#insecure`, which needs the feature
/// `tls-rustls-insecure`.
///
/// ```no_run
/// # #[cfg(feature = "tls-rustls")] {
/// use redisutil::{ClientIdentity, RedisStore, RedisStoreOptions, TlsOptions};
///
/// let options = RedisStoreOptions {
///     tls: Some(TlsOptions {
///         ca_pem: Some(std::fs::read("ca.pem")?),
///         client: Some(ClientIdentity {
///             cert_pem: std::fs::read("client.pem")?,
///             key_pem: std::fs::read("client.key")?,
///         }),
///     }),
///     ..RedisStoreOptions::default()
/// };
/// let store = RedisStore::open_with("rediss://redis.internal:6380", options)?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// CA certificates (PEM) to trust instead of the system's roots: for a
    /// server whose certificate your own CA signed.
    pub ca_pem: Option<Vec<u8>>,
    /// A certificate and key to present, for a server that checks its
    /// clients (`tls-auth-clients yes`: mutual TLS).
    pub client: Option<ClientIdentity>,
}

/// A client certificate (chain) and its private key, both PEM. `Debug`
/// never shows the key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    /// The certificate chain, the client's own first.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("***"))
            .finish()
    }
}

impl TlsOptions {
    /// Why these certificates cannot be used: a PEM without a certificate,
    /// a client key that is not one.
    #[cfg(feature = "tls-rustls")]
    pub(crate) fn check(&self) -> Result<(), String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let certificates = |what: &str, pem: &[u8]| {
            let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
            match parsed {
                Ok(found) if !found.is_empty() => Ok(()),
                Ok(_) => Err(format!("the {what} holds no PEM certificate")),
                Err(err) => Err(format!("the {what} is not PEM: {err}")),
            }
        };
        if let Some(ca) = &self.ca_pem {
            certificates("CA certificate", ca)?;
        }
        if let Some(client) = &self.client {
            certificates("client certificate", &client.cert_pem)?;
            // The key's own bytes never go into the messages.
            let key = PrivateKeyDer::from_pem_slice(&client.key_pem)
                .map_err(|_| "the client key is no PEM private key".to_owned())?;
            let chain = CertificateDer::pem_slice_iter(&client.cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "the client certificate is not PEM".to_owned())?;
            install_crypto_provider();
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_client_auth_cert(chain, key)
                .map_err(|err| match err {
                    rustls::Error::InconsistentKeys(_) => {
                        "the client key does not belong to the client certificate".to_owned()
                    }
                    _ => "the client key cannot be used".to_owned(),
                })?;
        }
        Ok(())
    }
}

/// The rustls configuration of TLS connections to Redis: the roots of
/// `options` (or the system's), its client certificate if any; without
/// verifying the server's certificate when `insecure` (feature
/// `tls-rustls-insecure` only: the callers refuse `#insecure` without it).
/// Why not, in words that quote no key.
#[cfg(all(feature = "tls-rustls", feature = "redis"))]
pub(crate) fn redis_client_config(
    options: Option<&TlsOptions>,
    insecure: bool,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    install_crypto_provider();
    let default = TlsOptions::default();
    let options = options.unwrap_or(&default);
    options.check()?;
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca_pem {
        Some(ca) => {
            for certificate in CertificateDer::pem_slice_iter(ca) {
                let certificate = certificate.map_err(|_| "the CA certificate is not PEM")?;
                roots
                    .add(certificate)
                    .map_err(|err| format!("the CA certificate cannot be used: {err}"))?;
            }
        }
        None => {
            let (added, _unusable) =
                roots.add_parsable_certificates(system_roots().iter().cloned());
            if added == 0 && !insecure {
                return Err("no CA certificate given, and none found on the system".into());
            }
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match &options.client {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let chain = CertificateDer::pem_slice_iter(&client.cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "the client certificate is not PEM")?;
            let key = PrivateKeyDer::from_pem_slice(&client.key_pem)
                .map_err(|_| "the client key is no PEM private key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| "the client key cannot be used")?
        }
    };
    // Without the feature, the stores refuse `#insecure` before this.
    #[cfg(feature = "tls-rustls-insecure")]
    if insecure {
        config
            .dangerous()
            .set_certificate_verifier(std::sync::Arc::new(insecure::AcceptAnyCertificate));
    }
    config.enable_sni = true;
    Ok(std::sync::Arc::new(config))
}

/// The system's root certificates, read once per process.
#[cfg(all(feature = "tls-rustls", feature = "redis"))]
fn system_roots() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// A verifier that accepts any certificate, for `#insecure` addresses.
#[cfg(feature = "tls-rustls-insecure")]
mod insecure {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub(super) struct AcceptAnyCertificate;

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

/// Makes rustls's `ring` provider the process default unless another one
/// is already: rustls cannot choose by itself when a program's other
/// dependencies enable a second provider.
#[cfg(feature = "tls-rustls")]
pub(crate) fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let options = TlsOptions {
            ca_pem: None,
            client: Some(ClientIdentity {
                cert_pem: b"CERT".to_vec(),
                key_pem: b"-----BEGIN PRIVATE KEY-----secret".to_vec(),
            }),
        };
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("PRIVATE"),
            "{shown}"
        );
        assert!(shown.contains("***"));
    }
}
