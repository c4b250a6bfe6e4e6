//! Scrubbing of signature material from text that may reach a user: error
//! messages, `Debug` output and response excerpts never carry a live
//! presigned URL.

/// Query parameters whose values are replaced by [`REDACTED`].
const SECRET_PARAMS: [&str; 4] = [
    "X-Amz-Signature=",
    "X-Amz-Credential=",
    "AWSAccessKeyId=",
    "Signature=",
];

/// What a scrubbed value reads as.
pub(crate) const REDACTED: &str = "REDACTED";

fn ends_value(ch: char) -> bool {
    matches!(ch, '&' | '#' | '"' | '\'' | '<' | '>' | ')' | ',' | ';') || ch.is_whitespace()
}

/// Returns `text` with the value of every signature or credential query
/// parameter replaced by `REDACTED` (case-insensitive parameter names).
pub(crate) fn redact(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    while cursor < text.len() {
        let next = SECRET_PARAMS
            .iter()
            .filter_map(|param| {
                lower[cursor..]
                    .find(&param.to_ascii_lowercase())
                    .map(|at| (cursor + at, param.len()))
            })
            .min();
        let Some((at, len)) = next else {
            break;
        };
        let value_start = at + len;
        let value_end = text[value_start..]
            .find(ends_value)
            .map_or(text.len(), |offset| value_start + offset);
        out.push_str(&text[cursor..value_start]);
        if value_end > value_start {
            out.push_str(REDACTED);
        }
        cursor = value_end;
    }
    out.push_str(&text[cursor..]);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn scrubs_v4_and_v2_parameters() {
        let url = "http://h/p?n=3&X-Amz-Credential=AK%2F2020&X-Amz-Signature=abc123 tail";
        assert_eq!(
            redact(url),
            "http://h/p?n=3&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED tail"
        );
        let v2 = "GET /k?AWSAccessKeyId=AK&Expires=9&Signature=x%2By";
        assert_eq!(
            redact(v2),
            "GET /k?AWSAccessKeyId=REDACTED&Expires=9&Signature=REDACTED"
        );
        assert_eq!(redact("x-amz-signature=ff"), "x-amz-signature=REDACTED");
        assert_eq!(redact("nothing here"), "nothing here");
    }
}
