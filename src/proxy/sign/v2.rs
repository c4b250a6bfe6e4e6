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
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{
    Credentials, SignError, VerifyError, canonical_path, header_text, same_signature, single_param,
    time,
};
use crate::proxy::encode::encode_into;

const P_ACCESS_KEY: &str = "AWSAccessKeyId";
const P_EXPIRES: &str = "Expires";
const P_SIGNATURE: &str = "Signature";

/// The base64 V2 signature: the one code path for signing and verifying.
fn signature(
    secret_key: &str,
    request: &http::Request<Vec<u8>>,
    expires_at: u64,
) -> Result<String, SignError> {
    let content_md5 = header_text(request, "content-md5")?.unwrap_or_default();
    let content_type = header_text(request, "content-type")?.unwrap_or_default();
    let string_to_sign = format!(
        "{}\n{content_md5}\n{content_type}\n{expires_at}\n{}",
        request.method().as_str(),
        canonical_path(request.uri().path())
    );
    let mut mac = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes())
        .expect("hmac accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// The query text to append to `request` (no leading `&`).
pub(super) fn presign_query(
    credentials: &Credentials,
    expires: Duration,
    request: &http::Request<Vec<u8>>,
    now: SystemTime,
) -> Result<String, SignError> {
    let expires_at = time::epoch_seconds(now)
        .and_then(|secs| secs.checked_add(expires.as_secs()))
        .ok_or(SignError::TimeOutOfRange)?;
    let signature = signature(credentials.secret_key(), request, expires_at)?;
    let mut out = format!("{P_ACCESS_KEY}=");
    encode_into(credentials.access_key().as_bytes(), &mut out);
    out.push_str(&format!("&{P_EXPIRES}={expires_at}&{P_SIGNATURE}="));
    encode_into(signature.as_bytes(), &mut out);
    Ok(out)
}

/// Checks a V2 presigned request by recomputing its signature.
pub(super) fn verify(
    credentials: &Credentials,
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
    let now_secs = time::epoch_seconds(now).ok_or(VerifyError::Expired)?;
    if now_secs > expires_at {
        return Err(VerifyError::Expired);
    }
    let expected = signature(credentials.secret_key(), request, expires_at)
        .map_err(|_| VerifyError::Malformed("a signed header is not text"))?;
    if same_signature(&expected, given) {
        Ok(())
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}
