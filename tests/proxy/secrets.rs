//! No secret key in any `Debug`, `Display` or error string, and no live
//! presigned URL (signature or credential values) in errors.

#![cfg(feature = "ureq")]

use crate::proxy_support;

use redisutil::ManualClock;
use redisutil::proxy::{
    Credentials, Error, FakeTransport, HttpTransport, MemoryProxy, Outcome, ProxyConfig,
    RedisProxyClient, SignatureVersion, Signer, TransportError, UreqTransport,
};

const SECRET: &str = "S3cr3t-d1st1nct1ve-XYZZY";
const ACCESS: &str = "AKIDVISIBLEACCESS";

/// Answers 500 with the request's own presigned URL in the body, as a
/// careless server might.
struct EchoUrl;

impl HttpTransport for EchoUrl {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let mut response =
            http::Response::new(format!("bad request {}", request.uri()).into_bytes());
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        Ok(response)
    }
}

fn make_config(version: SignatureVersion, hosts: Vec<redisutil::proxy::ProxyHost>) -> ProxyConfig {
    ProxyConfig {
        proxy_hosts: vec![hosts],
        credentials: Some(Credentials::new(ACCESS, SECRET)),
        signature: version,
        ..ProxyConfig::default()
    }
}

fn assert_clean(what: &str, text: &str, signatures: &[String]) {
    assert!(!text.contains(SECRET), "{what} leaks the secret: {text}");
    for signature in signatures {
        assert!(
            !text.contains(signature.as_str()),
            "{what} leaks a signature: {text}"
        );
    }
}

#[test]
fn secrets_and_signatures_never_show() {
    let host = redisutil::proxy::ProxyHost::new("127.0.0.1", 2222);
    for version in [SignatureVersion::v4(), SignatureVersion::v2()] {
        let credentials = Credentials::new(ACCESS, SECRET);
        let signer = Signer::new(credentials.clone(), version.clone());
        let server = MemoryProxy::builder()
            .clock(ManualClock::default())
            .signer(signer.clone())
            .build();
        let config = make_config(version.clone(), vec![host.clone()]);

        // What the client signs, to know the values that must not leak.
        let fake = FakeTransport::new();
        fake.set_default(&host, Outcome::status(503));
        let client = RedisProxyClient::new(&fake, config.clone())
            .expect("client")
            .with_clock(ManualClock::default());
        let unavailable = client.get::<String>("k").expect_err("503");
        let signatures: Vec<String> = fake
            .requests()
            .iter()
            .flat_map(|request| {
                request
                    .uri()
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter(|pair| {
                        pair.starts_with("X-Amz-Signature=") || pair.starts_with("Signature=")
                    })
                    .map(|pair| pair.split_once('=').expect("pair").1.to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(!signatures.is_empty());

        let echo = RedisProxyClient::new(EchoUrl, config.clone())
            .expect("client")
            .with_clock(ManualClock::default());
        let echoed = echo.set("k", "v").expect_err("500");
        assert!(matches!(echoed, Error::ServerResponse { .. }));
        assert!(echoed.to_string().contains("REDACTED"), "{echoed}");
        assert!(
            !echoed.to_string().contains(&format!("{ACCESS}%2F")),
            "{echoed}"
        );
        assert!(
            !echoed
                .to_string()
                .contains(&format!("AWSAccessKeyId={ACCESS}")),
            "{echoed}"
        );

        let dead = proxy_support::closed_port();
        let real =
            RedisProxyClient::new(UreqTransport::default(), make_config(version, vec![dead]))
                .expect("client");
        let refused = real.get::<String>("k").expect_err("nothing listens");

        let texts = [
            ("credentials", format!("{credentials:?}")),
            ("signer", format!("{signer:?}")),
            ("server", format!("{server:?}")),
            ("config", format!("{config:?}")),
            ("client", format!("{client:?}")),
            ("echo client", format!("{echo:?}")),
            ("unavailable", format!("{unavailable} {unavailable:?}")),
            ("echoed", format!("{echoed} {echoed:?}")),
            ("refused", format!("{refused} {refused:?}")),
        ];
        for (what, text) in &texts {
            assert_clean(what, text, &signatures);
        }
    }
}
