//! The properties the fuzz targets check, one function per target. Shared
//! by the cargo-fuzz targets (`fuzz_targets/*.rs`) and by the main crate's
//! `tests/fuzz_corpus.rs`, which replays every corpus file on stable Rust.
//! Every function takes arbitrary bytes and panics when a property breaks.

#![allow(dead_code)] // each includer uses some of these

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use redisutil::proxy::{
    AttemptFailure, CallOptions, Credentials, Error as ProxyError, FakeTransport, HttpTransport,
    MemoryProxy, Outcome, ProxyConfig, ProxyHost, RedisProxyClient, SignatureVersion, Signer,
    TransportError, VerifyError,
};
use redisutil::{
    ChannelError, ChannelName, ListStore, ManualClock, MemoryStore, Peer, RedisChannel,
    list_channels,
};
use serde::Deserialize;
use serde_json::Value;

/// Splits `data` at the first `0xFF` byte (absent: everything is the first part).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Typed {
    id: u64,
    tags: Vec<String>,
    extra: Option<Value>,
}

/// A list element written by another program: decoding it gives the value
/// serde_json gives, or a decode error holding exactly its bytes.
pub fn channel_decode(data: &[u8]) {
    let store = MemoryStore::new();
    let server = RedisChannel::new(store.clone(), "/fuzz", Peer::Server).unwrap();
    let client = RedisChannel::new(store.clone(), "/fuzz", Peer::Client).unwrap();
    store
        .push(client.send_key(), &[data, data, data], None)
        .unwrap();

    let expected = serde_json::from_slice::<Value>(data).ok();
    let peeked = server.peek_msg::<Value>();
    match server.recv_msg::<Value>() {
        Ok(Some(value)) => {
            assert_eq!(Some(&value), expected.as_ref());
            assert_eq!(peeked.unwrap().as_ref(), Some(&value));
            // What we send back decodes to the same value.
            server.send_msg(&value).unwrap();
            assert_eq!(client.recv_msg::<Value>().unwrap(), Some(value));
        }
        Ok(None) => panic!("a message was there"),
        Err(ChannelError::Decode(err)) => {
            // Refused: not JSON, or an integer literal beyond 64 bits (at
            // least 19 digits), which would have changed as a float.
            assert!(
                expected.is_none() || has_digit_run(data, 19),
                "serde_json decodes it exactly, the channel did not"
            );
            assert_eq!(err.raw(), data);
            let _ = err.to_string();
        }
        Err(other) => panic!("unexpected error {other}"),
    }
    match server.recv_msg::<Typed>() {
        Ok(Some(typed)) => assert_eq!(serde_json::from_slice::<Typed>(data).ok(), Some(typed)),
        Ok(None) => panic!("a message was there"),
        Err(ChannelError::Decode(err)) => assert_eq!(err.into_raw(), data),
        Err(other) => panic!("unexpected error {other}"),
    }
    match server.recv_last_msg::<String>() {
        Ok(Some(text)) => assert_eq!(serde_json::from_slice::<String>(data).ok(), Some(text)),
        Ok(None) => panic!("a message was there"),
        Err(ChannelError::Decode(err)) => assert_eq!(err.raw(), data),
        Err(other) => panic!("unexpected error {other}"),
    }
    assert_eq!(server.recv_msg::<Value>().unwrap(), None);
}

fn has_digit_run(data: &[u8], len: usize) -> bool {
    data.split(|byte| !byte.is_ascii_digit())
        .any(|run| run.len() >= len)
}

fn name_is_valid(name: &str) -> bool {
    name.starts_with('/') && name != "/" && !name.ends_with('/') && !name.contains("//")
}

fn prefix_is_valid(prefix: &str) -> bool {
    prefix.starts_with('/') && prefix.ends_with('/') && (prefix == "/" || !prefix.contains("//"))
}

/// Channel names, list prefixes, and Redis keys back to channel names: the
/// rules hold exactly, and listing finds a channel iff it is under the prefix.
pub fn channel_names(data: &[u8]) {
    let (name, prefix) = split(data);
    let name = String::from_utf8_lossy(name);
    let prefix = String::from_utf8_lossy(prefix);

    let parsed = ChannelName::new(&name);
    assert_eq!(parsed.is_ok(), name_is_valid(&name), "{name:?}");
    if let Ok(parsed) = &parsed {
        assert_eq!(parsed.as_str(), name);
        let segments: Vec<&str> = name[1..].split('/').collect();
        let rebuilt = ChannelName::from_segments(&segments).expect("the segments of a valid name");
        assert_eq!(&rebuilt, parsed);
        for peer in [Peer::Client, Peer::Server] {
            let key = parsed.list_key(peer);
            assert_eq!(ChannelName::from_list_key(&key).as_ref(), Some(parsed));
        }
    }
    // Any key maps back to at most one channel, whose list it is.
    if let Some(channel) = ChannelName::from_list_key(&name) {
        assert!(name_is_valid(channel.as_str()));
        assert!(
            name == channel.list_key(Peer::Client) || name == channel.list_key(Peer::Server),
            "{name:?} -> {channel:?}"
        );
    }

    let store = MemoryStore::new();
    let decoy = "/zz-decoy/x";
    RedisChannel::new(&store, decoy, Peer::Client)
        .unwrap()
        .send_msg(&0)
        .unwrap();
    if let Ok(parsed) = &parsed {
        RedisChannel::new(&store, parsed, Peer::Server)
            .unwrap()
            .send_msg(&1)
            .unwrap();
    }
    match list_channels(&store, &prefix) {
        Ok(listed) => {
            assert!(prefix_is_valid(&prefix), "{prefix:?} was accepted");
            if let Ok(parsed) = &parsed {
                let expected = parsed.as_str().starts_with(&*prefix);
                assert_eq!(
                    listed.iter().any(|c| c == parsed.as_str()),
                    expected,
                    "{name:?} under {prefix:?}"
                );
            }
            assert_eq!(
                listed.iter().any(|c| c == decoy),
                decoy.starts_with(&*prefix)
            );
            assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        }
        Err(ChannelError::InvalidPrefix { .. }) => assert!(!prefix_is_valid(&prefix), "{prefix:?}"),
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// Reads structured values off the front of the fuzzer's bytes; past the
/// end every read gives zeros or empty slices.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    fn byte(&mut self) -> u8 {
        let (first, rest) = self
            .rest
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.rest = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// The bytes up to the next `0xFF` (or the end), which is consumed.
    fn part(&mut self) -> &'a [u8] {
        let (part, rest) = split(self.rest);
        self.rest = rest;
        part
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.part()).into_owned()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn pct_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-decodes to bytes; `None` on a bad escape.
fn pct_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?,
            );
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    Some(out)
}

type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// The query's parameters, decoded, in order.
fn query_params(query: &str) -> Option<Params> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((pct_decode(name)?, pct_decode(value)?))
        })
        .collect()
}

fn param_values(params: &Params, name: &str) -> Vec<Vec<u8>> {
    params
        .iter()
        .filter(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| value.clone())
        .collect()
}

/// A response with headers, for checking that headers change nothing.
struct HeaderedTransport {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

impl HttpTransport for HeaderedTransport {
    fn send(&self, _request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        let mut response = Response::new(self.body.clone());
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        Ok(response)
    }
}

#[derive(Debug, PartialEq)]
enum Got {
    Value(Value),
    Keys(Vec<String>),
    Values(Vec<Value>),
    All(HashMap<String, Value>),
    Done,
}

const OPS: [&str; 9] = [
    "get", "hget", "hkeys", "hvals", "hgetall", "set", "hset", "delete", "hdel",
];

fn call<T: HttpTransport>(
    client: &RedisProxyClient<T>,
    op: &str,
    options: &CallOptions,
) -> Result<Got, ProxyError> {
    Ok(match op {
        "get" => Got::Value(client.get_with("k", options)?),
        "hget" => Got::Value(client.hget_with("h", "f", options)?),
        "hkeys" => Got::Keys(client.hkeys_with("h", options)?),
        "hvals" => Got::Values(client.hvals_with("h", options)?),
        "hgetall" => Got::All(client.hgetall_with("h", options)?),
        "set" => client.set_with("k", &1, options).map(|()| Got::Done)?,
        "hset" => client
            .hset_with("h", "f", &1, options)
            .map(|()| Got::Done)?,
        "delete" => client.delete_with("k", options).map(|()| Got::Done)?,
        _ => client.hdel_with("h", "f", options).map(|()| Got::Done)?,
    })
}

/// What decoding `body` as `op`'s type gives, as serde_json sees it.
fn decoded(op: &str, body: &[u8]) -> Option<Got> {
    Some(match op {
        "get" | "hget" => Got::Value(serde_json::from_slice(body).ok()?),
        "hkeys" => Got::Keys(serde_json::from_slice(body).ok()?),
        "hvals" => Got::Values(serde_json::from_slice(body).ok()?),
        "hgetall" => Got::All(serde_json::from_slice(body).ok()?),
        _ => Got::Done,
    })
}

/// The longest the excerpt of a body in an error may be, in bytes.
const EXCERPT_BOUND: usize = 512;

/// Proxy response decoding: for any status and body (and headers), every
/// operation gives exactly what the protocol says, and errors stay small.
pub fn proxy_response(data: &[u8]) {
    let mut input = Input::new(data);
    let op = OPS[usize::from(input.byte()) % OPS.len()];
    let status = StatusCode::from_u16(100 + input.u16() % 900).unwrap();
    let retry = u32::from(input.byte() % 3);
    let host_count = 1 + usize::from(input.byte() % 3);
    let raw_headers = input.part();
    let body = input.rest().to_vec();

    let hosts: Vec<(String, u16)> = (0..host_count)
        .map(|index| (format!("10.0.0.{}", index + 1), 80))
        .collect();
    let fake = FakeTransport::new();
    for (ip, port) in &hosts {
        let outcome = Outcome::Respond {
            status,
            body: body.clone(),
        };
        fake.set_default(format!("{ip}:{port}"), outcome);
    }
    let config = ProxyConfig::with_hosts(hosts.clone());
    let options = CallOptions::new().retry(retry);
    let client = RedisProxyClient::new(&fake, config.clone())
        .unwrap()
        .with_clock(ManualClock::default());
    let got = call(&client, op, &options);
    let first = ProxyHost::new(hosts[0].0.clone(), hosts[0].1);

    match status.as_u16() {
        200 => match (decoded(op, &body), got) {
            (Some(expected), Ok(got)) => assert_eq!(got, expected),
            (
                None,
                Err(ProxyError::Decode {
                    host, body: kept, ..
                }),
            ) => {
                assert_eq!(host, first);
                assert_eq!(kept, body, "the decode error keeps the body");
            }
            // An integer beyond 64 bits (at least 19 digits) is refused
            // rather than changed into a float.
            (Some(_), Err(ProxyError::Decode { body: kept, .. })) if has_digit_run(&body, 19) => {
                assert_eq!(kept, body, "the decode error keeps the body");
            }
            (expected, got) => panic!("{op}: expected {expected:?}, got {got:?}"),
        },
        404 => match got {
            Err(ProxyError::KeyNotFound { key, host }) => {
                assert_eq!(host, first);
                let expected = if matches!(op, "get" | "set" | "delete") {
                    "k"
                } else if matches!(op, "hget" | "hset" | "hdel") {
                    "h/f"
                } else {
                    "h"
                };
                assert_eq!(key, expected);
            }
            other => panic!("{op} on 404: {other:?}"),
        },
        502..=504 => match got {
            Err(ProxyError::SendRequest { attempts }) => {
                assert_eq!(attempts.len(), (retry as usize + 1) * host_count);
                for attempt in &attempts {
                    assert_eq!(attempt.failure, AttemptFailure::Unavailable(status));
                }
            }
            other => panic!("{op} on {status}: {other:?}"),
        },
        _ => match got {
            Err(error @ ProxyError::ServerResponse { .. }) => {
                let message = error.to_string();
                let ProxyError::ServerResponse {
                    status: answered,
                    host,
                    body: excerpt,
                    ..
                } = error
                else {
                    unreachable!()
                };
                assert_eq!((answered, host), (status, first));
                assert!(
                    excerpt.len() <= EXCERPT_BOUND,
                    "excerpt of {} bytes",
                    excerpt.len()
                );
                if !body.contains(&b'=') {
                    let start = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BOUND)]);
                    assert!(
                        start.starts_with(&excerpt),
                        "{excerpt:?} is not the body's start"
                    );
                }
                assert!(
                    message.len() <= 8 * EXCERPT_BOUND,
                    "message of {} bytes",
                    message.len()
                );
            }
            other => panic!("{op} on {status}: {other:?}"),
        },
    }

    // Response headers change nothing.
    let mut headers = Vec::new();
    for line in raw_headers.split(|&b| b == b'\n').take(8) {
        let at = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let (name, value) = (&line[..at], line.get(at + 1..).unwrap_or_default());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.push((name, value));
        }
    }
    let headered = HeaderedTransport {
        status,
        headers,
        body,
    };
    let client = RedisProxyClient::new(&headered, config)
        .unwrap()
        .with_clock(ManualClock::default());
    let again = call(&client, op, &options);
    assert_eq!(
        again,
        call(
            &RedisProxyClient::new(&fake, client.config().clone())
                .unwrap()
                .with_clock(ManualClock::default()),
            op,
            &options
        )
    );
}

/// A status `MemoryProxy::handle` may answer.
const PROXY_STATUSES: [u16; 7] = [200, 400, 403, 404, 405, 409, 411];

/// Whatever the request, a 200 only ever follows a body whose length is the
/// declared `content-length` (which a PUT must declare).
fn check_answer(request: &Request<Vec<u8>>, status: StatusCode) {
    assert!(
        PROXY_STATUSES.contains(&status.as_u16()),
        "answered {status}"
    );
    if status == StatusCode::OK {
        match request.headers().get(CONTENT_LENGTH) {
            Some(value) => {
                let declared = value
                    .to_str()
                    .ok()
                    .and_then(|text| text.parse::<usize>().ok());
                assert_eq!(
                    declared,
                    Some(request.body().len()),
                    "200 with a wrong length"
                );
            }
            None => assert_ne!(request.method(), Method::PUT, "200 to a put with no length"),
        }
    }
}

fn fuzz_time(input: &mut Input<'_>) -> Option<SystemTime> {
    let seconds = input.u64();
    let nanos = input.u32() % 1_000_000_000;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

fn version(v2: bool, expires: Duration) -> SignatureVersion {
    let mut version = if v2 {
        SignatureVersion::v2()
    } else {
        SignatureVersion::v4()
    };
    match &mut version {
        SignatureVersion::V4 { expires: e, .. } | SignatureVersion::V2 { expires: e } => {
            *e = expires;
        }
        _ => unreachable!("two versions"),
    }
    version
}

const PROXY_HOST: &str = "127.0.0.1:2222";
const METHODS: [&str; 6] = ["GET", "PUT", "DELETE", "POST", "HEAD", "PATCH"];

/// One request from bytes: a flags byte (low nibble: the method; high
/// bits: add the path prefix, `n`/`w`/`r`, `host`, `content-length`), target, headers (`name:value` lines),
/// body; `None` when the parts do not make an HTTP request.
fn arbitrary_request(chunk: &[u8]) -> Option<Request<Vec<u8>>> {
    let mut input = Input::new(chunk);
    let flags = input.byte();
    let method = METHODS[usize::from(flags & 0x0F) % METHODS.len()];
    let mut target = Vec::new();
    if flags & 0x10 != 0 {
        target.extend_from_slice(b"/redisproxy/v1/");
    }
    target.extend_from_slice(input.part());
    if flags & 0x20 != 0 {
        target.extend_from_slice(b"?n=3&w=2&r=2");
    }
    let raw_headers = input.part();
    let body = input.rest().to_vec();
    let uri = http::Uri::try_from(target).ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    if flags & 0x40 != 0 {
        builder = builder.header(HOST, PROXY_HOST);
    }
    if flags & 0x80 != 0 {
        builder = builder.header(CONTENT_LENGTH, body.len());
    }
    for line in raw_headers.split(|&b| b == b'\n').take(8) {
        let at = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let name = HeaderName::from_bytes(&line[..at]).ok()?;
        let value = HeaderValue::from_bytes(line.get(at + 1..).unwrap_or_default()).ok()?;
        builder = builder.header(name, value);
    }
    builder.body(body).ok()
}

/// The in-memory proxy's request handling. First byte, bit 0: arbitrary
/// requests (0) or a correctly signed request then mutated (1); bit 1:
/// SigV2 instead of SigV4.
pub fn proxy_request(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    if mode & 1 == 0 {
        arbitrary_requests(mode, input);
    } else {
        mutated_request(mode & 2 != 0, input);
    }
}

/// Arbitrary requests, in sequence on one proxy (so reads find what writes
/// left), on a clock at any time: never a panic, only protocol statuses.
fn arbitrary_requests(mode: u8, mut input: Input<'_>) {
    let clock = ManualClock::new(fuzz_time(&mut input).unwrap_or(UNIX_EPOCH));
    let mut builder = MemoryProxy::builder().clock(clock.clone());
    if mode & 4 != 0 {
        let credentials = Credentials::new("AKID", "secret");
        builder = builder.signer(Signer::new(
            credentials,
            version(mode & 2 != 0, Duration::from_secs(60)),
        ));
    }
    let proxy = builder.build();
    for chunk in input.rest().split(|&b| b == 0xFE).take(16) {
        if let Some(request) = arbitrary_request(chunk) {
            let response = proxy.handle(&request);
            check_answer(&request, response.status());
        }
    }
}

/// A header's value as SigV4 signs it: values trimmed, inner runs of
/// whitespace made one space, joined by commas; `None` when absent or
/// not text.
fn v4_header(request: &Request<Vec<u8>>, name: &str) -> Option<String> {
    let mut values = Vec::new();
    for value in request.headers().get_all(name) {
        values.push(
            value
                .to_str()
                .ok()?
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    (!values.is_empty()).then(|| values.join(","))
}

/// Whether `mutated` differs from `signed` in a part the signature covers.
///
/// SigV4 covers the method, the path (percent-decoded: `%41` and `A` are
/// the same path), every query parameter (decoded, in any order) including
/// the date, expiry, credential and signature, and the signed headers
/// (whitespace-normalised). Not covered, by design: the body
/// (`UNSIGNED-PAYLOAD`; its length is covered through `content-length` on
/// a PUT) and headers outside `X-Amz-SignedHeaders`.
///
/// SigV2 covers the method, the path, `Content-MD5`, `Content-Type` (an
/// empty value is the same as none: both sign as the empty string) and the
/// expiry time, and checks the access key and signature. Not covered, by
/// design of SigV2: the query (other than its signature parameters), the
/// `Host` and every other header, and the body.
fn signed_part_changed(signed: &Request<Vec<u8>>, mutated: &Request<Vec<u8>>, v2: bool) -> bool {
    if signed.method() != mutated.method() {
        return true;
    }
    let path = |request: &Request<Vec<u8>>| -> Vec<Option<Vec<u8>>> {
        request.uri().path().split('/').map(pct_decode).collect()
    };
    if path(signed) != path(mutated) {
        return true;
    }
    let original = query_params(signed.uri().query().unwrap_or_default()).unwrap();
    let Some(params) = query_params(mutated.uri().query().unwrap_or_default()) else {
        return true; // not percent-decodable: refused as malformed
    };
    if v2 {
        let expiry = |params: &Params| -> Vec<Option<u64>> {
            param_values(params, "Expires")
                .iter()
                .map(|value| std::str::from_utf8(value).ok()?.parse().ok())
                .collect()
        };
        let first = |request: &Request<Vec<u8>>, name: &str| {
            // SigV2 signs an absent header as the empty string.
            request
                .headers()
                .get(name)
                .map_or(Some(String::new()), |value| {
                    value.to_str().map(str::to_owned).ok()
                })
        };
        ["AWSAccessKeyId", "Signature"]
            .iter()
            .any(|name| param_values(&original, name) != param_values(&params, name))
            || expiry(&original) != expiry(&params)
            || ["content-md5", "content-type"]
                .iter()
                .any(|name| first(signed, name) != first(mutated, name))
    } else {
        let sorted = |mut params: Params| {
            params.sort();
            params
        };
        let names = param_values(&original, "X-Amz-SignedHeaders").concat();
        let names = String::from_utf8(names).unwrap();
        sorted(original) != sorted(params)
            || names
                .split(';')
                .any(|name| v4_header(signed, name) != v4_header(mutated, name))
    }
}

/// Replaces, inserts (at `at == len`) or removes one byte of `text`.
fn edit(text: &str, at: usize, byte: u8, how: u8) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let at = at % (bytes.len() + 1);
    match how % 3 {
        0 if at < bytes.len() => bytes[at] = byte,
        1 if at < bytes.len() => {
            bytes.remove(at);
        }
        _ => bytes.insert(at, byte),
    }
    bytes
}

fn with_target(request: &Request<Vec<u8>>, path: &[u8], query: &[u8]) -> Option<Request<Vec<u8>>> {
    let mut target = path.to_vec();
    target.push(b'?');
    target.extend_from_slice(query);
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(http::uri::PathAndQuery::try_from(target).ok()?);
    let mut mutated = request.clone();
    *mutated.uri_mut() = http::Uri::from_parts(parts).ok()?;
    Some(mutated)
}

/// A request signed by the client, handled as is (accepted), then mutated
/// once: a 200 never answers a request whose signed parts changed, nor an
/// expired one.
fn mutated_request(v2: bool, mut input: Input<'_>) {
    let start = UNIX_EPOCH
        + Duration::new(
            1_500_000_000 + u64::from(input.u32() % 1_000_000_000),
            input.u32() % 1_000_000_000,
        );
    let clock = ManualClock::new(start);
    let credentials = Credentials::new("AKIDEXAMPLE", "secret");
    let signature = version(v2, Duration::from_secs(60));
    let op = input.byte();
    let expire = input.byte();
    let kind = input.byte();
    let key = Some(input.text())
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| "k".into());
    let field = Some(input.text())
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| "f".into());
    let value: Value = {
        let raw = input.part();
        serde_json::from_slice(raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into()))
    };

    let fake = FakeTransport::new();
    fake.set_default(PROXY_HOST, Outcome::status(200));
    let config = ProxyConfig {
        credentials: Some(credentials.clone()),
        signature: signature.clone(),
        ..ProxyConfig::with_hosts([("127.0.0.1", 2222)])
    };
    let client = RedisProxyClient::new(&fake, config)
        .unwrap()
        .with_clock(clock.clone());
    let mut options = CallOptions::new();
    if expire > 0 && op % 7 < 2 {
        options = options.expire(Duration::from_millis(u64::from(expire)));
    }
    let _ = match op % 7 {
        0 => client.set_with(&key, &value, &options),
        1 => client.hset_with(&key, &field, &value, &options),
        2 => client.get_with::<Value>(&key, &options).map(drop),
        3 => client.hget_with::<Value>(&key, &field, &options).map(drop),
        4 => client.hgetall_with::<Value>(&key, &options).map(drop),
        5 => client.delete_with(&key, &options),
        _ => client.hdel_with(&key, &field, &options),
    };
    let Some(signed) = fake.requests().pop() else {
        return;
    };
    let proxy = MemoryProxy::builder()
        .clock(clock.clone())
        .signer(Signer::new(credentials, signature))
        .build();
    let status = proxy.handle(&signed).status();
    assert!(
        status == StatusCode::OK || status == StatusCode::NOT_FOUND,
        "signed request answered {status}"
    );

    let path = signed.uri().path().to_owned();
    let query = signed.uri().query().unwrap_or_default().to_owned();
    let (at, byte, how) = (usize::from(input.u16()), input.byte(), input.byte());
    let mut expired = false;
    let mutated = match kind % 7 {
        0 => with_target(&signed, &edit(&path, at, byte, how), query.as_bytes()),
        1 => with_target(&signed, path.as_bytes(), &edit(&query, at, byte, how)),
        2 => {
            let names = [
                "host",
                "content-length",
                "content-type",
                "content-md5",
                "x-amz-date",
                "x-extra",
            ];
            let name = names[usize::from(byte) % names.len()];
            let mut mutated = signed.clone();
            let value = HeaderValue::from_bytes(input.part()).ok();
            match (how % 3, value) {
                (0, _) => {
                    mutated.headers_mut().remove(name);
                }
                (1, Some(value)) => {
                    mutated.headers_mut().insert(name, value);
                }
                (_, Some(value)) => {
                    mutated.headers_mut().append(name, value);
                }
                (_, None) => return,
            }
            Some(mutated)
        }
        3 => {
            let mut mutated = signed.clone();
            let body = mutated.body_mut();
            let length = at % (body.len() + 8);
            body.resize(length, byte);
            Some(mutated)
        }
        4 => {
            // A signing parameter (date, expiry, credential...) set anew.
            let names: &[&str] = if v2 {
                &["Expires", "AWSAccessKeyId"]
            } else {
                &[
                    "X-Amz-Date",
                    "X-Amz-Expires",
                    "X-Amz-Credential",
                    "X-Amz-SignedHeaders",
                    "X-Amz-Algorithm",
                ]
            };
            let name = names[usize::from(byte) % names.len()];
            let replacement = pct_encode(input.part());
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key == name => format!("{key}={replacement}"),
                    _ => pair.to_owned(),
                })
                .collect();
            with_target(&signed, path.as_bytes(), query.join("&").as_bytes())
        }
        5 => {
            // One byte of the signature, changed.
            let name = if v2 { "Signature=" } else { "X-Amz-Signature=" };
            let from = query.find(name).unwrap() + name.len();
            let end = query[from..]
                .find('&')
                .map_or(query.len(), |end| from + end);
            let mut bytes = query.as_bytes().to_vec();
            let at = from + at % (end - from);
            bytes[at] = if bytes[at] == byte { byte ^ 1 } else { byte };
            with_target(&signed, path.as_bytes(), &bytes)
        }
        _ => {
            // Time moves: forwards or back.
            let delta = Duration::new(
                u64::from(input.u32() % 100_000),
                input.u32() % 1_000_000_000,
            );
            let now = if how & 1 == 0 {
                start + delta
            } else {
                start - delta
            };
            clock.set(now);
            let whole = |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap().as_secs();
            let signed_at = UNIX_EPOCH + Duration::from_secs(whole(start));
            expired = if v2 {
                whole(now) > whole(start) + 60
            } else {
                now > signed_at + Duration::from_secs(60)
                    || signed_at > now + Duration::from_secs(15 * 60)
            };
            Some(signed.clone())
        }
    };
    let Some(mutated) = mutated else {
        return;
    };
    let status = proxy.handle(&mutated).status();
    check_answer(&mutated, status);
    if expired || signed_part_changed(&signed, &mutated, v2) {
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "a changed or expired request answered {status}"
        );
    }
}

/// Sign then verify, on any keys, key names, values and times: accepted
/// from the signing time to the end of the expiry (whole seconds, as the
/// wire carries them), refused a second later, and refused after any
/// single-byte change to the signature.
pub fn sigv4_roundtrip(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let v2 = flags & 1 != 0;
    let expires = Duration::from_secs(u64::from(input.u32()));
    let Some(mut now) = fuzz_time(&mut input) else {
        return;
    };
    if flags & 2 != 0 {
        // Keep the time in SigV4's range (up to year 9999) most of the time.
        let seconds = now.duration_since(UNIX_EPOCH).unwrap().as_secs() % 253_402_300_800;
        now = UNIX_EPOCH + Duration::from_secs(seconds);
    }
    let (at, byte) = (usize::from(input.u16()), input.byte());
    let access_key = input.text();
    let secret_key = input.text();
    let key = input.part().to_vec();
    let mut version = version(v2, expires);
    if let SignatureVersion::V4 {
        region, service, ..
    } = &mut version
    {
        *region = Some(input.text())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        *service = Some(input.text())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "s3".into());
    }
    let body = input.rest().to_vec();
    let signer = Signer::new(Credentials::new(access_key, secret_key), version);

    let method = METHODS[usize::from(flags >> 2) % 3];
    let uri = format!(
        "http://{PROXY_HOST}/redisproxy/v1/SET/{}?n=3&w=2&r=2",
        pct_encode(&key)
    );
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(HOST, PROXY_HOST);
    if method == "PUT" {
        builder = builder.header(CONTENT_LENGTH, body.len());
    }
    let mut request = builder
        .body(if method == "PUT" { body } else { Vec::new() })
        .unwrap();
    let seconds = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let valid_expiry = v2 || (1..=604_800).contains(&expires.as_secs());
    match signer.presign(&mut request, now) {
        Ok(()) => assert!(valid_expiry, "presigned with an expiry verify refuses"),
        Err(error) => {
            assert!(
                !valid_expiry
                    || seconds >= 253_402_300_800
                    || seconds.checked_add(expires.as_secs()).is_none(),
                "{error}"
            );
            return;
        }
    }
    assert_eq!(signer.verify(&request, now), Ok(()));
    let Some(last) = (UNIX_EPOCH + Duration::from_secs(seconds)).checked_add(expires) else {
        return;
    };
    assert_eq!(
        signer.verify(&request, last),
        Ok(()),
        "at the end of the expiry"
    );
    if let Some(later) = last.checked_add(Duration::from_secs(1)) {
        assert_eq!(signer.verify(&request, later), Err(VerifyError::Expired));
    }

    // One byte of the signature (as sent, decoded) changed.
    let query = request.uri().query().unwrap().to_owned();
    let name = if v2 { "Signature=" } else { "X-Amz-Signature=" };
    let from = query.rfind(name).unwrap() + name.len();
    let mut signature = pct_decode(&query[from..]).unwrap();
    let at = at % signature.len();
    signature[at] = if signature[at] == byte {
        byte ^ 0x20
    } else {
        byte
    };
    let forged = format!(
        "{}?{}{}",
        request.uri().path(),
        &query[..from],
        pct_encode(&signature)
    );
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(forged.parse().unwrap());
    *request.uri_mut() = http::Uri::from_parts(parts).unwrap();
    assert!(
        signer.verify(&request, now).is_err(),
        "a changed signature was accepted"
    );
}
