//! AWS Signature V2 (S3 query-string authentication): HMAC-SHA1 over
//!
//! ```text
//! METHOD \n Content-MD5 \n Content-Type \n Expires \n canonical path
//! ```
//!
//! base64-encoded, sent as `AWSAccessKeyId`, `Expires` and `Signature`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::{
    Credentials, SignError, VerifyError, canonical_path, header_text, same_signature, single_param,
    time,
};
use crate::percent::{decimal, encode_into};

const P_ACCESS_KEY: &str = "AWSAccessKeyId";
const P_EXPIRES: &str = "Expires";
const P_SIGNATURE: &str = "Signature";

/// HMAC-SHA1 keyed with the secret key, its pads already hashed: made once
/// per signer, cloned per signature.
#[derive(Clone)]
pub(super) struct Key(Hmac<Sha1>);

impl Key {
    pub(super) fn new(secret_key: &str) -> Self {
        Self(
            Hmac::<Sha1>::new_from_slice(secret_key.as_bytes())
                .expect("hmac accepts keys of any length"),
        )
    }
}

/// The base64 V2 signature (28 bytes): the one code path for signing and
/// verifying.
fn signature(
    key: &Key,
    request: &http::Request<Vec<u8>>,
    expires_at: u64,
) -> Result<[u8; 28], SignError> {
    let content_md5 = header_text(request, "content-md5")?.unwrap_or_default();
    let content_type = header_text(request, "content-type")?.unwrap_or_default();
    let (digits, first) = decimal(expires_at);
    let mut mac = key.0.clone();
    mac.update(request.method().as_str().as_bytes());
    mac.update(b"\n");
    mac.update(content_md5.as_bytes());
    mac.update(b"\n");
    mac.update(content_type.as_bytes());
    mac.update(b"\n");
    mac.update(&digits[first..]);
    mac.update(b"\n");
    mac.update(canonical_path(request.uri().path()).as_bytes());
    let mut out = [0u8; 28];
    STANDARD
        .encode_slice(mac.finalize().into_bytes(), &mut out)
        .expect("28 bytes hold the base64 of 20");
    Ok(out)
}

/// The signature as text.
fn base64_text(signature: &[u8; 28]) -> &str {
    std::str::from_utf8(signature).expect("base64 is ascii")
}

/// Appends the query text to add to `request` (no leading `&`) to `out`.
pub(super) fn presign_query(
    credentials: &Credentials,
    key: &Key,
    expires: Duration,
    request: &http::Request<Vec<u8>>,
    now: SystemTime,
    out: &mut String,
) -> Result<(), SignError> {
    let expires_at = time::epoch_seconds(now)
        .and_then(|secs| secs.checked_add(expires.as_secs()))
        .ok_or(SignError::TimeOutOfRange)?;
    let signature = signature(key, request, expires_at)?;
    out.push_str(P_ACCESS_KEY);
    out.push('=');
    encode_into(credentials.access_key().as_bytes(), out);
    out.push('&');
    out.push_str(P_EXPIRES);
    out.push('=');
    let (digits, first) = decimal(expires_at);
    out.push_str(std::str::from_utf8(&digits[first..]).expect("digits are ascii"));
    out.push('&');
    out.push_str(P_SIGNATURE);
    out.push('=');
    encode_into(&signature, out);
    Ok(())
}

/// Checks a V2 presigned request by recomputing its signature.
pub(super) fn verify(
    credentials: &Credentials,
    key: &Key,
    request: &http::Request<Vec<u8>>,
    params: &[(String, String)],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let given = single_param(params, P_SIGNATURE)?;
    if single_param(params, P_ACCESS_KEY)? != credentials.access_key() {
        return Err(VerifyError::UnknownAccessKey);
    }
    let expires_at: u64 = single_param(params, P_EXPIRES)?
        .parse()
        .map_err(|_| VerifyError::Malformed("bad expiry"))?;
    let now_secs = time::epoch_seconds(now).unwrap_or(0);
    if now_secs > expires_at {
        let late = Duration::from_secs(now_secs - expires_at);
        return Err(VerifyError::Expired { late });
    }
    let expected = signature(key, request, expires_at)
        .map_err(|_| VerifyError::Malformed("a signed header is not text"))?;
    if same_signature(base64_text(&expected), given) {
        Ok(())
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}
