//! Requests handled by the in-memory proxy.

use super::*;

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
