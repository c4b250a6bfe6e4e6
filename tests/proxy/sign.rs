//! The signer against independent references: the `aws-sigv4` crate on
//! generated requests, AWS's published examples, and the in-memory proxy's
//! refusal of any mutation of a signed request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use redisutil::ManualClock;
use redisutil::proxy::{
    CallOptions, Credentials, FakeTransport, MemoryProxy, Nwr, Outcome, ProxyConfig,
    RedisProxyClient, SignatureVersion, Signer,
};

/// How many generated requests are compared with `aws-sigv4`.
const ORACLE_CASES: u32 = 512;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn query_param(request: &http::Request<Vec<u8>>, name: &str) -> Option<String> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// The signature `aws-sigv4` computes for the unsigned part of `request`.
///
/// For service `s3` the oracle runs in its S3 mode (single encoding, no
/// path normalisation), which signs the path exactly as given; it is given
/// the path as `k3awssign` and the servers read it, with an escaped `/` or
/// `.` decoded (the only escapes of the client's paths that decode to
/// something `k3awssign` keeps unescaped). Other services use the default
/// mode (double encoding, normalised paths), which is `k3awssign`'s too.
fn oracle_signature(
    request: &http::Request<Vec<u8>>,
    credentials: (&str, &str),
    region: &str,
    service: &str,
    expires: Duration,
    time: SystemTime,
) -> (String, Vec<(String, String)>) {
    let uri = request.uri().to_string();
    let unsigned = &uri[..uri.find("&X-Amz-Algorithm=").expect("signed query")];
    let s3 = service == "s3";
    let unsigned = if s3 {
        let (path, query) = unsigned.split_once('?').expect("a query");
        format!("{}?{query}", path.replace("%2F", "/").replace("%2E", "."))
    } else {
        unsigned.to_owned()
    };
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().expect("text header")))
        .collect();
    let identity =
        aws_credential_types::Credentials::new(credentials.0, credentials.1, None, None, "test")
            .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    if s3 {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    } else {
        settings.percent_encoding_mode = PercentEncodingMode::Double;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &unsigned,
        headers.into_iter(),
        SignableBody::UnsignedPayload,
    )
    .expect("signable request");
    let (instructions, signature) = sign(signable, &params).expect("oracle signs").into_parts();
    let params = instructions
        .params()
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.to_string()))
        .collect();
    (signature, params)
}

#[derive(Debug, Clone)]
struct Case {
    verb: usize,
    key: String,
    field: String,
    value: String,
    expire_ms: Option<u64>,
    nwr: (u32, u32, u32),
    seconds: u64,
    region: &'static str,
    service: &'static str,
    expires: u64,
    access_key: String,
    secret_key: String,
}

fn key_text() -> impl Strategy<Value = String> {
    // Plenty of characters that must be escaped, plus non-ASCII.
    let text =
        proptest::string::string_regex("[a-zA-Z0-9/?#+% &=;:@!*'()~._\\-é日本🦀\\[\\]]{1,24}")
            .expect("regex");
    // And dot segments, sent escaped.
    let dots = prop::sample::select(vec![".", "..", "...", "/..", "../x"]).prop_map(str::to_owned);
    prop_oneof![8 => text, 1 => dots]
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (0usize..9, key_text(), key_text(), ".{0,40}"),
        (
            proptest::option::of(1u64..10_000_000),
            (1u32..9, 1u32..9, 1u32..9),
            946_684_800u64..4_102_444_800,
        ),
        (
            prop::sample::select(vec!["us-east-1", "eu-west-3", "cn-north-1"]),
            prop::sample::select(vec!["s3", "redisproxy"]),
            1u64..604_800,
            "[A-Z0-9]{4,20}",
            "[ -~]{1,40}",
        ),
    )
        .prop_map(
            |(
                (verb, key, field, value),
                (expire_ms, nwr, seconds),
                (region, service, expires, access_key, secret_key),
            )| Case {
                verb,
                key,
                field,
                value,
                expire_ms,
                nwr,
                seconds,
                region,
                service,
                expires,
                access_key,
                secret_key,
            },
        )
}

/// Runs one client call of `case` and returns the request it sent.
fn sent_request(case: &Case) -> http::Request<Vec<u8>> {
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:2222", Outcome::json(200, &["x"]));
    let config = ProxyConfig {
        credentials: Some(Credentials::new(&case.access_key, &case.secret_key)),
        signature: SignatureVersion::V4 {
            region: case.region.to_owned(),
            service: case.service.to_owned(),
            expires: Duration::from_secs(case.expires),
        },
        nwr: Nwr::new(case.nwr.0, case.nwr.1, case.nwr.2),
        ..ProxyConfig::with_hosts([("127.0.0.1", 2222)])
    };
    let client = RedisProxyClient::new(&fake, config)
        .expect("client")
        .with_clock(ManualClock::new(at(case.seconds)));
    let write = match case.expire_ms {
        Some(ms) => CallOptions::new().expire(Duration::from_millis(ms)),
        None => CallOptions::new(),
    };
    let (key, field) = (case.key.as_str(), case.field.as_str());
    let _ = match case.verb {
        0 => client.get::<serde_json::Value>(key).map(drop),
        1 => client.set_with(key, &case.value, &write),
        2 => client.hget::<serde_json::Value>(key, field).map(drop),
        3 => client.hset_with(key, field, &case.value, &write),
        4 => client.hkeys(key).map(drop),
        5 => client.hvals::<serde_json::Value>(key).map(drop),
        6 => client.hgetall::<serde_json::Value>(key).map(drop),
        7 => client.delete(key),
        _ => client.hdel(key, field),
    };
    fake.requests().pop().expect("one request sent")
}

#[test]
fn sigv4_matches_aws_sigv4_crate_on_generated_requests() {
    let compared = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: ORACLE_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&cases(), |case| {
            let request = sent_request(&case);
            let (expected, oracle_params) = oracle_signature(
                &request,
                (&case.access_key, &case.secret_key),
                case.region,
                case.service,
                Duration::from_secs(case.expires),
                at(case.seconds),
            );
            let ours = query_param(&request, "X-Amz-Signature").expect("signature sent");
            prop_assert_eq!(&ours, &expected, "request {}", request.uri());
            for (name, value) in &oracle_params {
                if name == "X-Amz-Signature" {
                    continue;
                }
                let sent = query_param(&request, name).expect("parameter sent");
                let sent = sent.replace("%2F", "/").replace("%3B", ";");
                prop_assert_eq!(&sent, value, "parameter {}", name);
            }
            compared.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .expect("every generated request signs as aws-sigv4 does");
    let compared = compared.load(Ordering::SeqCst);
    println!("sigv4 oracle comparisons: {compared}");
    assert!(
        compared >= ORACLE_CASES as usize,
        "only {compared} comparisons"
    );
}

/// One signer keeps its day's signing key: signing across midnight, back
/// to an earlier day and again must still agree with `aws-sigv4` every
/// time, and a clone or a second thread must sign the same.
#[test]
fn sigv4_one_signer_across_days_matches_aws_sigv4_crate() {
    let credentials = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let expires = Duration::from_secs(60);
    let signer = Signer::new(
        Credentials::new(credentials.0, credentials.1),
        SignatureVersion::v4(),
    );
    let midnight = 1_700_092_800; // 2023-11-16T00:00:00Z
    let times = [
        midnight - 2,
        midnight - 1,
        midnight,
        midnight + 1,
        midnight - 1,
        midnight + 86_400 * 400,
        midnight,
    ];
    let unsigned = || {
        http::Request::put("http://127.0.0.1:2222/redisproxy/v1/SET/k%2Fey?n=3&w=2&r=2")
            .header("host", "127.0.0.1:2222")
            .header("content-length", "2")
            .body(b"{}".to_vec())
            .expect("request")
    };
    // Signs a fresh request and checks it against the oracle.
    let sign_and_compare = |signer: &Signer, seconds: u64, how: &str| {
        let mut request = unsigned();
        signer.presign(&mut request, at(seconds)).expect("signs");
        let (expected, _) = oracle_signature(
            &request,
            credentials,
            "us-east-1",
            "s3",
            expires,
            at(seconds),
        );
        let ours = query_param(&request, "X-Amz-Signature").expect("signature sent");
        assert_eq!(ours, expected, "signed at {seconds} {how}");
        request
    };
    for seconds in times {
        for signer in [signer.clone(), signer.clone(), signer.clone()] {
            let request = sign_and_compare(&signer, seconds, "on a clone");
            assert_eq!(signer.verify(&request, at(seconds)), Ok(()));
        }
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| sign_and_compare(&signer, seconds, "on a thread"));
            }
        });
    }
}

/// AWS's published presigned GET example (S3 docs, "Authenticating
/// Requests: Using Query Parameters").
#[test]
fn sigv4_reproduces_the_published_s3_presigned_example() {
    let signer = Signer::new(
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        SignatureVersion::V4 {
            region: "us-east-1".into(),
            service: "s3".into(),
            expires: Duration::from_secs(86_400),
        },
    );
    let mut request = http::Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
        .header("host", "examplebucket.s3.amazonaws.com")
        .body(Vec::new())
        .expect("request");
    let signed_at = at(1_369_353_600); // 20130524T000000Z
    signer.presign(&mut request, signed_at).expect("signs");
    assert_eq!(
        request.uri().query(),
        Some(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        )
    );
    assert_eq!(signer.verify(&request, signed_at), Ok(()));
    assert!(signer.verify(&request, at(1_369_353_600 + 86_401)).is_err());
}

/// AWS's published SigV2 query-string example (puppy.jpg, Expires
/// 1175139620), in path style.
#[test]
fn sigv2_reproduces_the_published_s3_example() {
    let signer = Signer::new(
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        SignatureVersion::V2 {
            expires: Duration::from_secs(20),
        },
    );
    let mut request = http::Request::get("http://s3.amazonaws.com/johnsmith/photos/puppy.jpg")
        .header("host", "s3.amazonaws.com")
        .body(Vec::new())
        .expect("request");
    signer
        .presign(&mut request, at(1_175_139_600))
        .expect("signs");
    assert_eq!(
        request.uri().query(),
        Some(
            "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620\
             &Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D"
        )
    );
    assert_eq!(signer.verify(&request, at(1_175_139_620)), Ok(()));
    assert!(signer.verify(&request, at(1_175_139_621)).is_err());
}

const ACCESS: &str = "AKIDTESTACCESS";
const SECRET: &str = "test-secret/+key";
const START: u64 = 1_600_000_000;

/// A signed PUT and GET as the client sends them, and a server that checks
/// `version`.
fn signed_pair(
    version: SignatureVersion,
) -> (MemoryProxy, ManualClock, Vec<http::Request<Vec<u8>>>) {
    let clock = ManualClock::new(at(START));
    let credentials = Credentials::new(ACCESS, SECRET);
    let server = MemoryProxy::builder()
        .clock(clock.clone())
        .signer(Signer::new(credentials.clone(), version.clone()))
        .build();
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:2222", Outcome::json(200, "ok"));
    let config = ProxyConfig {
        credentials: Some(credentials),
        signature: version,
        ..ProxyConfig::with_hosts([("127.0.0.1", 2222)])
    };
    let client = RedisProxyClient::new(&fake, config)
        .expect("client")
        .with_clock(clock.clone());
    client
        .set_with(
            "key/é?",
            "value",
            &CallOptions::new().expire(Duration::from_secs(600)),
        )
        .expect("fake answers 200");
    client.get::<String>("key/é?").expect("fake answers 200");
    (server, clock, fake.requests())
}

fn with_query(request: &http::Request<Vec<u8>>, query: &str) -> http::Request<Vec<u8>> {
    let mut changed = request.clone();
    *changed.uri_mut() = format!("http://127.0.0.1:2222{}?{query}", request.uri().path())
        .parse()
        .expect("uri");
    changed
}

#[test]
fn memory_proxy_accepts_what_the_client_signs_and_refuses_every_mutation_v4() {
    let (server, clock, requests) = signed_pair(SignatureVersion::default());
    let (put, get) = (&requests[0], &requests[1]);
    assert_eq!(server.handle(put).status(), 200);
    assert_eq!(server.handle(get).status(), 200);
    assert_eq!(server.handle(get).body(), b"\"value\"");

    let query = put.uri().query().expect("query").to_owned();
    let mut mutations: Vec<(&str, http::Request<Vec<u8>>)> = Vec::new();

    let mut path = put.clone();
    *path.uri_mut() = format!("http://127.0.0.1:2222/redisproxy/v1/SET/other?{query}")
        .parse()
        .expect("uri");
    mutations.push(("path", path));
    mutations.push(("n", with_query(put, &query.replacen("n=3", "n=4", 1))));
    mutations.push((
        "expire",
        with_query(put, &query.replacen("expire=600000", "expire=1", 1)),
    ));
    mutations.push(("extra parameter", with_query(put, &format!("a=1&{query}"))));
    let date = query_param(put, "X-Amz-Date").expect("date");
    let later = date.replacen(
        &date[13..15],
        if &date[13..15] == "00" { "01" } else { "00" },
        1,
    );
    mutations.push(("date", with_query(put, &query.replacen(&date, &later, 1))));
    let signature = query_param(put, "X-Amz-Signature").expect("signature");
    let flipped = format!(
        "{}{}",
        if signature.starts_with('0') { '1' } else { '0' },
        &signature[1..]
    );
    mutations.push((
        "signature",
        with_query(put, &query.replacen(&signature, &flipped, 1)),
    ));
    mutations.push((
        "no signature",
        with_query(
            put,
            &query.replacen(&format!("&X-Amz-Signature={signature}"), "", 1),
        ),
    ));
    let mut length = put.clone();
    length.body_mut().extend_from_slice(b"  ");
    let new_length = length.body().len().to_string();
    length
        .headers_mut()
        .insert("content-length", new_length.parse().expect("header"));
    mutations.push(("body length", length));
    let mut method = get.clone();
    *method.method_mut() = http::Method::DELETE;
    mutations.push(("method", method));
    let mut host = get.clone();
    host.headers_mut()
        .insert("host", "127.0.0.1:2223".parse().expect("header"));
    mutations.push(("host", host));

    for (what, request) in &mutations {
        assert_eq!(server.handle(request).status(), 403, "mutated {what}");
    }
    // The untouched requests still pass, until they expire (60 s).
    assert_eq!(server.handle(get).status(), 200);
    clock.advance(Duration::from_secs(61));
    let expired = server.handle(get);
    assert_eq!(expired.status(), 403);
    assert!(String::from_utf8_lossy(expired.body()).contains("expired"));
}

#[test]
fn memory_proxy_refuses_mutated_and_expired_v2_requests() {
    let (server, clock, requests) = signed_pair(SignatureVersion::v2());
    let (put, get) = (&requests[0], &requests[1]);
    assert_eq!(server.handle(put).status(), 200);
    assert_eq!(server.handle(get).status(), 200);
    let query = get.uri().query().expect("query").to_owned();
    let mut path = get.clone();
    *path.uri_mut() = format!("http://127.0.0.1:2222/redisproxy/v1/GET/other?{query}")
        .parse()
        .expect("uri");
    assert_eq!(server.handle(&path).status(), 403);
    let mut method = get.clone();
    *method.method_mut() = http::Method::DELETE;
    assert_eq!(server.handle(&method).status(), 403);
    let expires = query_param(get, "Expires").expect("expires");
    let later = (expires.parse::<u64>().expect("number") + 1).to_string();
    assert_eq!(
        server
            .handle(&with_query(get, &query.replacen(&expires, &later, 1)))
            .status(),
        403
    );
    assert_eq!(
        server
            .handle(&with_query(
                get,
                &query.replacen("Signature=", "Signature=A", 1)
            ))
            .status(),
        403
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(server.handle(get).status(), 403);
}

#[test]
fn a_server_with_other_credentials_refuses() {
    let (_, clock, requests) = signed_pair(SignatureVersion::default());
    let stranger = MemoryProxy::builder()
        .clock(clock)
        .signer(Signer::new(
            Credentials::new(ACCESS, "another secret"),
            SignatureVersion::default(),
        ))
        .build();
    assert_eq!(stranger.handle(&requests[1]).status(), 403);
}
