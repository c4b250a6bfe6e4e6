//! AWS Signature V4, presigned in the query string.
//!
//! Canonical request (payload `UNSIGNED-PAYLOAD`):
//!
//! ```text
//! METHOD \n canonical path \n canonical query \n canonical headers \n
//! signed headers \n UNSIGNED-PAYLOAD
//! ```
//!
//! The canonical path is `k3awssign`'s (see [`super::path`]).
//!
//! The query parameters are appended in the order `X-Amz-Algorithm`,
//! `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
//! then `X-Amz-Signature` last (lower-case hex).
//!
//! Cost: the canonical request is streamed into SHA-256 (never built as a
//! string), and the signing key, four HMACs deep, is derived once per day
//! and kept in a [`KeyCache`] together with its HMAC pads. A signature is
//! then one SHA-256 of the canonical request and one HMAC of the string to
//! sign.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::path::v4_canonical_path;
use super::{
    Credentials, MAX_CLOCK_SKEW, SignError, VerifyError, header_text, same_signature, single_param,
    time,
};
use crate::percent::{canonical, decimal, encode_into, hex_lower};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const TERMINATOR: &str = "aws4_request";
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

/// The signing key of one day, ready to sign: the HMAC keyed with it (its
/// inner and outer pads already hashed) and the credential scope.
pub(super) struct DayKey {
    day: [u8; 8],
    mac: Hmac<Sha256>,
    /// `YYYYMMDD/region/service/aws4_request`.
    scope: String,
}

impl DayKey {
    fn derive(secret_key: &str, day: &str, region: &str, service: &str) -> Self {
        let mut secret = Vec::with_capacity(4 + secret_key.len());
        secret.extend_from_slice(b"AWS4");
        secret.extend_from_slice(secret_key.as_bytes());
        let key = hmac_sha256(&secret, day.as_bytes());
        let key = hmac_sha256(&key, region.as_bytes());
        let key = hmac_sha256(&key, service.as_bytes());
        let key = hmac_sha256(&key, TERMINATOR.as_bytes());
        let mut day_bytes = [0u8; 8];
        day_bytes.copy_from_slice(&day.as_bytes()[..8]);
        Self {
            day: day_bytes,
            mac: Hmac::<Sha256>::new_from_slice(&key).expect("hmac accepts keys of any length"),
            scope: format!("{day}/{region}/{service}/{TERMINATOR}"),
        }
    }
}

/// The last day's signing key of one signer (whose secret, region and
/// service never change), shared by the threads that use the signer.
///
/// A different day (midnight UTC passed, or a request signed on another
/// day) replaces it.
#[derive(Default)]
pub(super) struct KeyCache {
    current: Mutex<Option<Arc<DayKey>>>,
}

impl Clone for KeyCache {
    fn clone(&self) -> Self {
        let current = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Self {
            current: Mutex::new(current),
        }
    }
}

impl KeyCache {
    /// The key of `day` (`YYYYMMDD`), derived when the cache holds another.
    fn for_day(&self, secret_key: &str, day: &str, region: &str, service: &str) -> Arc<DayKey> {
        {
            let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(key) = current.as_ref().filter(|key| key.day == day.as_bytes()) {
                return Arc::clone(key);
            }
        }
        // Derived outside the lock: other signers wait for nothing slow.
        let key = Arc::new(DayKey::derive(secret_key, day, region, service));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&key));
        key
    }
}

/// Canonical `(name, value)` pairs of a query, borrowed where possible.
type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Appends the canonical pairs of the raw query `raw` to `pairs`; `None`
/// when it is not valid percent-encoding.
fn push_canonical_pairs<'a>(raw: &'a str, pairs: &mut Pairs<'a>) -> Option<()> {
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((canonical(name)?, canonical(value)?));
    }
    Some(())
}

/// Why the canonical headers could not be written.
enum HeaderProblem {
    Missing,
    NotText(String),
}

/// Hashes `name:value\n` for each signed header (values trimmed, inner
/// runs of white space collapsed, repeated headers joined by commas).
fn hash_canonical_headers(
    hasher: &mut Sha256,
    headers: &http::HeaderMap,
    names: &[&str],
) -> Result<(), HeaderProblem> {
    for name in names {
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(HeaderProblem::Missing);
        }
        hasher.update(name.as_bytes());
        hasher.update(b":");
        for (index, value) in values.enumerate() {
            let text = value
                .to_str()
                .map_err(|_| HeaderProblem::NotText((*name).to_owned()))?;
            if index > 0 {
                hasher.update(b",");
            }
            for (word_index, word) in text.split_ascii_whitespace().enumerate() {
                if word_index > 0 {
                    hasher.update(b" ");
                }
                hasher.update(word.as_bytes());
            }
        }
        hasher.update(b"\n");
    }
    Ok(())
}

/// What both signing and verification feed into [`signature`].
struct Signable<'a> {
    method: &'a str,
    raw_path: &'a str,
    /// The service of the scope, which decides the canonical path.
    service: &'a str,
    /// Every query parameter except `X-Amz-Signature`, canonical, sorted.
    query: &'a [(Cow<'a, str>, Cow<'a, str>)],
    headers: &'a http::HeaderMap,
    /// The signed header names, sorted.
    signed_names: &'a [&'a str],
    amz_date: &'a str,
}

/// The lower-case hex V4 signature: the one code path for signing and
/// verifying.
fn signature(key: &DayKey, input: &Signable<'_>) -> Result<[u8; 64], HeaderProblem> {
    let mut hasher = Sha256::new();
    hasher.update(input.method.as_bytes());
    hasher.update(b"\n");
    hasher.update(v4_canonical_path(input.raw_path, input.service).as_bytes());
    hasher.update(b"\n");
    for (index, (name, value)) in input.query.iter().enumerate() {
        if index > 0 {
            hasher.update(b"&");
        }
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
    }
    hasher.update(b"\n");
    hash_canonical_headers(&mut hasher, input.headers, input.signed_names)?;
    hasher.update(b"\n");
    for (index, name) in input.signed_names.iter().enumerate() {
        if index > 0 {
            hasher.update(b";");
        }
        hasher.update(name.as_bytes());
    }
    hasher.update(b"\n");
    hasher.update(UNSIGNED_PAYLOAD.as_bytes());
    let canonical_hash = hex_lower(&hasher.finalize().into());

    let mut mac = key.mac.clone();
    mac.update(ALGORITHM.as_bytes());
    mac.update(b"\n");
    mac.update(input.amz_date.as_bytes());
    mac.update(b"\n");
    mac.update(key.scope.as_bytes());
    mac.update(b"\n");
    mac.update(&canonical_hash);
    Ok(hex_lower(&mac.finalize().into_bytes().into()))
}

/// The signature as text.
fn hex_text(signature: &[u8; 64]) -> &str {
    std::str::from_utf8(signature).expect("hex digits are ascii")
}

/// Appends the query text to add to `request` (no leading `&`) to `out`.
#[allow(clippy::too_many_arguments)] // the signer's parts, kept apart to borrow them
pub(super) fn presign_query(
    credentials: &Credentials,
    region: &str,
    service: &str,
    expires: Duration,
    keys: &KeyCache,
    request: &http::Request<Vec<u8>>,
    now: SystemTime,
    out: &mut String,
) -> Result<(), SignError> {
    if !(1..=MAX_EXPIRES).contains(&expires.as_secs()) {
        return Err(SignError::InvalidExpiry);
    }
    let amz_date = time::amz_date(now).ok_or(SignError::TimeOutOfRange)?;
    let key = keys.for_day(credentials.secret_key(), amz_date.day(), region, service);
    let mut names: Vec<&str> = request.headers().keys().map(|name| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();

    let start = out.len();
    out.push_str(P_ALGORITHM);
    out.push('=');
    out.push_str(ALGORITHM);
    out.push('&');
    out.push_str(P_CREDENTIAL);
    out.push('=');
    encode_into(credentials.access_key().as_bytes(), out);
    out.push_str("%2F");
    encode_into(key.scope.as_bytes(), out);
    out.push('&');
    out.push_str(P_DATE);
    out.push('=');
    out.push_str(&amz_date);
    out.push('&');
    out.push_str(P_EXPIRES);
    out.push('=');
    let (digits, first) = decimal(expires.as_secs());
    out.push_str(std::str::from_utf8(&digits[first..]).expect("digits are ascii"));
    out.push('&');
    out.push_str(P_SIGNED_HEADERS);
    out.push('=');
    for (index, name) in names.iter().enumerate() {
        if index > 0 {
            out.push_str("%3B");
        }
        encode_into(name.as_bytes(), out);
    }
    out.push('&');

    let signature = {
        let mut query = Pairs::with_capacity(16);
        push_canonical_pairs(request.uri().query().unwrap_or_default(), &mut query)
            .ok_or(SignError::InvalidUri)?;
        push_canonical_pairs(&out[start..], &mut query).ok_or(SignError::InvalidUri)?;
        query.sort_unstable();
        signature(
            &key,
            &Signable {
                method: request.method().as_str(),
                raw_path: request.uri().path(),
                service,
                query: &query,
                headers: request.headers(),
                signed_names: &names,
                amz_date: &amz_date,
            },
        )
        .map_err(|problem| match problem {
            HeaderProblem::Missing => SignError::MissingHost,
            HeaderProblem::NotText(name) => SignError::InvalidHeader(name),
        })?
    };
    out.push_str(P_SIGNATURE);
    out.push('=');
    out.push_str(hex_text(&signature));
    Ok(())
}

/// Checks a V4 presigned request by recomputing its signature.
pub(super) fn verify(
    credentials: &Credentials,
    region: &str,
    service: &str,
    keys: &KeyCache,
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
    let scope = format!("/{}/{region}/{service}/{TERMINATOR}", &amz_date[..8]);
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
    let expires_at = signed_at + Duration::from_secs(expires);
    if let Ok(late) = now.duration_since(expires_at)
        && !late.is_zero()
    {
        return Err(VerifyError::Expired { late });
    }
    if signed_at > now + MAX_CLOCK_SKEW {
        let ahead = signed_at.duration_since(now).unwrap_or_default();
        return Err(VerifyError::NotYetValid { ahead });
    }
    let signed_headers = single_param(params, P_SIGNED_HEADERS)?;
    let names: Vec<&str> = signed_headers.split(';').collect();
    let well_formed = names.windows(2).all(|pair| pair[0] < pair[1])
        && names
            .iter()
            .all(|name| !name.is_empty() && !name.bytes().any(|byte| byte.is_ascii_uppercase()));
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
    let mut query = Pairs::with_capacity(16);
    push_canonical_pairs(request.uri().query().unwrap_or_default(), &mut query).ok_or(
        VerifyError::Malformed("query is not valid percent-encoding"),
    )?;
    query.retain(|(name, _)| name != P_SIGNATURE);
    query.sort_unstable();
    let key = keys.for_day(credentials.secret_key(), &amz_date[..8], region, service);
    let expected = signature(
        &key,
        &Signable {
            method: request.method().as_str(),
            raw_path: request.uri().path(),
            service,
            query: &query,
            headers: request.headers(),
            signed_names: &names,
            amz_date,
        },
    )
    .map_err(|problem| match problem {
        HeaderProblem::Missing => VerifyError::Malformed("a signed header is missing"),
        HeaderProblem::NotText(_) => VerifyError::Malformed("a signed header is not text"),
    })?;
    if same_signature(hex_text(&expected), given) {
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
