//! Proxy responses decoded by the client.

use super::*;

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
