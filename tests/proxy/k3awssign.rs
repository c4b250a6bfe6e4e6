//! The V4 signer against `k3awssign` 0.1.9, the Python signer the proxy
//! servers verify with: requests the client sends for many keys (slashes,
//! escapes, dot segments, non-ASCII, generated ones), on every operation
//! and for services `s3` and another, must verify there.
//!
//! Needs a Python with k3awssign 0.1.9: `scripts/setup` makes a private venv
//! with it, which the test finds (see `tests/python_support/`). Without it the test fails, it never skips.

use crate::python_support;

use python_support::SETUP;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use redisutil::ManualClock;
use redisutil::proxy::{
    CallOptions, Credentials, FakeTransport, Outcome, ProxyConfig, RedisProxyClient,
    SignatureVersion,
};

/// Reads one request a line (JSON) and prints, for each, `ok` or what
/// k3awssign signed instead.
const VERIFIER: &str = r#"
import json, sys, urllib.parse
import k3awssign

for line in sys.stdin:
    case = json.loads(line)
    path, _, query = case["uri"].partition("?")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    signed = params["X-Amz-SignedHeaders"].split(";")
    request = {
        "verb": case["method"],
        "uri": case["uri"],
        "headers": {name: case["headers"][name] for name in signed},
    }
    signer = k3awssign.Signer(case["access"], case["secret"], case["region"], case["service"])
    ctx = signer.add_auth(
        request,
        query_auth=True,
        request_date=params["X-Amz-Date"],
        expires=params["X-Amz-Expires"],
    )
    if ctx["signature"] == params["X-Amz-Signature"]:
        print("ok")
    else:
        print(json.dumps({"uri": case["uri"], "canonical": ctx["canonical_request"]}))
"#;

/// Keys chosen by hand: every character class that needs care.
const KEYS: &[&str] = &[
    "plain", "a/b", "/lead", "trail/", "a//b", "%", "%2F", "%zz", "a+b", "+", "a b", " ", "?",
    "a?b=c&d", "#", "a#b", "é", "日本", "🦀", "~", "a~b", ".", "..", "...", "./x", "../x", "a/./b",
    "a/../b", "x.", ".x", "=", "&", ";", ":", "@", "!", "*", "'", "()", "[]", "\\", "\"", "\t",
    "a\u{7f}b", "-_.~",
];

fn generated_keys(count: usize) -> Vec<String> {
    let strategy = proptest::string::string_regex(
        "[a-zA-Z0-9/?#+% &=;:@!*'()~._\\-é日本🦀\\[\\]\"\\\\]{1,16}",
    )
    .expect("regex");
    let mut runner = TestRunner::deterministic();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).expect("key").current())
        .collect()
}

/// Every request the client sends for `key` (and `field`) on `service`.
fn requests(key: &str, field: &str, service: &str) -> Vec<http::Request<Vec<u8>>> {
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:2222", Outcome::json(200, &["x"]));
    let config = ProxyConfig {
        credentials: Some(Credentials::new("AKID/x", "secret+key/=")),
        signature: SignatureVersion::V4 {
            region: "us-east-1".into(),
            service: service.into(),
            expires: Duration::from_secs(60),
        },
        ..ProxyConfig::with_hosts([("127.0.0.1", 2222)])
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let client = RedisProxyClient::new(&fake, config)
        .expect("client")
        .with_clock(ManualClock::new(now));
    let expire = CallOptions::new().expire(Duration::from_millis(1500));
    let _ = client.get::<serde_json::Value>(key);
    let _ = client.set_with(key, "välue", &expire);
    let _ = client.hget::<serde_json::Value>(key, field);
    let _ = client.hset(key, field, &[1, 2]);
    let _ = client.hkeys(key);
    let _ = client.delete(key);
    let _ = client.hdel(key, field);
    let sent = fake.requests();
    assert_eq!(sent.len(), 7, "every call sent for {key:?}");
    sent
}

fn case_line(request: &http::Request<Vec<u8>>, service: &str) -> String {
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().expect("text header").to_owned();
            (name.as_str().to_owned(), value.into())
        })
        .collect();
    serde_json::json!({
        "method": request.method().as_str(),
        "uri": request.uri().path_and_query().expect("path").as_str(),
        "headers": headers,
        "access": "AKID/x",
        "secret": "secret+key/=",
        "region": "us-east-1",
        "service": service,
    })
    .to_string()
}

#[test]
fn k3awssign_verifies_what_the_client_signs() {
    let mut keys: Vec<String> = KEYS.iter().map(|&key| key.to_owned()).collect();
    keys.extend(generated_keys(150));
    let mut input = String::new();
    let mut count = 0;
    for service in ["s3", "redisproxy"] {
        for (index, key) in keys.iter().enumerate() {
            let field = &keys[(index * 7 + 3) % keys.len()];
            for request in requests(key, field, service) {
                input.push_str(&case_line(&request, service));
                input.push('\n');
                count += 1;
            }
        }
    }
    let program = format!("import k3awssign\n{VERIFIER}");
    let interpreter = python_support::interpreter();
    let mut child = Command::new(&interpreter)
        .args(["-c", &program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {interpreter:?} ({error}): {SETUP}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("python ran");
    let written = writer.join().expect("writer");
    // A Python that stops early (no k3awssign) breaks the pipe: say why first.
    assert!(
        output.status.success(),
        "{interpreter:?} failed (is k3awssign 0.1.9 installed? {SETUP}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    written.expect("input written");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), count, "one verdict per request");
    let refused: Vec<&&str> = lines.iter().filter(|line| **line != "ok").collect();
    assert!(
        refused.is_empty(),
        "{} of {count} refused by k3awssign, first: {}",
        refused.len(),
        refused[0]
    );
}
