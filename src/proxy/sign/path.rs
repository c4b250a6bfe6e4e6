//! The canonical path a V4 signature covers, as `k3awssign` (the Python
//! signer the proxy servers verify with) computes it.
//!
//! AWS has two conventions, and `k3awssign` follows both, by service:
//!
//! - **Service `s3`** (the default): the object key as it is. The path is
//!   percent-decoded once (`+` read as a space, an invalid escape kept as
//!   it is, invalid UTF-8 replaced by U+FFFD), then encoded once, keeping
//!   the unreserved characters and `/`. So a key holding `/`, sent as
//!   `%2F`, is signed as `/`; a key `.` sent as `%2E` is signed as `.`.
//! - **Any other service:** dot segments removed and repeated `/` merged
//!   (RFC 3986 section 5.2.4), then the path as sent encoded once more
//!   (`%2F` is signed as `%252F`).
//!
//! The `aws-sigv4` crate agrees with the second convention in its default
//! mode (double encoding, normalised paths). In its S3 mode (single
//! encoding, no normalisation) it signs the path exactly as sent, which
//! agrees with `k3awssign` for every path this client sends except those
//! holding an escaped `/` (`%2F`, a key or hash name with a slash) or an
//! escaped dot segment (`%2E`, a key `.` or `..`). There the two differ and
//! this crate signs as `k3awssign` does, since that is what the servers
//! accept.
//!
//! A consequence of the `s3` convention, inherited from the servers: paths
//! that differ only in whether a `/` is escaped share a signature, so a
//! signed `HGET` of field `c` in hash `a/b` also verifies, while it is
//! valid, as a `HGET` of field `b/c` in hash `a`.

use std::borrow::Cow;

use crate::percent::{encode_into, is_canonical_path};

/// The service whose paths are signed decoded (see the module docs).
const S3: &str = "s3";

/// The canonical path of `raw` (the path as sent) for `service`.
pub(crate) fn v4_canonical_path<'a>(raw: &'a str, service: &str) -> Cow<'a, str> {
    if service == S3 {
        decoded_path(raw)
    } else {
        let normalized = remove_dot_segments(raw);
        let mut out = String::with_capacity(normalized.len() + 8);
        for (index, part) in normalized.split('/').enumerate() {
            if index > 0 {
                out.push('/');
            }
            encode_into(part.as_bytes(), &mut out);
        }
        Cow::Owned(out)
    }
}

/// `raw` decoded once and encoded once, `/` kept; borrowed when that gives
/// `raw` back.
fn decoded_path(raw: &str) -> Cow<'_, str> {
    if raw.is_empty() {
        return Cow::Borrowed("/");
    }
    // Canonical escapes other than `%2F` decode and encode back to
    // themselves.
    if is_canonical_path(raw) && !raw.contains("%2F") {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = match (bytes[index], bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)),
            _ => None,
        };
        match (escaped, bytes[index]) {
            (Some((high, low)), _) => {
                decoded.push(high << 4 | low);
                index += 3;
            }
            (None, b'+') => {
                decoded.push(b' ');
                index += 1;
            }
            (None, byte) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded);
    let mut out = String::with_capacity(text.len() + 8);
    for (index, part) in text.split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        encode_into(part.as_bytes(), &mut out);
    }
    Cow::Owned(out)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// RFC 3986 section 5.2.4 on a raw path, with empty segments dropped, as
/// `k3awssign` (and botocore) do: a trailing `/` is kept when something is
/// left.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            ".." => {
                segments.pop();
            }
            "" | "." => {}
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::v4_canonical_path;

    #[test]
    fn s3_signs_the_decoded_path() {
        for (raw, canonical) in [
            ("/redisproxy/v1/GET/a-b", "/redisproxy/v1/GET/a-b"),
            ("/v1/GET/a%2Fb", "/v1/GET/a/b"),
            ("/v1/GET/%2E%2E", "/v1/GET/.."),
            ("/v1/GET/a%2fb%7E", "/v1/GET/a/b~"),
            ("/v1/GET/a+b%2B", "/v1/GET/a%20b%2B"),
            ("/v1/GET/%zz%", "/v1/GET/%25zz%25"),
            ("/v1/GET/%FF", "/v1/GET/%EF%BF%BD"),
            ("/v1/GET/%C3%A9", "/v1/GET/%C3%A9"),
            ("", "/"),
        ] {
            assert_eq!(v4_canonical_path(raw, "s3"), canonical, "{raw}");
        }
    }

    #[test]
    fn other_services_sign_the_normalised_path_encoded_again() {
        for (raw, canonical) in [
            ("/redisproxy/v1/GET/a-b", "/redisproxy/v1/GET/a-b"),
            ("/v1/GET/a%2Fb", "/v1/GET/a%252Fb"),
            ("/v1/GET/%2E%2E", "/v1/GET/%252E%252E"),
            ("/v1/HSET/../SET/k", "/v1/SET/k"),
            ("/v1//./GET/k/", "/v1/GET/k/"),
            ("", "/"),
        ] {
            assert_eq!(v4_canonical_path(raw, "redisproxy"), canonical, "{raw}");
        }
    }
}
