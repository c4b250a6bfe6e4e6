//! The first step of [`MemoryProxy::handle`](super::MemoryProxy::handle)
//! after the signature check: reading an HTTP request into a
//! [`ProxyRequest`], or refusing it with the status a proxy server gives.

use std::time::{Duration, SystemTime};

use http::header::CONTENT_LENGTH;
use http::{Request, StatusCode};

use super::{Refusal, fail};
use crate::proxy::wire::{Command, parse_path, parse_query};

/// A request the proxy understood: one command on one key (and field),
/// with its JSON body and the deadline its `expire` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProxyRequest<'a> {
    /// What to do.
    pub(super) command: Command,
    /// The key or hash name, decoded.
    pub(super) key: String,
    /// The hash field, decoded, for `HGET`, `HSET` and `HDEL`.
    pub(super) field: Option<String>,
    /// The JSON body of `SET` and `HSET` (empty for the others).
    pub(super) body: &'a [u8],
    /// When the value written expires, from `expire`.
    pub(super) expires_at: Option<SystemTime>,
}

impl<'a> ProxyRequest<'a> {
    /// Reads `request`, received at `now`; checks in this order, each
    /// refusal with its status:
    ///
    /// 1. `Content-Length`: unreadable or not the body's length (400),
    ///    missing on a PUT (411);
    /// 2. the query: `n`, `w`, `r` numbers, `expire` a positive number of
    ///    ms whose deadline the clock can hold (400);
    /// 3. the path: the prefix, percent-encoding, no empty segment, a
    ///    known verb with its number of arguments (400);
    /// 4. the method the verb wants (405);
    /// 5. `expire` only on writes with a body, and that body JSON (400).
    pub(super) fn parse(request: &'a Request<Vec<u8>>, now: SystemTime) -> Result<Self, Refusal> {
        check_length(request)?;
        let query = parse_query(request.uri().query().unwrap_or_default())
            .map_err(|error| (StatusCode::BAD_REQUEST, error.message()))?;
        let expires_at = match query.expire_ms {
            None => None,
            Some(ms) => match now.checked_add(Duration::from_millis(ms)) {
                Some(deadline) => Some(deadline),
                // As Redis answers "invalid expire time" for a deadline it
                // cannot represent.
                None => return fail(StatusCode::BAD_REQUEST, "expire is out of range"),
            },
        };
        let (command, mut arguments) = parse_path(request.uri().path())
            .map_err(|error| (StatusCode::BAD_REQUEST, error.message().to_owned()))?;
        if request.method() != command.method() {
            return fail(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        if expires_at.is_some() && !command.has_body() {
            return fail(StatusCode::BAD_REQUEST, "expire applies to writes only");
        }
        if command.has_body()
            && serde_json::from_slice::<serde::de::IgnoredAny>(request.body()).is_err()
        {
            return fail(StatusCode::BAD_REQUEST, "body is not json");
        }
        let field = (arguments.len() > 1).then(|| arguments.remove(1));
        let key = arguments.swap_remove(0);
        Ok(Self {
            command,
            key,
            field,
            body: request.body(),
            expires_at,
        })
    }
}

/// A `Content-Length` that says the body's length, required on a PUT.
fn check_length(request: &Request<Vec<u8>>) -> Result<(), Refusal> {
    let declared = request.headers().get(CONTENT_LENGTH).map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<usize>().ok())
    });
    match declared {
        Some(None) => fail(StatusCode::BAD_REQUEST, "bad content-length"),
        Some(Some(length)) if length != request.body().len() => fail(
            StatusCode::BAD_REQUEST,
            "content-length does not match the body",
        ),
        None if request.method() == http::Method::PUT => {
            fail(StatusCode::LENGTH_REQUIRED, "content-length required")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn request(method: &str, target: &str, body: &[u8]) -> Request<Vec<u8>> {
        Request::builder()
            .method(method)
            .uri(format!("http://h:1{target}"))
            .header(CONTENT_LENGTH, body.len())
            .body(body.to_vec())
            .unwrap()
    }

    #[test]
    fn reads_command_key_field_and_deadline() {
        let put = request(
            "PUT",
            "/redisproxy/v1/HSET/h%2F1/f?n=3&w=2&r=2&expire=5",
            b"[1]",
        );
        let parsed = ProxyRequest::parse(&put, UNIX_EPOCH).unwrap();
        assert_eq!(
            parsed,
            ProxyRequest {
                command: Command::HSet,
                key: "h/1".into(),
                field: Some("f".into()),
                body: b"[1]",
                expires_at: Some(UNIX_EPOCH + Duration::from_millis(5)),
            }
        );
    }

    #[test]
    fn refusals_in_order() {
        let status = |method, target: &str, body: &[u8]| {
            ProxyRequest::parse(&request(method, target, body), UNIX_EPOCH)
                .unwrap_err()
                .0
        };
        let q = "?n=3&w=2&r=2";
        assert_eq!(status("GET", "/redisproxy/v1/GET/k?n=3", b""), 400);
        assert_eq!(
            status("GET", &format!("/redisproxy/v1/NOPE/k{q}"), b""),
            400
        );
        assert_eq!(status("PUT", &format!("/redisproxy/v1/GET/k{q}"), b""), 405);
        assert_eq!(
            status("PUT", &format!("/redisproxy/v1/SET/k{q}"), b"{"),
            400
        );
        let expiring = format!("/redisproxy/v1/DEL/k{q}&expire=1");
        assert_eq!(status("DELETE", &expiring, b""), 400);
        let mut unsized_put = request("PUT", &format!("/redisproxy/v1/SET/k{q}"), b"1");
        unsized_put.headers_mut().remove(CONTENT_LENGTH);
        let refused = ProxyRequest::parse(&unsized_put, UNIX_EPOCH).unwrap_err();
        assert_eq!(refused.0, StatusCode::LENGTH_REQUIRED);
    }
}
