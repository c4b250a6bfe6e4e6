//! Percent-encoding as AWS and RFC 3986 want it: every byte except the
//! unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`, upper-case hex.
//!
//! Shared by both halves: the proxy client encodes each path segment and
//! each query value with [`encode`], the signer builds its canonical forms
//! with the same function, the in-memory proxy reads paths back with
//! [`decode`], and `redis-sentinel://` addresses decode their passwords.

use std::borrow::Cow;

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes `text`, keeping only RFC 3986 unreserved characters.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    encode_into(text.as_bytes(), &mut out);
    out
}

/// Appends the percent-encoding of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    for &byte in bytes {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(byte >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(byte & 0x0f)]));
        }
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (either case). `+` stays a plus sign.
///
/// `None` when an escape is malformed or the bytes are not UTF-8.
pub(crate) fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = hex_value(*bytes.get(index + 1)?)?;
            let low = hex_value(*bytes.get(index + 2)?)?;
            out.push(high << 4 | low);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decoded `(name, value)` pairs of a raw query string.
///
/// `None` when an escape is malformed or the bytes are not UTF-8.
pub(crate) fn decode_query(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}

/// Whether `raw` is its own canonical form: only unreserved characters
/// (and `/` when `slash` is set) and upper-case escapes of reserved ASCII
/// bytes, exactly what [`encode_into`] writes for ASCII text.
fn is_canonical(raw: &str, slash: bool) -> bool {
    let bytes = raw.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let escaped = match (bytes.get(index + 1), bytes.get(index + 2)) {
                (Some(&high @ (b'0'..=b'7')), Some(&low @ (b'0'..=b'9' | b'A'..=b'F'))) => {
                    (high - b'0') << 4 | hex_value(low).unwrap_or(0)
                }
                _ => return false,
            };
            if is_unreserved(escaped) {
                return false;
            }
            index += 3;
        } else if is_unreserved(byte) || (slash && byte == b'/') {
            index += 1;
        } else {
            return false;
        }
    }
    true
}

/// The canonical (AWS) form of an already percent-encoded component:
/// decoded, then encoded again. Borrowed when `raw` is already canonical,
/// which is the common case (and always the case for what this crate
/// encodes itself).
///
/// `None` when an escape is malformed or the bytes are not UTF-8.
pub(crate) fn canonical(raw: &str) -> Option<Cow<'_, str>> {
    if is_canonical(raw, false) {
        Some(Cow::Borrowed(raw))
    } else {
        decode(raw).map(|text| Cow::Owned(encode(&text)))
    }
}

/// Whether `raw` is a path that is its own canonical form: each segment
/// canonical as [`canonical`] sees it.
pub(crate) fn is_canonical_path(raw: &str) -> bool {
    is_canonical(raw, true)
}

/// Lower-case hex of a 32-byte digest, on the stack.
pub(crate) fn hex_lower(bytes: &[u8; 32]) -> [u8; 64] {
    const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = LOWER_HEX[usize::from(byte >> 4)];
        pair[1] = LOWER_HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// The decimal digits of `value`, on the stack: the buffer and where the
/// digits start in it.
pub(crate) fn decimal(mut value: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return (digits, start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(encode("a/b?c#d+e%f g"), "a%2Fb%3Fc%23d%2Be%25f%20g");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn decode_inverts_encode() {
        for text in ["", "plain", "a/b?c#d+e%f g", "日本語", "%%%"] {
            assert_eq!(decode(&encode(text)).as_deref(), Some(text));
        }
        assert_eq!(decode("%e2%82%ac+").as_deref(), Some("€+"));
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%ff"), None);
    }

    #[test]
    fn hex_is_lower_case() {
        let mut digest = [0u8; 32];
        digest[..3].copy_from_slice(&[0x00, 0xab, 0x7f]);
        assert!(hex_lower(&digest).starts_with(b"00ab7f0000"));
    }

    #[test]
    fn canonical_borrows_when_it_can() {
        assert!(matches!(
            canonical("aZ09-._~"),
            Some(Cow::Borrowed("aZ09-._~"))
        ));
        assert_eq!(canonical("a%2fb+c").as_deref(), Some("a%2Fb%2Bc"));
        assert_eq!(canonical("%zz"), None);
        assert!(is_canonical_path("/redisproxy/v1/GET/a-b"));
        assert!(is_canonical_path("/a%2Fb"));
        assert!(matches!(canonical("a%2Fb%3B"), Some(Cow::Borrowed(_))));
        for raw in ["a%2fb", "%41", "%C3%A9", "%2", "a%", "%G0", "a b", "%7E"] {
            assert!(
                matches!(canonical(raw), Some(Cow::Owned(_)) | None),
                "{raw}"
            );
            assert!(!is_canonical_path(raw), "{raw}");
        }
        for raw in ["", "aZ09-._~", "%2F%3B%25%20", "x%7Fy"] {
            let slow = decode(raw).map(|text| encode(&text));
            assert_eq!(canonical(raw).map(Cow::into_owned), slow, "{raw}");
        }
    }

    proptest::proptest! {
        #[test]
        fn canonical_fast_path_agrees_with_decode_then_encode(
            raw in "([a-zA-Z0-9/_.~ -]|%[0-9A-Fa-f]{2}|%|é){0,12}"
        ) {
            let slow = decode(&raw).map(|text| encode(&text));
            proptest::prop_assert_eq!(canonical(&raw).map(Cow::into_owned), slow);
            if is_canonical_path(&raw) {
                let segments: Option<Vec<String>> =
                    raw.split('/').map(|segment| decode(segment).map(|text| encode(&text))).collect();
                proptest::prop_assert_eq!(segments.map(|segments| segments.join("/")), Some(raw.clone()));
            }
        }
    }

    #[test]
    fn decimal_digits() {
        for value in [0u64, 7, 10, 1_000, u64::MAX] {
            let (digits, start) = decimal(value);
            assert_eq!(
                std::str::from_utf8(&digits[start..]).ok(),
                Some(value.to_string().as_str())
            );
        }
    }
}
