//! Percent-encoding as AWS and RFC 3986 want it: every byte except the
//! unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`, upper-case hex.
//!
//! The client encodes each path segment and each query value with
//! [`encode`]; the signer builds its canonical forms with the same function,
//! and the in-memory proxy reads paths back with [`decode`].

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

/// Lower-case hex of `bytes`, by hand.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(LOWER_HEX[usize::from(byte >> 4)]));
        out.push(char::from(LOWER_HEX[usize::from(byte & 0x0f)]));
    }
    out
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
        assert_eq!(hex_lower(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
