//! AWS Signature V4, presigned in the query string.
//!
//! Canonical request (payload `UNSIGNED-PAYLOAD`):
//!
//! ```text
//! METHOD \n canonical path \n canonical query \n canonical headers \n
//! signed headers \n UNSIGNED-PAYLOAD
//! ```
//!
//! The query parameters are appended in the order `X-Amz-Algorithm`,
//! `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
//! then `X-Amz-Signature` last (lower-case hex).

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{
    Credentials, MAX_CLOCK_SKEW, SignError, VerifyError, canonical_path, header_text, parse_query,
    same_signature, single_param, time,
};
use crate::proxy::encode::{encode, encode_into, hex_lower};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const P_ALGORITHM: &str = "X-Amz-Algorithm";
const P_CREDENTIAL: &str = "X-Amz-Credential";
const P_DATE: &str = "X-Amz-Date";
const P_EXPIRES: &str = "X-Amz-Expires";
const P_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const P_SIGNATURE: &str = "X-Amz-Signature";
/// The longest expiry AWS accepts for a presigned request (7 days).
const MAX_EXPIRES: u64 = 604_800;

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The canonical query: names and values encoded, sorted, joined.
fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (index, (name, value)) in encoded.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// `name:value\n` for each signed header (values trimmed, inner runs of
/// white space collapsed, repeated headers joined by commas).
fn canonical_headers(
    request: &http::Request<Vec<u8>>,
    names: &[&str],
) -> Result<Option<String>, SignError> {
    let mut out = String::new();
    for name in names {
        let mut values = Vec::new();
        for value in request.headers().get_all(*name) {
            let text = value
                .to_str()
                .map_err(|_| SignError::InvalidHeader((*name).to_owned()))?;
            values.push(text.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        if values.is_empty() {
            return Ok(None);
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(Some(out))
}

/// What both signing and verification feed into [`signature`].
struct Signable<'a> {
    secret_key: &'a str,
    method: &'a str,
    raw_path: &'a str,
    /// Every query parameter except `X-Amz-Signature`, decoded.
    params: &'a [(String, String)],
    canonical_headers: &'a str,
    signed_headers: &'a str,
    amz_date: &'a str,
    region: &'a str,
    service: &'a str,
}

/// The lower-case hex V4 signature: the one code path for signing and
/// verifying.
fn signature(input: &Signable<'_>) -> String {
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{UNSIGNED_PAYLOAD}",
        input.method,
        canonical_path(input.raw_path),
        canonical_query(input.params),
        input.canonical_headers,
        input.signed_headers,
    );
    let day = &input.amz_date[..8];
    let scope = format!("{day}/{}/{}/aws4_request", input.region, input.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        input.amz_date,
        hex_lower(&Sha256::digest(canonical_request.as_bytes()))
    );
    let secret = format!("AWS4{}", input.secret_key);
    let key = hmac_sha256(secret.as_bytes(), day.as_bytes());
    let key = hmac_sha256(&key, input.region.as_bytes());
    let key = hmac_sha256(&key, input.service.as_bytes());
    let key = hmac_sha256(&key, b"aws4_request");
    hex_lower(&hmac_sha256(&key, string_to_sign.as_bytes()))
}

/// The query text to append to `request` (no leading `&`).
pub(super) fn presign_query(
    credentials: &Credentials,
    region: &str,
    service: &str,
    expires: Duration,
    request: &http::Request<Vec<u8>>,
    now: SystemTime,
) -> Result<String, SignError> {
    if !(1..=MAX_EXPIRES).contains(&expires.as_secs()) {
        return Err(SignError::InvalidExpiry);
    }
    let amz_date = time::amz_date(now).ok_or(SignError::TimeOutOfRange)?;
    let mut names: Vec<&str> = request.headers().keys().map(|name| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");
    let canonical_headers = canonical_headers(request, &names)?.ok_or(SignError::MissingHost)?;
    let credential = format!(
        "{}/{}/{region}/{service}/aws4_request",
        credentials.access_key(),
        &amz_date[..8]
    );
    let added = [
        (P_ALGORITHM, ALGORITHM.to_owned()),
        (P_CREDENTIAL, credential),
        (P_DATE, amz_date.clone()),
        (P_EXPIRES, expires.as_secs().to_string()),
        (P_SIGNED_HEADERS, signed_headers.clone()),
    ];
    let mut params =
        parse_query(request.uri().query().unwrap_or_default()).ok_or(SignError::InvalidUri)?;
    params.extend(
        added
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone())),
    );
    let signature = signature(&Signable {
        secret_key: credentials.secret_key(),
        method: request.method().as_str(),
        raw_path: request.uri().path(),
        params: &params,
        canonical_headers: &canonical_headers,
        signed_headers: &signed_headers,
        amz_date: &amz_date,
        region,
        service,
    });
    let mut out = String::new();
    for (name, value) in &added {
        out.push_str(name);
        out.push('=');
        encode_into(value.as_bytes(), &mut out);
        out.push('&');
    }
    out.push_str(P_SIGNATURE);
    out.push('=');
    out.push_str(&signature);
    Ok(out)
}

/// Checks a V4 presigned request by recomputing its signature.
pub(super) fn verify(
    credentials: &Credentials,
    region: &str,
    service: &str,
    request: &http::Request<Vec<u8>>,
    params: &[(String, String)],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let given = single_param(params, P_SIGNATURE)?;
    if single_param(params, P_ALGORITHM)? != ALGORITHM {
        return Err(VerifyError::Malformed("unsupported algorithm"));
    }
    let credential = single_param(params, P_CREDENTIAL)?;
    let amz_date = single_param(params, P_DATE)?;
    let signed_at = time::parse_amz_date(amz_date).ok_or(VerifyError::Malformed("bad date"))?;
    // `<access key>/<day>/<region>/<service>/aws4_request`, where the access
    // key, region and service may themselves hold slashes: compare with
    // what is expected rather than split.
    if credential.split('/').count() < 5 {
        return Err(VerifyError::Malformed("bad credential"));
    }
    let scope = format!("/{}/{region}/{service}/aws4_request", &amz_date[..8]);
    match credential.strip_suffix(&scope) {
        Some(access_key) if access_key == credentials.access_key() => {}
        Some(_) => return Err(VerifyError::UnknownAccessKey),
        None if credential
            .strip_prefix(credentials.access_key())
            .is_some_and(|rest| rest.starts_with('/')) =>
        {
            return Err(VerifyError::WrongScope);
        }
        None => return Err(VerifyError::UnknownAccessKey),
    }
    let expires: u64 = single_param(params, P_EXPIRES)?
        .parse()
        .ok()
        .filter(|secs| (1..=MAX_EXPIRES).contains(secs))
        .ok_or(VerifyError::Malformed("bad expiry"))?;
    if now > signed_at + Duration::from_secs(expires) {
        return Err(VerifyError::Expired);
    }
    if signed_at > now + MAX_CLOCK_SKEW {
        return Err(VerifyError::NotYetValid);
    }
    let signed_headers = single_param(params, P_SIGNED_HEADERS)?;
    let names: Vec<&str> = signed_headers.split(';').collect();
    let well_formed = names.windows(2).all(|pair| pair[0] < pair[1])
        && names
            .iter()
            .all(|name| !name.is_empty() && *name == name.to_ascii_lowercase());
    if !well_formed || !names.contains(&"host") {
        return Err(VerifyError::Malformed("bad signed headers"));
    }
    let length = header_text(request, "content-length")
        .map_err(|_| VerifyError::Malformed("bad content-length"))?;
    let has_content =
        length.is_some_and(|length| length.trim() != "0") || !request.body().is_empty();
    if has_content && !names.contains(&"content-length") {
        return Err(VerifyError::Malformed("content-length is not signed"));
    }
    let canonical_headers = canonical_headers(request, &names)
        .map_err(|_| VerifyError::Malformed("a signed header is not text"))?
        .ok_or(VerifyError::Malformed("a signed header is missing"))?;
    let rest: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| name != P_SIGNATURE)
        .cloned()
        .collect();
    let expected = signature(&Signable {
        secret_key: credentials.secret_key(),
        method: request.method().as_str(),
        raw_path: request.uri().path(),
        params: &rest,
        canonical_headers: &canonical_headers,
        signed_headers,
        amz_date,
        region,
        service,
    });
    if same_signature(&expected, given) {
        Ok(())
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::proxy::sign::{Credentials, SignatureVersion, Signer, VerifyError};

    /// Found by the `sigv4_roundtrip` fuzz seeds: an access key (or region,
    /// or service) holding a `/` made every signature unverifiable, and an
    /// expiry of 0 or over 7 days gave presigned requests that never verify.
    #[test]
    fn slashes_in_access_key_and_scope_verify() {
        let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        let version = SignatureVersion::V4 {
            region: "eu/west".into(),
            service: "s/3".into(),
            expires: Duration::from_secs(60),
        };
        let signer = Signer::new(Credentials::new("AK/ID", "sk"), version.clone());
        let mut request = http::Request::get("http://h:1/k?n=3")
            .header("host", "h:1")
            .body(Vec::new())
            .unwrap();
        signer.presign(&mut request, now).unwrap();
        assert_eq!(signer.verify(&request, now), Ok(()));
        let other = Signer::new(Credentials::new("AK", "sk"), version);
        assert_eq!(
            other.verify(&request, now),
            Err(VerifyError::UnknownAccessKey)
        );
        let mut unsigned = http::Request::get("http://h:1/k")
            .header("host", "h:1")
            .body(Vec::new())
            .unwrap();
        for expires in [0, 604_801] {
            let version = SignatureVersion::V4 {
                region: "r".into(),
                service: "s".into(),
                expires: Duration::from_secs(expires),
            };
            let signer = Signer::new(Credentials::new("AK", "sk"), version);
            assert_eq!(
                signer.presign(&mut unsigned, now),
                Err(crate::proxy::sign::SignError::InvalidExpiry)
            );
        }
        let scoped = Signer::new(Credentials::new("AK/ID", "sk"), SignatureVersion::v4());
        assert_eq!(scoped.verify(&request, now), Err(VerifyError::WrongScope));
    }
}
